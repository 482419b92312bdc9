//! Small statistics shared by training logs and benchmarks.

/// The median of `xs` (sorted in place); NaN for an empty slice.
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(super::median(&mut [3., 1., 2.]), 2.);
        assert_eq!(super::median(&mut [4., 1., 2., 3.]), 2.5);
        assert!(super::median(&mut []).is_nan());
    }
}
