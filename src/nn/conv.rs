//! 2-D convolutions with PyTorch's weight layouts: [`Conv2d`] (out, in, k, k) and
//! [`ConvTranspose2d`] (in, out, k, k).
//!
//! candle's CPU transposed convolution is a direct loop, while its convolution is
//! im2col + GEMM. The common up-sampling layer of DCGAN-style decoders (k = 4, stride 2,
//! padding 1) is therefore computed exactly as a 3×3 convolution with 4·out channels (one
//! per output sub-pixel phase) followed by a pixel shuffle; the checkpoint keeps PyTorch's
//! `ConvTranspose2d` weight, which is rearranged on the fly.

use super::{Dual, Layer, Params};
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

    fn conv(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.padding, self.stride, 1, 1)
    }
}

fn add_channel_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

impl Layer for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        add_channel_bias(self.conv(x)?, self.bias.as_ref())
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(self.forward(&x.value)?, self.conv(&x.tangent)?))
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

/// For output phase `a` ∈ {0, 1} and input offset `d` ∈ {−1, 0, 1}, the kernel tap of a
/// k = 4, stride 2, padding 1 transposed convolution that connects them (None: no tap).
/// Output row 2i + a receives input row m through tap k = 2i + a + 1 − 2m, m = i + d.
fn phase_tap(a: usize, d: isize) -> Option<usize> {
    let k = a as isize + 1 - 2 * d;
    (0..4).contains(&k).then_some(k as usize)
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

    fn is_phase_decomposable(&self) -> Result<bool> {
        let (_, _, kh, kw) = self.weight.dims4()?;
        Ok(kh == 4 && kw == 4 && self.stride == 2 && self.padding == 1)
    }

    /// The 3×3 kernel (4·cout, cin, 3, 3) equivalent to the 4×4 stride-2 weight: output
    /// channel 4c + 2a + b computes sub-pixel (a, b) of channel c.
    fn phase_kernel(&self) -> Result<Tensor> {
        let (cin, cout, _, _) = self.weight.dims4()?;
        let dev = self.weight.device();
        // Flatten the 16 taps and append a zero "tap" (index 16) for missing connections.
        let flat = self.weight.reshape((cin, cout, 16))?;
        let flat = Tensor::cat(
            &[
                &flat,
                &Tensor::zeros((cin, cout, 1), self.weight.dtype(), dev)?,
            ],
            2,
        )?;
        let mut idx = Vec::with_capacity(36);
        for a in 0..2 {
            for b in 0..2 {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let tap = match (phase_tap(a, dy), phase_tap(b, dx)) {
                            (Some(ky), Some(kx)) => ky * 4 + kx,
                            _ => 16,
                        };
                        idx.push(tap as u32);
                    }
                }
            }
        }
        let idx = Tensor::from_vec(idx, 36, dev)?;
        flat.index_select(&idx, 2)? // (cin, cout, 36)
            .reshape((cin, cout * 4, 3, 3))?
            .transpose(0, 1)?
            .contiguous()
    }

    fn conv(&self, x: &Tensor) -> Result<Tensor> {
        if !self.is_phase_decomposable()? {
            return x.conv_transpose2d(&self.weight, self.padding, 0, self.stride, 1);
        }
        let (n, _, h, w) = x.dims4()?;
        let cout = self.weight.dim(1)?;
        let y = x.conv2d(&self.phase_kernel()?, 1, 1, 1, 1)?; // (n, 4·cout, h, w)
        y.reshape((n, cout, 2, 2, h, w))?
            .permute((0, 1, 4, 2, 5, 3))?
            .reshape((n, cout, 2 * h, 2 * w))
    }
}

impl Layer for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        add_channel_bias(self.conv(x)?, self.bias.as_ref())
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(self.forward(&x.value)?, self.conv(&x.tangent)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn phase_decomposition_matches_direct_transposed_convolution() -> Result<()> {
        let p = Params::new(1, &Device::Cpu);
        let layer = ConvTranspose2d::new(&p, 3, 5, 4, 2, 1)?;
        let x = Tensor::randn(0f32, 1., (2, 3, 6, 7), &Device::Cpu)?;
        let fast = layer.conv(&x)?;
        let direct = x.conv_transpose2d(&layer.weight, 1, 0, 2, 1)?;
        assert_eq!(fast.dims(), direct.dims());
        let err = (fast - direct)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 1e-5, "max abs difference {err}");
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
