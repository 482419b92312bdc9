//! 2-D convolutions with PyTorch's weight layouts: [`Conv2d`] (out, in, k, k) and
//! [`ConvTranspose2d`] (in, out, k, k).
//!
//! On the CPU both run as one GEMM each, with the unfolding and folding of
//! [`super::im2col`] (whose custom ops carry their own gradients): a convolution as
//! im2col then GEMM, a transposed convolution — its adjoint — as GEMM then col2im, with
//! PyTorch's weight layouts used as they are. Other devices use candle's convolutions.

use super::{Dual, Layer, Params, im2col};
use candle_core::{Result, Tensor};

/// A 2-D convolution y = W ⋆ x + b.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// A k×k convolution from `cin` to `cout` channels with PyTorch's default initialisation.
    pub fn new(
        p: &Params,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let bound = 1. / ((cin * k * k) as f64).sqrt();
        let weight = p.uniform("weight", (cout, cin, k, k), bound)?;
        let bias = p.uniform("bias", cout, bound)?;
        Ok(Self {
            weight,
            bias: Some(bias),
            stride,
            padding,
        })
    }

    fn conv(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        im2col::conv2d_bias(x, &self.weight, bias, self.stride, self.padding)
    }
}

impl Layer for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv(x, self.bias.as_ref())
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(
            self.forward(&x.value)?,
            self.conv(&x.tangent, None)?,
        ))
    }
}

/// A 2-D transposed convolution (the adjoint of a strided convolution), as PyTorch's
/// `ConvTranspose2d` with `output_padding = 0` and `dilation = 1`.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl ConvTranspose2d {
    /// A k×k transposed convolution from `cin` to `cout` channels.
    pub fn new(
        p: &Params,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        // PyTorch computes fan_in from weight.size(1) * k * k = cout * k * k.
        let bound = 1. / ((cout * k * k) as f64).sqrt();
        let weight = p.uniform("weight", (cin, cout, k, k), bound)?;
        let bias = p.uniform("bias", cout, bound)?;
        Ok(Self {
            weight,
            bias: Some(bias),
            stride,
            padding,
        })
    }

    fn conv(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        im2col::conv_transpose2d_bias(x, &self.weight, bias, self.stride, self.padding)
    }
}

impl Layer for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv(x, self.bias.as_ref())
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(
            self.forward(&x.value)?,
            self.conv(&x.tangent, None)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>())
            .unwrap_or(f64::INFINITY)
    }

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        (a * b)
            .and_then(|p| p.sum_all()?.to_scalar::<f64>())
            .unwrap_or(f64::NAN)
    }

    /// Value and tangent of a layer against a reference made of candle's own (transposed)
    /// convolution, and the gradients of its input, weight and bias against central
    /// differences of the reference (exact up to rounding: the layer is affine in each),
    /// in f64. (candle's own backward mis-sizes gradients of non-square inputs.)
    fn check_against_reference(
        layer: &dyn Layer,
        weight: &Tensor,
        bias: &Tensor,
        x: &candle_core::Var,
        reference: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
        case: &str,
    ) -> Result<()> {
        let slow = |x: &Tensor, w: &Tensor, b: &Tensor| -> Result<Tensor> {
            reference(x, w)?.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)
        };
        let fast = layer.forward(x.as_tensor())?;
        let expected = slow(x.as_tensor(), weight, bias)?;
        assert!(max_diff(&fast, &expected) < 1e-10, "{case}: forward");
        let v = crate::nn::fd::randn64(x.dims(), 77)?;
        let dual = layer.forward_dual(&Dual::new(x.as_tensor().clone(), v.clone()))?;
        let tangent = reference(&v, weight)?;
        assert!(max_diff(&dual.tangent, &tangent) < 1e-10, "{case}: tangent");
        let g = crate::nn::fd::randn64(fast.dims(), 78)?;
        let grads = (&fast * &g)?.sum_all()?.backward()?;
        let args = [x.as_tensor(), weight, bias];
        for (j, what) in ["input", "weight", "bias"].into_iter().enumerate() {
            let Some(grad) = grads.get(args[j]) else {
                panic!("{case}: no {what} gradient");
            };
            let dir = crate::nn::fd::randn64(args[j].dims(), 79 + j as u64)?;
            let moved = |sign: f64| -> Result<f64> {
                let mut a = args.map(Tensor::clone);
                a[j] = (args[j] + (&dir * sign)?)?;
                Ok(dot(&g, &slow(&a[0], &a[1], &a[2])?))
            };
            let numeric = (moved(1.0)? - moved(-1.0)?) / 2.0;
            let analytic = dot(grad, &dir);
            assert!(
                (analytic - numeric).abs() < 1e-9 * (1.0 + numeric.abs()),
                "{case}: {what} gradient {analytic} vs {numeric}"
            );
        }
        Ok(())
    }

    #[test]
    fn layers_match_candles_reference_ops_in_value_tangent_and_gradients() -> Result<()> {
        let dev = Device::Cpu;
        // Batch 1, non-square, channel counts off the SIMD width.
        for (i, &(n, cin, cout, h, w)) in [(1, 3, 5, 6, 7), (2, 17, 4, 3, 5), (1, 1, 2, 1, 1)]
            .iter()
            .enumerate()
        {
            let p = Params::new(i as u64, &dev).with_dtype(candle_core::DType::F64)?;
            let x =
                candle_core::Var::from_tensor(&crate::nn::fd::randn64(&[n, cin, h, w], i as u64)?)?;
            // The decoders' up-sampling layer, the GAN's first layer, and others.
            for (k, stride, pad) in [(4, 2, 1), (4, 1, 0), (3, 1, 1), (3, 2, 0)] {
                let up = ConvTranspose2d::new(
                    &p.pp(format!("up{k}{stride}{pad}")),
                    cin,
                    cout,
                    k,
                    stride,
                    pad,
                )?;
                check_against_reference(
                    &up,
                    &up.weight,
                    up.bias.as_ref().unwrap(),
                    &x,
                    |t, w| t.conv_transpose2d(w, pad, 0, stride, 1),
                    &format!("transposed {i} k{k} s{stride} p{pad}"),
                )?;
            }
            for (k, stride, pad) in [(3, 1, 1), (4, 2, 1)] {
                if h + 2 * pad < k || w + 2 * pad < k {
                    continue;
                }
                let conv = Conv2d::new(&p.pp(format!("c{k}")), cin, cout, k, stride, pad)?;
                check_against_reference(
                    &conv,
                    &conv.weight,
                    conv.bias.as_ref().unwrap(),
                    &x,
                    |t, w| t.conv2d(w, pad, stride, 1, 1),
                    &format!("conv {i} k{k}"),
                )?;
            }
        }
        Ok(())
    }

    #[test]
    fn other_geometries_use_the_direct_path() -> Result<()> {
        let p = Params::new(1, &Device::Cpu);
        let layer = ConvTranspose2d::new(&p, 2, 3, 4, 1, 0)?;
        let x = Tensor::randn(0f32, 1., (1, 2, 4, 4), &Device::Cpu)?;
        assert_eq!(layer.forward(&x)?.dims(), &[1, 3, 7, 7]);
        Ok(())
    }
}
