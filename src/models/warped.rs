//! WarpedSpace's warping functions (Tzelepis et al., "WarpedGANSpace", ICCV 2021): for each
//! of K paths a sum of Gaussian RBFs over 2N support vectors,
//!
//!   f_k(z) = Σ_i α_i exp(−γ_k ‖z − v_{k,i}‖²),
//!
//! with the support vectors in dipoles: at the start v_{k,2j+1} = −v_{k,2j} (antipodal, in a
//! random direction, the N dipoles at radii evenly spaced from 1 to 4 as in the reference
//! code, γ_k = 1/d) with weights α = +1 for
//! even i and −1 for odd i, so that f_k rises towards one pole of each dipole and falls
//! towards the other. A step along path k is z ← z + ε ∇f_k(z)/‖∇f_k(z)‖: of length ε,
//! curving with the field. Training moves the support vectors and γ_k (learned through
//! log γ_k); the weights α stay ±1 (the reference's default).
//!
//! The gradient is closed form, ∇f_k(z) = −2γ_k Σ_i α_i e_i (z − v_{k,i}) with
//! e_i = exp(−γ_k ‖z − v_{k,i}‖²), built from tensor operations so that autograd reaches
//! the support vectors and γ through it (tested against finite differences).

use crate::nn::Params;
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The architecture of a WarpedSpace set (a manifest's `architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarpedConfig {
    /// Paths K (one warping function each).
    pub k: usize,
    /// Latent size d.
    pub latent: usize,
    /// Dipoles N per path (2N support vectors).
    pub dipoles: usize,
    /// Length ε of one step of a traversal.
    pub step: f64,
    /// Display names (empty: "path k").
    #[serde(default)]
    pub names: Vec<String>,
}

impl WarpedConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.latent == 0 || self.dipoles == 0 {
            return Err(Error::config(
                "a WarpedSpace set needs K ≥ 1 paths, a latent size ≥ 1 and ≥ 1 dipole per path",
            ));
        }
        crate::limits::check_count("the number of paths K", self.k, crate::limits::MAX_K)?;
        crate::limits::check_count("the latent size", self.latent, crate::limits::MAX_LATENT)?;
        crate::limits::check_count("the dipoles per path", self.dipoles, 4096)?;
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(Error::config(format!(
                "the step length must be positive and finite, not {}",
                self.step
            )));
        }
        if !self.names.is_empty() && self.names.len() != self.k {
            return Err(Error::config(format!(
                "{} names for {} paths",
                self.names.len(),
                self.k
            )));
        }
        Ok(())
    }

    /// Display name of path `k`.
    pub fn name(&self, k: usize) -> String {
        self.names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("path {k}"))
    }
}

/// The K warping functions. Tensors: `warp.vectors` (K, 2N, d) and `warp.log_gamma` (K).
#[derive(Debug, Clone)]
pub struct Warps {
    config: WarpedConfig,
    /// (K, 2N, d).
    vectors: Tensor,
    /// (K).
    log_gamma: Tensor,
    /// (1, 2N): +1, −1, +1, …
    alphas: Tensor,
}

/// What one evaluation of the warping functions gives, per code and path.
#[derive(Debug, Clone)]
pub struct WarpEval {
    /// f_k(z): (B, K).
    pub value: Tensor,
    /// ∇f_k(z): (B, K, d).
    pub grad: Tensor,
}

impl Warps {
    /// Creates (or loads, from a store holding a checkpoint) the warping functions `cfg`
    /// describes: antipodal dipoles at radii 1..4, γ_k = 1/d.
    pub fn new(p: &Params, cfg: &WarpedConfig) -> Result<Self> {
        cfg.validate()?;
        let (k, n, d) = (cfg.k, cfg.dipoles, cfg.latent);
        let p = p.pp("warp");
        let vectors = p.custom("vectors", (k, 2 * n, d), |rng, _| {
            let mut out = Vec::with_capacity(k * 2 * n * d);
            for i in 0..k * n {
                let j = i % n;
                let radius = if n > 1 {
                    1.0 + 3.0 * j as f64 / (n - 1) as f64
                } else {
                    1.0
                };
                let u: Vec<f64> = (0..d)
                    .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
                    .collect();
                let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                let pole: Vec<f32> = u.iter().map(|x| (x * radius / norm) as f32).collect();
                out.extend(pole.iter().copied());
                out.extend(pole.iter().map(|x| -x));
            }
            out
        })?;
        let log_gamma = p.constant("log_gamma", k, -(d as f64).ln())?;
        let alphas: Vec<f32> = (0..2 * n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let alphas = Tensor::from_vec(alphas, (1, 2 * n), p.device())?.to_dtype(p.dtype())?;
        Ok(Self {
            config: cfg.clone(),
            vectors,
            log_gamma,
            alphas,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &WarpedConfig {
        &self.config
    }

    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.vectors.dtype()
    }

    /// γ_k for every path: (K).
    pub fn gammas(&self) -> Result<Tensor> {
        Ok(self.log_gamma.exp()?)
    }

    /// f_k(z) and ∇f_k(z) for every path at the codes `z` (B, d).
    pub fn eval(&self, z: &Tensor) -> Result<WarpEval> {
        let (k, n2, d) = self.vectors.dims3()?;
        let b = z.dim(0)?;
        let z = z.to_dtype(self.dtype())?;
        // D = z − v: (B, K, 2N, d).
        let diff = z
            .reshape((b, 1, 1, d))?
            .broadcast_sub(&self.vectors.unsqueeze(0)?)?;
        let sq = diff.sqr()?.sum(3)?; // (B, K, 2N)
        let gamma = self.gammas()?.reshape((1, k, 1))?;
        let e = sq.broadcast_mul(&gamma)?.neg()?.exp()?;
        let w = e.broadcast_mul(&self.alphas.reshape((1, 1, n2))?)?; // α_i e_i
        let value = w.sum(2)?;
        // −2γ Σ_i α_i e_i (z − v_i).
        let grad = diff
            .broadcast_mul(&w.unsqueeze(3)?)?
            .sum(2)?
            .broadcast_mul(&(gamma * -2.0)?)?;
        Ok(WarpEval { value, grad })
    }

    /// The unit step direction ∇f_k/‖∇f_k‖ of every path: (B, K, d). Where the field
    /// vanishes (far from every support vector, in f32) the direction is 0, not NaN.
    pub fn unit_directions(&self, grad: &Tensor) -> Result<Tensor> {
        let norm = grad.sqr()?.sum_keepdim(2)?.sqrt()?;
        Ok(grad.broadcast_div(&norm.clamp(1e-20, f64::MAX)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn warps(k: usize, n: usize, d: usize, seed: u64) -> Warps {
        let p = Params::new(seed, &Device::Cpu)
            .with_dtype(DType::F64)
            .unwrap();
        let cfg = WarpedConfig {
            k,
            latent: d,
            dipoles: n,
            step: 0.3,
            names: Vec::new(),
        };
        Warps::new(&p, &cfg).unwrap()
    }

    #[test]
    fn the_start_is_antipodal_dipoles_at_radii_one_to_four_and_f_is_odd() {
        let w = warps(2, 3, 5, 1);
        let v: Vec<Vec<Vec<f64>>> = w.vectors.to_vec3().unwrap();
        for set in &v {
            for (j, pair) in set.chunks(2).enumerate() {
                let norm = pair[0].iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!((norm - [1.0, 2.5, 4.0][j]).abs() < 1e-6, "{norm}");
                assert!(
                    pair[0]
                        .iter()
                        .zip(&pair[1])
                        .all(|(a, b)| (a + b).abs() < 1e-6)
                );
            }
        }
        // α = ±1 on antipodal poles: f(−z) = −f(z).
        let z = Tensor::new(&[[0.3f64, -1.0, 0.5, 2.0, 0.1]], &Device::Cpu).unwrap();
        let a: Vec<Vec<f64>> = w.eval(&z).unwrap().value.to_vec2().unwrap();
        let b: Vec<Vec<f64>> = w.eval(&z.neg().unwrap()).unwrap().value.to_vec2().unwrap();
        for (x, y) in a[0].iter().zip(&b[0]) {
            assert!((x + y).abs() < 1e-6 && x.abs() > 1e-9, "{x} {y}");
        }
    }

    #[test]
    fn the_value_matches_a_hand_computation() {
        // One path, one dipole in d = 1: v = ±1 (radius 1), γ = 1/1.
        // f(0.5) = exp(−0.25) − exp(−2.25); f'(0.5) = −2(0.5 − 1)e^{−0.25} + 2(1.5)e^{−2.25}.
        let w = warps(1, 1, 1, 4);
        let v: Vec<Vec<Vec<f64>>> = w.vectors.to_vec3().unwrap();
        let pole = v[0][0][0];
        assert!((pole.abs() - 1.0).abs() < 1e-6);
        let z = Tensor::new(&[[0.5 * pole]], &Device::Cpu).unwrap();
        let e = w.eval(&z).unwrap();
        let f: f64 = e.value.to_vec2::<f64>().unwrap()[0][0];
        let g: f64 = e.grad.flatten_all().unwrap().to_vec1::<f64>().unwrap()[0];
        let want_f = (-0.25f64).exp() - (-2.25f64).exp();
        let want_g = (1.0 * (-0.25f64).exp() + 3.0 * (-2.25f64).exp()) * pole;
        assert!((f - want_f).abs() < 1e-12, "{f} {want_f}");
        assert!((g - want_g).abs() < 1e-12, "{g} {want_g}");
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let w = warps(3, 2, 4, 7);
        let z0 = [0.4f64, -0.8, 1.3, 0.2];
        let z = Tensor::new(&[z0], &Device::Cpu).unwrap();
        let grad: Vec<Vec<Vec<f64>>> = w.eval(&z).unwrap().grad.to_vec3().unwrap();
        let h = 1e-6;
        for i in 0..4 {
            let mut plus = z0;
            let mut minus = z0;
            plus[i] += h;
            minus[i] -= h;
            let f = |v: [f64; 4]| -> Vec<f64> {
                let t = Tensor::new(&[v], &Device::Cpu).unwrap();
                w.eval(&t).unwrap().value.to_vec2::<f64>().unwrap()[0].clone()
            };
            let (fp, fm) = (f(plus), f(minus));
            for k in 0..3 {
                let fd = (fp[k] - fm[k]) / (2.0 * h);
                assert!(
                    (fd - grad[0][k][i]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "k {k} i {i}: {fd} vs {}",
                    grad[0][k][i]
                );
            }
        }
    }

    #[test]
    fn autograd_reaches_the_support_vectors_and_gamma_exactly() {
        // d/dγ and d/dv of L = Σ_k ‖∇f_k(z)‖-weighted sum: compare autograd of a scalar
        // built from the gradient against finite differences in the parameters.
        let p = Params::new(2, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let cfg = WarpedConfig {
            k: 2,
            latent: 3,
            dipoles: 1,
            step: 0.3,
            names: Vec::new(),
        };
        let w = Warps::new(&p, &cfg).unwrap();
        let z = Tensor::new(&[[0.5f64, -0.2, 0.9], [1.0, 0.3, -0.4]], &Device::Cpu).unwrap();
        let dir = Tensor::new(&[0.3f64, -0.7, 0.2], &Device::Cpu).unwrap();
        let loss = |w: &Warps| -> Tensor {
            w.eval(&z)
                .unwrap()
                .grad
                .broadcast_mul(&dir)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(&w).backward().unwrap();
        let vars = p.trainable_vars().unwrap();
        let h = 1e-6;
        for (name, var) in &vars {
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for (i, gi) in g.iter().enumerate().take(4) {
                let bump = |delta: f64| -> f64 {
                    let mut v = base.clone();
                    v[i] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    let out = loss(&w).to_scalar::<f64>().unwrap();
                    var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    out
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (fd - gi).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{name}[{i}]: {fd} vs {gi}"
                );
            }
        }
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn unit_directions_have_length_one_and_a_vanished_field_gives_zero() {
        let w = warps(2, 2, 3, 5);
        let z = Tensor::new(&[[0.1f64, 0.2, -0.3]], &Device::Cpu).unwrap();
        let u = w.unit_directions(&w.eval(&z).unwrap().grad).unwrap();
        let n: Vec<Vec<f64>> = u.sqr().unwrap().sum(2).unwrap().to_vec2().unwrap();
        assert!(n[0].iter().all(|x| (x - 1.0).abs() < 1e-12), "{n:?}");
        let zero = Tensor::zeros((1, 2, 3), DType::F64, &Device::Cpu).unwrap();
        let u: Vec<f64> = w
            .unit_directions(&zero)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(u.iter().all(|x| *x == 0.0));
        let bad = WarpedConfig {
            dipoles: 0,
            ..w.config().clone()
        };
        assert!(bad.validate().is_err());
    }
}
