//! Convolutions computed straight from the images, without packing them (x86-64 with
//! AVX-512F, stride 1 or 2): an "implicit GEMM" whose broadcast operand is the input
//! itself.
//!
//! Why: a convolution as a matrix product multiplies the kernel (Cout × C·k·k) by the
//! unfolded input (C·k·k × N·Ho·Wo), and each unfolded element takes part in only Cout
//! multiply-adds — 32 or 64 in the models here. A GEMM packs that operand into panels
//! first, one element at a time through the convolution's index arithmetic, and at 32
//! multiply-adds per element the packing costs as much as the arithmetic (in the profile
//! of a training step, `Source::row` took as many samples as the micro-kernel). Here the
//! output channels are the vector lanes instead: the micro-kernel holds a tile of 8 output
//! pixels (along one output row) × 32 output channels in 16 registers, and for each tap
//! (c, ky, kx) loads two vectors of packed kernel values and broadcasts the 8 input pixels
//! the tile reads *from the images in place* — their addresses are the tap's offset plus
//! a multiple of the stride. The images are copied once into zero-padded planes, so no
//! tap needs a bounds check, and the tile is written pixel-major (N, Ho·Wo, Cout) and
//! turned into NCHW in one blocked pass at the end. Both copies are a small fraction of
//! the k²-fold reads of the product.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::sgemm::Unfold;
use rayon::prelude::*;

/// Output pixels per tile (consecutive in one output row).
const PIX: usize = 8;
/// Output channels per tile (two vectors of 16).
const CO: usize = 32;
/// Multiply-adds below which a product runs on the calling thread (values to copy: a
/// sixteenth of it).
const PARALLEL_MIN: usize = 1 << 21;
/// Fewer output channels than this leave too many of a tile's lanes empty: the packed
/// product is faster (Cout = 3: 3× slower here than there).
const MIN_CHANNELS: usize = 24;

/// Whether this CPU runs [`conv`].
pub(crate) fn available() -> bool {
    super::sgemm::available()
}

/// y (N, Cout, Ho, Wo) = the convolution of x (N, C, H, W) with w (Cout, C, k, k) in the
/// geometry `g`, plus the bias, on rayon's pool; `None` when the stride is neither 1 nor 2
/// the CPU lacks AVX-512F, or Cout is under 24 (the caller then uses the packed product).
///
/// The slices must hold exactly the values of those shapes (checked: `None` otherwise).
pub(crate) fn conv(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    cout: usize,
    g: Unfold,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let taps = g.c * g.k * g.k;
        let sizes_fit = x.len() == n * g.c * g.h * g.w
            && w.len() == cout * taps
            && bias.is_none_or(|b| b.len() == cout);
        if !available() || !sizes_fit || !(g.stride == 1 || g.stride == 2) || cout < MIN_CHANNELS {
            return None;
        }
        if n == 0 || g.ho == 0 || g.wo == 0 {
            return Some(vec![0.0; n * cout * g.ho * g.wo]);
        }
        Some(conv_avx512(x, w, bias, n, cout, g))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w, bias, n, cout, g);
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn conv_avx512(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    cout: usize,
    g: Unfold,
) -> Vec<f32> {
    let (s, k, p) = (g.stride, g.k, g.padding);
    let taps = g.c * k * k;
    // Padded planes wide enough for whole tiles: the last tile of a row may run past Wo,
    // and its extra pixels (computed, never stored) read up to ((tiles·PIX − 1)·s + k − 1).
    let hp = g.h + 2 * p;
    let wp = (g.w + 2 * p).max((g.wo.div_ceil(PIX) * PIX - 1) * s + k);
    let xp = padded(x, n * g.c, g.h, g.w, p, p, hp, wp);
    let offsets = tap_offsets(g.c, k, k, hp, wp);
    let packed = pack_kernel(cout, taps, |co, t| w[co * taps + t]);
    let core = Core {
        xp: &xp,
        image: g.c * hp * wp,
        offsets: &offsets,
        packed: &packed,
        start: &start_values(bias, cout),
        n,
        ho: g.ho,
        wo: g.wo,
        stride: s,
        wp,
        first: 0,
    };
    let rows = core.run();
    let mut y = vec![0f32; n * cout * g.ho * g.wo];
    let whole = Place {
        h: g.ho,
        w: g.wo,
        step: 1,
        y0: 0,
        x0: 0,
    };
    place(&rows, n, cout, g.ho, g.wo, &mut y, whole);
    y
}

/// y (N, Cout, H, W) = the transposed convolution of x (N, Cin, Ho, Wo) with w (Cin, Cout,
/// k, k) plus the bias, where `a` is the convolution it is the adjoint of (C = Cout, H × W
/// → Ho × Wo) — also the gradient of that convolution's input, with x = ∂y and w its
/// kernel. `None` unless the stride is 2 with k ≥ 2, Cout ≥ 24 and Wo ≥ 8 (or where the
/// CPU lacks AVX-512F).
///
/// The output pixels fall into stride² classes by their position modulo the stride; each
/// class is a stride-1 convolution of x with a sub-kernel (every stride-th tap, flipped)
/// — 2×2 taps for the 4×4 kernels here — so the product needs no col2im: one direct
/// convolution per class, written to its pixels.
pub(crate) fn transposed(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    cin: usize,
    a: Unfold,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let cout = a.c;
        let sizes_fit = x.len() == n * cin * a.ho * a.wo
            && w.len() == cin * cout * a.k * a.k
            && bias.is_none_or(|b| b.len() == cout);
        // Rows of a class narrower than a tile waste half of it or more: the packed
        // product is faster there.
        if !available()
            || !sizes_fit
            || a.stride != 2
            || a.k < 2
            || cout < MIN_CHANNELS
            || a.wo < PIX
        {
            return None;
        }
        if n == 0 || a.h == 0 || a.w == 0 {
            return Some(vec![0.0; n * cout * a.h * a.w]);
        }
        Some(transposed_avx512(x, w, bias, n, cin, a))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w, bias, n, cin, a);
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn transposed_avx512(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    cin: usize,
    a: Unfold,
) -> Vec<f32> {
    let (s, k, p) = (a.stride, a.k, a.padding);
    let (hi, wi) = (a.ho, a.wo);
    let cout = a.c;
    // Output row oy with oy + p = s·q + r reads input rows q − j for the taps ky = r + s·j,
    // j < kj(r) = ⌈(k − r)/s⌉; flipped, a stride-1 convolution whose first tap reads row
    // q − kj + 1. The planes are padded by the largest kj − 1 on every side (plus room for
    // the last tile's extra pixels).
    let taps_of = |r: usize| (k - r).div_ceil(s);
    let pad = taps_of(0) - 1;
    // The classes' output positions: q from q0 = ⌈(p − r)/s⌉ while s·q + r − p < size.
    let range = |r: usize, size: usize| {
        let q0 = p.saturating_sub(r).div_ceil(s);
        let end = (size + p - r).div_ceil(s);
        (q0, end.saturating_sub(q0))
    };
    // Output q of a class reads padded rows up to q + pad; the last tile of a row runs
    // to a whole PIX.
    let hp = (0..s)
        .map(|r| range(r, a.h))
        .map(|(q0, len)| q0 + len + pad)
        .fold(hi + pad, usize::max);
    let wp = (0..s)
        .map(|r| range(r, a.w))
        .map(|(q0, len)| q0 + len.div_ceil(PIX) * PIX + pad)
        .fold(wi + pad, usize::max);
    let xp = padded(x, n * cin, hi, wi, pad, pad, hp, wp);
    let start = start_values(bias, cout);
    let mut y = vec![0f32; n * cout * a.h * a.w];
    for ry in 0..s {
        for rx in 0..s {
            let (kjy, kjx) = (taps_of(ry), taps_of(rx));
            let ((qy0, ny), (qx0, nx)) = (range(ry, a.h), range(rx, a.w));
            if ny == 0 || nx == 0 {
                continue;
            }
            let taps = cin * kjy * kjx;
            let offsets = tap_offsets(cin, kjy, kjx, hp, wp);
            // Tap (ci, jy, jx) of the class is the kernel's (ci, co, ry + s·(kjy − 1 − jy),
            // rx + s·(kjx − 1 − jx)), packed as by `pack_kernel` (without its divisions:
            // at batch 1 they were a fifth of a decode).
            let mut packed = vec![0f32; cout.div_ceil(CO) * taps * CO];
            let mut t = 0;
            for ci in 0..cin {
                for jy in 0..kjy {
                    for jx in 0..kjx {
                        let ky = ry + s * (kjy - 1 - jy);
                        let kx = rx + s * (kjx - 1 - jx);
                        for co in 0..cout {
                            packed[((co / CO) * taps + t) * CO + co % CO] =
                                w[((ci * cout + co) * k + ky) * k + kx];
                        }
                        t += 1;
                    }
                }
            }
            // Output q's first tap reads padded row q − kjy + 1 + pad.
            let first = (qy0 + pad + 1 - kjy) * wp + (qx0 + pad + 1 - kjx);
            let core = Core {
                xp: &xp,
                image: cin * hp * wp,
                offsets: &offsets,
                packed: &packed,
                start: &start,
                n,
                ho: ny,
                wo: nx,
                stride: 1,
                wp,
                first,
            };
            let rows = core.run();
            let class = Place {
                h: a.h,
                w: a.w,
                step: s,
                y0: s * qy0 + ry - p,
                x0: s * qx0 + rx - p,
            };
            place(&rows, n, cout, ny, nx, &mut y, class);
        }
    }
    y
}

/// Each (h × w) plane of x at row `top`, column `left` of a zero (hp × wp) plane.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn padded(
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    hp: usize,
    wp: usize,
) -> Vec<f32> {
    let mut xp = vec![0f32; planes * hp * wp];
    let copy = |(q, dst): (usize, &mut [f32])| {
        for (iy, row) in x[q * h * w..][..h * w].chunks_exact(w).enumerate() {
            dst[(iy + top) * wp + left..][..w].copy_from_slice(row);
        }
    };
    if xp.len() < PARALLEL_MIN / 16 {
        xp.chunks_mut(hp * wp).enumerate().for_each(copy);
    } else {
        xp.par_chunks_mut(hp * wp).enumerate().for_each(copy);
    }
    xp
}

/// The offset of each tap (c, ky, kx) of a c × kh × kw kernel in padded planes.
#[cfg(target_arch = "x86_64")]
fn tap_offsets(c: usize, kh: usize, kw: usize, hp: usize, wp: usize) -> Vec<usize> {
    (0..c * kh * kw)
        .map(|t| (t / (kh * kw) * hp + (t / kw) % kh) * wp + t % kw)
        .collect()
}

/// The kernel in blocks of CO output channels, tap-major: block b, tap t holds
/// `value(b·CO + j, t)` for j < CO (zero past Cout).
#[cfg(target_arch = "x86_64")]
fn pack_kernel(cout: usize, taps: usize, value: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let blocks = cout.div_ceil(CO);
    let mut packed = vec![0f32; blocks * taps * CO];
    for co in 0..cout {
        let (b, j) = (co / CO, co % CO);
        for t in 0..taps {
            packed[(b * taps + t) * CO + j] = value(co, t);
        }
    }
    packed
}

/// The bias padded to whole blocks (zeros without one).
#[cfg(target_arch = "x86_64")]
fn start_values(bias: Option<&[f32]>, cout: usize) -> Vec<f32> {
    let mut start = vec![0f32; cout.div_ceil(CO) * CO];
    if let Some(b) = bias {
        start[..cout].copy_from_slice(b);
    }
    start
}

/// A convolution over padded planes whose output is computed pixel-major.
#[cfg(target_arch = "x86_64")]
struct Core<'a> {
    /// The padded planes, image after image.
    xp: &'a [f32],
    /// Values per image in `xp`.
    image: usize,
    /// Each tap's offset from a pixel's first tap.
    offsets: &'a [usize],
    /// [`pack_kernel`]'s blocks.
    packed: &'a [f32],
    /// [`start_values`].
    start: &'a [f32],
    /// Images.
    n: usize,
    /// Output rows.
    ho: usize,
    /// Output columns.
    wo: usize,
    /// Input columns (and rows) between output pixels.
    stride: usize,
    /// Padded width.
    wp: usize,
    /// Offset within an image of output (0, 0)'s first tap.
    first: usize,
}

#[cfg(target_arch = "x86_64")]
impl Core<'_> {
    /// The output, (N·Ho·Wo) pixels × (blocks·CO) channels, one output row per task.
    /// Every tap of every pixel of a tile (whole tiles, up to PIX·⌈Wo/PIX⌉ columns) must
    /// lie inside its image's planes; the callers size the planes so.
    fn run(&self) -> Vec<f32> {
        let taps = self.offsets.len();
        let cpad = self.start.len();
        let blocks = cpad / CO;
        let (s, wo) = (self.stride, self.wo);
        let mut rows = vec![0f32; self.n * self.ho * wo * cpad];
        let row = |(r, out): (usize, &mut [f32])| {
            let (ni, oy) = (r / self.ho, r % self.ho);
            let image = &self.xp[ni * self.image..][..self.image];
            for ox0 in (0..wo).step_by(PIX) {
                let valid = PIX.min(wo - ox0);
                let first = self.first + (oy * s) * self.wp + ox0 * s;
                for b in 0..blocks {
                    // SAFETY: the taps of the tile's pixels lie inside this image's
                    // planes (the callers' sizes); the kernel block holds taps·CO
                    // values and the start CO; the tile's `valid` pixels lie inside
                    // this output row, CO values each at a stride of cpad.
                    unsafe {
                        let args = Tile {
                            offsets: self.offsets,
                            kernel: self.packed[b * taps * CO..].as_ptr(),
                            base: image.as_ptr().add(first),
                            start: self.start[b * CO..].as_ptr(),
                            out: out[ox0 * cpad + b * CO..].as_mut_ptr(),
                            ld: cpad,
                            valid,
                        };
                        if s == 1 {
                            tile::<1>(args)
                        } else {
                            tile::<2>(args)
                        }
                    }
                }
            }
        };
        // Small products (a batch of one) on this thread: waking the pool costs more.
        if rows.len() * taps < PARALLEL_MIN {
            rows.chunks_mut(wo * cpad).enumerate().for_each(row);
        } else {
            rows.par_chunks_mut(wo * cpad).enumerate().for_each(row);
        }
        rows
    }
}

/// Where a pixel-major output goes in NCHW images of h × w: output (q_y, q_x) at
/// (y0 + step·q_y, x0 + step·q_x).
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
struct Place {
    h: usize,
    w: usize,
    step: usize,
    y0: usize,
    x0: usize,
}

/// Writes the first `cout` channels of `rows` ((N·ho·wo) × cpad) into y (N, Cout, h, w)
/// at their places, image by image, in blocks of pixels that stay in L1.
#[cfg(target_arch = "x86_64")]
fn place(rows: &[f32], n: usize, cout: usize, ho: usize, wo: usize, y: &mut [f32], at: Place) {
    let l = ho * wo;
    let cpad = rows.len() / (n * l).max(1);
    let image = |(dst, src): (&mut [f32], &[f32])| {
        for qy in 0..ho {
            let line = (at.y0 + at.step * qy) * at.w + at.x0;
            let pixels = &src[qy * wo * cpad..][..wo * cpad];
            for co in 0..cout {
                let plane = &mut dst[co * at.h * at.w + line..];
                for (qx, px) in pixels.chunks_exact(cpad).enumerate() {
                    plane[at.step * qx] = px[co];
                }
            }
        }
    };
    if y.len() < PARALLEL_MIN / 16 {
        y.chunks_mut(cout * at.h * at.w)
            .zip(rows.chunks(l * cpad))
            .for_each(image);
    } else {
        y.par_chunks_mut(cout * at.h * at.w)
            .zip(rows.par_chunks(l * cpad))
            .for_each(image);
    }
}

/// One tile's operands (see [`tile`]).
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    /// Each tap's offset from the tile's first input pixel.
    offsets: &'a [usize],
    /// The kernel block, CO values per tap.
    kernel: *const f32,
    /// The input under tap (0, 0, 0) of the tile's first pixel.
    base: *const f32,
    /// CO starting values (the bias).
    start: *const f32,
    /// The tile's first pixel's CO outputs; pixel i at `out + i·ld`.
    out: *mut f32,
    /// Output values per pixel.
    ld: usize,
    /// Pixels to store (the rest lie past the row's end).
    valid: usize,
}

/// PIX output pixels (input `S` apart) × CO output channels: for each tap, two kernel
/// vectors and PIX broadcast input values, 16 fused multiply-adds into 16 accumulators.
///
/// # Safety
/// As documented on [`Tile`]'s fields: `base + offsets[t] + i·S` readable for every tap t
/// and i < PIX, `kernel` holding offsets.len()·CO values, `start` CO, and `out + i·ld`
/// writable for CO values for i < valid.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const S: usize>(t: Tile) {
    // SAFETY (whole body): as the caller promised.
    unsafe {
        let first = [_mm512_loadu_ps(t.start), _mm512_loadu_ps(t.start.add(16))];
        let mut acc = [first; PIX];
        let mut kernel = t.kernel;
        for &off in t.offsets {
            let w0 = _mm512_loadu_ps(kernel);
            let w1 = _mm512_loadu_ps(kernel.add(16));
            let b = t.base.add(off);
            for (i, row) in acc.iter_mut().enumerate() {
                let v = _mm512_set1_ps(*b.add(i * S));
                row[0] = _mm512_fmadd_ps(v, w0, row[0]);
                row[1] = _mm512_fmadd_ps(v, w1, row[1]);
            }
            kernel = kernel.add(CO);
        }
        for (i, row) in acc.iter().enumerate().take(t.valid) {
            let o = t.out.add(i * t.ld);
            _mm512_storeu_ps(o, row[0]);
            _mm512_storeu_ps(o.add(16), row[1]);
        }
    }
}

/// Taps per tile of a kernel's gradient.
const TAPS: usize = 8;

/// A kernel's gradient, ∂W (rows × C·k·k) = Σ over the batch's pixels of a (N, rows, L)
/// times the patches of b (N, C, H, W) in the geometry `g` (L = Ho·Wo): the convolution's
/// (a = ∂y, b = x) and the transposed convolution's (a = its input, b = ∂y, `g` the
/// convolution it is the adjoint of). `None` as for [`conv`].
///
/// The threads split the batch, each into its own copy of ∂W (summed at the end); per
/// image, a thread pads the image's planes and transposes its `a` to pixel-major once,
/// then for each tile of 8 taps × 32 rows runs over the image's pixels with the tile in
/// registers: two vectors of `a` per pixel and 8 input values broadcast from the planes.
pub(crate) fn kernel_grad(
    a: &[f32],
    rows: usize,
    b: &[f32],
    n: usize,
    g: Unfold,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let taps = g.c * g.k * g.k;
        let l = g.ho * g.wo;
        let sizes_fit = a.len() == n * rows * l && b.len() == n * g.c * g.h * g.w;
        if !available() || !sizes_fit || !(g.stride == 1 || g.stride == 2) || rows < MIN_CHANNELS {
            return None;
        }
        if n == 0 || taps == 0 || l == 0 {
            return Some(vec![0.0; rows * taps]);
        }
        Some(kernel_grad_avx512(a, rows, b, n, g))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, rows, b, n, g);
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn kernel_grad_avx512(a: &[f32], rows: usize, b: &[f32], n: usize, g: Unfold) -> Vec<f32> {
    let (s, k, p) = (g.stride, g.k, g.padding);
    let (wo, l) = (g.wo, g.ho * g.wo);
    let taps = g.c * k * k;
    let (hp, wp) = (g.h + 2 * p, g.w + 2 * p);
    let plane = hp * wp;
    let offsets: Vec<usize> = (0..taps)
        .map(|t| (t / (k * k) * hp + (t / k) % k) * wp + t % k)
        .collect();
    let blocks = rows.div_ceil(CO);
    let rpad = blocks * CO;
    let parts = super::threads().clamp(1, n);
    let per = n.div_ceil(parts);
    // Each part's sum, tap-major: partial[t·rpad + r].
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![0f32; taps * rpad];
            let mut xp = vec![0f32; g.c * plane];
            let mut at = vec![0f32; l * rpad];
            for ni in part * per..((part + 1) * per).min(n) {
                let image = &b[ni * g.c * g.h * g.w..][..g.c * g.h * g.w];
                for (dst, src) in xp
                    .chunks_exact_mut(plane)
                    .zip(image.chunks_exact(g.h * g.w))
                {
                    for (iy, row) in src.chunks_exact(g.w).enumerate() {
                        dst[(iy + p) * wp + p..][..g.w].copy_from_slice(row);
                    }
                }
                let ai = &a[ni * rows * l..][..rows * l];
                for (r, plane_a) in ai.chunks_exact(l).enumerate() {
                    for (q, &v) in plane_a.iter().enumerate() {
                        at[q * rpad + r] = v;
                    }
                }
                for bl in 0..blocks {
                    for t0 in (0..taps).step_by(TAPS) {
                        let valid = TAPS.min(taps - t0);
                        // Taps past the end read tap t0's values (and are not stored).
                        let bases: [*const f32; TAPS] = std::array::from_fn(|i| {
                            xp[offsets[t0 + if i < valid { i } else { 0 }]..].as_ptr()
                        });
                        // SAFETY: every pixel's tap lies inside the padded planes (the
                        // geometry's output size); `at` holds l·rpad values and `acc`
                        // taps·rpad, the tile's CO columns from bl·CO.
                        unsafe {
                            let args = GradTile {
                                bases,
                                at: at[bl * CO..].as_ptr(),
                                ld: rpad,
                                rows: g.ho,
                                cols: wo,
                                row_step: s * wp,
                                acc: acc[t0 * rpad + bl * CO..].as_mut_ptr(),
                                valid,
                            };
                            if s == 1 {
                                grad_tile::<1>(args)
                            } else {
                                grad_tile::<2>(args)
                            }
                        }
                    }
                }
            }
            acc
        })
        .collect();
    let mut dw = vec![0f32; rows * taps];
    for part in &partials {
        for (r, out) in dw.chunks_exact_mut(taps).enumerate() {
            for (t, o) in out.iter_mut().enumerate() {
                *o += part[t * rpad + r];
            }
        }
    }
    dw
}

/// One tile of a kernel's gradient (see [`grad_tile`]).
#[cfg(target_arch = "x86_64")]
struct GradTile {
    /// Each tap's input under the image's first output pixel.
    bases: [*const f32; TAPS],
    /// The first pixel's CO values of `a`; pixel q at `at + q·ld`.
    at: *const f32,
    /// Values of `a` per pixel.
    ld: usize,
    /// Output rows.
    rows: usize,
    /// Output columns.
    cols: usize,
    /// Input values between output rows (stride · padded width).
    row_step: usize,
    /// The tile's running sums: tap i's CO values at `acc + i·ld`.
    acc: *mut f32,
    /// Taps to store.
    valid: usize,
}

/// TAPS taps × CO rows of a kernel's gradient, summed over one image's pixels in 16
/// registers, added to the running sums.
///
/// # Safety
/// As documented on [`GradTile`]'s fields: `bases[i] + y·row_step + x·S` readable for
/// every output pixel (y, x), `at` holding rows·cols pixels, `acc + i·ld` CO values for
/// i < valid.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_tile<const S: usize>(t: GradTile) {
    // SAFETY (whole body): as the caller promised.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; TAPS];
        let mut a = t.at;
        for y in 0..t.rows {
            let row = y * t.row_step;
            for x in 0..t.cols {
                let a0 = _mm512_loadu_ps(a);
                let a1 = _mm512_loadu_ps(a.add(16));
                let off = row + x * S;
                for (i, tap) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*t.bases[i].add(off));
                    tap[0] = _mm512_fmadd_ps(v, a0, tap[0]);
                    tap[1] = _mm512_fmadd_ps(v, a1, tap[1]);
                }
                a = a.add(t.ld);
            }
        }
        for (i, tap) in acc.iter().enumerate().take(t.valid) {
            let o = t.acc.add(i * t.ld);
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), tap[0]));
            _mm512_storeu_ps(o.add(16), _mm512_add_ps(_mm512_loadu_ps(o.add(16)), tap[1]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn convolutions_and_kernel_gradients_match_the_naive_sums_on_odd_shapes() {
        if !available() {
            return;
        }
        // (batch, channels, h, w, k, stride, padding, cout): batch 1, non-square, output
        // rows shorter and longer than a tile and not a multiple of it, Cout below, at and
        // past a block of 32 and not a multiple of 16, padding 0 to 2.
        let cases = [
            (1, 3, 7, 5, 3, 1, 1, 5),
            (2, 2, 9, 11, 4, 2, 1, 33),
            (3, 5, 6, 6, 2, 2, 0, 16),
            (1, 1, 3, 3, 3, 1, 2, 40),
            (2, 3, 20, 37, 4, 2, 1, 32),
            (1, 4, 5, 19, 1, 1, 0, 7),
        ];
        for (n, c, h, w, k, stride, padding, cout) in cases {
            let ho = (h + 2 * padding - k) / stride + 1;
            let wo = (w + 2 * padding - k) / stride + 1;
            let g = Unfold {
                c,
                h,
                w,
                k,
                stride,
                padding,
                ho,
                wo,
            };
            let x = values(n * c * h * w, 1);
            let kern = values(cout * c * k * k, 2);
            let bias = values(cout, 3);
            // The kernels themselves, below the channel count the wrappers send elsewhere.
            assert_eq!(
                conv(&x, &kern, Some(&bias), n, cout, g).is_some(),
                cout >= MIN_CHANNELS
            );
            let got = conv_avx512(&x, &kern, Some(&bias), n, cout, g);
            assert_eq!(got.len(), n * cout * ho * wo);
            for ni in 0..n {
                for co in 0..cout {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let mut want = bias[co] as f64;
                            for ci in 0..c {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * stride + ky) as isize - padding as isize;
                                        let ix = (ox * stride + kx) as isize - padding as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        let xv =
                                            x[((ni * c + ci) * h + iy as usize) * w + ix as usize];
                                        want += xv as f64
                                            * kern[((co * c + ci) * k + ky) * k + kx] as f64;
                                    }
                                }
                            }
                            let v = got[((ni * cout + co) * ho + oy) * wo + ox] as f64;
                            assert!(
                                (v - want).abs() < 1e-4,
                                "{g:?} n{ni} co{co} ({oy},{ox}): {v} vs {want}"
                            );
                        }
                    }
                }
            }
        }
        // Transposed convolutions (stride 2), as the adjoints of convolutions from
        // (cout, h, w): even and odd output sizes (the odd ones are a convolution input's
        // gradient whose last row no output reads), k = 2, 3, 4, padding 0 to 2, a row
        // of classes longer than a tile.
        for (n, cin, cout, h, w, k, padding) in [
            (1, 3, 5, 8, 8, 4, 1),
            (2, 33, 4, 9, 7, 4, 1),
            (3, 2, 17, 7, 10, 3, 1),
            (1, 5, 3, 6, 5, 2, 0),
            (2, 4, 40, 11, 41, 4, 2),
            (1, 1, 2, 5, 5, 4, 0),
        ] {
            let ho = (h + 2 * padding - k) / 2 + 1;
            let wo = (w + 2 * padding - k) / 2 + 1;
            let a = Unfold {
                c: cout,
                h,
                w,
                k,
                stride: 2,
                padding,
                ho,
                wo,
            };
            let x = values(n * cin * ho * wo, 6);
            let kern = values(cin * cout * k * k, 7);
            let bias = values(cout, 8);
            assert_eq!(
                transposed(&x, &kern, Some(&bias), n, cin, a).is_some(),
                cout >= MIN_CHANNELS && wo >= PIX
            );
            let got = transposed_avx512(&x, &kern, Some(&bias), n, cin, a);
            let mut want = vec![0f64; n * cout * h * w];
            for ni in 0..n {
                for co in 0..cout {
                    for v in &mut want[(ni * cout + co) * h * w..][..h * w] {
                        *v = bias[co] as f64;
                    }
                    for ci in 0..cin {
                        for iy in 0..ho {
                            for ix in 0..wo {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let oy = (iy * 2 + ky) as isize - padding as isize;
                                        let ox = (ix * 2 + kx) as isize - padding as isize;
                                        if oy < 0 || ox < 0 || oy >= h as isize || ox >= w as isize
                                        {
                                            continue;
                                        }
                                        want[((ni * cout + co) * h + oy as usize) * w
                                            + ox as usize] +=
                                            x[((ni * cin + ci) * ho + iy) * wo + ix] as f64
                                                * kern[((ci * cout + co) * k + ky) * k + kx] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (i, (&v, &wv)) in got.iter().zip(&want).enumerate() {
                assert!((v as f64 - wv).abs() < 1e-4, "{a:?} at {i}: {v} vs {wv}");
            }
        }
        // Strides other than 1 and 2, and sizes that do not fit, are left to the caller.
        // (Checked below, after the kernel gradient.)
        for (n, c, h, w, k, stride, padding, rows) in cases {
            let ho = (h + 2 * padding - k) / stride + 1;
            let wo = (w + 2 * padding - k) / stride + 1;
            let g = Unfold {
                c,
                h,
                w,
                k,
                stride,
                padding,
                ho,
                wo,
            };
            let (l, taps) = (ho * wo, c * k * k);
            let x = values(n * c * h * w, 4);
            let dy = values(n * rows * l, 5);
            assert_eq!(
                kernel_grad(&dy, rows, &x, n, g).is_some(),
                rows >= MIN_CHANNELS
            );
            let got = kernel_grad_avx512(&dy, rows, &x, n, g);
            for r in 0..rows {
                for t in 0..taps {
                    let (ci, ky, kx) = (t / (k * k), (t / k) % k, t % k);
                    let mut want = 0f64;
                    for ni in 0..n {
                        for oy in 0..ho {
                            for ox in 0..wo {
                                let iy = (oy * stride + ky) as isize - padding as isize;
                                let ix = (ox * stride + kx) as isize - padding as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                want += dy[(ni * rows + r) * l + oy * wo + ox] as f64
                                    * x[((ni * c + ci) * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                    }
                    let v = got[r * taps + t] as f64;
                    assert!(
                        (v - want).abs() < 1e-3,
                        "{g:?} row {r} tap {t}: {v} vs {want}"
                    );
                }
            }
        }
        let g = Unfold {
            c: 1,
            h: 5,
            w: 5,
            k: 1,
            stride: 3,
            padding: 0,
            ho: 2,
            wo: 2,
        };
        assert!(conv(&[0.0; 25], &[1.0], None, 1, 1, g).is_none());
        assert!(
            conv(
                &[0.0; 24],
                &[1.0],
                None,
                1,
                1,
                Unfold {
                    stride: 1,
                    ho: 5,
                    wo: 5,
                    ..g
                }
            )
            .is_none()
        );
    }
}
