//! Matrix products on slices, for the convolution ops of [`super::im2col`], which run their
//! forward pass on raw CPU storage: the `gemm` crate's kernels, multi-threaded as candle's
//! own products are, behind a bounds-checked view ([`Mat`]).

use candle_core::Result;
use gemm::Parallelism;

/// The element types the CPU kernels run on.
pub(crate) trait Scalar:
    Copy + Default + Send + Sync + std::ops::AddAssign + std::ops::Add<Output = Self> + 'static
{
    /// 1.
    const ONE: Self;

    /// a·b (row-major) by this crate's own kernel, where there is one for the type and the
    /// CPU; `None` leaves the product to the `gemm` crate. The operands fit (checked).
    fn own_product(_a: Mat<Self>, _b: Mat<Self>, _threads: usize) -> Option<Vec<Self>> {
        None
    }
}

impl Scalar for f32 {
    const ONE: Self = 1.0;

    #[cfg(target_arch = "x86_64")]
    fn own_product(a: Mat<Self>, b: Mat<Self>, threads: usize) -> Option<Vec<Self>> {
        use super::sgemm::{Dest, Operand, Product, Source, available, run};
        if !available() {
            return None;
        }
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let mut dst = Vec::with_capacity(m * n);
        let product = Product {
            m,
            n,
            k,
            a: Source::Matrix(Operand {
                ptr: a.data.as_ptr().wrapping_add(a.start),
                rs: a.rs,
                cs: a.cs,
            }),
            b: Source::Matrix(Operand {
                ptr: b.data.as_ptr().wrapping_add(b.start),
                rs: b.rs,
                cs: b.cs,
            }),
            c: Dest::Matrix {
                ptr: dst.as_mut_ptr(),
                ld: n,
            },
            bias: None,
        };
        // SAFETY: the operands fit their slices (checked by the caller), which stay
        // borrowed and unchanged for the call; `run` writes every one of the m·n elements
        // of `dst` before its length is set; `available` is true.
        unsafe {
            run(&product, threads);
            dst.set_len(m * n);
        }
        Some(dst)
    }
}

impl Scalar for f64 {
    const ONE: Self = 1.0;
}

/// A matrix view into a slice: `rows`×`cols` elements, element (i, j) at
/// `start + i·rs + j·cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    /// The storage.
    pub data: &'a [T],
    /// Offset of element (0, 0).
    pub start: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A contiguous row-major `rows`×`cols` matrix at the start of `data`.
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            start: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.start + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// a·b as a new row-major matrix, on as many threads as candle's own products: f32 by
/// [`super::sgemm`] where the CPU has AVX-512, the rest by the `gemm` crate.
pub(crate) fn multiply<T: Scalar>(a: Mat<T>, b: Mat<T>) -> Result<Vec<T>> {
    multiply_with(a, b, super::threads())
}

/// [`multiply`] on `threads` threads.
fn multiply_with<T: Scalar>(a: Mat<T>, b: Mat<T>, threads: usize) -> Result<Vec<T>> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        candle_core::bail!("a product of {m}×{k} and {}×{n} matrices", b.rows);
    }
    if !a.fits() || !b.fits() {
        candle_core::bail!("matrix product: an operand reaches outside its storage");
    }
    if let Some(dst) = T::own_product(a, b, threads) {
        return Ok(dst);
    }
    let mut dst = vec![T::default(); m * n];
    if m == 0 || n == 0 || k == 0 {
        return Ok(dst);
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `dst` holds m·n elements written row-major (column stride 1, row stride n);
    // every element of `a` and `b` that is read lies inside its slice (`fits`: the offset
    // of the last one is below the slice length, and strides are not negative).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(a.start),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.start),
            b.cs as isize,
            b.rs as isize,
            T::default(),
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(dst)
}

/// a·bᵀ for row-major `a` (p × k) and `b` (q × k): every pair of rows' dot product, as a
/// row-major (p × q). Meant for a long k and a small p × q — the gradient of a
/// convolution's kernel, k being the batch's pixels — where one GEMM would leave all but
/// one thread idle: k is split into one slice per task, each slice's product is taken on
/// its own thread, and the partial products are summed.
pub(crate) fn rows_dot_rows<T: Scalar>(
    a: &[T],
    p: usize,
    b: &[T],
    q: usize,
    k: usize,
) -> Result<Vec<T>> {
    use rayon::prelude::*;
    if a.len() != p * k || b.len() != q * k {
        candle_core::bail!(
            "rows_dot_rows: {} and {} values for {p}×{k} and {q}×{k}",
            a.len(),
            b.len()
        );
    }
    // The `gemm` crate packs a transposed operand slowly; let the larger one be the left
    // factor, read along its rows, and transpose the (small) result instead.
    if p < q {
        let t = rows_dot_rows(b, q, a, p, k)?;
        let mut out = vec![T::default(); p * q];
        for (j, row) in t.chunks_exact(p.max(1)).enumerate().take(q) {
            for (i, &v) in row.iter().enumerate() {
                out[i * q + j] = v;
            }
        }
        return Ok(out);
    }
    let threads = super::threads();
    // Slices of at least 256 columns, a few per thread for balance.
    let parts = (k / 256).clamp(1, 4 * threads);
    if parts == 1 || p * q == 0 {
        let bt = Mat {
            data: b,
            start: 0,
            rows: k,
            cols: q,
            rs: 1,
            cs: k,
        };
        return multiply(Mat::rows(a, p, k), bt);
    }
    let step = k.div_ceil(parts);
    let partial = (0..parts)
        .into_par_iter()
        .map(|i| -> Result<Vec<T>> {
            let (lo, hi) = (i * step, ((i + 1) * step).min(k));
            let a_part = Mat {
                data: a,
                start: lo,
                rows: p,
                cols: hi - lo,
                rs: k,
                cs: 1,
            };
            let b_part = Mat {
                data: b,
                start: lo,
                rows: hi - lo,
                cols: q,
                rs: 1,
                cs: k,
            };
            multiply_with(a_part, b_part, 1)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = vec![T::default(); p * q];
    for part in &partial {
        for (o, &v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    Ok(out)
}

/// [`rows_dot_rows`] as a candle op on two contiguous CPU matrices (p × k) and (q × k),
/// for backward passes (it has no gradient of its own).
#[derive(Debug, Clone, Copy)]
pub struct RowsDotRows;

impl candle_core::CustomOp2 for RowsDotRows {
    fn name(&self) -> &'static str {
        "latentflow-rows-dot-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::CpuStorage as S;
        let (p, k) = l1.shape().dims2()?;
        let (q, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("rows_dot_rows of {p}×{k} and {q}×{k2}");
        }
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("rows_dot_rows needs contiguous operands");
        };
        let out = match (s1, s2) {
            (S::F32(a), S::F32(b)) => S::F32(rows_dot_rows(&a[a0..a1], p, &b[b0..b1], q, k)?),
            (S::F64(a), S::F64(b)) => S::F64(rows_dot_rows(&a[a0..a1], p, &b[b0..b1], q, k)?),
            _ => candle_core::bail!("rows_dot_rows: F32 or F64 operands of one dtype"),
        };
        Ok((out, candle_core::Shape::from((p, q))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn products_equal_candles_for_contiguous_and_strided_operands() {
        for (m, k, n) in [(3, 5, 7), (1, 1, 1), (17, 9, 33), (4, 0, 3)] {
            let a = crate::nn::fd::randn64(&[m, k], 1).unwrap();
            let b = crate::nn::fd::randn64(&[k, n], 2).unwrap();
            let want = a.matmul(&b).unwrap().flatten_all().unwrap();
            let av = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let bv = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let got = multiply(Mat::rows(&av, m, k), Mat::rows(&bv, k, n)).unwrap();
            let got = Tensor::from_vec(got, m * n, &Device::Cpu).unwrap();
            let d = (got - &want).unwrap().abs().unwrap();
            let d = d
                .max(0)
                .map(|t| t.to_scalar::<f64>().unwrap())
                .unwrap_or(0.0);
            assert!(d < 1e-12, "{m}×{k}×{n}: {d}");
            // The same product with `a` stored transposed (column stride m).
            let at = a.t().unwrap().contiguous().unwrap();
            let atv = at.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let strided = Mat {
                data: &atv,
                start: 0,
                rows: m,
                cols: k,
                rs: 1,
                cs: m,
            };
            let got = multiply(strided, Mat::rows(&bv, k, n)).unwrap();
            let got = Tensor::from_vec(got, m * n, &Device::Cpu).unwrap();
            let d = (got - &want).unwrap().abs().unwrap();
            let d = d
                .max(0)
                .map(|t| t.to_scalar::<f64>().unwrap())
                .unwrap_or(0.0);
            assert!(d < 1e-12, "{m}×{k}×{n} strided: {d}");
        }
        // a·bᵀ by split rows: long k (several slices) and short.
        for (p, q, k) in [(3, 4, 2000), (5, 2, 7), (1, 1, 1), (4, 3, 900)] {
            let a = crate::nn::fd::randn64(&[p, k], 4).unwrap();
            let b = crate::nn::fd::randn64(&[q, k], 5).unwrap();
            let want = a.matmul(&b.t().unwrap()).unwrap().flatten_all().unwrap();
            let av = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let bv = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let got = rows_dot_rows(&av, p, &bv, q, k).unwrap();
            let got = Tensor::from_vec(got, p * q, &Device::Cpu).unwrap();
            let d = (got - &want).unwrap().abs().unwrap();
            let d = d
                .max(0)
                .map(|t| t.to_scalar::<f64>().unwrap())
                .unwrap_or(0.0);
            assert!(d < 1e-10, "{p}×{q}×{k}: {d}");
        }
        assert!(rows_dot_rows(&[1.0f64; 3], 2, &[1.0; 4], 2, 2).is_err());
        // An operand that reaches past its storage is refused.
        let short = [1.0f64; 5];
        assert!(multiply(Mat::rows(&short, 2, 3), Mat::rows(&short, 3, 1)).is_err());
    }
}
