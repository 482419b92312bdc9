//! Matrix products on slices, for the convolution ops of [`super::im2col`], which run their
//! forward pass on raw CPU storage: the `gemm` crate's kernels, multi-threaded as candle's
//! own products are, behind a bounds-checked view ([`Mat`]).

use candle_core::Result;
use gemm::Parallelism;

/// The parallelism candle uses for its own products.
fn parallelism() -> Parallelism {
    let n = candle_core::utils::get_num_threads();
    if n > 1 {
        Parallelism::Rayon(n)
    } else {
        Parallelism::None
    }
}

/// The element types the CPU kernels run on.
pub(crate) trait Scalar:
    Copy + Default + Send + Sync + std::ops::AddAssign + std::ops::Add<Output = Self> + 'static
{
    /// 1.
    const ONE: Self;
}

impl Scalar for f32 {
    const ONE: Self = 1.0;
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

/// a·b as a new row-major matrix, by the `gemm` crate's kernels (multi-threaded as candle's
/// own products are).
pub(crate) fn multiply<T: Scalar>(a: Mat<T>, b: Mat<T>) -> Result<Vec<T>> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        candle_core::bail!("a product of {m}×{k} and {}×{n} matrices", b.rows);
    }
    if !a.fits() || !b.fits() {
        candle_core::bail!("matrix product: an operand reaches outside its storage");
    }
    let mut dst = vec![T::default(); m * n];
    if m == 0 || n == 0 || k == 0 {
        return Ok(dst);
    }
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
            parallelism(),
        );
    }
    Ok(dst)
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
        // An operand that reaches past its storage is refused.
        let short = [1.0f64; 5];
        assert!(multiply(Mat::rows(&short, 2, 3), Mat::rows(&short, 3, 1)).is_err());
    }
}
