//! Convolutions as matrix products on the CPU: the input is unfolded into a matrix with one
//! row per (input channel, kernel row, kernel column) and one column per output pixel
//! ("im2col"), and the convolution is the flattened kernel times that matrix — one GEMM for
//! the batch, multi-threaded.
//!
//! Each convolution is one candle custom op of (input, kernel, bias) — [`Conv2dOp`],
//! [`ConvTranspose2dOp`] — whose backward pass is written out: the input's gradient is one
//! GEMM and one col2im for the convolution ([`ConvInputGrad`]) and one GEMM over the
//! unfolded output gradient for the transposed one ([`ConvTransposeInputGrad`]), the
//! kernel's the dot products of the output gradient's rows with the unfolded input's
//! ([`super::gemm::rows_dot_rows`]), the bias's plane sums. candle's own CPU convolutions
//! differentiate through direct loops (its transposed convolution, and a convolution whose
//! "kernel" is the whole output gradient), which took most of the training time; and as one
//! graph node, none of the large intermediates gets a gradient of its own for autograd to
//! allocate and accumulate. The unfolding and folding are also custom ops ([`Im2Col`],
//! [`Col2Im`]), each the other's adjoint and gradient.
//!
//! Layouts: images are NCHW; the unfolded matrix of a batch is (C·k·k, N·Ho·Wo) with rows
//! in (c, ky, kx) order and columns image after image, so the kernel (Cout, C·k·k) times it
//! is the output as (Cout, N·Ho·Wo). A transposed convolution is the adjoint: the kernel
//! transposed times the images (Cin, N·H·W), folded by col2im straight into NCHW.
//!
//! In f32 on a CPU with AVX-512 the products run on [`super::sgemm`], which reads the
//! images and their unfolded view in place while it packs its panels and writes NCHW
//! directly: the forward convolution and the transposed convolution's input gradient need
//! no column matrix at all, the others no permutation of the images, and the bias is the
//! product's starting value. Elsewhere (f64, other CPUs) the same ops materialise the
//! column matrix and multiply through the `gemm` crate; the tests compare both paths.
//!
//! Other devices use candle's own convolution.

use super::gemm::{Mat, RowsDotRows, multiply};
use super::sgemm;
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

use super::gemm::Scalar as Elem;

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

/// `dst[j] = src[j·s]` for every j. Written per stride so that the compiler vectorises the
/// common ones (1: a copy; 2: a de-interleave).
#[inline]
fn gather_strided<T: Elem>(dst: &mut [T], src: &[T], s: usize) {
    match s {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => {
            let n = dst.len();
            // Whole pairs, then the last element (whose pair may run past `src`).
            let pairs = src.len().min(2 * n) / 2;
            for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2).take(pairs)) {
                *d = pair[0];
            }
            if pairs < n {
                dst[n - 1] = src[2 * (n - 1)];
            }
        }
        _ => {
            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                *d = v;
            }
        }
    }
}

/// `dst[j·s] += src[j]` for every j, per stride as [`gather_strided`].
#[inline]
fn scatter_add_strided<T: Elem>(dst: &mut [T], src: &[T], s: usize) {
    match s {
        1 => {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += v;
            }
        }
        2 => {
            let n = src.len();
            let pairs = dst.len().min(2 * n) / 2;
            for (pair, &v) in dst.chunks_exact_mut(2).take(pairs).zip(src) {
                pair[0] += v;
            }
            if pairs < n {
                dst[2 * (n - 1)] += src[n - 1];
            }
        }
        _ => {
            for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
                *d += v;
            }
        }
    }
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
                gather_strided(dst, &src[first..], s);
            }
        }
    });
    out
}

/// The adjoint of [`im2col`]: (C·k·k, N·Ho·Wo) → (N, C, H, W), every row added back onto
/// the input pixels it was taken from. One task per (image, channel) plane.
fn col2im<T: Elem>(cols: &[T], n: usize, g: Geometry, ho: usize, wo: usize) -> Vec<T> {
    col2im_from(cols, n, g, ho, wo, None)
}

/// [`col2im`] onto planes that start at `start[c]` instead of 0 (a bias).
fn col2im_from<T: Elem>(
    cols: &[T],
    n: usize,
    g: Geometry,
    ho: usize,
    wo: usize,
    start: Option<&[T]>,
) -> Vec<T> {
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
            if let Some(b) = start {
                plane.fill(b[ci]);
            }
            for ky in 0..k {
                for kx in 0..k {
                    let row = &cols[((ci * k + ky) * k + kx) * n * l + ni * l..][..l];
                    let xs = valid(wo, w, s, p, kx);
                    let first = (xs.start * s + kx).saturating_sub(p);
                    for oy in valid(ho, h, s, p, ky) {
                        let dst = &mut plane[(oy * s + ky - p) * w..][..w][first..];
                        let src = &row[oy * wo..][..wo][xs.clone()];
                        scatter_add_strided(dst, src, s);
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

/// (N, C, H, W) → (C): the sum of each channel over the batch and the pixels.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSum;

fn channel_sum<T: Elem>(x: &[T], n: usize, c: usize, hw: usize) -> Vec<T> {
    (0..c)
        .into_par_iter()
        .map(|ci| {
            // Sixteen running sums, one per lane, so that the additions do not wait on each
            // other (one running sum is a chain of dependent additions, ~1 ns a value).
            let mut lanes = [T::default(); 16];
            let mut acc = T::default();
            for ni in 0..n {
                let plane = &x[(ni * c + ci) * hw..][..hw];
                let mut chunks = plane.chunks_exact(16);
                for chunk in &mut chunks {
                    for (l, &v) in lanes.iter_mut().zip(chunk) {
                        *l += v;
                    }
                }
                for &v in chunks.remainder() {
                    acc += v;
                }
            }
            lanes.iter().fold(acc, |a, &l| a + l)
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

/// `x` (N, C, H, W) plus `bias` (C) per channel, by a broadcast (the path of non-CPU
/// devices; on the CPU the bias is part of the convolution ops).
fn broadcast_bias(x: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => x.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(x),
    }
}

/// Whether the fast path applies: a CPU tensor of a dtype the kernels take.
pub fn applies(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// The slices of three contiguous CPU storages of one float dtype, for `f` to turn into
/// the output storage.
fn with_three(
    s: [&CpuStorage; 3],
    l: [&Layout; 3],
    f32_op: impl FnOnce([&[f32]; 3]) -> Result<Vec<f32>>,
    f64_op: impl FnOnce([&[f64]; 3]) -> Result<Vec<f64>>,
) -> Result<CpuStorage> {
    match s {
        [CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)] => {
            Ok(CpuStorage::F32(f32_op([
                contiguous(a, l[0], "convolution")?,
                contiguous(b, l[1], "convolution")?,
                contiguous(c, l[2], "convolution")?,
            ])?))
        }
        [CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)] => {
            Ok(CpuStorage::F64(f64_op([
                contiguous(a, l[0], "convolution")?,
                contiguous(b, l[1], "convolution")?,
                contiguous(c, l[2], "convolution")?,
            ])?))
        }
        _ => candle_core::bail!("convolution: F32 or F64 operands of one dtype"),
    }
}

/// A new vector of `len` values written by one [`sgemm`] product that `product` describes
/// (given the vector's start), or `None` where the CPU lacks the kernel (the callers then
/// take the generic path). Every caller checks that the operands hold what the product
/// reads and that the product writes all `len` values.
fn own_product<'a>(
    len: usize,
    product: impl FnOnce(*mut f32) -> sgemm::Product<'a>,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if sgemm::available() {
        let mut out = Vec::with_capacity(len);
        let p = product(out.as_mut_ptr());
        // SAFETY: the callers pass operands that hold every element the product reads and
        // stay borrowed, unchanged, for the call; the product writes each of the `len`
        // elements of `out` (they checked) before its length is set.
        unsafe {
            sgemm::run(&p, super::threads());
            out.set_len(len);
        }
        return Some(out);
    }
    let _ = (len, product);
    None
}

/// The unfolded view of NCHW images in the geometry `g`, for [`sgemm::Source::Unfolded`].
fn unfold_view(g: Geometry) -> Result<sgemm::Unfold> {
    let (ho, wo) = g.out()?;
    Ok(sgemm::Unfold {
        c: g.c,
        h: g.h,
        w: g.w,
        k: g.k,
        stride: g.stride,
        padding: g.padding,
        ho,
        wo,
    })
}

/// Checks that slices hold the values of their shapes (the fast paths read through raw
/// pointers).
fn check_lens(what: &str, pairs: &[(usize, usize)]) -> Result<()> {
    for &(got, want) in pairs {
        if got != want {
            candle_core::bail!("{what}: an operand of {got} values where {want} are needed");
        }
    }
    Ok(())
}

/// The convolution's output straight from the images: W (Cout × C·k·k) times their
/// unfolded view, plus the bias, written into NCHW — no column matrix, no permutation.
fn conv_forward_own([x, w, b]: [&[f32]; 3], n: usize, g: Geometry) -> Result<Option<Vec<f32>>> {
    let u = unfold_view(g)?;
    let (l, cout, r) = (u.ho * u.wo, b.len(), g.row());
    check_lens(
        "conv2d",
        &[(x.len(), n * g.c * g.h * g.w), (w.len(), cout * r)],
    )?;
    if let Some(y) = super::direct::conv(x, w, Some(b), n, cout, u) {
        return Ok(Some(y));
    }
    Ok(own_product(n * cout * l, |out| sgemm::Product {
        m: cout,
        n: n * l,
        k: r,
        a: sgemm::Source::Matrix(sgemm::Operand {
            ptr: w.as_ptr(),
            rs: r,
            cs: 1,
        }),
        b: sgemm::Source::Unfolded {
            ptr: x.as_ptr(),
            g: u,
        },
        c: sgemm::Dest::Images {
            ptr: out,
            l,
            image: cout * l,
        },
        bias: Some(b),
    }))
}

/// The transposed convolution's patches (Cout·k·k × N·H·W) straight from the images: the
/// kernel transposed times the images read as (Cin × N·H·W).
fn deconv_patches_own(
    x: &[f32],
    w: &[f32],
    n: usize,
    cin: usize,
    hw: usize,
    r: usize,
) -> Result<Option<Vec<f32>>> {
    check_lens(
        "conv_transpose2d",
        &[(x.len(), n * cin * hw), (w.len(), cin * r)],
    )?;
    Ok(own_product(r * n * hw, |out| sgemm::Product {
        m: r,
        n: n * hw,
        k: cin,
        a: sgemm::Source::Matrix(sgemm::Operand {
            ptr: w.as_ptr(),
            rs: 1,
            cs: r,
        }),
        b: sgemm::Source::Images {
            ptr: x.as_ptr(),
            l: hw,
            image: cin * hw,
        },
        c: sgemm::Dest::Matrix {
            ptr: out,
            ld: n * hw,
        },
        bias: None,
    }))
}

/// (N, C, L) → (C, N·L): images as rows of channels.
fn channels_major<T: Elem>(x: &[T], n: usize, c: usize, l: usize) -> Vec<T> {
    let mut out = vec![T::default(); c * n * l];
    if !out.is_empty() {
        out.par_chunks_mut(l).enumerate().for_each(|(row, dst)| {
            let (ci, ni) = (row / n, row % n);
            dst.copy_from_slice(&x[(ni * c + ci) * l..][..l]);
        });
    }
    out
}

/// (C, N·L) → (N, C, L): the inverse of [`channels_major`].
fn batch_major<T: Elem>(x: &[T], n: usize, c: usize, l: usize) -> Vec<T> {
    let mut out = vec![T::default(); n * c * l];
    if !out.is_empty() {
        out.par_chunks_mut(l).enumerate().for_each(|(plane, dst)| {
            let (ni, ci) = (plane / c, plane % c);
            dst.copy_from_slice(&x[(ci * n + ni) * l..][..l]);
        });
    }
    out
}

/// The slices of two contiguous CPU storages of one float dtype, for `f32_op` or `f64_op`
/// to turn into the output storage.
fn with_two(
    s: [&CpuStorage; 2],
    l: [&Layout; 2],
    f32_op: impl FnOnce([&[f32]; 2]) -> Result<Vec<f32>>,
    f64_op: impl FnOnce([&[f64]; 2]) -> Result<Vec<f64>>,
) -> Result<CpuStorage> {
    match s {
        [CpuStorage::F32(a), CpuStorage::F32(b)] => Ok(CpuStorage::F32(f32_op([
            contiguous(a, l[0], "convolution gradient")?,
            contiguous(b, l[1], "convolution gradient")?,
        ])?)),
        [CpuStorage::F64(a), CpuStorage::F64(b)] => Ok(CpuStorage::F64(f64_op([
            contiguous(a, l[0], "convolution gradient")?,
            contiguous(b, l[1], "convolution gradient")?,
        ])?)),
        _ => candle_core::bail!("convolution gradient: F32 or F64 operands of one dtype"),
    }
}

/// The gradient of a convolution's input, ∂x = col2im(Wᵀ·∂y), from the kernel
/// (Cout, C, k, k) and the output's gradient ∂y (N, Cout, Ho, Wo); `.1` is the batch.
#[derive(Debug, Clone, Copy)]
pub struct ConvInputGrad(pub Geometry, pub usize);

/// Wᵀ·∂y (C·k·k × N·L) with ∂y read as (Cout × N·L) in place.
fn conv_dcols_own(
    w: &[f32],
    dy: &[f32],
    n: usize,
    cout: usize,
    g: Geometry,
    l: usize,
) -> Option<Vec<f32>> {
    let r = g.row();
    own_product(r * n * l, |out| sgemm::Product {
        m: r,
        n: n * l,
        k: cout,
        a: sgemm::Source::Matrix(sgemm::Operand {
            ptr: w.as_ptr(),
            rs: 1,
            cs: r,
        }),
        b: sgemm::Source::Images {
            ptr: dy.as_ptr(),
            l,
            image: cout * l,
        },
        c: sgemm::Dest::Matrix {
            ptr: out,
            ld: n * l,
        },
        bias: None,
    })
}

/// Wᵀ·∂y by the generic product, ∂y permuted to (Cout × N·L) first.
fn conv_dcols<T: Elem>(
    w: &[T],
    dy: &[T],
    n: usize,
    cout: usize,
    g: Geometry,
    l: usize,
) -> Result<Vec<T>> {
    let r = g.row();
    let dymat = channels_major(dy, n, cout, l);
    let kernel_t = Mat {
        data: w,
        start: 0,
        rows: r,
        cols: cout,
        rs: 1,
        cs: r,
    };
    multiply(kernel_t, Mat::rows(&dymat, cout, n * l))
}

impl candle_core::CustomOp2 for ConvInputGrad {
    fn name(&self) -> &'static str {
        "latentflow-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, n) = (self.0, self.1);
        let (ho, wo) = g.out()?;
        let l = ho * wo;
        let (cout, cin, k, k2) = l1.shape().dims4()?;
        if cin != g.c || (k, k2) != (g.k, g.k) || l2.shape().dims() != [n, cout, ho, wo] {
            candle_core::bail!(
                "conv2d input gradient for {n} images of {g:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let out = with_two(
            [s1, s2],
            [l1, l2],
            |[w, dy]| {
                // ∂x is the transposed convolution of ∂y with the kernel: the direct
                // kernel's classes where it runs, no column matrix and no col2im.
                if let Some(dx) = super::direct::transposed(dy, w, None, n, cout, unfold_view(g)?) {
                    return Ok(dx);
                }
                let dcols = match conv_dcols_own(w, dy, n, cout, g, l) {
                    Some(d) => d,
                    None => conv_dcols(w, dy, n, cout, g, l)?,
                };
                Ok(col2im(&dcols, n, g, ho, wo))
            },
            |[w, dy]| Ok(col2im(&conv_dcols(w, dy, n, cout, g, l)?, n, g, ho, wo)),
        )?;
        Ok((out, Shape::from((n, g.c, g.h, g.w))))
    }
}

/// The gradient of a transposed convolution's input, ∂x = W·im2col(∂y), from the kernel
/// (Cin, Cout, k, k) and the output's gradient ∂y (N, Cout, H', W'); `.0` is the
/// convolution the transposed one is the adjoint of, `.1` the batch.
#[derive(Debug, Clone, Copy)]
pub struct ConvTransposeInputGrad(pub Geometry, pub usize);

/// W·im2col(∂y) by the generic product, then back to NCHW.
fn deconv_dx<T: Elem>(wt: &[T], dy: &[T], n: usize, cin: usize, a: Geometry) -> Result<Vec<T>> {
    let (h, w) = a.out()?;
    let (hw, r) = (h * w, a.row());
    let dpatches = im2col(dy, n, a, h, w);
    let dimage = multiply(Mat::rows(wt, cin, r), Mat::rows(&dpatches, r, n * hw))?;
    Ok(batch_major(&dimage, n, cin, hw))
}

impl candle_core::CustomOp2 for ConvTransposeInputGrad {
    fn name(&self) -> &'static str {
        "latentflow-conv-transpose2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, n) = (self.0, self.1);
        let (h, w) = a.out()?;
        let (hw, r) = (h * w, a.row());
        let (cin, cout, k, k2) = l1.shape().dims4()?;
        if cout != a.c || (k, k2) != (a.k, a.k) || l2.shape().dims() != [n, a.c, a.h, a.w] {
            candle_core::bail!(
                "conv_transpose2d input gradient for {n} images of {a:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let out = with_two(
            [s1, s2],
            [l1, l2],
            |[wt, dy]| {
                let u = unfold_view(a)?;
                // The input gradient is the convolution of ∂y with the kernel read as
                // (Cin, Cout, k, k): the direct kernel where it runs.
                if let Some(dx) = super::direct::conv(dy, wt, None, n, cin, u) {
                    return Ok(dx);
                }
                let own = own_product(n * cin * hw, |out| sgemm::Product {
                    m: cin,
                    n: n * hw,
                    k: r,
                    a: sgemm::Source::Matrix(sgemm::Operand {
                        ptr: wt.as_ptr(),
                        rs: r,
                        cs: 1,
                    }),
                    b: sgemm::Source::Unfolded {
                        ptr: dy.as_ptr(),
                        g: u,
                    },
                    c: sgemm::Dest::Images {
                        ptr: out,
                        l: hw,
                        image: cin * hw,
                    },
                    bias: None,
                });
                match own {
                    Some(dx) => Ok(dx),
                    None => deconv_dx(wt, dy, n, cin, a),
                }
            },
            |[wt, dy]| deconv_dx(wt, dy, n, cin, a),
        )?;
        Ok((out, Shape::from((n, cin, h, w))))
    }
}

/// A kernel's gradient as one product, ∂W = A·Patches(∂ or x), each read in place: `a`
/// (rows × N·L, NCHW images of L pixels) times the patches of `b` (N·L × C·k·k) in the
/// geometry `g`.
fn kernel_grad_own(
    a: &[f32],
    rows: usize,
    b: &[f32],
    n: usize,
    g: Geometry,
) -> Result<Option<Vec<f32>>> {
    let u = unfold_view(g)?;
    let (l, r) = (u.ho * u.wo, g.row());
    check_lens(
        "kernel gradient",
        &[(a.len(), n * rows * l), (b.len(), n * g.c * g.h * g.w)],
    )?;
    if let Some(dw) = super::direct::kernel_grad(a, rows, b, n, u) {
        return Ok(Some(dw));
    }
    Ok(own_product(rows * r, |out| sgemm::Product {
        m: rows,
        n: r,
        k: n * l,
        a: sgemm::Source::Images {
            ptr: a.as_ptr(),
            l,
            image: rows * l,
        },
        b: sgemm::Source::Patches {
            ptr: b.as_ptr(),
            g: u,
        },
        c: sgemm::Dest::Matrix { ptr: out, ld: r },
        bias: None,
    }))
}

/// `a` (N, rows, L) against the unfolded `b` in the geometry `g` by the generic product:
/// a as (rows × N·L) dotted with every row of im2col(b).
fn kernel_grad<T: Elem>(a: &[T], rows: usize, b: &[T], n: usize, g: Geometry) -> Result<Vec<T>> {
    let (ho, wo) = g.out()?;
    let l = ho * wo;
    let cols = im2col(b, n, g, ho, wo);
    let amat = channels_major(a, n, rows, l);
    super::gemm::rows_dot_rows(&amat, rows, &cols, g.row(), n * l)
}

/// [`kernel_grad_own`] where the CPU has the kernel, else [`kernel_grad`].
fn kernel_grad_f32(a: &[f32], rows: usize, b: &[f32], n: usize, g: Geometry) -> Result<Vec<f32>> {
    match kernel_grad_own(a, rows, b, n, g)? {
        Some(dw) => Ok(dw),
        None => kernel_grad(a, rows, b, n, g),
    }
}

/// The gradient of a convolution's kernel, ∂W = ∂y·im2col(x)ᵀ (Cout, C, k, k), from the
/// input x (N, C, H, W) and the output's gradient ∂y (N, Cout, Ho, Wo).
#[derive(Debug, Clone, Copy)]
pub struct ConvKernelGrad(pub Geometry);

impl candle_core::CustomOp2 for ConvKernelGrad {
    fn name(&self) -> &'static str {
        "latentflow-conv2d-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (dn, cout, ho, wo) = l2.shape().dims4()?;
        if (c, h, w) != (g.c, g.h, g.w) || dn != n || (ho, wo) != g.out()? {
            candle_core::bail!(
                "conv2d kernel gradient for {g:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let out = with_two(
            [s1, s2],
            [l1, l2],
            |[x, dy]| kernel_grad_f32(dy, cout, x, n, g),
            |[x, dy]| kernel_grad(dy, cout, x, n, g),
        )?;
        Ok((out, Shape::from((cout, g.c, g.k, g.k))))
    }
}

/// The gradient of a transposed convolution's kernel, ∂W = x·im2col(∂y)ᵀ (Cin, Cout, k, k),
/// from the input x (N, Cin, H, W) and the output's gradient ∂y (N, Cout, H', W'); `.0`
/// is the convolution the transposed one is the adjoint of.
#[derive(Debug, Clone, Copy)]
pub struct ConvTransposeKernelGrad(pub Geometry);

impl candle_core::CustomOp2 for ConvTransposeKernelGrad {
    fn name(&self) -> &'static str {
        "latentflow-conv-transpose2d-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = self.0;
        let (n, cin, h, w) = l1.shape().dims4()?;
        if (h, w) != a.out()? || l2.shape().dims() != [n, a.c, a.h, a.w] {
            candle_core::bail!(
                "conv_transpose2d kernel gradient for {a:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let out = with_two(
            [s1, s2],
            [l1, l2],
            |[x, dy]| kernel_grad_f32(x, cin, dy, n, a),
            |[x, dy]| kernel_grad(x, cin, dy, n, a),
        )?;
        Ok((out, Shape::from((cin, a.c, a.k, a.k))))
    }
}

/// A convolution with bias as one graph node: x (N, C, H, W), kernel (Cout, C, k, k),
/// bias (Cout). Forward: im2col, one GEMM for the batch, and the change to NCHW with the
/// bias added in the same pass; the unfolded input is kept for the backward pass, which
/// computes the kernel's gradient as row dot products, the input's as one GEMM and a
/// col2im, and the bias's as plane sums (see the module docs).
#[derive(Debug)]
pub struct Conv2dOp {
    g: Geometry,
    saved: std::sync::OnceLock<Tensor>,
}

fn conv_forward<T: Elem>(
    [x, w, b]: [&[T]; 3],
    n: usize,
    g: Geometry,
    saved: &std::sync::OnceLock<Tensor>,
    to_tensor: impl FnOnce(Vec<T>, (usize, usize)) -> Result<Tensor>,
) -> Result<Vec<T>> {
    let (ho, wo) = g.out()?;
    let (l, cout) = (ho * wo, b.len());
    let cols = im2col(x, n, g, ho, wo);
    let y = multiply(
        Mat::rows(w, cout, g.row()),
        Mat::rows(&cols, g.row(), n * l),
    )?;
    let mut out = vec![T::default(); n * cout * l];
    if !out.is_empty() {
        out.par_chunks_mut(l)
            .enumerate()
            .for_each(|(plane_index, plane)| {
                let (ni, co) = (plane_index / cout, plane_index % cout);
                let bias = b[co];
                for (o, &v) in plane.iter_mut().zip(&y[co * n * l + ni * l..][..l]) {
                    *o = v + bias;
                }
            });
    }
    let _ = saved.set(to_tensor(cols, (g.row(), n * l))?);
    Ok(out)
}

impl candle_core::CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "latentflow-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (cout, cin, k, k2) = l2.shape().dims4()?;
        if (c, h, w) != (g.c, g.h, g.w) || cin != c || (k, k2) != (g.k, g.k) {
            candle_core::bail!(
                "conv2d for {g:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        if l3.shape().dims() != [cout] {
            candle_core::bail!("a bias of shape {:?} for {cout} channels", l3.shape());
        }
        let (ho, wo) = g.out()?;
        let dev = candle_core::Device::Cpu;
        let out = with_three(
            [s1, s2, s3],
            [l1, l2, l3],
            |a| match conv_forward_own(a, n, g)? {
                Some(y) => Ok(y),
                None => conv_forward(a, n, g, &self.saved, |v, s| Tensor::from_vec(v, s, &dev)),
            },
            |a| conv_forward(a, n, g, &self.saved, |v, s| Tensor::from_vec(v, s, &dev)),
        )?;
        Ok((out, Shape::from((n, cout, ho, wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let (n, cout, ho, wo) = dy.dims4()?;
        let l = ho * wo;
        let dy = dy.contiguous()?;
        let db = match b.track_op() {
            true => Some(dy.apply_op1_no_bwd(&ChannelSum)?),
            false => None,
        };
        let dw = match (w.track_op(), self.saved.get()) {
            (false, _) => None,
            (true, None) => Some(x.contiguous()?.apply_op2_no_bwd(&dy, &ConvKernelGrad(g))?),
            (true, Some(cols)) => {
                // The generic forward pass kept the unfolded input. ∂y as (Cout, N·L), the
                // layout of the forward product; ∂W = ∂y·colsᵀ: dot products of rows as
                // long as the batch's pixels.
                let dymat = dy
                    .reshape((n, cout, l))?
                    .transpose(0, 1)?
                    .contiguous()?
                    .reshape((cout, n * l))?;
                Some(
                    dymat
                        .apply_op2_no_bwd(cols, &RowsDotRows)?
                        .reshape(w.shape())?,
                )
            }
        };
        let dx = match x.track_op() {
            true => Some(
                w.contiguous()?
                    .apply_op2_no_bwd(&dy, &ConvInputGrad(g, n))?,
            ),
            false => None,
        };
        Ok((dx, dw, db))
    }
}

/// The transposed convolution with bias as one graph node (the adjoint of [`Conv2dOp`]):
/// x (N, Cin, H, W), kernel (Cin, Cout, k, k) in PyTorch's layout, bias (Cout). Forward:
/// the images as (Cin, N·H·W), one GEMM with the kernel transposed — every input pixel's
/// contribution to a k×k patch of each output channel — and col2im onto planes that start
/// at the bias. The backward pass unfolds ∂y (im2col), then row dot products for the
/// kernel and one GEMM for the input.
#[derive(Debug)]
pub struct ConvTranspose2dOp {
    /// The convolution this one is the adjoint of: (Cout, Ho, Wo) → (Cin, H, W).
    adjoint: Geometry,
    saved: std::sync::OnceLock<Tensor>,
}

fn deconv_forward<T: Elem>(
    [x, w, b]: [&[T]; 3],
    n: usize,
    cin: usize,
    adjoint: Geometry,
    saved: &std::sync::OnceLock<Tensor>,
    to_tensor: impl FnOnce(Vec<T>, (usize, usize)) -> Result<Tensor>,
) -> Result<Vec<T>> {
    let (h, w_) = adjoint.out()?;
    let hw = h * w_;
    // The images as rows of channels: (Cin, N·H·W).
    let image = channels_major(x, n, cin, hw);
    let r = adjoint.row();
    // The kernel (Cin, Cout·k·k) read transposed: (Cout·k·k, Cin).
    let kernel = Mat {
        data: w,
        start: 0,
        rows: r,
        cols: cin,
        rs: 1,
        cs: r,
    };
    let patches = multiply(kernel, Mat::rows(&image, cin, n * hw))?;
    let out = col2im_from(&patches, n, adjoint, h, w_, Some(b));
    let _ = saved.set(to_tensor(image, (cin, n * hw))?);
    Ok(out)
}

impl candle_core::CustomOp3 for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "latentflow-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = self.adjoint;
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (wcin, cout, k, k2) = l2.shape().dims4()?;
        if wcin != cin || cout != a.c || (k, k2) != (a.k, a.k) || a.out()? != (h, w) {
            candle_core::bail!(
                "conv_transpose2d for {a:?} given {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        if l3.shape().dims() != [cout] {
            candle_core::bail!("a bias of shape {:?} for {cout} channels", l3.shape());
        }
        let dev = candle_core::Device::Cpu;
        let out = with_three(
            [s1, s2, s3],
            [l1, l2, l3],
            |t| {
                let (h, w) = a.out()?;
                if let Some(y) =
                    super::direct::transposed(t[0], t[1], Some(t[2]), n, cin, unfold_view(a)?)
                {
                    return Ok(y);
                }
                match deconv_patches_own(t[0], t[1], n, cin, h * w, a.row())? {
                    Some(patches) => Ok(col2im_from(&patches, n, a, h, w, Some(t[2]))),
                    None => deconv_forward(t, n, cin, a, &self.saved, |v, s| {
                        Tensor::from_vec(v, s, &dev)
                    }),
                }
            },
            |t| {
                deconv_forward(t, n, cin, a, &self.saved, |v, s| {
                    Tensor::from_vec(v, s, &dev)
                })
            },
        )?;
        Ok((out, Shape::from((n, cout, a.h, a.w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let a = self.adjoint;
        let n = x.dim(0)?;
        let dy = dy.contiguous()?;
        let db = match b.track_op() {
            true => Some(dy.apply_op1_no_bwd(&ChannelSum)?),
            false => None,
        };
        let dw = match (w.track_op(), self.saved.get()) {
            (false, _) => None,
            (true, None) => Some(
                x.contiguous()?
                    .apply_op2_no_bwd(&dy, &ConvTransposeKernelGrad(a))?,
            ),
            (true, Some(image)) => {
                // The generic forward pass kept the images as (Cin, N·H·W).
                let dpatches = dy.apply_op1_no_bwd(&Im2Col(a))?; // (Cout·k·k, N·H·W)
                // ∂W = image·∂patchesᵀ, (Cin, Cout·k·k): PyTorch's layout directly.
                Some(
                    image
                        .apply_op2_no_bwd(&dpatches, &RowsDotRows)?
                        .reshape(w.shape())?,
                )
            }
        };
        let dx = match x.track_op() {
            true => Some(
                w.contiguous()?
                    .apply_op2_no_bwd(&dy, &ConvTransposeInputGrad(a, n))?,
            ),
            false => None,
        };
        Ok((dx, dw, db))
    }
}

/// A zero bias of `c` channels like `like`'s dtype and device (for the tangent passes,
/// which have none).
fn zero_bias(c: usize, like: &Tensor) -> Result<Tensor> {
    Tensor::zeros(c, like.dtype(), like.device())
}

/// A 2-D convolution (no bias) of `x` (N, C, H, W) with `weight` (Cout, C, k, k): by
/// [`Conv2dOp`] on the CPU, by candle's convolution elsewhere.
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
    if !applies(x) {
        return broadcast_bias(x.conv2d(weight, padding, stride, 1, 1)?, bias);
    }
    let (_, c, h, w) = x.dims4()?;
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
    g.out()?;
    let bias = match bias {
        Some(b) => b.contiguous()?,
        None => zero_bias(cout, x)?,
    };
    let op = Conv2dOp {
        g,
        saved: std::sync::OnceLock::new(),
    };
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias, op)
}

/// A 2-D transposed convolution (no bias) of `x` (N, Cin, H, W) with `weight`
/// (Cin, Cout, k, k), `output_padding` 0: the adjoint of [`conv2d`], by
/// [`ConvTranspose2dOp`] on the CPU, by candle's transposed convolution elsewhere.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    conv_transpose2d_bias(x, weight, None, stride, padding)
}

/// [`conv_transpose2d`] plus a per-channel `bias` (Cout).
pub fn conv_transpose2d_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if !applies(x) {
        let y = x.conv_transpose2d(weight, padding, 0, stride, 1)?;
        return broadcast_bias(y, bias);
    }
    let (_, cin, h, w) = x.dims4()?;
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
    let bias = match bias {
        Some(b) => b.contiguous()?,
        None => zero_bias(cout, x)?,
    };
    let op = ConvTranspose2dOp {
        adjoint,
        saved: std::sync::OnceLock::new(),
    };
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias, op)
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

    /// Past the product's blocking: taps past its depth block (C·k·k > 256), more output
    /// channels than a register tile, rows of pixels wider than it, several images; the
    /// last one large enough for every direct kernel (src/nn/direct.rs) — the forward
    /// pass, the kernel gradient and the input gradient by classes — with an input row
    /// that no output reads (19 + 2 − 4 is odd).
    const LARGE: [Case; 3] = [
        (3, 33, 40, 12, 10, 4, 2, 1),
        (2, 64, 9, 16, 13, 3, 1, 1),
        (2, 24, 32, 19, 20, 4, 2, 1),
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
            for (i, &(n, c, cout, h, w, k, s, p)) in CASES.iter().chain(&LARGE).enumerate() {
                check_against_reference(
                    &format!("conv case {i}, {dtype:?}"),
                    randn(&[n, c, h, w], i as u64 * 10, dtype),
                    randn(&[cout, c, k, k], i as u64 * 10 + 1, dtype),
                    |x, w| conv2d(x, w, s, p).unwrap(),
                    |x, w| x.conv2d(w, p, s, 1, 1).unwrap(),
                    i as u64 * 10,
                );
            }
        }
    }

    /// `fast` against `reference` (both of an input and a kernel, linear in each): the
    /// forward values, then the gradients of L = <g, fast(x, W)> against central
    /// differences of L computed with `reference`, along two random directions each.
    fn check_against_reference(
        case: &str,
        x: Tensor,
        w: Tensor,
        fast: impl Fn(&Tensor, &Tensor) -> Tensor,
        reference: impl Fn(&Tensor, &Tensor) -> Tensor,
        seed: u64,
    ) {
        let dtype = x.dtype();
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
        let (x, wt) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let y = fast(x.as_tensor(), wt.as_tensor());
        let want = reference(x.as_tensor(), wt.as_tensor());
        assert_eq!(y.dims(), want.dims(), "{case}");
        let scale = 1.0 + max_diff(&want, &want.zeros_like().unwrap());
        assert!(max_diff(&y, &want) < tol * scale, "forward, {case}");
        let g = randn(want.dims(), seed + 2, dtype);
        let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let loss = |x: &Tensor, w: &Tensor| dot(&g, &reference(x, w));
        for (j, v) in [&x, &wt].into_iter().enumerate() {
            let grad = grads.get(v.as_tensor()).unwrap();
            assert_eq!(grad.dims(), v.dims(), "{case}");
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
                    "{} gradient, {case}: {analytic} vs {numeric}",
                    ["input", "kernel"][j]
                );
            }
        }
    }

    #[test]
    fn transposed_forward_and_both_gradients_match_candles_transposed_convolution() {
        // As above for the transposed convolution: (batch, channels in, channels out,
        // input height, input width, kernel, stride, padding); the kernel is (Cin, Cout,
        // k, k). The decoders' stride-2 up-sampling, stride 1, and shapes past the blocking.
        let cases: [Case; 6] = [
            (1, 3, 5, 4, 6, 4, 2, 1),
            (2, 5, 3, 3, 2, 3, 1, 1),
            (3, 2, 4, 1, 1, 4, 1, 0),
            (2, 7, 2, 5, 3, 3, 2, 0),
            (3, 40, 33, 6, 5, 4, 2, 1),
            (2, 64, 32, 8, 9, 4, 2, 1),
        ];
        for dtype in [DType::F64, DType::F32] {
            for (i, &(n, cin, cout, h, w, k, s, p)) in cases.iter().enumerate() {
                let seed = 500 + i as u64 * 10;
                check_against_reference(
                    &format!("transposed case {i}, {dtype:?}"),
                    randn(&[n, cin, h, w], seed, dtype),
                    randn(&[cin, cout, k, k], seed + 1, dtype),
                    |x, w| conv_transpose2d(x, w, s, p).unwrap(),
                    |x, w| x.conv_transpose2d(w, p, 0, s, 1).unwrap(),
                    seed,
                );
            }
        }
    }

    #[test]
    fn the_input_gradient_ops_take_both_paths_and_refuse_wrong_shapes() {
        // The generic (F64) and the f32 paths of the input-gradient ops agree.
        let g = Geometry {
            c: 33,
            h: 12,
            w: 10,
            k: 4,
            stride: 2,
            padding: 1,
        };
        let (n, cout) = (3, 40);
        let w = randn(&[cout, g.c, g.k, g.k], 1, DType::F64);
        let dy = randn(&[n, cout, 6, 5], 2, DType::F64);
        let exact = w.apply_op2(&dy, ConvInputGrad(g, n)).unwrap();
        let single = w
            .to_dtype(DType::F32)
            .unwrap()
            .apply_op2(&dy.to_dtype(DType::F32).unwrap(), ConvInputGrad(g, n))
            .unwrap();
        assert_eq!(exact.dims(), &[n, g.c, g.h, g.w]);
        let scale = max_diff(&exact, &exact.zeros_like().unwrap());
        assert!(max_diff(&exact, &single.to_dtype(DType::F64).unwrap()) < 1e-4 * scale);
        // The transposed convolution's: the adjoint of (cout, 12, 10) → (33, 6, 5).
        let a = Geometry { c: cout, ..g };
        let wt = randn(&[g.c, cout, g.k, g.k], 3, DType::F64);
        let dy = randn(&[n, cout, 12, 10], 4, DType::F64);
        let exact = wt.apply_op2(&dy, ConvTransposeInputGrad(a, n)).unwrap();
        let single = wt
            .to_dtype(DType::F32)
            .unwrap()
            .apply_op2(
                &dy.to_dtype(DType::F32).unwrap(),
                ConvTransposeInputGrad(a, n),
            )
            .unwrap();
        assert_eq!(exact.dims(), &[n, g.c, 6, 5]);
        let scale = max_diff(&exact, &exact.zeros_like().unwrap());
        assert!(max_diff(&exact, &single.to_dtype(DType::F64).unwrap()) < 1e-4 * scale);
        // Wrong shapes are errors, not reads outside the buffers.
        let short = randn(&[n, cout, 6, 4], 5, DType::F32);
        assert!(
            w.to_dtype(DType::F32)
                .unwrap()
                .apply_op2(&short, ConvInputGrad(g, n))
                .is_err()
        );
        assert!(
            wt.to_dtype(DType::F32)
                .unwrap()
                .apply_op2(&short, ConvTransposeInputGrad(a, n))
                .is_err()
        );
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
