//! The factor score: which ground-truth factors a traversal changes. From the same random
//! starting codes, each direction k walks T steps; a factor regressor trained on the
//! dataset's labelled images ([`crate::models::factors`]) reads the factors of G(z_0) and
//! G(z_T), and the change of factor f is
//!
//! - ordered factors (scale, orientation, position): |E_p[i] − E_q[i]| / (n − 1), the
//!   difference of the expected values, in [0, 1];
//! - cyclic factors (hues): the angle between the circular means of p and q (value i at
//!   angle 2πi/n), divided by π, in [0, 1];
//! - categorical factors (shape): the total variation ½ Σ_i |p_i − q_i|, in [0, 1];
//!
//! averaged over the codes, then divided by the factor's change between two independent
//! samples G(z), G(z') (the same starting images paired with their neighbours): 1 means a
//! direction changes the factor as much as drawing a new image does. Without this, factors
//! the regressor reads less surely from generated images (shape, whose total variation
//! jumps with every uncertain reading) would look changed by every direction. That gives
//! the K × F matrix M[k][f]. A direction's main factor
//! is the one it changes most; its share is M[k][main] / Σ_f M[k][f] (1: it changes one
//! factor only; 1/F: all alike). The method's score is the mean share over its directions,
//! reported with the number of distinct main factors (directions that collapsed onto one
//! factor share a main factor).

use crate::limits::{self, MAX_PAIRS, MAX_STEPS};
use crate::methods::{PathSpec, Traversal};
use crate::models::factors::{FactorRegressor, FactorSpec};
use crate::models::{Generator, sample_latents};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::f64::consts::PI;

/// Settings of a factor score.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorScoreConfig {
    /// Starting codes (the same for every direction).
    pub codes: usize,
    /// Steps T.
    pub steps: usize,
    /// Multiplies every step (see [`crate::eval::diversity::scale_for_length`]).
    pub scale: f64,
    /// Seed of the starting codes.
    pub seed: u64,
}

impl Default for FactorScoreConfig {
    fn default() -> Self {
        Self {
            codes: 256,
            steps: 10,
            scale: 1.0,
            seed: 0,
        }
    }
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorScore {
    /// The factors' names, in the regressor's order.
    pub factors: Vec<String>,
    /// M[k][f]: the mean change of factor f along direction k, relative to its change
    /// between independent samples (`random_change`).
    pub changes: Vec<Vec<f64>>,
    /// Per factor, the mean change between independent samples G(z), G(z') (in [0, 1]).
    pub random_change: Vec<f64>,
    /// Per direction, the factor it changes most.
    pub main_factor: Vec<String>,
    /// Per direction, M[k][main] / Σ_f M[k][f].
    pub share: Vec<f64>,
    /// The mean share over the directions.
    pub mean_share: f64,
    /// How many different factors are some direction's main factor.
    pub distinct_main_factors: usize,
}

/// The change of factor `f` between the value distributions `p` and `q` (each summing to
/// one), in [0, 1] (see the module docs).
pub fn factor_change(f: &FactorSpec, p: &[f64], q: &[f64]) -> f64 {
    let n = p.len().min(q.len());
    if n < 2 {
        return 0.0;
    }
    if f.categorical {
        0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
    } else if f.cyclic {
        let angle = |d: &[f64]| {
            let (s, c) = d.iter().enumerate().fold((0.0, 0.0), |(s, c), (i, w)| {
                let a = 2.0 * PI * i as f64 / n as f64;
                (s + w * a.sin(), c + w * a.cos())
            });
            s.atan2(c)
        };
        let d = (angle(p) - angle(q)).rem_euclid(2.0 * PI);
        d.min(2.0 * PI - d) / PI
    } else {
        let mean = |d: &[f64]| d.iter().enumerate().map(|(i, w)| i as f64 * w).sum::<f64>();
        (mean(p) - mean(q)).abs() / (n - 1) as f64
    }
}

/// Rows of an (n, v) probability tensor as f64 vectors.
fn rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(t.to_dtype(DType::F64)?.to_vec2::<f64>()?)
}

/// The factor score of `method` on generator `g`, read by `regressor`.
pub fn factor_score(
    g: &dyn Generator,
    method: &dyn Traversal,
    regressor: &FactorRegressor,
    cfg: &FactorScoreConfig,
    device: &Device,
) -> Result<FactorScore> {
    let (changes, random_change) = change_matrix(g, method, regressor, cfg, device)?;
    Ok(summarise(
        regressor
            .config()
            .factors
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        changes,
        random_change,
    ))
}

/// The K × F matrix M[k][f] of the factor score (see the module docs) and each factor's
/// change between independent samples.
pub fn change_matrix(
    g: &dyn Generator,
    method: &dyn Traversal,
    regressor: &FactorRegressor,
    cfg: &FactorScoreConfig,
    device: &Device,
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    if cfg.codes < 2 || cfg.steps == 0 {
        return Err(Error::config(
            "the factor score needs at least two starting codes and one step",
        ));
    }
    limits::check_count("--codes", cfg.codes, MAX_PAIRS)?;
    limits::check_count("--steps", cfg.steps, MAX_STEPS)?;
    let gc = g.config();
    let rc = regressor.config();
    if (rc.channels, rc.image_size) != (gc.channels, gc.image_size) {
        return Err(Error::config(format!(
            "the factor regressor reads {}-channel images of side {}, but the generator makes \
             {}-channel images of side {}",
            rc.channels, rc.image_size, gc.channels, gc.image_size
        )));
    }
    if method.latent_dim() != g.latent_dim() {
        return Err(Error::config(format!(
            "the method acts on {} dimensions but the generator's latent space has {}",
            method.latent_dim(),
            g.latent_dim()
        )));
    }
    let k_total = method.directions();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let z0 = sample_latents(g.prior(), cfg.codes, g.latent_dim(), &mut rng, device)?;
    let chunk = 64;
    // The factors of every start image, read once.
    let mut start: Vec<Vec<Vec<f64>>> = vec![Vec::new(); rc.factors.len()];
    for i in (0..cfg.codes).step_by(chunk) {
        let z = z0.narrow(0, i, chunk.min(cfg.codes - i))?;
        for (f, p) in regressor.probabilities(&g.decode(&z)?)?.iter().enumerate() {
            start[f].extend(rows(p)?);
        }
    }
    // The change between independent samples: each start image against the next one.
    let random_change: Vec<f64> = rc
        .factors
        .iter()
        .zip(&start)
        .map(|(f, p)| {
            (0..cfg.codes)
                .map(|i| factor_change(f, &p[i], &p[(i + 1) % cfg.codes]))
                .sum::<f64>()
                / cfg.codes as f64
        })
        .collect();
    let mut changes = vec![vec![0.0; rc.factors.len()]; k_total];
    for (k, row) in changes.iter_mut().enumerate() {
        let spec = PathSpec {
            scale: cfg.scale,
            ..PathSpec::single(k, cfg.steps)
        };
        spec.validate(k_total)?;
        for i in (0..cfg.codes).step_by(chunk) {
            let n = chunk.min(cfg.codes - i);
            let z = z0.narrow(0, i, n)?;
            let path = method.path(&z, &spec)?;
            let zt = path.z.last().cloned().unwrap_or(z);
            let x = g.decode(&zt.to_dtype(DType::F32)?)?;
            for (f, p) in regressor.probabilities(&x)?.iter().enumerate() {
                for (j, q) in rows(p)?.iter().enumerate() {
                    row[f] += factor_change(&rc.factors[f], &start[f][i + j], q);
                }
            }
        }
        for (c, r) in row.iter_mut().zip(&random_change) {
            *c /= cfg.codes as f64 * r.max(1e-9);
            if !c.is_finite() {
                return Err(Error::config(format!(
                    "direction {k} gave a non-finite factor change (its walk left the \
                     generator's range)"
                )));
            }
        }
    }
    Ok((changes, random_change))
}

/// Main factors and shares of a K × F change matrix.
pub fn summarise(
    factors: Vec<String>,
    changes: Vec<Vec<f64>>,
    random_change: Vec<f64>,
) -> FactorScore {
    let mut main_factor = Vec::with_capacity(changes.len());
    let mut share = Vec::with_capacity(changes.len());
    let mut mains = std::collections::BTreeSet::new();
    for row in &changes {
        let (main, top) =
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                });
        let total: f64 = row.iter().sum();
        share.push(if total > 0.0 { top / total } else { 0.0 });
        main_factor.push(factors.get(main).cloned().unwrap_or_default());
        mains.insert(main);
    }
    let mean_share = if share.is_empty() {
        0.0
    } else {
        share.iter().sum::<f64>() / share.len() as f64
    };
    FactorScore {
        factors,
        changes,
        random_change,
        main_factor,
        share,
        mean_share,
        distinct_main_factors: mains.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(values: usize, cyclic: bool, categorical: bool) -> FactorSpec {
        FactorSpec {
            name: "f".into(),
            values,
            cyclic,
            categorical,
        }
    }

    fn one_hot(n: usize, i: usize) -> Vec<f64> {
        (0..n).map(|j| f64::from(u8::from(i == j))).collect()
    }

    #[test]
    fn changes_by_hand() {
        // Ordered, 5 values: from 0 to 4 is the whole range; 1 → 3 is half of it.
        let o = spec(5, false, false);
        assert!((factor_change(&o, &one_hot(5, 0), &one_hot(5, 4)) - 1.0).abs() < 1e-12);
        assert!((factor_change(&o, &one_hot(5, 1), &one_hot(5, 3)) - 0.5).abs() < 1e-12);
        // Expected values: (0.5·0 + 0.5·4) = 2 against 1: a quarter.
        let p = [0.5, 0.0, 0.0, 0.0, 0.5];
        assert!((factor_change(&o, &p, &one_hot(5, 1)) - 0.25).abs() < 1e-12);
        // Cyclic, 10 values: 0 and 9 are neighbours (36° apart, 0.2 of π); 0 and 5 opposite.
        let c = spec(10, true, false);
        assert!((factor_change(&c, &one_hot(10, 0), &one_hot(10, 9)) - 0.2).abs() < 1e-12);
        assert!((factor_change(&c, &one_hot(10, 0), &one_hot(10, 5)) - 1.0).abs() < 1e-12);
        assert!((factor_change(&c, &one_hot(10, 2), &one_hot(10, 3)) - 0.2).abs() < 1e-12);
        // Categorical: total variation.
        let k = spec(3, false, true);
        assert!((factor_change(&k, &one_hot(3, 0), &one_hot(3, 2)) - 1.0).abs() < 1e-12);
        assert!((factor_change(&k, &[0.5, 0.5, 0.0], &[0.5, 0.0, 0.5]) - 0.5).abs() < 1e-12);
        // No change is zero for every kind.
        for f in [&o, &c] {
            assert!(factor_change(f, &p[..], &p[..]).abs() < 1e-12);
        }
    }

    #[test]
    fn shares_and_distinct_main_factors_by_hand() {
        let s = summarise(
            vec!["a".into(), "b".into(), "c".into()],
            vec![
                vec![0.6, 0.2, 0.2],
                vec![0.1, 0.3, 0.0],
                vec![0.5, 0.0, 0.0],
                vec![0.0, 0.0, 0.0],
            ],
            vec![1.0; 3],
        );
        assert_eq!(s.main_factor, ["a", "b", "a", "a"]);
        let expected = [0.6, 0.75, 1.0, 0.0];
        for (got, want) in s.share.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{:?}", s.share);
        }
        assert!((s.mean_share - 2.35 / 4.0).abs() < 1e-12);
        assert_eq!(s.distinct_main_factors, 2);
    }
}
