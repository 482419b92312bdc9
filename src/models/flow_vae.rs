//! The flow-factorized VAE (Song, Keller, Sebe, Welling, NeurIPS 2023): a VAE trained on
//! sequences x_0..x_T of K known transformations, whose latent sequence follows learned
//! potential flows, and the pieces of its objective that are not the VAE's own.
//!
//! # The model
//! The encoder gives q(z_0 | x_0) = N(μ, diag σ²). Transformation k moves the code by
//! z_t = z_{t−1} + ∇_z u^k(z_{t−1}, t) for t = 1..T (the potentials of a
//! [`PotentialKind::Hj`](super::potential::PotentialKind::Hj) set), and the decoder
//! reconstructs every x_t from z_t. The potentials obey the Hamilton–Jacobi equation
//! ∂_t u + ½‖∇u‖² = f^k with a force f^k = −MLP_f(z, t)² ≤ 0; the PINN loss is the
//! squared residual at every step plus ‖∇u(z_0, 0)‖² + f(z_0, 0)² at t = 0.
//!
//! # The ELBO and its per-step KL
//! The prior of transformation k is a diffusion: p_0 = N(0, I) evolves by
//! ∂_t p = D_k Δ_z p, whose solution is p_t^k = N(0, (1 + 2 D_k t) I), so
//!
//! ```text
//! log p_t^k(z) = −(d/2) log(2π v_t) − ‖z‖² / (2 v_t),   v_t = 1 + 2 D_k t,
//! ```
//!
//! with D_k = softplus(ρ_k) a trained parameter (the reference code declares it but never
//! hands it to an optimiser). The posterior of z_t is q(z_0 | x_0) pushed through the
//! flow. Each step z ↦ z + ∇u(z) has Jacobian I + ∇²u, so by the change of variables
//!
//! ```text
//! log q_t(z_t) = log q_{t−1}(z_{t−1}) − log |det(I + ∇²u(z_{t−1}, t))|
//!              ≈ log q_{t−1}(z_{t−1}) − log |1 + Δ_z u(z_{t−1}, t)|,
//! ```
//!
//! the papers' first-order approximation (det(I + H) = 1 + tr H + O(‖H‖²)), with the exact
//! Laplacian Δ_z u the potentials compute. The ELBO of a sequence is
//!
//! ```text
//! log p(x_0..x_T | k) ≥ Σ_{t=0}^{T} E_q[log p(x_t | z_t)] − KL(q_0 ‖ p_0) − Σ_{t=1}^{T} KL(q_t ‖ p_t^k),
//! ```
//!
//! and because z_t is a deterministic, invertible function of z_0, each per-step KL is an
//! expectation over z_0 alone:
//!
//! ```text
//! KL(q_t ‖ p_t^k) = E_{z_0∼q_0}[ log q_0(z_0) − Σ_{s=1}^{t} log|1 + Δu(z_{s−1}, s)| − log p_t^k(z_t) ]
//!                 = −H(q_0) − E[Σ_{s≤t} log|1 + Δu(z_{s−1}, s)|] − E[log p_t^k(z_t)],
//! ```
//!
//! with the Gaussian entropy H(q_0) = Σ_i ½(log 2π + 1 + log σ_i²) in closed form and the
//! other two terms estimated with the same reparameterised sample z_0 = μ + σ ε that the
//! reconstructions use ([`flow_kl`]). KL(q_0 ‖ p_0) is the usual closed form.
//!
//! Weak supervision replaces the known k by q(k | x_0..x_T), a classifier over the
//! sequence ([`SequenceClassifier`]) sampled with the straight-through Gumbel-softmax
//! ([`gumbel_softmax_st`]): the flow, the prior and the PINN mix the K potentials with
//! the one-hot sample y (so the forward pass follows one potential, the gradient reaches
//! every logit), and the ELBO gains −KL(q(k | x) ‖ Uniform(K)) ([`categorical_kl_uniform`]).
//!
//! Where the reference code differs we follow the mathematics: its HJ residual uses the
//! batch-mean of (∂u/∂z)² instead of ½‖∇u‖² per sample, and its "KL" compares
//! softmaxes of densities across the batch; ours is the per-step KL above.

use crate::nn::{Activation, Layer, Linear, Params};
use crate::{Error, Result};
use candle_core::{D, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What is trained with the VAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The flow-factorized VAE: Hamilton–Jacobi potentials move z_0 to every z_t.
    Flow,
    /// The first paper's §4.3: every frame encoded, wave potentials as a regulariser
    /// (L_z and the wave PINN).
    Wave,
    /// The naive baseline: the same VAE on the same frames with the plain ELBO.
    Naive,
}

impl std::str::FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "flow" => Ok(Self::Flow),
            "wave" => Ok(Self::Wave),
            "naive" => Ok(Self::Naive),
            _ => Err(Error::config(format!(
                "unknown variant '{s}' (expected flow, wave or naive)"
            ))),
        }
    }
}

/// Whether the transformation of each training sequence is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Supervision {
    /// k is known.
    Full,
    /// k is inferred by a classifier over the sequence.
    Weak,
}

impl std::str::FromStr for Supervision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "full" => Ok(Self::Full),
            "weak" => Ok(Self::Weak),
            _ => Err(Error::config(format!(
                "unknown supervision '{s}' (expected full or weak)"
            ))),
        }
    }
}

/// The Gumbel-softmax temperature at `iteration`: max(0.05, e^{−3·10⁻⁵ · iteration}),
/// from 1 down to 0.05 (Jang et al.'s schedule at the paper's rate).
pub fn temperature(iteration: u64) -> f64 {
    (-3e-5 * iteration as f64).exp().max(0.05)
}

/// q(k | x_0..x_T) from the encoder means of a sequence: an MLP over the T differences
/// μ_t − μ_{t−1} (what changes along the sequence), T·d → H → K.
#[derive(Debug, Clone)]
pub struct SequenceClassifier {
    fc1: Linear,
    fc2: Linear,
    steps: usize,
    latent: usize,
}

impl SequenceClassifier {
    /// Creates (or loads) the classifier under `classifier.*`.
    pub fn new(p: &Params, steps: usize, latent: usize, hidden: usize, k: usize) -> Result<Self> {
        let p = p.pp("classifier");
        Ok(Self {
            fc1: Linear::new(&p.pp("fc1"), steps * latent, hidden)?,
            fc2: Linear::new(&p.pp("fc2"), hidden, k)?,
            steps,
            latent,
        })
    }

    /// Logits (B, K) from the encoder means of every frame, `means[t]` (B, d) for t = 0..T.
    pub fn logits(&self, means: &[Tensor]) -> Result<Tensor> {
        if means.len() != self.steps + 1 {
            return Err(Error::config(format!(
                "the classifier takes sequences of {} frames, not {}",
                self.steps + 1,
                means.len()
            )));
        }
        let diffs = means
            .windows(2)
            .map(|w| &w[1] - &w[0])
            .collect::<candle_core::Result<Vec<_>>>()?;
        let x = Tensor::cat(&diffs, 1)?;
        if x.dim(1)? != self.steps * self.latent {
            return Err(Error::config(
                "the classifier's input has the wrong latent size",
            ));
        }
        let h = Activation::Relu.forward(&self.fc1.forward(&x)?)?;
        Ok(self.fc2.forward(&h)?)
    }
}

/// A straight-through Gumbel-softmax sample of `logits` (B, K) at temperature `tau`:
/// returns (y, soft) where soft = softmax((logits + g) / τ) with Gumbel noise g, and y is
/// the one-hot of its argmax in the forward pass with soft's gradient
/// (y = onehot − soft.detach() + soft).
pub fn gumbel_softmax_st(
    logits: &Tensor,
    tau: f64,
    rng: &mut impl Rng,
) -> Result<(Tensor, Tensor)> {
    let (b, k) = logits.dims2()?;
    let g: Vec<f32> = (0..b * k)
        .map(|_| {
            let u: f32 = rng.gen_range(1e-7f32..1.0);
            -(-u.ln()).ln()
        })
        .collect();
    let g = Tensor::from_vec(g, (b, k), logits.device())?.to_dtype(logits.dtype())?;
    let soft = candle_nn::ops::softmax(&((logits + g)? / tau)?, D::Minus1)?;
    let hard = one_hot(&soft.argmax(D::Minus1)?.to_vec1::<u32>()?, k, logits)?;
    let y = ((hard - soft.detach())? + &soft)?;
    Ok((y, soft))
}

/// One-hot rows (B, K) of `labels`, in the dtype and device of `like`.
pub fn one_hot(labels: &[u32], k: usize, like: &Tensor) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * k];
    for (i, &l) in labels.iter().enumerate() {
        let l = l as usize;
        if l >= k {
            return Err(Error::config(format!("label {l} is not below K = {k}")));
        }
        v[i * k + l] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), k), like.device())?.to_dtype(like.dtype())?)
}

/// KL(q(k | x) ‖ Uniform(K)) = Σ_k q_k log q_k + log K per row of `logits` (B).
pub fn categorical_kl_uniform(logits: &Tensor) -> Result<Tensor> {
    let k = logits.dim(1)? as f64;
    let logq = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok(((logq.exp()? * &logq)?.sum(1)? + k.ln())?)
}

/// log p_t(z) of the diffused prior N(0, v I), v = 1 + 2 D t, per row of `z` (B, d), with
/// D (B) each row's diffusion coefficient.
pub fn diffused_prior_log_density(z: &Tensor, t: f64, d: &Tensor) -> Result<Tensor> {
    let dim = z.dim(1)? as f64;
    let v = d.affine(2.0 * t, 1.0)?;
    let sq = z.sqr()?.sum(1)?;
    let log_norm = (v.log()? + (2.0 * std::f64::consts::PI).ln())? * (-0.5 * dim);
    Ok((log_norm? - (sq / (v * 2.0)?)?)?)
}

/// The entropy of N(μ, diag e^{logvar}) per row (B): Σ_i ½(log 2π + 1 + logvar_i).
pub fn gaussian_entropy(logvar: &Tensor) -> Result<Tensor> {
    let c = 0.5 * ((2.0 * std::f64::consts::PI).ln() + 1.0);
    Ok((logvar.sum(1)? * 0.5)?.affine(1.0, c * logvar.dim(1)? as f64)?)
}

/// log|1 + x|, kept finite where 1 + x vanishes.
pub fn log_abs_one_plus(x: &Tensor) -> Result<Tensor> {
    Ok(x.affine(1.0, 1.0)?.abs()?.maximum(1e-6)?.log()?)
}

/// The per-step KLs of the flow, summed over t = 1..T and averaged over the batch: with
/// `entropy` = H(q_0) (B), `log_dets[s−1]` = log|1 + Δu(z_{s−1}, s)| (B), `codes[t]` = z_t
/// (B, d) for t = 1..T and the rows' diffusion coefficients `d` (B),
/// Σ_t mean_b[−H − Σ_{s≤t} log_dets − log p_t(z_t)] (see the module docs).
pub fn flow_kl(
    entropy: &Tensor,
    log_dets: &[Tensor],
    codes: &[Tensor],
    d: &Tensor,
) -> Result<Tensor> {
    if log_dets.len() != codes.len() {
        return Err(Error::config("one log-determinant per step is needed"));
    }
    let mut log_q = entropy.neg()?;
    let mut total = Tensor::zeros((), entropy.dtype(), entropy.device())?;
    for (t, (ld, z)) in log_dets.iter().zip(codes).enumerate() {
        log_q = (log_q - ld)?;
        let kl = (&log_q - diffused_prior_log_density(z, (t + 1) as f64, d)?)?;
        total = (total + kl.mean_all()?)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use rand::SeedableRng;

    fn t(v: &[f64], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn vec1(x: &Tensor) -> Vec<f64> {
        x.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn diffused_prior_matches_a_hand_computation() {
        // z = (1, 2), D = 0.25, t = 2: v = 2, log p = −log(2π·2) − 5/4.
        let z = t(&[1.0, 2.0], (1, 2));
        let d = Tensor::new(&[0.25f64], &Device::Cpu).unwrap();
        let got = vec1(&diffused_prior_log_density(&z, 2.0, &d).unwrap())[0];
        let want = -(4.0 * std::f64::consts::PI).ln() - 1.25;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // At t = 0 it is the standard normal whatever D.
        let got = vec1(&diffused_prior_log_density(&z, 0.0, &d).unwrap())[0];
        let want = -(2.0 * std::f64::consts::PI).ln() - 2.5;
        assert!((got - want).abs() < 1e-12);
    }

    #[test]
    fn diffused_prior_solves_the_heat_equation() {
        // ∂_t p = D Δp, checked by finite differences in t and z at one point (d = 2).
        let (dc, t0, h) = (0.3f64, 1.5f64, 1e-4f64);
        let p = |z: [f64; 2], t: f64| {
            let zt = Tensor::from_vec(z.to_vec(), (1, 2), &Device::Cpu).unwrap();
            let d = Tensor::new(&[dc], &Device::Cpu).unwrap();
            vec1(&diffused_prior_log_density(&zt, t, &d).unwrap())[0].exp()
        };
        let z = [0.4, -0.7];
        let dt = (p(z, t0 + h) - p(z, t0 - h)) / (2.0 * h);
        let mut lap = 0.0;
        for i in 0..2 {
            let (mut a, mut b) = (z, z);
            a[i] += h;
            b[i] -= h;
            lap += (p(a, t0) - 2.0 * p(z, t0) + p(b, t0)) / (h * h);
        }
        assert!(
            (dt - dc * lap).abs() < 1e-6 * dt.abs().max(1e-3),
            "{dt} vs {}",
            dc * lap
        );
    }

    #[test]
    fn entropy_and_categorical_kl_by_hand() {
        // logvar (0, ln 4): ½(ln 2π + 1)·2 + ½ ln 4.
        let lv = t(&[0.0, 4f64.ln()], (1, 2));
        let got = vec1(&gaussian_entropy(&lv).unwrap())[0];
        let want = (2.0 * std::f64::consts::PI).ln() + 1.0 + 0.5 * 4f64.ln();
        assert!((got - want).abs() < 1e-12);
        // Uniform logits: KL 0; logits (ln 3, 0): q = (3/4, 1/4).
        let kl = vec1(&categorical_kl_uniform(&t(&[0.0, 0.0, 3f64.ln(), 0.0], (2, 2))).unwrap());
        assert!(kl[0].abs() < 1e-12);
        let want = 0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln() + 2f64.ln();
        assert!((kl[1] - want).abs() < 1e-12);
    }

    #[test]
    fn flow_kl_by_hand() {
        // One sample, d = 1, two steps: H = ½(ln 2π + 1), log-dets (0.1, −0.2),
        // z_1 = 0.5, z_2 = 1, D = 0: KL_1 = −H − 0.1 − log N(0.5), KL_2 = −H + 0.1 − log N(1).
        let h = 0.5 * ((2.0 * std::f64::consts::PI).ln() + 1.0);
        let entropy = Tensor::new(&[h], &Device::Cpu).unwrap();
        let lds = [
            Tensor::new(&[0.1f64], &Device::Cpu).unwrap(),
            Tensor::new(&[-0.2f64], &Device::Cpu).unwrap(),
        ];
        let zs = [t(&[0.5], (1, 1)), t(&[1.0], (1, 1))];
        let d = Tensor::new(&[0.0f64], &Device::Cpu).unwrap();
        let got = flow_kl(&entropy, &lds, &zs, &d)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let logn = |z: f64| -0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * z * z;
        let want = (-h - 0.1 - logn(0.5)) + (-h + 0.1 - logn(1.0));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn gumbel_straight_through_is_one_hot_forward_and_soft_backward() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let logits =
            candle_core::Var::from_tensor(&t(&[2.0, 0.0, -1.0, 0.5, 0.5, 0.5], (2, 3))).unwrap();
        let (y, soft) = gumbel_softmax_st(logits.as_tensor(), 0.5, &mut rng).unwrap();
        let rows: Vec<Vec<f64>> = y.to_vec2().unwrap();
        for r in &rows {
            assert_eq!(r.iter().filter(|v| (**v - 1.0).abs() < 1e-12).count(), 1);
            assert_eq!(r.iter().filter(|v| v.abs() < 1e-12).count(), 2);
        }
        // The gradient of Σ y·w equals that of Σ soft·w.
        let w = t(&[1.0, 2.0, 3.0, -1.0, 0.0, 1.0], (2, 3));
        let gy = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (soft * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let a: Vec<Vec<f64>> = gy.get(&logits).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f64>> = gs.get(&logits).unwrap().to_vec2().unwrap();
        assert_eq!(a, b);
        assert!(a.iter().flatten().any(|v| v.abs() > 1e-6));
    }

    #[test]
    fn temperature_anneals_from_one_to_the_floor() {
        assert_eq!(temperature(0), 1.0);
        assert!((temperature(10_000) - (-0.3f64).exp()).abs() < 1e-12);
        assert_eq!(temperature(1_000_000), 0.05);
    }

    #[test]
    fn classifier_refuses_a_sequence_of_another_length() {
        let p = Params::new(1, &Device::Cpu);
        let c = SequenceClassifier::new(&p, 3, 2, 8, 4).unwrap();
        let m = Tensor::zeros((5, 2), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(c.logits(&vec![m.clone(); 4]).unwrap().dims(), &[5, 4]);
        let e = c.logits(&vec![m; 3]).unwrap_err().to_string();
        assert!(e.contains("4 frames, not 3"), "{e}");
    }
}
