//! Training the factor regressor ([`crate::models::factors`]) on a procedural dataset's
//! labelled images, as a resumable job. Every tenth image (index ≡ 0 mod 10) is held out:
//! training never sees it, and each checkpoint reports the regressor's accuracy per factor
//! on 1,024 of them (`acc_<factor>` in the manifest's metrics).

use super::batches::{batch_indices, load_batch};
use super::state::{LogRow, STATE_FILE, TrainState, write_log_csv};
use super::{CancelToken, Progress, job};
use crate::data::{self, Dataset};
use crate::limits::{self, MAX_BATCH};
use crate::models::factors::{FactorRegressor, FactorRegressorConfig, FactorSpec};
use crate::nn::{Adam, Params};
use crate::store::manifest::{Manifest, Training};
use crate::store::{self};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a manifest calls a factor regressor.
pub const MODEL_KIND: &str = "factor-regressor";

/// Held-out images (index ≡ 0 mod this) that training never sees.
pub const HOLD_OUT_EVERY: usize = 10;

/// Held-out images scored at each checkpoint.
const HELD_OUT_IMAGES: usize = 1024;

/// Settings of a factor regressor run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorTrainConfig {
    /// The dataset (`scenes`, `sprites`: one with known factors).
    pub dataset: String,
    /// Total iterations.
    pub iters: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Hidden width.
    pub hidden: usize,
    /// Random seed.
    pub seed: u64,
    /// Iterations between checkpoints.
    pub checkpoint_every: u64,
    /// Iterations between progress reports.
    pub log_every: u64,
    /// Output folder.
    #[serde(skip)]
    pub out: PathBuf,
    /// The command line, recorded in the manifest.
    #[serde(skip)]
    pub command: String,
    /// Start over even if `out` holds a run.
    #[serde(skip)]
    pub restart: bool,
}

/// The regressor training defaults, defined once: `train-factors`' flags and
/// [`FactorTrainConfig::new`] read them here.
pub mod defaults {
    /// Total iterations.
    pub const ITERS: u64 = 3000;
    /// Images per batch.
    pub const BATCH_SIZE: usize = 32;
    /// Adam learning rate.
    pub const LR: f64 = 1e-3;
    /// Random seed.
    pub const SEED: u64 = 0;
    /// Iterations between checkpoints.
    pub const CHECKPOINT_EVERY: u64 = 500;
}

impl FactorTrainConfig {
    /// Defaults: 3,000 iterations of 32 images.
    pub fn new(dataset: &str, out: PathBuf) -> Self {
        Self {
            dataset: dataset.to_string(),
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            hidden: 256,
            seed: defaults::SEED,
            checkpoint_every: defaults::CHECKPOINT_EVERY,
            log_every: 10,
            out,
            command: String::new(),
            restart: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.iters == 0 || self.batch_size < 2 {
            return Err(Error::config(
                "--iters must be at least 1 and --batch-size at least 2 (batch normalisation)",
            ));
        }
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("--lr must be positive"));
        }
        if self.checkpoint_every == 0 || self.log_every == 0 {
            return Err(Error::config(
                "checkpoint and log intervals must be positive",
            ));
        }
        Ok(())
    }

    fn fingerprint(&self) -> serde_json::Value {
        job::fingerprint(self)
    }
}

/// Training index `i` moved off the held-out images (the next one up, wrapping).
fn training_index(i: usize, len: usize) -> usize {
    if i.is_multiple_of(HOLD_OUT_EVERY) {
        (i + 1) % len
    } else {
        i
    }
}

/// The factor values of `indices` as a (B, F) u32 tensor.
fn labels(ds: &dyn Dataset, indices: &[usize], device: &Device) -> Result<Tensor> {
    let f = ds.factors().len();
    let mut out = Vec::with_capacity(indices.len() * f);
    for &i in indices {
        out.extend(ds.factor_values(i)?.into_iter().map(|v| v as u32));
    }
    Ok(Tensor::from_vec(out, (indices.len(), f), device)?)
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct FactorTrainSummary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// Held-out accuracy per factor, by name.
    pub held_out: Vec<(String, f64)>,
}

/// Trains (or resumes) a factor regressor as `cfg` says.
pub fn train_factors(
    cfg: &FactorTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<FactorTrainSummary> {
    cfg.validate()?;
    let ds = data::open(&cfg.dataset, data::IMAGE_SIZE)?;
    if ds.factors().is_empty() {
        return Err(Error::config(format!(
            "dataset {} has no known factors; a factor regressor needs a procedural dataset \
             (scenes, sprites)",
            ds.name()
        )));
    }
    ds.factor_values(0)?;
    let arch = FactorRegressorConfig {
        channels: ds.channels(),
        image_size: ds.size(),
        factors: ds.factors().iter().map(FactorSpec::from).collect(),
        hidden: cfg.hidden,
    };
    arch.validate()?;
    let out = &cfg.out;
    let resumed = job::prepare(out, MODEL_KIND, cfg.restart, &cfg.fingerprint(), device)?;
    let params = Params::new(cfg.seed, device);
    let model = FactorRegressor::new(&params, &arch)?;
    let mut opt = Adam::new(params.trainable_vars()?, cfg.lr)?;
    if let Some(state) = &resumed {
        let model_t: BTreeMap<String, Tensor> = state
            .tensors
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix("model.")?.to_string(), t.clone())))
            .collect();
        params.load(&model_t)?;
        let opt_t: BTreeMap<String, Tensor> = state
            .tensors
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix("opt.")?.to_string(), t.clone())))
            .collect();
        opt.load_state(&opt_t, state.iteration)?;
    }
    let mut run = FactorJob {
        cfg,
        ds: ds.as_ref(),
        arch: &arch,
        params: &params,
        model,
        opt,
        device,
        held_out: Vec::new(),
    };
    let spec = job::LoopSpec {
        iters: cfg.iters,
        log_every: cfg.log_every,
        checkpoint_every: cfg.checkpoint_every,
        batch_size: cfg.batch_size,
        out,
    };
    let o = job::run(&mut run, spec, resumed, cancel, progress)?;
    Ok(FactorTrainSummary {
        iterations: o.iterations,
        elapsed_s: o.elapsed_s,
        held_out: run.held_out,
    })
}

struct FactorJob<'a> {
    cfg: &'a FactorTrainConfig,
    ds: &'a dyn Dataset,
    arch: &'a FactorRegressorConfig,
    params: &'a Params,
    model: FactorRegressor,
    opt: Adam,
    device: &'a Device,
    /// The last held-out accuracies.
    held_out: Vec<(String, f64)>,
}

impl FactorJob<'_> {
    /// Accuracy per factor on held-out images.
    fn held_out_accuracy(&self) -> Result<Vec<(String, f64)>> {
        self.model.set_training(false);
        let len = self.ds.len();
        let n = HELD_OUT_IMAGES.min(len.div_ceil(HOLD_OUT_EVERY));
        let indices: Vec<usize> = batch_indices(self.cfg.seed ^ 0x401d, 0, n, len)
            .into_iter()
            .map(|i| i - i % HOLD_OUT_EVERY)
            .collect();
        let mut correct = vec![0.0; self.arch.factors.len()];
        for chunk in indices.chunks(64) {
            let x = load_batch(self.ds, chunk, self.device)?;
            let y = labels(self.ds, chunk, self.device)?;
            let (_, acc) = self.model.loss(&x, &y)?;
            for (c, a) in correct.iter_mut().zip(acc) {
                *c += a * chunk.len() as f64;
            }
        }
        Ok(self
            .arch
            .factors
            .iter()
            .zip(correct)
            .map(|(f, c)| (format!("acc_{}", f.name), c / n as f64))
            .collect())
    }
}

impl job::Steps for FactorJob<'_> {
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>> {
        let len = self.ds.len();
        let indices: Vec<usize> = batch_indices(self.cfg.seed, iteration, self.cfg.batch_size, len)
            .into_iter()
            .map(|i| training_index(i, len))
            .collect();
        let x = load_batch(self.ds, &indices, self.device)?;
        let y = labels(self.ds, &indices, self.device)?;
        self.model.set_training(true);
        let (loss, acc) = self.model.loss(&x, &y)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::config(format!("the loss became {value}")));
        }
        self.opt.backward_step(&loss)?;
        let mean_acc = acc.iter().sum::<f64>() / acc.len() as f64;
        Ok(vec![
            ("loss".to_string(), value),
            ("acc".to_string(), mean_acc),
        ])
    }

    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()> {
        let out = &self.cfg.out;
        let model = self.params.tensors()?;
        let mut tensors: BTreeMap<String, Tensor> = model
            .iter()
            .map(|(n, t)| (format!("model.{n}"), t.clone()))
            .collect();
        for (n, t) in self.opt.state() {
            tensors.insert(format!("opt.{n}"), t);
        }
        TrainState {
            model: MODEL_KIND.into(),
            iteration,
            elapsed_s,
            settings: self.cfg.fingerprint(),
            log: log.to_vec(),
            tensors,
        }
        .save(&out.join(STATE_FILE))?;
        self.held_out = self.held_out_accuracy()?;
        let mut manifest = Manifest::new(
            MODEL_KIND,
            serde_json::to_value(self.arch).map_err(|e| Error::config(e.to_string()))?,
        );
        manifest.dataset = Some(self.ds.name());
        let mut settings = BTreeMap::new();
        settings.insert("batch_size".into(), self.cfg.batch_size.into());
        settings.insert("lr".into(), self.cfg.lr.into());
        settings.insert("hold_out_every".into(), HOLD_OUT_EVERY.into());
        manifest.training = Some(Training {
            command: self.cfg.command.clone(),
            seed: self.cfg.seed,
            iterations: iteration,
            elapsed_s,
            settings,
        });
        manifest.metrics = log
            .last()
            .map(|r| r.values.iter().cloned().collect())
            .unwrap_or_default();
        manifest.metrics.extend(self.held_out.iter().cloned());
        store::save_checkpoint(out, &mut manifest, &model)?;
        write_log_csv(&out.join("loss.csv"), log)
    }
}

/// A factor regressor loaded from its folder, with its dataset's name.
pub struct LoadedFactorRegressor {
    /// The regressor (in evaluation mode).
    pub model: FactorRegressor,
    /// The dataset it was trained on.
    pub dataset: Option<String>,
    /// Its folder.
    pub dir: PathBuf,
}

/// Where `eval factors`, `eval compare` and `train-ode` look for the factor regressor of a
/// generator in `model` trained on `dataset`: `DATASET-factors` beside the model folder.
pub fn default_regressor_dir(model: &std::path::Path, dataset: &str) -> PathBuf {
    model
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
        .join(format!("{dataset}-factors"))
}

/// Loads the factor regressor in `dir`.
pub fn load_factor_regressor(
    dir: &std::path::Path,
    device: &Device,
) -> Result<LoadedFactorRegressor> {
    let manifest = store::generator::read_manifest(dir)?;
    let path = dir.join(store::MANIFEST_FILE);
    if manifest.model != MODEL_KIND {
        return Err(Error::checkpoint(
            path,
            format!("holds a {} model, not a {MODEL_KIND}", manifest.model),
        ));
    }
    let cfg: FactorRegressorConfig = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid architecture: {e}")))?;
    cfg.validate()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    let (wpath, tensors) = store::generator::read_weights(dir, &manifest, device)?;
    let params = Params::from_tensors(tensors, false, device)?;
    let model = FactorRegressor::new(&params, &cfg)
        .map_err(|e| Error::checkpoint(&wpath, e.to_string()))?;
    if let Some(name) = params.unused()?.first() {
        return Err(Error::checkpoint(
            &wpath,
            format!("tensor {name} does not belong to a factor regressor"),
        ));
    }
    model.set_training(false);
    Ok(LoadedFactorRegressor {
        model,
        dataset: manifest.dataset,
        dir: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_never_sees_held_out_images() {
        for i in 0..1000 {
            let t = training_index(i, 1000);
            assert!(t < 1000 && !t.is_multiple_of(HOLD_OUT_EVERY), "{i} → {t}");
        }
    }
}
