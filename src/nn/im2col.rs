//! Convolutions as matrix products on the CPU: the input is unfolded into a matrix with one
//! row per (input channel, kernel row, kernel column) and one column per output pixel
//! ("im2col"), and the convolution is the flattened kernel times that matrix — a GEMM that
//! candle runs multi-threaded through the `gemm` crate.
//!
//! The unfolding is a candle custom op ([`Im2Col`]) whose backward pass is its adjoint, the
//! scatter-add [`Col2Im`] (and the other way round), so autograd differentiates a
//! convolution through the matrix product: the gradient of the input is one GEMM and one
//! col2im, the gradient of the kernel one GEMM — instead of candle's direct loops (its
//! transposed convolution, and a convolution whose "kernel" is the whole output gradient),
//! which took most of the training time.
//!
//! Layouts: images are NCHW; the unfolded matrix of a batch is (C·k·k, N·Ho·Wo) with rows
//! in (c, ky, kx) order and columns image after image, so the kernel (Cout, C·k·k) times it
//! is the output as (Cout, N·Ho·Wo) — one GEMM for the batch, whatever its size — turned
//! into NCHW by one copy of contiguous planes. A transposed convolution is the adjoint: the
//! kernel transposed times the images (Cin, N·H·W), folded by col2im straight into NCHW.
//!
//! Other devices use candle's own convolution.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The geometry of a k×k convolution over C×H×W inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Geometry {
    /// Output (height, width).
    pub fn out(&self) -> Result<(usize, usize)> {
        let side = |n: usize| {
            let padded = n + 2 * self.padding;
            if self.stride == 0 || padded < self.k {
                candle_core::bail!(
                    "a {}×{} kernel with padding {} does not fit a {}×{} input",
                    self.k,
                    self.k,
                    self.padding,
                    self.h,
                    self.w
                );
            }
            Ok((padded - self.k) / self.stride + 1)
        };
        Ok((side(self.h)?, side(self.w)?))
    }

    /// Columns of the unfolded matrix: C·k·k.
    fn row(&self) -> usize {
        self.c * self.k * self.k
    }
}

/// The element types the kernels run on.
trait Elem: Copy + Default + Send + Sync + std::ops::AddAssign {}
impl Elem for f32 {}
impl Elem for f64 {}

/// The output columns `ox` whose input column `ox·s − p + kx` lies in `0..w`, as a range.
#[inline]
fn valid(wo: usize, w: usize, s: usize, p: usize, kx: usize) -> std::ops::Range<usize> {
    // ox·s + kx ≥ p and ox·s + kx < w + p.
    let lo = p.saturating_sub(kx).div_ceil(s);
    let hi = if w + p > kx {
        (w + p - kx).div_ceil(s)
    } else {
        0
    };
    lo.min(wo)..hi.min(wo).max(lo.min(wo))
}

/// (N, C, H, W) → (C·k·k, N·Ho·Wo): row (c, ky, kx) holds input channel c shifted by the
/// kernel tap (ky, kx), image after image (zero outside the input). One task per
/// (channel, tap) row.
fn im2col<T: Elem>(x: &[T], n: usize, g: Geometry, ho: usize, wo: usize) -> Vec<T> {
    let (c, h, w, k, s, p) = (g.c, g.h, g.w, g.k, g.stride, g.padding);
    let l = ho * wo;
    let mut out = vec![T::default(); g.row() * n * l];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(n * l).enumerate().for_each(|(r, row)| {
        let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
        let xs = valid(wo, w, s, p, kx);
        let first = (xs.start * s + kx).saturating_sub(p);
        for (ni, image_row) in row.chunks_exact_mut(l).enumerate() {
            let plane = &x[(ni * c + ci) * h * w..][..h * w];
            for oy in valid(ho, h, s, p, ky) {
                let src = &plane[(oy * s + ky - p) * w..][..w];
                let dst = &mut image_row[oy * wo..][..wo][xs.clone()];
                if s == 1 {
                    dst.copy_from_slice(&src[first..first + dst.len()]);
                } else {
                    for (d, &v) in dst.iter_mut().zip(src[first..].iter().step_by(s)) {
                        *d = v;
                    }
                }
            }
        }
    });
    out
}

/// The adjoint of [`im2col`]: (C·k·k, N·Ho·Wo) → (N, C, H, W), every row added back onto
/// the input pixels it was taken from. One task per (image, channel) plane.
fn col2im<T: Elem>(cols: &[T], n: usize, g: Geometry, ho: usize, wo: usize) -> Vec<T> {
    let (c, h, w, k, s, p) = (g.c, g.h, g.w, g.k, g.stride, g.padding);
    let l = ho * wo;
    let mut out = vec![T::default(); n * c * h * w];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let (ni, ci) = (plane_index / c, plane_index % c);
            for ky in 0..k {
                for kx in 0..k {
                    let row = &cols[((ci * k + ky) * k + kx) * n * l + ni * l..][..l];
                    let xs = valid(wo, w, s, p, kx);
                    let first = (xs.start * s + kx).saturating_sub(p);
                    for oy in valid(ho, h, s, p, ky) {
                        let dst = &mut plane[(oy * s + ky - p) * w..][..w][first..];
                        let src = &row[oy * wo..][..wo][xs.clone()];
                        if s == 1 {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        });
    out
}

/// The contiguous data of a CPU tensor of shape `dims`, checked.
fn contiguous<'a, T>(v: &'a [T], layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => candle_core::bail!("{what} needs a contiguous input"),
    }
}

/// Unfolds (N, C, H, W) into (C·k·k, N·Ho·Wo); its gradient is [`Col2Im`].
#[derive(Debug, Clone, Copy)]
pub struct Im2Col(pub Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "latentflow-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (n, c, h, w) = layout.shape().dims4()?;
        if (c, h, w) != (g.c, g.h, g.w) {
            candle_core::bail!("im2col for {:?} given a {n}×{c}×{h}×{w} input", g);
        }
        let (ho, wo) = g.out()?;
        let shape = Shape::from((g.row(), n * ho * wo));
        let out = match storage {
            CpuStorage::F32(v) => {
                CpuStorage::F32(im2col(contiguous(v, layout, "im2col")?, n, g, ho, wo))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(im2col(contiguous(v, layout, "im2col")?, n, g, ho, wo))
            }
            _ => candle_core::bail!("im2col supports F32 and F64 only"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?.apply_op1(Col2Im(self.0, arg.dim(0)?))?,
        ))
    }
}

/// Folds (C·k·k, N·Ho·Wo) back onto (N, C, H, W) for a batch of `.1` images, adding
/// overlaps; the adjoint of [`Im2Col`], whose gradient it is (and the other way round).
#[derive(Debug, Clone, Copy)]
pub struct Col2Im(pub Geometry, pub usize);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "latentflow-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (ho, wo) = g.out()?;
        let n = self.1;
        let (row, l) = layout.shape().dims2()?;
        if (row, l) != (g.row(), n * ho * wo) {
            candle_core::bail!("col2im for {n} images of {:?} given a {row}×{l} input", g);
        }
        let shape = Shape::from((n, g.c, g.h, g.w));
        let out = match storage {
            CpuStorage::F32(v) => {
                CpuStorage::F32(col2im(contiguous(v, layout, "col2im")?, n, g, ho, wo))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(col2im(contiguous(v, layout, "col2im")?, n, g, ho, wo))
            }
            _ => candle_core::bail!("col2im supports F32 and F64 only"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// x (N, C, H, W) + bias (C) per channel, and its gradient: the bias's is the sum of the
/// output gradient over N, H and W, computed plane by plane ([`ChannelSum`]) — candle's
/// reduction over non-trailing dimensions divides indices per element and took a tenth of
/// a training step.
#[derive(Debug, Clone, Copy)]
pub struct AddChannelBias;

fn add_bias<T: Elem>(x: &[T], b: &[T], hw: usize) -> Vec<T> {
    let mut out = x.to_vec();
    if hw == 0 {
        return out;
    }
    let c = b.len();
    out.par_chunks_mut(hw)
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let v = b[plane_index % c];
            for y in plane.iter_mut() {
                *y += v;
            }
        });
    out
}

impl candle_core::CustomOp2 for AddChannelBias {
    fn name(&self) -> &'static str {
        "latentflow-add-channel-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = l1.shape().dims4()?;
        if l2.shape().dims() != [c] {
            candle_core::bail!("a bias of shape {:?} for {c} channels", l2.shape());
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(b)) => CpuStorage::F32(add_bias(
                contiguous(x, l1, "bias")?,
                contiguous(b, l2, "bias")?,
                h * w,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(b)) => CpuStorage::F64(add_bias(
                contiguous(x, l1, "bias")?,
                contiguous(b, l2, "bias")?,
                h * w,
            )),
            _ => candle_core::bail!("bias: F32 or F64 tensors of one dtype"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = grad.contiguous()?.apply_op1_no_bwd(&ChannelSum)?;
        Ok((Some(grad.clone()), Some(db)))
    }
}

/// (N, C, H, W) → (C): the sum of each channel over the batch and the pixels.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSum;

fn channel_sum<T: Elem>(x: &[T], n: usize, c: usize, hw: usize) -> Vec<T> {
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let mut acc = T::default();
            for ni in 0..n {
                for &v in &x[(ni * c + ci) * hw..][..hw] {
                    acc += v;
                }
            }
            acc
        })
        .collect()
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "latentflow-channel-sum"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let out = match storage {
            CpuStorage::F32(v) => {
                CpuStorage::F32(channel_sum(contiguous(v, layout, "sum")?, n, c, h * w))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(channel_sum(contiguous(v, layout, "sum")?, n, c, h * w))
            }
            _ => candle_core::bail!("channel sum supports F32 and F64 only"),
        };
        Ok((out, Shape::from(c)))
    }
}

/// `x` (N, C, H, W) plus `bias` (C) per channel: by [`AddChannelBias`] on the CPU, by a
/// broadcast elsewhere.
pub fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if applies(x) {
        x.contiguous()?
            .apply_op2(&bias.contiguous()?, AddChannelBias)
    } else {
        x.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)
    }
}

/// Whether the fast path applies: a CPU tensor of a dtype the kernels take.
pub fn applies(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// A 2-D convolution (no bias) of `x` (N, C, H, W) with `weight` (Cout, C, k, k): by
/// im2col and one GEMM for the whole batch on the CPU, by candle's convolution elsewhere.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_bias(x, weight, None, stride, padding)
}

/// [`conv2d`] plus a per-channel `bias` (Cout).
pub fn conv2d_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let add_bias = |y: Tensor| match bias {
        Some(b) => add_channel_bias(&y, b),
        None => Ok(y),
    };
    if !applies(x) {
        return add_bias(x.conv2d(weight, padding, stride, 1, 1)?);
    }
    let (n, c, h, w) = x.dims4()?;
    let (cout, cin, k, k2) = weight.dims4()?;
    if cin != c || k != k2 {
        candle_core::bail!(
            "conv2d: a {cout}×{cin}×{k}×{k2} kernel does not apply to {c}-channel inputs"
        );
    }
    let g = Geometry {
        c,
        h,
        w,
        k,
        stride,
        padding,
    };
    let (ho, wo) = g.out()?;
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?; // (c·k·k, n·ho·wo)
    let y = weight.reshape((cout, g.row()))?.matmul(&cols)?; // (cout, n·ho·wo)
    let y = y
        .reshape((cout, n, ho, wo))?
        .transpose(0, 1)?
        .contiguous()?;
    add_bias(y)
}

/// A 2-D transposed convolution (no bias) of `x` (N, Cin, H, W) with `weight`
/// (Cin, Cout, k, k), `output_padding` 0: the adjoint of [`conv2d`]. On the CPU one GEMM
/// for the batch — the weight (Cin, Cout·k·k), PyTorch's layout as it is, transposed times
/// the images (Cin, N·H·W) gives every input pixel's contribution to a k×k patch of each
/// output channel — and col2im adding the patches up; elsewhere candle's transposed
/// convolution.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if !applies(x) {
        return x.conv_transpose2d(weight, padding, 0, stride, 1);
    }
    let (n, cin, h, w) = x.dims4()?;
    let (wcin, cout, k, k2) = weight.dims4()?;
    if wcin != cin || k != k2 {
        candle_core::bail!(
            "conv_transpose2d: a {wcin}×{cout}×{k}×{k2} kernel does not apply to \
             {cin}-channel inputs"
        );
    }
    let side = |i: usize| {
        ((i.max(1) - 1) * stride + k)
            .checked_sub(2 * padding)
            .filter(|&o| o > 0)
    };
    let (Some(ho), Some(wo)) = (side(h), side(w)) else {
        candle_core::bail!("conv_transpose2d: padding {padding} is too large");
    };
    // The convolution this one is the adjoint of maps (Cout, Ho, Wo) to (Cin, H, W).
    let adjoint = Geometry {
        c: cout,
        h: ho,
        w: wo,
        k,
        stride,
        padding,
    };
    if adjoint.out()? != (h, w) {
        candle_core::bail!("conv_transpose2d: no output size maps back onto {h}×{w}");
    }
    let kernel = weight.reshape((cin, cout * k * k))?.t()?; // (cout·k·k, cin)
    let image = x.reshape((n, cin, h * w))?.transpose(0, 1)?.contiguous()?; // (cin, n, h·w)
    let image = image.reshape((cin, n * h * w))?;
    kernel.matmul(&image)?.apply_op1(Col2Im(adjoint, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn randn(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        crate::nn::fd::randn64(shape, seed)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// (batch, channels in, channels out, height, width, kernel, stride, padding).
    type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

    /// Batch 1, non-square inputs, channel counts off the SIMD width, strides 1 and 2, the
    /// geometries of the models.
    const CASES: [Case; 7] = [
        (1, 3, 5, 7, 9, 3, 1, 1),
        (2, 5, 17, 6, 5, 4, 2, 1),
        (3, 1, 2, 8, 8, 4, 2, 1),
        (1, 7, 3, 5, 11, 3, 2, 0),
        (2, 4, 9, 4, 4, 4, 1, 0),
        (1, 2, 3, 3, 3, 3, 1, 2),
        (2, 6, 12, 9, 7, 3, 1, 1),
    ];

    /// <a, b> as f64.
    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        (a * b)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn forward_and_both_gradients_match_candles_convolution() {
        // Forward against candle's convolution. Gradients of L = <g, conv(x, W)> against
        // central differences of L computed with candle's forward convolution along random
        // directions (exact up to rounding, since the convolution is linear in each
        // argument): candle's own backward mis-sizes the input gradient of stride-2
        // convolutions of non-square inputs, so it cannot serve as the reference.
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
            for (i, &(n, c, cout, h, w, k, s, p)) in CASES.iter().enumerate() {
                let seed = i as u64 * 10;
                let x = Var::from_tensor(&randn(&[n, c, h, w], seed, dtype)).unwrap();
                let wt = Var::from_tensor(&randn(&[cout, c, k, k], seed + 1, dtype)).unwrap();
                let fast = conv2d(x.as_tensor(), wt.as_tensor(), s, p).unwrap();
                let reference = x.as_tensor().conv2d(wt.as_tensor(), p, s, 1, 1).unwrap();
                assert_eq!(fast.dims(), reference.dims(), "case {i}");
                let scale = 1.0 + max_diff(&reference, &reference.zeros_like().unwrap());
                assert!(
                    max_diff(&fast, &reference) < tol * scale,
                    "forward, case {i}"
                );
                let g = randn(reference.dims(), seed + 2, dtype);
                let grads = (&fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let loss = |x: &Tensor, w: &Tensor| dot(&g, &x.conv2d(w, p, s, 1, 1).unwrap());
                for (j, v) in [&x, &wt].into_iter().enumerate() {
                    let grad = grads.get(v.as_tensor()).unwrap();
                    for d in 0..2 {
                        let dir = randn(v.dims(), seed + 3 + 2 * j as u64 + 7 * d, dtype);
                        let (plus, minus) = (
                            (v.as_tensor() + &dir).unwrap(),
                            (v.as_tensor() - &dir).unwrap(),
                        );
                        let numeric = if j == 0 {
                            (loss(&plus, wt.as_tensor()) - loss(&minus, wt.as_tensor())) / 2.0
                        } else {
                            (loss(x.as_tensor(), &plus) - loss(x.as_tensor(), &minus)) / 2.0
                        };
                        let analytic = dot(grad, &dir);
                        assert!(
                            (analytic - numeric).abs() < tol * 10.0 * (1.0 + numeric.abs()),
                            "{} gradient, case {i}, {dtype:?}: {analytic} vs {numeric}",
                            ["input", "kernel"][j]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> = <x, col2im(y)> for every x, y.
        for (i, &(n, c, _, h, w, k, s, p)) in CASES.iter().enumerate() {
            let g = Geometry {
                c,
                h,
                w,
                k,
                stride: s,
                padding: p,
            };
            let x = randn(&[n, c, h, w], i as u64, DType::F64);
            let cols = x.apply_op1(Im2Col(g)).unwrap();
            let y = randn(cols.dims(), i as u64 + 50, DType::F64);
            let back = y.apply_op1(Col2Im(g, n)).unwrap();
            let lhs = (&cols * &y)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let rhs = (&x * &back)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(
                (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
                "case {i}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn kernels_that_do_not_fit_are_errors() {
        let x = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((4, 2, 5, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &w, 1, 0).is_err());
        let w = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &w, 1, 0).is_err());
    }
}
