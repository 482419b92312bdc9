//! Fitting DP-LaSE's density model ([`crate::models::density`]) to the data's codes of a
//! VAE (the posterior means of dataset images), for walks that keep the data's density
//! rather than the prior's:
//!
//! 1. the marginals by maximum likelihood (Adam on −mean log p(z) over all codes);
//! 2. the correction network on walks like those it will correct: from a code z_0 with
//!    ℓ_0 = log p(z_0), u = Φ⁻¹(F(z_0)) plus a random step of length in [0.3, 3],
//!    rescaled to ‖u_0‖ and mapped back to z_1; loss = mean (log p(z_1 + c(z_1, ℓ_0)) − ℓ_0)²
//!    + 0.01 · mean ‖c‖², Adam on the network alone.
//!
//! The summary reports the log-density gap |log p(end) − log p(start)| of held-out walks
//! without and with the correction.

use crate::models::GeneratorModel;
use crate::models::density::{DataDensity, DensityConfig};
use crate::nn::{Adam, Params};
use crate::store::LoadedGenerator;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use crate::store::density::MODEL;

/// Settings of a density fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityFitConfig {
    /// Logistic components per dimension.
    pub components: usize,
    /// Hidden width of the correction network.
    pub hidden: usize,
    /// Dataset images encoded (codes fitted).
    pub samples: usize,
    /// Adam iterations of the marginals.
    pub iters: usize,
    /// Adam iterations of the correction network.
    pub correction_iters: usize,
    /// Seed of the images chosen and of the walks.
    pub seed: u64,
}

impl Default for DensityFitConfig {
    fn default() -> Self {
        Self {
            components: 8,
            hidden: 64,
            samples: 4096,
            iters: 500,
            correction_iters: 1500,
            seed: 1,
        }
    }
}

/// What a fit reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DensityFitSummary {
    /// Mean log-density of the codes under the fitted model, and under N(0, I).
    pub log_density: f64,
    /// The same codes under the prior.
    pub prior_log_density: f64,
    /// Mean |log p(end) − log p(start)| of held-out walks, rescaled only.
    pub gap_rescaled: f64,
    /// The same with the correction.
    pub gap_corrected: f64,
}

/// The posterior means of `samples` images of the generator's dataset (a VAE only).
pub fn data_codes(
    g: &LoadedGenerator,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<Tensor> {
    let GeneratorModel::Vae(vae) = &g.model else {
        return Err(Error::config(
            "the data's codes come from a VAE's encoder; a GAN has none (its codes are the \
             prior's, where the norm rescale is the density-preserving walk)",
        ));
    };
    let Some(name) = g.manifest.dataset.as_deref() else {
        return Err(Error::config(
            "the model does not say which dataset it was trained on",
        ));
    };
    let ds = crate::data::open(name, g.config.image_size)?;
    if ds.is_empty() {
        return Err(Error::config(format!("the dataset {name} is empty")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let indices: Vec<usize> = (0..samples).map(|_| rng.gen_range(0..ds.len())).collect();
    let mut codes = Vec::new();
    for chunk in indices.chunks(64) {
        let x = super::batches::load_batch(ds.as_ref(), chunk, device)?;
        codes.push(vae.encode(&x)?.0);
    }
    Ok(Tensor::cat(&codes, 0)?.to_dtype(DType::F64)?)
}

/// One batch of the correction's training walks from codes `z0` (B, d): (z_1, ℓ_0).
fn walks(
    model: &DataDensity,
    z0: &Tensor,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let host = model.host()?;
    let rows: Vec<Vec<f64>> = z0.to_vec2()?;
    let d = model.config().latent;
    let mut ends = Vec::with_capacity(rows.len() * d);
    for row in &rows {
        let u0 = host.gaussianize(row);
        let norm = u0.iter().map(|x| x * x).sum::<f64>().sqrt();
        let dir: Vec<f64> = (0..d)
            .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        let dn = dir.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let length = rng.gen_range(0.3..3.0);
        let u1: Vec<f64> = u0
            .iter()
            .zip(&dir)
            .map(|(a, b)| a + b * length / dn)
            .collect();
        let n1 = u1.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let u1: Vec<f64> = u1.iter().map(|x| x * norm / n1).collect();
        ends.extend(host.degaussianize(&u1));
    }
    let z1 = Tensor::from_vec(ends, (rows.len(), d), device)?;
    let target = model.log_density(z0)?.detach();
    Ok((z1, target))
}

/// Mean |log p(z_1 [+ c]) − ℓ_0| over walks.
fn gap(model: &DataDensity, z1: &Tensor, target: &Tensor, corrected: bool) -> Result<f64> {
    let z = if corrected {
        (z1 + model.correction(z1, target)?)?
    } else {
        z1.clone()
    };
    Ok((model.log_density(&z)? - target)?
        .abs()?
        .mean_all()?
        .to_scalar::<f64>()?)
}

/// Fits the density model to the generator's data codes; returns it with its store and
/// what it achieved. `progress(stage, iteration, total, loss)`.
pub fn fit_density(
    g: &LoadedGenerator,
    cfg: &DensityFitConfig,
    device: &Device,
    progress: &mut dyn FnMut(&str, usize, usize, f64),
) -> Result<(DataDensity, Params, DensityFitSummary)> {
    if cfg.samples < 16 || cfg.iters == 0 {
        return Err(Error::config(
            "a density fit needs at least 16 codes and one iteration",
        ));
    }
    crate::limits::check_count(
        "--samples",
        cfg.samples,
        crate::limits::MAX_CLOSED_FORM_SAMPLES,
    )?;
    crate::limits::check_count("--iters", cfg.iters, 1_000_000)?;
    crate::limits::check_count("--correction-iters", cfg.correction_iters, 1_000_000)?;
    let arch = DensityConfig {
        latent: g.config.latent,
        components: cfg.components,
        hidden: cfg.hidden,
    };
    arch.validate()?;
    let codes = data_codes(g, cfg.samples, cfg.seed, device)?;
    let n = codes.dim(0)?;
    let held = (n / 8).max(4);
    let (train, test) = (
        codes.narrow(0, 0, n - held)?,
        codes.narrow(0, n - held, held)?,
    );
    let params = Params::new(cfg.seed, device).with_dtype(DType::F64)?;
    let model = DataDensity::new(&params, &arch)?;
    let vars = params.trainable_vars()?;
    let (marginal, correction): (Vec<_>, Vec<_>) = vars
        .into_iter()
        .partition(|(name, _)| !name.starts_with("density.correction"));
    let mut adam = Adam::new(marginal, 0.05)?;
    for it in 0..cfg.iters {
        let loss = model.log_density(&train)?.mean_all()?.neg()?;
        let value = loss.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::config(format!(
                "the density fit diverged at iteration {}",
                it + 1
            )));
        }
        adam.backward_step(&loss)?;
        progress("marginals", it + 1, cfg.iters, value);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xde75);
    let (z1_test, target_test) = walks(&model, &test, &mut rng, device)?;
    let gap_rescaled = gap(&model, &z1_test, &target_test, false)?;
    let mut adam = Adam::new(correction, 3e-3)?;
    let rows = train.dim(0)?;
    for it in 0..cfg.correction_iters {
        let start = rng.gen_range(0..rows.saturating_sub(64).max(1));
        let batch = train.narrow(0, start, 64.min(rows))?;
        let (z1, target) = walks(&model, &batch, &mut rng, device)?;
        let c = model.correction(&z1, &target)?;
        let miss = (model.log_density(&(&z1 + &c)?)? - &target)?
            .sqr()?
            .mean_all()?;
        let loss = (miss + (c.sqr()?.sum(1)?.mean_all()? * 0.01)?)?;
        let value = loss.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::config(format!(
                "the correction network diverged at iteration {}",
                it + 1
            )));
        }
        adam.backward_step(&loss)?;
        progress("correction", it + 1, cfg.correction_iters, value);
    }
    let summary = DensityFitSummary {
        log_density: model.log_density(&test)?.mean_all()?.to_scalar()?,
        prior_log_density: {
            let d = g.config.latent as f64;
            let sq = test.sqr()?.sum(1)?.mean_all()?.to_scalar::<f64>()?;
            -0.5 * sq - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
        },
        gap_rescaled,
        gap_corrected: gap(&model, &z1_test, &target_test, true)?,
    };
    Ok((model, params, summary))
}

/// Fits and writes the density model into `out` (replacing a density model there only
/// with `replace`; anything else is never touched).
pub fn fit_and_save(
    g: &LoadedGenerator,
    cfg: &DensityFitConfig,
    out: &std::path::Path,
    command: &str,
    replace: bool,
    device: &Device,
    progress: &mut dyn FnMut(&str, usize, usize, f64),
) -> Result<DensityFitSummary> {
    if out.exists() {
        let is_density =
            crate::store::generator::read_manifest(out).is_ok_and(|m| m.model == MODEL);
        if !is_density {
            return Err(Error::config(format!(
                "{} exists and is not a density model; choose another --out",
                out.display()
            )));
        }
        if !replace {
            return Err(Error::config(format!(
                "{} already holds a density model; pass --force to replace it",
                out.display()
            )));
        }
    }
    crate::files::atomic::check_writable(out)?;
    let (model, params, summary) = fit_density(g, cfg, device, progress)?;
    let mut manifest = crate::store::Manifest::new(
        MODEL,
        serde_json::to_value(model.config()).map_err(|e| Error::config(e.to_string()))?,
    );
    manifest.dataset = g.manifest.dataset.clone();
    manifest.generator_digest = Some(g.digest.clone());
    let settings = serde_json::to_value(cfg)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    manifest.training = Some(crate::store::manifest::Training {
        command: command.into(),
        seed: cfg.seed,
        iterations: (cfg.iters + cfg.correction_iters) as u64,
        elapsed_s: 0.0,
        settings,
    });
    manifest.metrics = [
        ("log_density", summary.log_density),
        ("prior_log_density", summary.prior_log_density),
        ("gap_rescaled", summary.gap_rescaled),
        ("gap_corrected", summary.gap_corrected),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let tensors = params
        .tensors()?
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect::<Result<_>>()?;
    crate::store::save_checkpoint(out, &mut manifest, &tensors)?;
    Ok(summary)
}
