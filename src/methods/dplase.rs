//! DP-LaSE's directions (Li et al., ACM MM 2021), for a Gaussian prior: K latent
//! directions Γ = (γ_1..γ_K) learned by Adam so that moving along each changes an
//! intermediate feature map most, while the changes stay decorrelated and the directions
//! orthonormal:
//!
//! - L_var = −(1/K) Σ_j E_z ‖ΔF_j‖² / m, with ΔF_j = F(z + ε γ_j) − F(z), F the
//!   first layer's activations (m of them, [`FirstLayer::features`]);
//! - L_dec = E_z mean_{j≠l} cos²(ΔF_j, ΔF_l) (two directions must not change the features
//!   the same way);
//! - L_orth = ‖Γ Γᵀ − I‖²_F.
//!
//! The loss is L_var + w_dec L_dec + w_orth L_orth. The walks are density-preserving by
//! the app's and the commands' toggle (norm rescaling: the paper's walk for a Gaussian
//! prior). The channel-subspace refinement ([`super::subspace`]) confines the edit to one
//! group of the layer's channels: L_var and L_dec on the change inside it, plus
//! w_out · L_out for the change outside. For a latent that is not N(0, I) (the data's
//! codes), the walks keep the density of [`crate::models::density`] instead.

use super::first_layer::FirstLayer;
use crate::models::{LatentPrior, sample_latents};
use crate::nn::Adam;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// DP-LaSE's training settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DpLaseConfig {
    /// Directions K.
    pub k: usize,
    /// Seed of the start and the batches.
    pub seed: u64,
    /// Adam iterations.
    pub iters: usize,
    /// Codes per batch.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// The shift ε at which the feature change is measured.
    pub epsilon: f64,
    /// Weight of the decorrelation term.
    pub w_dec: f64,
    /// Weight of the orthogonality term.
    pub w_orth: f64,
    /// Weight of the change outside the chosen channel subspace (with a mask).
    pub w_out: f64,
}

impl Default for DpLaseConfig {
    fn default() -> Self {
        Self {
            k: 6,
            seed: 1,
            iters: 300,
            batch: 64,
            lr: 0.02,
            epsilon: 1.0,
            w_dec: 1.0,
            w_orth: 1.0,
            w_out: 1.0,
        }
    }
}

/// The three terms for directions `gamma` (K, d) at codes `z` (B, d), all f64:
/// (L_var, L_dec, L_orth).
pub fn losses(
    layer: &FirstLayer,
    gamma: &Tensor,
    z: &Tensor,
    epsilon: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (var, dec, orth, _) = confined_losses(layer, gamma, z, epsilon, None)?;
    Ok((var, dec, orth))
}

/// The terms with the feature change confined to the outputs `mask` (m, 1 inside, 0
/// outside; see [`super::subspace`]): L_var and L_dec measured on the change inside, and a
/// fourth term L_out = (1/K) Σ_j E_z ‖ΔF_j outside‖²/m (0 without a mask).
pub fn confined_losses(
    layer: &FirstLayer,
    gamma: &Tensor,
    z: &Tensor,
    epsilon: f64,
    mask: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let (k, d) = gamma.dims2()?;
    let (b, _) = z.dims2()?;
    let z = z.to_dtype(DType::F64)?;
    let f0 = layer.features(&z)?;
    let m = f0.dim(1)?;
    // Every (direction, code) pair in one batch: row j·B + i is z_i + ε γ_j.
    let shifted = z
        .unsqueeze(0)?
        .broadcast_add(&(gamma.unsqueeze(1)? * epsilon)?)?
        .reshape((k * b, d))?;
    let change = layer
        .features(&shifted)?
        .reshape((k, b, m))?
        .broadcast_sub(&f0.unsqueeze(0)?)?;
    let (delta, l_out) = match mask {
        Some(mask) => {
            let mask = mask.to_dtype(DType::F64)?;
            let outside = change.broadcast_mul(&(1.0 - &mask)?)?;
            let l_out = (outside.sqr()?.sum(2)?.mean_all()? / m as f64)?;
            (change.broadcast_mul(&mask)?, l_out)
        }
        None => (change, Tensor::zeros((), DType::F64, z.device())?),
    };
    let sq = delta.sqr()?.sum(2)?; // (K, B)
    let l_var = (sq.mean_all()? * (-1.0 / m as f64))?;
    // cos(ΔF_j, ΔF_l) per code: (B, K, K).
    // √(‖ΔF‖² + tiny): a change the ReLU zeroed has a finite gradient.
    let unit = delta.broadcast_div(&(sq.clone() + 1e-12)?.sqrt()?.unsqueeze(2)?)?;
    let unit = unit.transpose(0, 1)?.contiguous()?; // (B, K, m)
    let cos = unit.matmul(&unit.transpose(1, 2)?)?;
    let eye = Tensor::eye(k, DType::F64, z.device())?;
    let off = cos.broadcast_mul(&(1.0 - &eye)?)?;
    let pairs = (k * k.saturating_sub(1)).max(1) as f64;
    let l_dec = (off.sqr()?.sum_all()? / (b as f64 * pairs))?;
    let gram = gamma.matmul(&gamma.t()?)?;
    let l_orth = (gram - eye)?.sqr()?.sum_all()?;
    Ok((l_var, l_dec, l_orth, l_out))
}

/// Learns K directions for `layer` under the prior, with progress `(iteration, total,
/// loss)`; with `mask`, the edit is confined to those outputs (a channel subspace). Returns
/// them as unit vectors, ranked by the feature change each makes (inside the mask; the
/// change is returned beside them, mean ‖ΔF‖²/m at ε).
pub fn train(
    layer: &FirstLayer,
    prior: LatentPrior,
    latent: usize,
    cfg: &DpLaseConfig,
    mask: Option<&Tensor>,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let (k, seed) = (cfg.k, cfg.seed);
    if k == 0 || k > latent {
        return Err(Error::config(format!(
            "DP-LaSE finds between 1 and {latent} directions here, not {k}"
        )));
    }
    if cfg.iters == 0 || cfg.batch == 0 {
        return Err(Error::config(
            "DP-LaSE needs at least one iteration and one code",
        ));
    }
    crate::limits::check_count("the batch", cfg.batch, crate::limits::MAX_BATCH)?;
    crate::limits::check_count("the iterations", cfg.iters, 1_000_000)?;
    for (what, v) in [("the learning rate", cfg.lr), ("ε", cfg.epsilon)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::config(format!(
                "{what} must be positive and finite, not {v}"
            )));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = (sample_latents(prior, k, latent, &mut rng, device)?.to_dtype(DType::F64)?
        / (latent as f64).sqrt())?;
    let gamma = Var::from_tensor(&start)?;
    let mut adam = Adam::new(vec![("gamma".into(), gamma.clone())], cfg.lr)?;
    for it in 0..cfg.iters {
        // A linearly decaying rate: the stochastic gradients of the weakly stretched
        // dimensions are mostly noise, which a constant rate keeps as a random walk.
        adam.lr = cfg.lr * (1.0 - it as f64 / cfg.iters as f64);
        let z = sample_latents(prior, cfg.batch, latent, &mut rng, device)?;
        let (var, dec, orth, out) =
            confined_losses(layer, gamma.as_tensor(), &z, cfg.epsilon, mask)?;
        let loss = (((var + (dec * cfg.w_dec)?)? + (orth * cfg.w_orth)?)? + (out * cfg.w_out)?)?;
        let value = loss.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::config(format!(
                "the DP-LaSE loss is not finite at iteration {it}; lower the learning rate"
            )));
        }
        adam.backward_step(&loss)?;
        progress(it + 1, cfg.iters, value);
    }
    // Rank by the feature change on fresh codes.
    let z = sample_latents(prior, cfg.batch, latent, &mut rng, device)?;
    let rows: Vec<Vec<f64>> = gamma.as_tensor().to_vec2()?;
    let mut ranked = Vec::with_capacity(k);
    for row in rows {
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::config(
                "a DP-LaSE direction vanished; lower the learning rate",
            ));
        }
        let unit: Vec<f64> = row.iter().map(|x| x / norm).collect();
        let g = Tensor::from_vec(unit.clone(), (1, latent), device)?;
        let (var, _, _, _) = confined_losses(layer, &g, &z, cfg.epsilon, mask)?;
        ranked.push((-var.to_scalar::<f64>()?, unit));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(ranked.into_iter().unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_layer(d: usize, scales: &[f64]) -> FirstLayer {
        let mut w = vec![0.0; d * d];
        for (i, s) in scales.iter().enumerate() {
            w[i * d + i] = *s;
        }
        FirstLayer {
            weight: Tensor::from_vec(w, (d, d), &Device::Cpu).unwrap(),
            bias: Tensor::zeros(d, DType::F64, &Device::Cpu).unwrap(),
            norm: None,
            per_channel: 1,
        }
    }

    #[test]
    fn the_terms_match_a_hand_computation() {
        // F(z) = ReLU(z), z = (1, 1) (one code), Γ = [(1, 0), (0, 2)], ε = 0.5:
        // ΔF_1 = (0.5, 0), ΔF_2 = (0, 1); L_var = −(0.25 + 1)/2/2 = −0.3125;
        // the changes are orthogonal: L_dec = 0; ΓΓᵀ − I = diag(0, 3): L_orth = 9.
        let layer = identity_layer(2, &[1.0, 1.0]);
        let gamma = Tensor::new(&[[1.0f64, 0.0], [0.0, 2.0]], &Device::Cpu).unwrap();
        let z = Tensor::new(&[[1.0f64, 1.0]], &Device::Cpu).unwrap();
        let (v, d, o) = losses(&layer, &gamma, &z, 0.5).unwrap();
        assert!((v.to_scalar::<f64>().unwrap() + 0.3125).abs() < 1e-12);
        assert!(d.to_scalar::<f64>().unwrap().abs() < 1e-12);
        assert!((o.to_scalar::<f64>().unwrap() - 9.0).abs() < 1e-12);
        // Two directions that change the features alike: cos² = 1 off the diagonal.
        let gamma = Tensor::new(&[[1.0f64, 1.0], [2.0, 2.0]], &Device::Cpu).unwrap();
        let (_, d, _) = losses(&layer, &gamma, &z, 0.5).unwrap();
        assert!((d.to_scalar::<f64>().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn training_finds_the_directions_the_features_stretch_most_and_keeps_them_orthonormal() {
        // Features stretch z_2 by 3, z_0 by 2 and the rest by 0.1 (the ReLU halves the
        // change on average, the same for all): the two directions are ±e_2 and ±e_0.
        let layer = identity_layer(4, &[2.0, 0.1, 3.0, 0.1]);
        let cfg = DpLaseConfig {
            k: 2,
            seed: 3,
            iters: 400,
            ..DpLaseConfig::default()
        };
        let mut last = f64::NAN;
        let (scores, dirs) = train(
            &layer,
            LatentPrior::StandardNormal,
            4,
            &cfg,
            None,
            &Device::Cpu,
            &mut |_, _, l| last = l,
        )
        .unwrap();
        assert!(last.is_finite());
        assert!(scores[0] >= scores[1], "{scores:?}");
        assert!(dirs[0][2].abs() > 0.95, "{dirs:?}");
        assert!(dirs[1][0].abs() > 0.95, "{dirs:?}");
        let dot: f64 = dirs[0].iter().zip(&dirs[1]).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 0.05, "{dot}");
        let bad = DpLaseConfig {
            lr: f64::NAN,
            ..cfg
        };
        let e = train(
            &layer,
            LatentPrior::StandardNormal,
            4,
            &bad,
            None,
            &Device::Cpu,
            &mut |_, _, _| {},
        );
        assert!(e.unwrap_err().to_string().contains("learning rate"));
    }
}
