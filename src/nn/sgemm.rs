//! Single-precision matrix products for x86-64 with AVX-512, the layout of BLIS
//! (Van Zee & van de Geijn, 2015): the operands are packed into panels that fit the caches
//! (B in `KC`×`NR` micro-panels read from L1, A in `MC`×`KC` blocks held in L2) and an
//! 8×32 register-blocked micro-kernel does all the arithmetic — 16 accumulators of 16
//! lanes, two fused multiply-adds per broadcast element. The first `KC` block stores into
//! C (starting from the bias, when there is one), the later ones add to it, so C needs no
//! zeroing.
//!
//! B is read through [`Source`] while it is packed, so a convolution's unfolded (im2col)
//! input or a batch of NCHW images is used in place, and C is written through [`Dest`],
//! so a product can store straight into NCHW images: the convolutions need no column
//! matrix and no permutation of their output (see `im2col.rs`).
//!
//! Threads split C into independent slabs — along its columns when it is wide (the
//! convolutions' batch of pixels), along its rows when it is tall — each packing its own
//! panels: no synchronisation inside a product, and the cost of packing A (or B) once per
//! thread is a small fraction of the product for every shape that is split.
//!
//! Where AVX-512 is missing, [`super::gemm`] falls back to the `gemm` crate and the
//! convolutions to their materialised column matrices.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of the micro-kernel's tile.
const MR: usize = 8;
/// Columns of the micro-kernel's tile (two vectors of 8).
const NR: usize = 32;
/// Depth of a packed block (a B micro-panel of KC×NR is 16 KiB, a quarter of L1).
const KC: usize = 256;
/// Rows of a packed A block (MC×KC = 144 KiB, in L2).
const MC: usize = 128;
/// Columns of a packed B block (KC×NC ≈ 4 MiB, in L3).
const NC: usize = 4096;
/// Values of a block of B packed for a single block of A (256 KiB, a quarter of L2).
const L2_PACK: usize = 1 << 16;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN: usize = 1 << 20;
/// Up to this many elements of C, a product with a long depth splits the depth between
/// threads (each with its own copy of C) rather than C.
const DEPTH_SPLIT_MAX: usize = 1 << 14;

/// A read-only strided matrix behind a raw pointer: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operand {
    /// Element (0, 0).
    pub ptr: *const f32,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl Operand {
    /// The operand starting at element (i, j).
    fn at(self, i: usize, j: usize) -> Self {
        // SAFETY: the callers only shift to elements inside the matrix, so the offset stays
        // inside the allocation.
        Self {
            ptr: unsafe { self.ptr.add(i * self.rs + j * self.cs) },
            ..self
        }
    }
}

/// The geometry of an unfolded (im2col) view: k×k taps over C×H×W images, stride and zero
/// padding, Ho×Wo outputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unfold {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
}

/// The right operand B (k × n) of a product, read a row segment at a time while packing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A strided matrix.
    Matrix(Operand),
    /// NCHW images of `l` pixels read as a (C × N·l) matrix: element (r, j) at
    /// `ptr + (j / l)·image + r·l + j % l`.
    Images {
        /// Image 0, channel 0.
        ptr: *const f32,
        /// Pixels per channel.
        l: usize,
        /// Values per image.
        image: usize,
    },
    /// The unfolded NCHW images (C·k·k × N·Ho·Wo), as im2col would write them, without
    /// the matrix: row (c, ky, kx), column (n, oy, ox) is the input pixel
    /// (n, c, oy·s + ky − p, ox·s + kx − p), or 0 in the padding.
    Unfolded {
        /// Image 0, channel 0.
        ptr: *const f32,
        /// The geometry.
        g: Unfold,
    },
    /// The transpose of [`Source::Unfolded`] (N·Ho·Wo × C·k·k): row (n, oy, ox) is the
    /// patch of input pixels that output pixel reads, in (c, ky, kx) order.
    Patches {
        /// Image 0, channel 0.
        ptr: *const f32,
        /// The geometry.
        g: Unfold,
    },
}

impl Source {
    /// `out[t]` = element (r, j0 + t).
    ///
    /// # Safety
    /// Row r and columns j0 .. j0 + out.len() lie inside B.
    unsafe fn row(&self, r: usize, j0: usize, out: &mut [f32]) {
        // SAFETY (whole body): every offset read is that of an element of B (the caller).
        unsafe {
            match *self {
                Source::Matrix(op) => {
                    let src = op.at(r, j0);
                    if op.cs == 1 {
                        out.copy_from_slice(std::slice::from_raw_parts(src.ptr, out.len()));
                    } else {
                        for (t, v) in out.iter_mut().enumerate() {
                            *v = *src.ptr.add(t * op.cs);
                        }
                    }
                }
                Source::Images { ptr, l, image } => {
                    let (mut t, mut j) = (0, j0);
                    while t < out.len() {
                        let (ni, p) = (j / l, j % l);
                        let run = (l - p).min(out.len() - t);
                        let src = ptr.add(ni * image + r * l + p);
                        out[t..t + run].copy_from_slice(std::slice::from_raw_parts(src, run));
                        t += run;
                        j += run;
                    }
                }
                Source::Unfolded { ptr, g } => {
                    let (c, ky, kx) = (r / (g.k * g.k), (r / g.k) % g.k, r % g.k);
                    let l = g.ho * g.wo;
                    // The output columns whose input column lies inside the image.
                    let lo = g.padding.saturating_sub(kx).div_ceil(g.stride).min(g.wo);
                    let hi = if g.w + g.padding > kx {
                        (g.w + g.padding - kx).div_ceil(g.stride).min(g.wo)
                    } else {
                        0
                    }
                    .max(lo);
                    let (mut t, mut j) = (0, j0);
                    while t < out.len() {
                        let (ni, q) = (j / l, j % l);
                        let (oy, ox) = (q / g.wo, q % g.wo);
                        let run = (g.wo - ox).min(out.len() - t);
                        let seg = &mut out[t..t + run];
                        let iy = (oy * g.stride + ky).wrapping_sub(g.padding);
                        if iy >= g.h {
                            seg.fill(0.0);
                        } else {
                            // Zeros left of the image, the pixels `stride` apart, zeros
                            // right of it.
                            let line = ptr.add(((ni * g.c + c) * g.h + iy) * g.w);
                            let (a, b) = (lo.clamp(ox, ox + run), hi.clamp(ox, ox + run));
                            let (left, rest) = seg.split_at_mut(a - ox);
                            let (mid, right) = rest.split_at_mut(b - a);
                            left.fill(0.0);
                            right.fill(0.0);
                            if !mid.is_empty() {
                                let first = line.add(a * g.stride + kx - g.padding);
                                match g.stride {
                                    1 => mid.copy_from_slice(std::slice::from_raw_parts(
                                        first,
                                        mid.len(),
                                    )),
                                    2 => {
                                        // Up to the end of this channel's plane.
                                        let end = line.add((g.h - iy) * g.w);
                                        gather_even(first, end.offset_from(first) as usize, mid)
                                    }
                                    s => {
                                        for (i, d) in mid.iter_mut().enumerate() {
                                            *d = *first.add(s * i);
                                        }
                                    }
                                }
                            }
                        }
                        t += run;
                        j += run;
                    }
                }
                Source::Patches { ptr, g } => {
                    let q = r % (g.ho * g.wo);
                    let image = ptr.add((r / (g.ho * g.wo)) * g.c * g.h * g.w);
                    // The input pixel under tap (0, 0), possibly outside the image.
                    let by = (q / g.wo * g.stride).wrapping_sub(g.padding);
                    let bx = (q % g.wo * g.stride).wrapping_sub(g.padding);
                    // The taps come in runs of k along a kernel row: (c, ky) then kx.
                    let (k, kk) = (g.k, g.k * g.k);
                    let inside_x = bx < g.w && bx.wrapping_add(k) <= g.w;
                    let (mut c, mut ky, mut kx) = (j0 / kk, (j0 / k) % k, j0 % k);
                    let mut t = 0;
                    while t < out.len() {
                        let run = (k - kx).min(out.len() - t);
                        let seg = &mut out[t..t + run];
                        let iy = by.wrapping_add(ky);
                        if iy >= g.h {
                            seg.fill(0.0);
                        } else {
                            let line = image.add((c * g.h + iy) * g.w);
                            if inside_x {
                                let src = line.add(bx + kx);
                                if let Ok(d) = <&mut [f32; 4]>::try_from(&mut *seg) {
                                    // The common case, k = 4: one 16-byte move.
                                    *d = std::ptr::read_unaligned(src.cast::<[f32; 4]>());
                                } else {
                                    for (i, d) in seg.iter_mut().enumerate() {
                                        *d = *src.add(i);
                                    }
                                }
                            } else {
                                for (d, x) in seg.iter_mut().zip(kx..) {
                                    let ix = bx.wrapping_add(x);
                                    *d = if ix < g.w { *line.add(ix) } else { 0.0 };
                                }
                            }
                        }
                        kx = 0;
                        ky += 1;
                        if ky == k {
                            ky = 0;
                            c += 1;
                        }
                        t += run;
                    }
                }
            }
        }
    }
}

/// `out[i] = src[2·i]`, sixteen at a time: two loads of the 32 values that hold them and
/// one permutation. Reads nothing at or past `src[readable]`: where the 32 values would
/// reach it, the loads are masked (masked-off lanes do not touch memory; a masked load is
/// several times slower, so only the last values of a channel take it).
///
/// # Safety
/// `src[0 .. readable]` are readable, `2·(out.len() − 1) < readable`; the CPU has
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_even(src: *const f32, readable: usize, out: &mut [f32]) {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let mask = |n: usize| ((1u32 << n) - 1) as __mmask16;
    let mut i = 0;
    while i < out.len() {
        let cnt = (out.len() - i).min(16);
        // SAFETY: the lanes loaded lie in src[2i .. readable] (the caller); the store's
        // lanes in out[i .. i + cnt]. The pointers are formed with wrapping arithmetic
        // because the second may point past the end when its mask is empty.
        unsafe {
            let (lo, hi) = if 2 * i + 32 <= readable {
                (
                    _mm512_loadu_ps(src.add(2 * i)),
                    _mm512_loadu_ps(src.add(2 * i + 16)),
                )
            } else {
                // Values 2i .. 2i + 2·cnt − 1 of src.
                let need = 2 * cnt - 1;
                (
                    _mm512_maskz_loadu_ps(mask(need.min(16)), src.wrapping_add(2 * i)),
                    _mm512_maskz_loadu_ps(
                        mask(need.saturating_sub(16)),
                        src.wrapping_add(2 * i + 16),
                    ),
                )
            };
            let v = _mm512_permutex2var_ps(lo, even, hi);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), mask(cnt), v);
        }
        i += cnt;
    }
}

/// Where C (m × n) goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dest {
    /// A row-major matrix with row stride `ld`.
    Matrix {
        /// Element (0, 0).
        ptr: *mut f32,
        /// Row stride.
        ld: usize,
    },
    /// NCHW images of `l` pixels: element (i, j) at `ptr + (j / l)·image + i·l + j % l`
    /// (rows are channels, columns the batch's pixels).
    Images {
        /// Image 0, channel 0.
        ptr: *mut f32,
        /// Pixels per channel.
        l: usize,
        /// Values per image.
        image: usize,
    },
}

impl Dest {
    /// Element (i, j).
    ///
    /// # Safety
    /// (i, j) lies inside C.
    unsafe fn at(&self, i: usize, j: usize) -> *mut f32 {
        // SAFETY: as the caller promised.
        unsafe {
            match *self {
                Dest::Matrix { ptr, ld } => ptr.add(i * ld + j),
                Dest::Images { ptr, l, image } => ptr.add((j / l) * image + i * l + j % l),
            }
        }
    }

    /// The start and row stride of the tile at (i, j) of `width` columns when its rows are
    /// contiguous (it does not cross an image).
    ///
    /// # Safety
    /// The tile lies inside C.
    unsafe fn tile(&self, i: usize, j: usize, width: usize) -> Option<(*mut f32, usize)> {
        // SAFETY: as the caller promised.
        unsafe {
            match *self {
                Dest::Matrix { ptr, ld } => Some((ptr.add(i * ld + j), ld)),
                Dest::Images { ptr, l, image } => {
                    let p = j % l;
                    (p + width <= l).then(|| (ptr.add((j / l) * image + i * l + p), l))
                }
            }
        }
    }
}

/// C (m × n) = A (m × k) · B (k × n) + bias (one value per row of C, if given).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Product<'a> {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// A.
    pub a: Source,
    /// B.
    pub b: Source,
    /// C.
    pub c: Dest,
    /// A value per row added to C.
    pub bias: Option<&'a [f32]>,
}

// SAFETY: a `Product` is only read by the threads of `run`; they write disjoint parts of C
// (its slabs), and the caller keeps A, B and C alive and A and B unchanged for the call.
unsafe impl Send for Product<'_> {}
unsafe impl Sync for Product<'_> {}

/// Whether this CPU runs the kernel.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes the product on `threads` threads of rayon's pool, every element of C written.
///
/// # Safety
/// A and B's elements lie inside live allocations that no one writes during the call,
/// C's inside one that no one else reads or writes, the bias has m values, and
/// [`available`] is true.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run(p: &Product, threads: usize) {
    use rayon::prelude::*;
    let (m, n, k) = (p.m, p.n, p.k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            let v = p.bias.map_or(0.0, |b| b[i]);
            for j in 0..n {
                // SAFETY: (i, j) lies inside C.
                unsafe { *p.c.at(i, j) = v };
            }
        }
        return;
    }
    let threads = if m * n * k < PARALLEL_MIN {
        1
    } else {
        threads.max(1)
    };
    let tiles = m.div_ceil(MR) * n.div_ceil(NR);
    if threads == 1 {
        // SAFETY: as the caller promised, for the whole of C.
        unsafe { serial(p, p.c, p.bias, 0..m, 0..n, 0..k) };
    } else if (tiles < 4 * threads || m * n <= DEPTH_SPLIT_MAX) && k >= 2 * KC * threads {
        // A small C with a long depth (a kernel's gradient: the depth is the batch's
        // pixels): each thread takes a slice of the depth into its own copy of C, and the
        // copies are added.
        let parts = threads.min(k / KC);
        let step = k.div_ceil(parts);
        let mut partials = vec![0f32; (parts - 1) * m * n];
        let targets: Vec<Option<&mut [f32]>> = std::iter::once(None)
            .chain(partials.chunks_mut(m * n).map(Some))
            .collect();
        targets.into_par_iter().enumerate().for_each(|(s, target)| {
            let depth = (s * step).min(k)..((s + 1) * step).min(k);
            // SAFETY: slice 0 writes C (which the caller handed over), the others their
            // own m×n buffers; the depths are disjoint parts of A's and B's.
            unsafe {
                match target {
                    None => serial(p, p.c, p.bias, 0..m, 0..n, depth),
                    Some(buf) => {
                        let c = Dest::Matrix {
                            ptr: buf.as_mut_ptr(),
                            ld: n,
                        };
                        serial(p, c, None, 0..m, 0..n, depth)
                    }
                }
            }
        });
        for part in partials.chunks(m * n) {
            for (i, row) in part.chunks(n).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    // SAFETY: (i, j) lies inside C.
                    unsafe { *p.c.at(i, j) += v };
                }
            }
        }
    } else if n >= m {
        // Column slabs, a multiple of NR wide.
        let width = n.div_ceil(threads).div_ceil(NR) * NR;
        (0..n.div_ceil(width)).into_par_iter().for_each(|s| {
            let j0 = s * width;
            // SAFETY: the slabs are disjoint columns of C.
            unsafe { serial(p, p.c, p.bias, 0..m, j0..(j0 + width).min(n), 0..k) };
        });
    } else {
        let height = m.div_ceil(threads).div_ceil(MR) * MR;
        (0..m.div_ceil(height)).into_par_iter().for_each(|s| {
            let i0 = s * height;
            // SAFETY: the slabs are disjoint rows of C.
            unsafe { serial(p, p.c, p.bias, i0..(i0 + height).min(m), 0..n, 0..k) };
        });
    }
}

/// The rows and columns given of C (or `c`, indexed like C), from the depths given of A's
/// columns and B's rows, on this thread: C = (the bias +) the partial product.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn serial(
    p: &Product,
    c: Dest,
    bias: Option<&[f32]>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    depth: std::ops::Range<usize>,
) {
    let (m, n, k) = (rows.len(), cols.len(), depth.len());
    let (i0, j0, p0) = (rows.start, cols.start, depth.start);
    let m_pad = m.div_ceil(MR) * MR;
    // When A is one block it is packed once, all of its depth, and B a few panels at a time
    // so that they are still in L2 when the micro-kernel reads them; otherwise A is packed
    // a block at a time and B in blocks of NC columns (BLIS's order).
    let whole_a = m <= MC;
    let nc_max = if whole_a {
        (L2_PACK / KC.min(k) / NR * NR).clamp(NR, NC)
    } else {
        NC
    };
    let mut apack = vec![0f32; if whole_a { m_pad * k } else { MC * KC.min(k) }];
    let mut arows = vec![0f32; MR * KC.min(k)];
    if whole_a {
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let dst = &mut apack[pc * m_pad..][..m_pad * kc];
            // SAFETY: these rows and depths lie inside A.
            unsafe { pack_a(&p.a, i0, m, p0 + pc, kc, dst, &mut arows) };
        }
    }
    let mut bpack = vec![0f32; nc_max.min(n.div_ceil(NR) * NR) * KC.min(k)];
    let mut edge = [0f32; MR * NR];
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            // SAFETY: rows pc .. pc + kc and columns j0 + jc .. + nc lie inside B.
            unsafe { pack_b(&p.b, p0 + pc, kc, j0 + jc, nc, &mut bpack) };
            let first = pc == 0;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                let ablock = if whole_a {
                    &apack[pc * m_pad..]
                } else {
                    // SAFETY: these rows and depths lie inside A.
                    unsafe { pack_a(&p.a, i0 + ic, mc, p0 + pc, kc, &mut apack, &mut arows) };
                    &apack[..]
                };
                for jr in (0..nc).step_by(NR) {
                    let nr = NR.min(nc - jr);
                    let bp = bpack[jr * kc..].as_ptr();
                    for ir in (0..mc).step_by(MR) {
                        let mr = MR.min(mc - ir);
                        let ap = ablock[ir * kc..].as_ptr();
                        let (i, j) = (i0 + ic + ir, j0 + jc + jr);
                        let mut start = [0f32; MR];
                        let start = match bias {
                            Some(b) if first => {
                                start[..mr].copy_from_slice(&b[i..i + mr]);
                                Some(&start)
                            }
                            _ => None,
                        };
                        // SAFETY: the packed panels hold kc·MR and kc·NR values; the tile
                        // (i, j) of mr×nr lies inside C.
                        unsafe {
                            match c.tile(i, j, NR).filter(|_| mr == MR && nr == NR) {
                                Some((dst, ld)) => kernel(kc, ap, bp, dst, ld, !first, start),
                                None => {
                                    kernel(kc, ap, bp, edge.as_mut_ptr(), NR, false, start);
                                    for r in 0..mr {
                                        for (t, &v) in edge[r * NR..][..nr].iter().enumerate() {
                                            let d = c.at(i + r, j + t);
                                            if first {
                                                *d = v;
                                            } else {
                                                *d += v;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rows i0 .. i0 + mc, columns p0 .. p0 + kc of A into panels of MR rows, each stored
/// k-major (MR values per k), the rows past `mc` zero; A is read MR row segments at a time
/// into `rows`.
///
/// # Safety
/// Those rows and columns lie inside A.
#[cfg(target_arch = "x86_64")]
unsafe fn pack_a(
    a: &Source,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
    rows: &mut [f32],
) {
    let rows = &mut rows[..MR * kc];
    for (q, panel) in dst
        .chunks_exact_mut(MR * kc)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let live = MR.min(mc - q * MR);
        if let Source::Matrix(op) = *a
            && op.rs == 1
        {
            // A transposed matrix (a kernel read as Wᵀ): the panel's MR values at each
            // depth are contiguous, one short copy each instead of MR strided reads and
            // a transposition.
            for (kk, out) in panel.chunks_exact_mut(MR).enumerate() {
                let (head, tail) = out.split_at_mut(live);
                // SAFETY: as the caller promised (rows i0 + q·MR .. + live, column p0 + kk).
                head.copy_from_slice(unsafe {
                    std::slice::from_raw_parts(op.at(i0 + q * MR, p0 + kk).ptr, live)
                });
                tail.fill(0.0);
            }
            continue;
        }
        for (i, seg) in rows.chunks_exact_mut(kc).enumerate() {
            if i < live {
                // SAFETY: as the caller promised.
                unsafe { a.row(i0 + q * MR + i, p0, seg) };
            } else {
                seg.fill(0.0);
            }
        }
        for (kk, out) in panel.chunks_exact_mut(MR).enumerate() {
            for (i, o) in out.iter_mut().enumerate() {
                *o = rows[i * kc + kk];
            }
        }
    }
}

/// Rows r0 .. r0 + kc, columns j0 .. j0 + nc of B into panels of NR columns, each stored
/// k-major (NR values per k), the columns past `nc` zero; B is read NR-wide row segments
/// at a time, each straight into its panel.
///
/// # Safety
/// Those rows and columns lie inside B.
#[cfg(target_arch = "x86_64")]
unsafe fn pack_b(b: &Source, r0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
    // Each row segment goes straight to its place in the panel: through a buffer, the
    // copy's wide loads would wait on the narrower stores that wrote it (no forwarding).
    for (q, panel) in dst
        .chunks_exact_mut(NR * kc)
        .take(nc.div_ceil(NR))
        .enumerate()
    {
        let width = NR.min(nc - q * NR);
        if let Source::Images { ptr, l, image } = *b {
            // The panel's columns decomposed once (not per row): where they lie in one
            // image, each row is one contiguous run.
            let j = j0 + q * NR;
            let (ni, p) = (j / l, j % l);
            if p + width <= l {
                for (kk, out) in panel.chunks_exact_mut(NR).enumerate() {
                    let (live, pad) = out.split_at_mut(width);
                    // SAFETY: as the caller promised (row r0 + kk, these columns).
                    live.copy_from_slice(unsafe {
                        std::slice::from_raw_parts(ptr.add(ni * image + (r0 + kk) * l + p), width)
                    });
                    pad.fill(0.0);
                }
                continue;
            }
        }
        for (kk, out) in panel.chunks_exact_mut(NR).enumerate() {
            let (live, pad) = out.split_at_mut(width);
            // SAFETY: as the caller promised.
            unsafe { b.row(r0 + kk, j0 + q * NR, live) };
            pad.fill(0.0);
        }
    }
}

/// The MR×NR tile C (row stride `ldc`) = (or +=) the product of a packed A panel (kc×MR)
/// and a packed B panel (kc×NR), plus a bias per row if given.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    add: bool,
    bias: Option<&[f32; MR]>,
) {
    // SAFETY (whole body): the caller passes panels of kc·MR and kc·NR values and a tile of
    // MR rows of NR values at row stride ldc.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NR / 16]; MR];
        if let Some(bias) = bias {
            for (row, &v) in acc.iter_mut().zip(bias) {
                *row = [_mm512_set1_ps(v); NR / 16];
            }
        }
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let mut bv = [_mm512_setzero_ps(); NR / 16];
            for (v, bv) in bv.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(b.add(16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                for (r, bv) in row.iter_mut().zip(&bv) {
                    *r = _mm512_fmadd_ps(ai, *bv, *r);
                }
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        for (i, row) in acc.iter().enumerate() {
            let p = c.add(i * ldc);
            for (v, r) in row.iter().enumerate() {
                let q = p.add(16 * v);
                if add {
                    _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), *r));
                } else {
                    _mm512_storeu_ps(q, *r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn products_equal_the_naive_sum_on_odd_shapes_strides_and_threads() {
        if !available() {
            return;
        }
        // Shapes around every block edge: below, at and past MR, NR, KC, MC and a slab.
        let shapes = [
            (1, 1, 1),
            (6, 16, 1),
            (7, 17, 3),
            (5, 15, 257),
            (145, 33, 300),
            (13, 4100, 20),
            (300, 40, 513),
            (2, 1000, 600),
            (64, 64, 0),
        ];
        for (m, n, k) in shapes {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let mut want = vec![0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = (0..k)
                        .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                        .sum();
                }
            }
            // A read row-major and transposed (its storage k×m), B row-major and transposed.
            let at: Vec<f32> = (0..k * m).map(|r| a[(r % m) * k + r / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|r| b[(r % k) * n + r / k]).collect();
            for threads in [1, 2, 3] {
                for (ao, bo) in [
                    (
                        Operand {
                            ptr: a.as_ptr(),
                            rs: k,
                            cs: 1,
                        },
                        Operand {
                            ptr: b.as_ptr(),
                            rs: n,
                            cs: 1,
                        },
                    ),
                    (
                        Operand {
                            ptr: at.as_ptr(),
                            rs: 1,
                            cs: m,
                        },
                        Operand {
                            ptr: bt.as_ptr(),
                            rs: 1,
                            cs: k,
                        },
                    ),
                ] {
                    let mut c = vec![f32::NAN; m * n];
                    let p = Product {
                        m,
                        n,
                        k,
                        a: Source::Matrix(ao),
                        b: Source::Matrix(bo),
                        c: Dest::Matrix {
                            ptr: c.as_mut_ptr(),
                            ld: n,
                        },
                        bias: None,
                    };
                    // SAFETY: the operands are the vectors above; c holds m·n.
                    unsafe { run(&p, threads) };
                    for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let tol = 1e-5 * (k as f64).max(1.0);
                        assert!(
                            (got as f64 - w).abs() <= tol,
                            "{m}×{n}×{k} threads {threads} at {idx}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod layout_tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32) / 1000.0 - 0.5)
            .collect()
    }

    /// The unfolded matrix (c·k·k × n·ho·wo) of NCHW images, written out.
    fn unfold(x: &[f32], n: usize, g: Unfold) -> Vec<f32> {
        let (rows, l) = (g.c * g.k * g.k, g.ho * g.wo);
        let mut out = vec![0f32; rows * n * l];
        for r in 0..rows {
            let (c, ky, kx) = (r / (g.k * g.k), (r / g.k) % g.k, r % g.k);
            for ni in 0..n {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                        let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                            out[r * n * l + ni * l + oy * g.wo + ox] =
                                x[((ni * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn patches_against_images_match_the_unfolded_matrix_with_and_without_a_depth_split() {
        if !available() {
            return;
        }
        // C (m × C·k·k) = images (m × N·L) · unfoldedᵀ: a kernel's gradient. The second
        // case is long enough in depth and small enough in C for the depth split.
        for (c, h, w, k, stride, padding, n, m) in [
            (3, 9, 7, 3, 1, 1, 2, 5),
            (3, 64, 64, 4, 2, 1, 4, 9),
            // k = 4 on images so small that most patches cross a border.
            (5, 6, 5, 4, 2, 1, 2, 3),
            (2, 8, 8, 4, 2, 1, 3, 17),
        ] {
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
            let (taps, l) = (c * k * k, ho * wo);
            let x = values(n * c * h * w, 5);
            let dy = values(n * m * l, 6);
            let cols = unfold(&x, n, g);
            let mut want = vec![0f64; m * taps];
            for i in 0..m {
                for r in 0..taps {
                    want[i * taps + r] = (0..n * l)
                        .map(|j| {
                            dy[(j / l) * m * l + i * l + j % l] as f64 * cols[r * n * l + j] as f64
                        })
                        .sum();
                }
            }
            for threads in [1, 2, 3] {
                let mut got = vec![f32::NAN; m * taps];
                let p = Product {
                    m,
                    n: taps,
                    k: n * l,
                    a: Source::Images {
                        ptr: dy.as_ptr(),
                        l,
                        image: m * l,
                    },
                    b: Source::Patches { ptr: x.as_ptr(), g },
                    c: Dest::Matrix {
                        ptr: got.as_mut_ptr(),
                        ld: taps,
                    },
                    bias: None,
                };
                // SAFETY: the vectors hold what the product reads and writes.
                unsafe { run(&p, threads) };
                for (idx, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - w).abs() < 1e-3,
                        "patches {c},{h},{w},{k} threads {threads} at {idx}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn unfolded_sources_image_sources_image_destinations_and_bias_match_the_matrices() {
        if !available() {
            return;
        }
        // (channels, h, w, k, stride, padding, batch, rows of A): taps past KC, rows past
        // MC, images narrower and wider than NR, columns past a slab.
        let cases = [
            (3, 9, 7, 3, 1, 1, 2, 5),
            (2, 8, 8, 4, 2, 1, 3, 17),
            (5, 6, 5, 2, 2, 0, 2, 8),
            (30, 6, 6, 3, 1, 1, 3, 9),
            (3, 40, 33, 4, 2, 1, 4, 130),
            (1, 3, 3, 3, 1, 2, 2, 1),
        ];
        for (c, h, w, k, stride, padding, n, m) in cases {
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
            let (taps, l) = (c * k * k, ho * wo);
            let x = values(n * c * h * w, 1);
            let a = values(m * taps, 2);
            let bias = values(m, 3);
            let cols = unfold(&x, n, g);
            // want[i][j] = bias[i] + Σ_r a[i][r]·cols[r][j], then stored NCHW.
            let mut want = vec![0f64; m * n * l];
            for i in 0..m {
                for j in 0..n * l {
                    let s: f64 = (0..taps)
                        .map(|r| a[i * taps + r] as f64 * cols[r * n * l + j] as f64)
                        .sum();
                    want[(j / l) * m * l + i * l + j % l] = s + bias[i] as f64;
                }
            }
            for threads in [1, 2] {
                let mut got = vec![f32::NAN; m * n * l];
                let p = Product {
                    m,
                    n: n * l,
                    k: taps,
                    a: Source::Matrix(Operand {
                        ptr: a.as_ptr(),
                        rs: taps,
                        cs: 1,
                    }),
                    b: Source::Unfolded { ptr: x.as_ptr(), g },
                    c: Dest::Images {
                        ptr: got.as_mut_ptr(),
                        l,
                        image: m * l,
                    },
                    bias: Some(&bias),
                };
                // SAFETY: the vectors hold what the product reads and writes.
                unsafe { run(&p, threads) };
                for (idx, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - w).abs() < 1e-4,
                        "unfolded {c},{h},{w},{k},{stride},{padding} threads {threads} at {idx}: {g} vs {w}"
                    );
                }
            }
            // Images as a source: B = x read as (c × n·h·w), C row-major.
            let hw = h * w;
            let a2 = values(m * c, 4);
            let mut want = vec![0f64; m * n * hw];
            for i in 0..m {
                for j in 0..n * hw {
                    want[i * n * hw + j] = (0..c)
                        .map(|r| {
                            a2[i * c + r] as f64 * x[(j / hw) * c * hw + r * hw + j % hw] as f64
                        })
                        .sum();
                }
            }
            for threads in [1, 2] {
                let mut got = vec![f32::NAN; m * n * hw];
                let p = Product {
                    m,
                    n: n * hw,
                    k: c,
                    a: Source::Matrix(Operand {
                        ptr: a2.as_ptr(),
                        rs: c,
                        cs: 1,
                    }),
                    b: Source::Images {
                        ptr: x.as_ptr(),
                        l: hw,
                        image: c * hw,
                    },
                    c: Dest::Matrix {
                        ptr: got.as_mut_ptr(),
                        ld: n * hw,
                    },
                    bias: None,
                };
                // SAFETY: as above.
                unsafe { run(&p, threads) };
                for (idx, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!((g as f64 - w).abs() < 1e-4, "images at {idx}: {g} vs {w}");
                }
            }
        }
    }
}
