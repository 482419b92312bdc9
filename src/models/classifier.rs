//! A LeNet-style classifier: two strided 5×5 convolutions, a 2×2 max-pool and two fully
//! connected layers. It sees an image pair (x_t, x_{t+1}) stacked on the channel axis and
//! predicts which potential moved one into the other; the VP score trains the same
//! network on (x_0, x_T).

use crate::Result;
use crate::nn::{Conv2d, Layer, Linear, Params};
use candle_core::Tensor;

fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    crate::nn::pointwise::leaky_relu(x, 0.0)
}

/// Tensors: `conv1`, `conv2` (weight, bias), `fc1`, `fc2` (weight, bias).
#[derive(Debug, Clone)]
pub struct PairClassifier {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    flat: usize,
}

impl PairClassifier {
    /// A classifier of `in_channels`-channel images of side `size` into `classes` classes.
    pub fn new(p: &Params, in_channels: usize, size: usize, classes: usize) -> Result<Self> {
        let conv1 = Conv2d::new(&p.pp("conv1"), in_channels, 16, 5, 2, 2)?;
        let conv2 = Conv2d::new(&p.pp("conv2"), 16, 32, 5, 2, 2)?;
        let side = size.div_ceil(2).div_ceil(2) / 2;
        let flat = 32 * side * side;
        Ok(Self {
            conv1,
            conv2,
            fc1: Linear::new(&p.pp("fc1"), flat, 128)?,
            fc2: Linear::new(&p.pp("fc2"), 128, classes)?,
            flat,
        })
    }

    /// Logits (B, classes) for images `a` and `b` (each (B, C, H, W)).
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let x = Tensor::cat(&[a, b], 1)?;
        let x = relu(&self.conv1.forward(&x)?)?;
        let x = relu(&self.conv2.forward(&x)?)?.max_pool2d(2)?;
        let x = x.reshape((x.dim(0)?, self.flat))?;
        Ok(self.fc2.forward(&relu(&self.fc1.forward(&x)?)?)?)
    }
}

/// Mean cross-entropy of `logits` (B, K) against integer `labels` (B, u32), and the
/// fraction of correct argmax predictions.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, f64)> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?;
    let loss = picked.mean_all()?.neg()?;
    let predicted = logits.argmax(1)?;
    let correct = predicted
        .eq(labels)?
        .to_dtype(candle_core::DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?;
    Ok((loss, correct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn cross_entropy_matches_a_hand_computed_case() {
        // logits [0, ln 3] → p = [1/4, 3/4]; label 1 → −ln(3/4); label 0 → −ln(1/4).
        let logits = Tensor::new(&[[0f64, 3f64.ln()], [0., 3f64.ln()]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let (loss, acc) = cross_entropy(&logits, &labels).unwrap();
        let want = -(0.75f64.ln() + 0.25f64.ln()) / 2.;
        assert!((loss.to_scalar::<f64>().unwrap() - want).abs() < 1e-12);
        assert_eq!(acc, 0.5);
    }

    #[test]
    fn output_shape_for_64_pixel_pairs() {
        let p = Params::new(0, &Device::Cpu);
        let c = PairClassifier::new(&p, 6, 64, 5).unwrap();
        let x = Tensor::zeros((2, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(c.forward(&x, &x).unwrap().dims(), &[2, 5]);
    }
}
