//! DP-LaSE's density model for a latent distribution that is not N(0, I) (Li et al., ACM
//! MM 2021, §3.2): here the distribution of the data's codes (a VAE's posterior means of
//! the dataset's images, where real images live), which the prior only approximates.
//!
//! - **Marginals**: per dimension i a monotone CDF, a mixture of M logistics,
//!   F_i(x) = Σ_m π_im σ((x − μ_im)/s_im), with density f_i = Σ_m π_im σ'(·)/s_im; the model's
//!   log-density is Σ_i log f_i(z_i). Monotone by construction (positive weights and
//!   scales); inverted by bisection ([`HostMarginals::inverse`]).
//! - **Gaussianisation**: u_i = Φ⁻¹(F_i(z_i)) maps the model's marginals to N(0, 1); a
//!   density-preserving walk rescales u to ‖u_0‖ (which keeps Σ log φ(u_i)) and maps back.
//! - **Correction network**: that rescale keeps the Gaussianised density, not log p(z)
//!   (the maps' Jacobians differ along the walk); a small MLP c(z, ℓ) (input the code and
//!   the target log-density, LeakyReLU 0.2) moves the point to z + c so that
//!   log p(z + c) = ℓ = log p(z_0), trained on such walks ([`crate::train::density`]).

use crate::nn::{Layer, Linear, Params};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// Bisection steps of the inverse CDF (the bracket shrinks 2⁻⁶⁰-fold).
const BISECTION: usize = 60;
/// CDF values are kept inside [ε, 1 − ε] before Φ⁻¹.
const CDF_EPS: f64 = 1e-10;

/// The architecture of a density model (a manifest's `architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityConfig {
    /// Latent size d.
    pub latent: usize,
    /// Logistic components M per dimension.
    pub components: usize,
    /// Hidden width of the correction network.
    pub hidden: usize,
}

impl DensityConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.components == 0 || self.hidden == 0 {
            return Err(Error::config(
                "a density model needs a latent size, components and a hidden width of at least 1",
            ));
        }
        crate::limits::check_count("the latent size", self.latent, crate::limits::MAX_LATENT)?;
        crate::limits::check_count("the components", self.components, 256)?;
        crate::limits::check_count("the hidden width", self.hidden, crate::limits::MAX_WIDTH)?;
        Ok(())
    }
}

/// The marginals and the correction network. Tensors: `density.logits`, `density.means`,
/// `density.log_scales` (d, M) and `density.correction.{l0,out}.{weight,bias}`.
#[derive(Debug, Clone)]
pub struct DataDensity {
    config: DensityConfig,
    logits: Tensor,
    means: Tensor,
    log_scales: Tensor,
    hidden: Linear,
    out: Linear,
}

/// The marginals' parameters on the host, for the maps a walk applies point by point.
#[derive(Debug, Clone)]
pub struct HostMarginals {
    /// Per dimension, the components' (weight, mean, scale).
    dims: Vec<Vec<(f64, f64, f64)>>,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Φ(u), the standard normal CDF.
pub fn normal_cdf(u: f64) -> f64 {
    0.5 * candle_core::cpu::erf::erfc_f64(-u / std::f64::consts::SQRT_2)
}

/// Φ⁻¹(p) for p in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * candle_core::cpu::erf::erf_inv(2.0 * p - 1.0)
}

impl HostMarginals {
    /// F_i(x).
    pub fn cdf(&self, i: usize, x: f64) -> f64 {
        self.dims[i]
            .iter()
            .map(|&(w, m, s)| w * sigmoid((x - m) / s))
            .sum()
    }

    /// f_i(x).
    pub fn pdf(&self, i: usize, x: f64) -> f64 {
        self.dims[i]
            .iter()
            .map(|&(w, m, s)| {
                let y = sigmoid((x - m) / s);
                w * y * (1.0 - y) / s
            })
            .sum()
    }

    /// F_i⁻¹(p) by bisection on a bracket 40 scales beyond every component.
    pub fn inverse(&self, i: usize, p: f64) -> f64 {
        let (mut lo, mut hi) = self.dims[i]
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &(_, m, s)| {
                (lo.min(m - 40.0 * s), hi.max(m + 40.0 * s))
            });
        for _ in 0..BISECTION {
            let mid = 0.5 * (lo + hi);
            if self.cdf(i, mid) < p {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// u_i = Φ⁻¹(F_i(z_i)) for a row z.
    pub fn gaussianize(&self, z: &[f64]) -> Vec<f64> {
        z.iter()
            .enumerate()
            .map(|(i, &x)| normal_quantile(self.cdf(i, x).clamp(CDF_EPS, 1.0 - CDF_EPS)))
            .collect()
    }

    /// z_i = F_i⁻¹(Φ(u_i)) for a row u.
    pub fn degaussianize(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .enumerate()
            .map(|(i, &v)| self.inverse(i, normal_cdf(v).clamp(CDF_EPS, 1.0 - CDF_EPS)))
            .collect()
    }

    /// Σ_i log f_i(z_i) for a row z.
    pub fn log_density(&self, z: &[f64]) -> f64 {
        z.iter()
            .enumerate()
            .map(|(i, &x)| self.pdf(i, x).max(1e-300).ln())
            .sum()
    }
}

impl DataDensity {
    /// Creates (or loads) the model `cfg` describes: components spread over ±2 with unit
    /// scales and equal weights (the N(0, I) prior's range), a fresh correction network
    /// whose output starts at zero.
    pub fn new(p: &Params, cfg: &DensityConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, m) = (cfg.latent, cfg.components);
        let p = p.pp("density");
        let logits = p.constant("logits", (d, m), 0.0)?;
        let means = p.custom("means", (d, m), |_, _| {
            (0..d * m)
                .map(|i| {
                    let j = i % m;
                    if m > 1 {
                        (-2.0 + 4.0 * j as f64 / (m - 1) as f64) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        })?;
        let log_scales = p.constant("log_scales", (d, m), 0.0)?;
        let c = p.pp("correction");
        let hidden = Linear::new(&c.pp("l0"), d + 1, cfg.hidden)?;
        // The output layer starts at zero: no correction until training asks for one.
        let o = c.pp("out");
        let out = Linear::from_tensors(
            o.constant("weight", (d, cfg.hidden), 0.0)?,
            Some(o.constant("bias", d, 0.0)?),
        );
        Ok(Self {
            config: cfg.clone(),
            logits,
            means,
            log_scales,
            hidden,
            out,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &DensityConfig {
        &self.config
    }

    /// log p(z) = Σ_i log f_i(z_i) per row of `z` (B, d), differentiable in the marginals'
    /// parameters and in z.
    pub fn log_density(&self, z: &Tensor) -> Result<Tensor> {
        let dtype = self.means.dtype();
        let z = z.to_dtype(dtype)?.unsqueeze(2)?; // (B, d, 1)
        let scales = self.log_scales.exp()?;
        let x = z
            .broadcast_sub(&self.means.unsqueeze(0)?)?
            .broadcast_div(&scales.unsqueeze(0)?)?; // (B, d, M)
        // log σ'(x) = −softplus(x) − softplus(−x); softplus(y) = log(1 + e^y), stably.
        let softplus = |y: &Tensor| -> Result<Tensor> {
            let pos = y.relu()?;
            Ok((pos + (y.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
        };
        let log_sig_prime = (softplus(&x)?.neg()? - softplus(&x.neg()?)?)?;
        let log_weights = candle_nn::ops::log_softmax(&self.logits, 1)?;
        let terms =
            log_sig_prime.broadcast_add(&(log_weights - &self.log_scales)?.unsqueeze(0)?)?;
        // log Σ_m exp(terms).
        let top = terms.max_keepdim(2)?;
        let lse = (terms.broadcast_sub(&top)?.exp()?.sum_keepdim(2)?.log()? + top)?;
        Ok(lse.squeeze(2)?.sum(1)?)
    }

    /// The correction c(z, ℓ) for codes `z` (B, d) that should have log-density `target` (B).
    pub fn correction(&self, z: &Tensor, target: &Tensor) -> Result<Tensor> {
        let dtype = self.means.dtype();
        let d = self.config.latent as f64;
        // The target per dimension: log-densities grow with d.
        let input = Tensor::cat(
            &[
                z.to_dtype(dtype)?,
                (target.to_dtype(dtype)? / d)?.unsqueeze(1)?,
            ],
            1,
        )?;
        let h = crate::nn::pointwise::leaky_relu(&self.hidden.forward(&input)?, 0.2)?;
        Ok(self.out.forward(&h)?)
    }

    /// The marginals on the host.
    pub fn host(&self) -> Result<HostMarginals> {
        let w = candle_nn::ops::softmax(&self.logits, 1)?
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        let m = self.means.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let s = self
            .log_scales
            .exp()?
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        Ok(HostMarginals {
            dims: (0..w.len())
                .map(|i| {
                    (0..w[i].len())
                        .map(|j| (w[i][j], m[i][j], s[i][j]))
                        .collect()
                })
                .collect(),
        })
    }

    /// Moves each row of `z` (B, d) back to the density of the walk's start: the
    /// Gaussianised point rescaled to the start's norm `u0_norms` (B), mapped back, and
    /// corrected towards log-density `target` (B).
    pub fn keep(&self, z: &Tensor, u0_norms: &[f64], target: &Tensor) -> Result<Tensor> {
        let host = self.host()?;
        let rows: Vec<Vec<f64>> = z.to_dtype(DType::F64)?.to_vec2()?;
        let mut out = Vec::with_capacity(rows.len() * self.config.latent);
        for (row, &norm) in rows.iter().zip(u0_norms) {
            let u = host.gaussianize(row);
            let now = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            let scaled: Vec<f64> = u.iter().map(|x| x * norm / now).collect();
            out.extend(host.degaussianize(&scaled));
        }
        let back = Tensor::from_vec(out, (rows.len(), self.config.latent), z.device())?;
        let corrected = (&back + self.correction(&back, target)?.to_dtype(DType::F64)?)?;
        Ok(corrected.to_dtype(z.dtype())?)
    }

    /// ‖Φ⁻¹(F(z))‖ per row of `z` (B, d): the norm a walk keeps.
    pub fn gaussian_norms(&self, z: &Tensor) -> Result<Vec<f64>> {
        let host = self.host()?;
        let rows: Vec<Vec<f64>> = z.to_dtype(DType::F64)?.to_vec2()?;
        Ok(rows
            .iter()
            .map(|r| {
                host.gaussianize(r)
                    .iter()
                    .map(|x| x * x)
                    .sum::<f64>()
                    .sqrt()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn model() -> DataDensity {
        let p = Params::new(3, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let cfg = DensityConfig {
            latent: 2,
            components: 3,
            hidden: 8,
        };
        let m = DataDensity::new(&p, &cfg).unwrap();
        // Uneven weights, means and scales, as after a fit.
        let set = |name: &str, v: Vec<f64>| {
            let vars = p.trainable_vars().unwrap();
            let var = &vars.iter().find(|(n, _)| n == name).unwrap().1;
            var.set(&Tensor::from_vec(v, (2, 3), &Device::Cpu).unwrap())
                .unwrap();
        };
        set("density.logits", vec![0.0, 1.0, -0.5, 0.3, 0.0, 0.2]);
        set("density.means", vec![-1.5, 0.2, 2.0, -0.3, 0.0, 1.0]);
        set("density.log_scales", vec![-0.5, 0.3, 0.0, 0.1, -1.0, 0.4]);
        m
    }

    #[test]
    fn the_cdf_is_monotone_and_inverted_by_bisection_and_its_derivative_is_the_pdf() {
        let h = model().host().unwrap();
        for i in 0..2 {
            let mut last = 0.0;
            for step in -300..=300 {
                let x = step as f64 * 0.03;
                let f = h.cdf(i, x);
                assert!(f > last || f == 1.0, "F not increasing at {x}");
                last = f;
                // F⁻¹(F(x)) = x and F' = f.
                assert!((h.inverse(i, f) - x).abs() < 1e-7, "{i} {x}");
                let fd = (h.cdf(i, x + 1e-6) - h.cdf(i, x - 1e-6)) / 2e-6;
                assert!((fd - h.pdf(i, x)).abs() < 1e-6, "{i} {x}");
            }
        }
        // Gaussianisation is inverted too.
        let z = [0.7, -1.2];
        let back = h.degaussianize(&h.gaussianize(&z));
        assert!(
            back.iter().zip(z).all(|(a, b)| (a - b).abs() < 1e-6),
            "{back:?}"
        );
        assert!((normal_quantile(normal_cdf(1.3)) - 1.3).abs() < 1e-9);
    }

    #[test]
    fn a_walk_under_the_data_density_keeps_the_gaussianised_norm_and_records_log_p() {
        use crate::methods::{Directions, PathSpec, SharedDensity, Traversal, series};
        use crate::store::directions::DirectionsConfig;
        let m = model();
        let dirs = Directions::from_steps(
            DirectionsConfig {
                method: "sefa".into(),
                latent: 2,
                k: 1,
                step: 0.5,
                names: Vec::new(),
            },
            Tensor::new(&[[0.3f64, 0.4]], &Device::Cpu).unwrap(),
        );
        let z0 = Tensor::new(&[[0.7f64, -1.2], [0.1, 0.5]], &Device::Cpu).unwrap();
        let mut spec = PathSpec::single(0, 4);
        spec.preserve_density = true;
        spec.density = Some(SharedDensity(std::sync::Arc::new(m.clone())));
        let p = dirs.path(&z0, &spec).unwrap();
        // The correction starts at zero: the Gaussianised norm is kept exactly.
        let n0 = m.gaussian_norms(&z0).unwrap();
        for z in &p.z[1..] {
            let n = m.gaussian_norms(z).unwrap();
            assert!(
                n.iter().zip(&n0).all(|(a, b)| (a - b).abs() < 1e-6),
                "{n:?} {n0:?}"
            );
            // And the walk moved.
            let moved = (z - &z0).unwrap().abs().unwrap().max_all().unwrap();
            assert!(moved.to_scalar::<f64>().unwrap() > 1e-3);
        }
        let last = p.records.last().unwrap().get(series::LOG_DENSITY).unwrap();
        let want: Vec<f64> = m
            .log_density(p.z.last().unwrap())
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            last.iter()
                .zip(want)
                .all(|(a, b)| (f64::from(*a) - b).abs() < 1e-4)
        );
    }

    #[test]
    fn the_tensor_log_density_matches_the_host_one_and_integrates_to_one() {
        let m = model();
        let h = m.host().unwrap();
        let z = Tensor::new(&[[0.7f64, -1.2], [2.5, 0.4]], &Device::Cpu).unwrap();
        let t: Vec<f64> = m.log_density(&z).unwrap().to_vec1().unwrap();
        for (row, got) in [[0.7, -1.2], [2.5, 0.4]].iter().zip(t) {
            assert!((h.log_density(row) - got).abs() < 1e-10);
        }
        // Each marginal integrates to one (a coarse Riemann sum over ±40).
        for i in 0..2 {
            let total: f64 = (-8000..8000)
                .map(|k| h.pdf(i, k as f64 * 0.005) * 0.005)
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{total}");
        }
    }
}
