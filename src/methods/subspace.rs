//! DP-LaSE's channel-subspace refinement (Li et al., ACM MM 2021, §3.3): the first layer's
//! channels are grouped into subspaces, and a direction's edit is confined to one of them.
//!
//! 1. Self-expression: with X (n samples × C channels) each channel's mean activation over
//!    its positions for n codes from the prior, the coefficients
//!    C* = argmin ½‖X − XC‖²_F + λ‖C‖₁ with diag(C) = 0 express every channel by the
//!    others; channels in one subspace express each other ([`self_expressive`], by ISTA:
//!    proximal gradient steps of size 1/‖XᵀX‖ with soft thresholding).
//! 2. Spectral clustering of the affinity W = |C*| + |C*|ᵀ into G groups: the eigenvectors
//!    of the G smallest eigenvalues of the normalised Laplacian I − D^{−1/2} W D^{−1/2},
//!    rows scaled to unit length, grouped by k-means started from farthest points
//!    ([`spectral_clusters`]).
//! 3. The chosen group's channels form a mask over the layer's outputs; DP-LaSE then
//!    measures the feature change inside the mask and penalises the change outside it
//!    ([`super::dplase::losses`] with a mask).

use super::first_layer::{FirstLayer, symmetric_eigen};
use crate::models::{LatentPrior, sample_latents};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The self-expressive coefficients (C × C, row-major, zero diagonal) of the columns of
/// `x` (n × C, row-major rows), with L1 weight `lambda`, after `iters` ISTA steps.
pub fn self_expressive(x: &[Vec<f64>], lambda: f64, iters: usize) -> Result<Vec<f64>> {
    let Some(c) = x.first().map(Vec::len) else {
        return Err(Error::config("self-expression needs at least one sample"));
    };
    if c < 2 || x.iter().any(|r| r.len() != c) {
        return Err(Error::config(
            "self-expression needs at least two channels and equal rows",
        ));
    }
    // G = XᵀX.
    let mut g = vec![0.0; c * c];
    for row in x {
        for i in 0..c {
            for j in 0..c {
                g[i * c + j] += row[i] * row[j];
            }
        }
    }
    // The step: 1/λ_max(G), with λ_max ≤ trace(G) (a safe, cheap bound).
    let trace: f64 = (0..c).map(|i| g[i * c + i]).sum();
    if !(trace.is_finite() && trace > 0.0) {
        return Err(Error::config(
            "the channels never activate: nothing to group",
        ));
    }
    let step = 1.0 / trace;
    let mut coef = vec![0.0; c * c];
    for _ in 0..iters {
        // ∇ = G C − G.
        let mut next = coef.clone();
        for i in 0..c {
            for j in 0..c {
                let gc: f64 = (0..c).map(|k| g[i * c + k] * coef[k * c + j]).sum();
                let grad = gc - g[i * c + j];
                let v = coef[i * c + j] - step * grad;
                // Soft thresholding.
                let t = step * lambda;
                next[i * c + j] = v.signum() * (v.abs() - t).max(0.0);
            }
            next[i * c + i] = 0.0;
        }
        coef = next;
    }
    Ok(coef)
}

/// Groups `n` items by the symmetric affinity `w` (n × n, row-major) into `groups`
/// clusters; returns each item's group (groups numbered by their first item).
pub fn spectral_clusters(w: &[f64], n: usize, groups: usize) -> Result<Vec<usize>> {
    if groups == 0 || groups > n {
        return Err(Error::config(format!(
            "cannot make {groups} groups of {n} channels"
        )));
    }
    let degree: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| w[i * n + j]).sum::<f64>().max(1e-12))
        .collect();
    let mut lap = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let a = w[i * n + j] / (degree[i] * degree[j]).sqrt();
            lap[i * n + j] = if i == j { 1.0 - a } else { -a };
        }
    }
    // Eigenvalues come descending: the smallest are the last.
    let (_, vectors) = symmetric_eigen(&lap, n)?;
    let chosen = &vectors[n - groups..];
    let mut rows: Vec<Vec<f64>> = (0..n)
        .map(|i| chosen.iter().map(|v| v[i]).collect())
        .collect();
    for r in &mut rows {
        let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        r.iter_mut().for_each(|x| *x /= norm);
    }
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    // k-means from farthest points (deterministic).
    let mut centres = vec![rows[0].clone()];
    while centres.len() < groups {
        let far = (0..n)
            .max_by(|&a, &b| {
                let da = centres
                    .iter()
                    .map(|c| dist(&rows[a], c))
                    .fold(f64::MAX, f64::min);
                let db = centres
                    .iter()
                    .map(|c| dist(&rows[b], c))
                    .fold(f64::MAX, f64::min);
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        centres.push(rows[far].clone());
    }
    let mut labels = vec![0; n];
    for _ in 0..100 {
        let next: Vec<usize> = rows
            .iter()
            .map(|r| {
                (0..groups)
                    .min_by(|&a, &b| dist(r, &centres[a]).total_cmp(&dist(r, &centres[b])))
                    .unwrap_or(0)
            })
            .collect();
        let changed = next != labels;
        labels = next;
        for (g, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = rows
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == g)
                .map(|(r, _)| r)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (k, x) in centre.iter_mut().enumerate() {
                *x = members.iter().map(|m| m[k]).sum::<f64>() / members.len() as f64;
            }
        }
        if !changed {
            break;
        }
    }
    // Number the groups by their first item, so that the numbering does not depend on the
    // eigen-solver's order.
    let mut order: Vec<usize> = Vec::new();
    for &l in &labels {
        if !order.contains(&l) {
            order.push(l);
        }
    }
    Ok(labels
        .iter()
        .map(|l| order.iter().position(|o| o == l).unwrap_or(0))
        .collect())
}

/// The first layer's channels ([`FirstLayer::channels`], each
/// [`FirstLayer::per_channel`] consecutive outputs) grouped into `groups` subspaces from
/// `samples` prior codes.
pub fn channel_groups(
    layer: &FirstLayer,
    prior: LatentPrior,
    latent: usize,
    groups: usize,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<usize>> {
    let m = layer.weight.dim(0)?;
    let channels = layer.channels()?;
    if channels == 0 || m % channels != 0 {
        return Err(Error::config(format!(
            "{m} first-layer outputs do not split into {channels} channels"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = sample_latents(prior, samples, latent, &mut rng, device)?;
    let f = layer
        .features(&z)?
        .reshape((samples, channels, m / channels))?
        .mean(2)?
        .to_dtype(DType::F64)?;
    // Centred columns: the subspaces of the variation, not of the mean activation.
    let f = f.broadcast_sub(&f.mean_keepdim(0)?)?;
    let x: Vec<Vec<f64>> = f.to_vec2()?;
    let coef = self_expressive(&x, 0.01 * trace_scale(&x), 500)?;
    let c = channels;
    let w: Vec<f64> = (0..c * c)
        .map(|ij| coef[ij].abs() + coef[(ij % c) * c + ij / c].abs())
        .collect();
    spectral_clusters(&w, c, groups)
}

/// The mean squared column norm of `x`: λ in units of the data's scale.
fn trace_scale(x: &[Vec<f64>]) -> f64 {
    let c = x.first().map_or(1, Vec::len).max(1);
    x.iter().flatten().map(|v| v * v).sum::<f64>() / c as f64
}

/// The mask (m) over the layer's outputs of the channels in group `group`.
pub fn group_mask(labels: &[usize], group: usize, m: usize, device: &Device) -> Result<Tensor> {
    let per = m / labels.len().max(1);
    let mask: Vec<f64> = labels
        .iter()
        .flat_map(|&l| std::iter::repeat_n(f64::from(u8::from(l == group)), per))
        .collect();
    if !mask.contains(&1.0) {
        return Err(Error::config(format!(
            "subspace {group} is empty (there are {} groups)",
            labels.iter().max().map_or(0, |g| g + 1)
        )));
    }
    Ok(Tensor::from_vec(mask, m, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 samples of 6 channels: 0–2 multiples of one signal a, 3–5 of another b.
    fn two_subspaces() -> Vec<Vec<f64>> {
        (0..60)
            .map(|i| {
                let a = (i as f64 * 0.7).sin();
                let b = (i as f64 * 1.3).cos();
                vec![a, 2.0 * a, -0.5 * a, b, -1.5 * b, 0.8 * b]
            })
            .collect()
    }

    #[test]
    fn self_expression_uses_only_channels_of_the_same_subspace() {
        let c = self_expressive(&two_subspaces(), 0.05, 2000).unwrap();
        let n = 6;
        let (mut inside, mut across) = (0.0, 0.0);
        for i in 0..n {
            assert_eq!(c[i * n + i], 0.0);
            for j in 0..n {
                if (i < 3) == (j < 3) {
                    inside += c[i * n + j].abs();
                } else {
                    across += c[i * n + j].abs();
                }
            }
        }
        assert!(inside > 1.0 && across < 0.05 * inside, "{inside} {across}");
    }

    #[test]
    fn a_confined_edit_moves_only_its_subspace() {
        use crate::methods::dplase::{DpLaseConfig, train};
        // Units 0, 1 follow z_0, z_1 three times as strongly as units 2, 3 follow z_2, z_3:
        // free, DP-LaSE's direction lies in (z_0, z_1); confined to units 2, 3, in (z_2, z_3).
        let mut w = vec![0.0; 16];
        for (i, s) in [3.0, 3.0, 1.0, 1.0].into_iter().enumerate() {
            w[i * 4 + i] = s;
        }
        let layer = FirstLayer {
            weight: Tensor::from_vec(w, (4, 4), &Device::Cpu).unwrap(),
            bias: Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap(),
            norm: None,
            per_channel: 1,
        };
        let cfg = DpLaseConfig {
            k: 1,
            seed: 2,
            iters: 300,
            ..DpLaseConfig::default()
        };
        let fit = |mask: Option<&Tensor>| {
            let (_, dirs) = train(
                &layer,
                LatentPrior::StandardNormal,
                4,
                &cfg,
                mask,
                &Device::Cpu,
                &mut |_, _, _| {},
            )
            .unwrap();
            dirs[0].clone()
        };
        let share = |d: &[f64], a: usize, b: usize| d[a] * d[a] + d[b] * d[b];
        let free = fit(None);
        assert!(share(&free, 0, 1) > 0.95, "{free:?}");
        let mask = group_mask(&[0, 0, 1, 1], 1, 4, &Device::Cpu).unwrap();
        let confined = fit(Some(&mask));
        assert!(share(&confined, 2, 3) > 0.95, "{confined:?}");
    }

    #[test]
    fn spectral_clustering_recovers_the_blocks() {
        let c = self_expressive(&two_subspaces(), 0.05, 2000).unwrap();
        let n = 6;
        let w: Vec<f64> = (0..n * n)
            .map(|ij| c[ij].abs() + c[(ij % n) * n + ij / n].abs())
            .collect();
        assert_eq!(spectral_clusters(&w, n, 2).unwrap(), vec![0, 0, 0, 1, 1, 1]);
        assert!(spectral_clusters(&w, n, 7).is_err());
        let mask = group_mask(&[0, 0, 0, 1, 1, 1], 1, 12, &Device::Cpu).unwrap();
        let m: Vec<f64> = mask.to_vec1().unwrap();
        assert_eq!(m, [0., 0., 0., 0., 0., 0., 1., 1., 1., 1., 1., 1.]);
        assert!(group_mask(&[0, 0], 1, 4, &Device::Cpu).is_err());
    }
}
