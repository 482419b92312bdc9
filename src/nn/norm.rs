//! Batch normalisation over channels (PyTorch's `BatchNorm2d`): batch statistics while
//! training, running statistics in evaluation and in every tangent pass.

use super::{Dual, Layer, Params};
use candle_core::{Result, Tensor, Var};
use std::sync::atomic::{AtomicBool, Ordering};

/// Batch normalisation of an (N, C, H, W) tensor. Parameters `weight`, `bias`; buffers
/// `running_mean`, `running_var` (PyTorch's names; its `num_batches_tracked` is not kept).
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    training: AtomicBool,
    eps: f64,
    momentum: f64,
}

impl BatchNorm2d {
    /// Batch normalisation of `channels` channels (eps 1e-5, momentum 0.1, as PyTorch).
    pub fn new(p: &Params, channels: usize) -> Result<Self> {
        Ok(Self {
            weight: p.constant("weight", channels, 1.0)?,
            bias: p.constant("bias", channels, 0.0)?,
            running_mean: p.buffer("running_mean", channels, 0.0)?,
            running_var: p.buffer("running_var", channels, 1.0)?,
            training: AtomicBool::new(false),
            eps: 1e-5,
            momentum: 0.1,
        })
    }

    fn channel(t: &Tensor) -> Result<Tensor> {
        t.reshape((1, t.dim(0)?, 1, 1))
    }

    /// The per-channel scale and shift of evaluation mode: y = x·scale + shift.
    fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let rv = self.running_var.as_detached_tensor();
        let rm = self.running_mean.as_detached_tensor();
        let scale = (&self.weight / (rv + self.eps)?.sqrt()?)?;
        let shift = (&self.bias - (rm * &scale)?)?;
        Ok((Self::channel(&scale)?, Self::channel(&shift)?))
    }

    fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let count = (n * h * w) as f64;
        let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?; // (1, c, 1, 1)
        let centered = x.broadcast_sub(&mean)?;
        let var = centered
            .sqr()?
            .mean_keepdim(0)?
            .mean_keepdim(2)?
            .mean_keepdim(3)?;
        let y = centered.broadcast_div(&(&var + self.eps)?.sqrt()?)?;
        let y = y
            .broadcast_mul(&Self::channel(&self.weight)?)?
            .broadcast_add(&Self::channel(&self.bias)?)?;
        // Running statistics use the unbiased variance, as PyTorch does.
        let m = self.momentum;
        let mean = mean.detach().reshape(c)?;
        let var = (var.detach().reshape(c)? * (count / (count - 1.).max(1.)))?;
        let rm = ((self.running_mean.as_detached_tensor() * (1. - m))? + (mean * m)?)?;
        let rv = ((self.running_var.as_detached_tensor() * (1. - m))? + (var * m)?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)?;
        Ok(y)
    }
}

impl Layer for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.training.load(Ordering::Relaxed) {
            return self.forward_train(x);
        }
        let (scale, shift) = self.eval_affine()?;
        x.broadcast_mul(&scale)?.broadcast_add(&shift)
    }

    /// Always uses the running statistics: the tangent of a frozen generator.
    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        let (scale, shift) = self.eval_affine()?;
        Ok(Dual::new(
            x.value.broadcast_mul(&scale)?.broadcast_add(&shift)?,
            x.tangent.broadcast_mul(&scale)?,
        ))
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn training_normalises_and_updates_running_statistics() -> Result<()> {
        let p = Params::new(0, &Device::Cpu);
        let bn = BatchNorm2d::new(&p, 2)?;
        bn.set_training(true);
        let x = Tensor::randn(0f32, 1., (8, 2, 3, 3), &Device::Cpu)?.affine(3.0, 5.0)?;
        let y = bn.forward(&x)?;
        let mean = y.mean_all()?.to_scalar::<f32>()?;
        let var = y.sqr()?.mean_all()?.to_scalar::<f32>()?;
        assert!(
            mean.abs() < 1e-4 && (var - 1.).abs() < 1e-3,
            "mean {mean} var {var}"
        );
        let rm = bn.running_mean.as_tensor().to_vec1::<f32>()?;
        assert!(rm.iter().all(|m| (m - 0.5).abs() < 0.2), "{rm:?}");
        bn.set_training(false);
        let y_eval = bn.forward(&x)?;
        assert!(y_eval.mean_all()?.to_scalar::<f32>()? > 1.0);
        Ok(())
    }
}
