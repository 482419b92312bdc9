//! Mixed-radix addressing of procedural datasets: image index ↔ factor values.
//!
//! A dataset with factors of sizes n_0, n_1, …, n_{K−1} has n_0·n_1·…·n_{K−1} images, and
//! image `index` has the factor values of `index` written in mixed radix with the *last*
//! factor varying fastest (the dSprites/Shapes3D convention): consecutive indices differ in
//! the last factor.

use super::Factor;
use crate::{Error, Result};

/// Number of images of a dataset whose images are all combinations of `factors`.
pub fn combinations(factors: &[Factor]) -> usize {
    factors.iter().map(|f| f.values).product()
}

/// The factor values of image `index`, last factor fastest. Each digit is reduced modulo
/// its factor's count, so an `index` at or past [`combinations`] wraps around.
pub fn decode<const N: usize>(factors: &[Factor; N], index: usize) -> [usize; N] {
    let mut values = [0; N];
    decode_into(factors, index, &mut values);
    values
}

/// [`decode`] for any number of factors.
pub fn decode_vec(factors: &[Factor], index: usize) -> Vec<usize> {
    let mut values = vec![0; factors.len()];
    decode_into(factors, index, &mut values);
    values
}

fn decode_into(factors: &[Factor], index: usize, values: &mut [usize]) {
    let mut rest = index;
    for (value, factor) in values.iter_mut().zip(factors).rev() {
        let n = factor.values.max(1);
        *value = rest % n;
        rest /= n;
    }
}

/// The index of the image with the given factor values, last factor fastest: the inverse
/// of [`decode`]. Values are reduced modulo their factor's count and missing trailing
/// values count as 0; use [`check_values`] first where the values come from a user.
pub fn encode(factors: &[Factor], values: &[usize]) -> usize {
    factors.iter().enumerate().fold(0, |index, (i, factor)| {
        let n = factor.values.max(1);
        index * n + values.get(i).copied().unwrap_or(0) % n
    })
}

/// Checks that `values` has one in-range value per factor of dataset `dataset`.
pub fn check_values(dataset: &str, factors: &[Factor], values: &[usize]) -> Result<()> {
    if values.len() != factors.len() {
        return Err(Error::config(format!(
            "dataset {dataset} has {} factors ({}), but {} values were given",
            factors.len(),
            factors
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", "),
            values.len()
        )));
    }
    for (factor, &value) in factors.iter().zip(values) {
        if value >= factor.values {
            return Err(Error::config(format!(
                "factor {} of dataset {dataset} takes values 0..{}, got {value}",
                factor.name, factor.values
            )));
        }
    }
    Ok(())
}

/// Checks that `index` addresses one of the `len` images of dataset `dataset`.
pub fn check_index(dataset: &str, len: usize, index: usize) -> Result<()> {
    if index < len {
        Ok(())
    } else {
        Err(Error::config(format!(
            "image index {index} is out of range for dataset {dataset} with {len} images"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTORS: [Factor; 3] = [
        Factor {
            name: "a",
            values: 2,
            cyclic: false,
            categorical: true,
        },
        Factor {
            name: "b",
            values: 3,
            cyclic: true,
            categorical: false,
        },
        Factor {
            name: "c",
            values: 5,
            cyclic: false,
            categorical: false,
        },
    ];

    #[test]
    fn last_factor_is_fastest() {
        assert_eq!(combinations(&FACTORS), 30);
        assert_eq!(decode(&FACTORS, 0), [0, 0, 0]);
        assert_eq!(decode(&FACTORS, 1), [0, 0, 1]);
        assert_eq!(decode(&FACTORS, 5), [0, 1, 0]);
        assert_eq!(decode(&FACTORS, 15), [1, 0, 0]);
        assert_eq!(decode(&FACTORS, 29), [1, 2, 4]);
        for index in 0..30 {
            assert_eq!(encode(&FACTORS, &decode(&FACTORS, index)), index);
        }
    }

    #[test]
    fn checks_reject_bad_values() {
        assert!(check_values("t", &FACTORS, &[1, 2, 4]).is_ok());
        let err = check_values("t", &FACTORS, &[1, 3, 0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("factor b") && err.contains("0..3"), "{err}");
        assert!(check_values("t", &FACTORS, &[1, 2]).is_err());
        assert!(check_index("t", 30, 29).is_ok());
        assert!(check_index("t", 30, 30).is_err());
    }
}
