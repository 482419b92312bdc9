//! Training NeuralODE editing's vector fields ([`crate::models::ode`]) on a frozen
//! generator with the project's factor regressor as the attribute regressor, as a
//! resumable job. Field k edits factor a_k (by default every ordered or cyclic factor the
//! regressor reads with held-out accuracy ≥ 0.5; the set names its fields after them).
//!
//! Per iteration one end time T ~ U[min, max] is drawn; the batch is split into groups,
//! each with its own field k; the codes z_0 ~ prior are integrated to z_T by RK4 (gradient
//! through every stage). With p_j(x) the regressor's distribution over factor j's values,
//! x_0 = G(z_0) and x_T = G(z_T):
//!
//! - the target term asks factor a_k to move by ρT of its range: the cross-entropy
//!   −log p_{a_k}(x_T)[v*], where v* is the value ρT·(n − 1) levels (cyclic: ρT·n, wrapping)
//!   above the most likely value at x_0, at least one level ([`target_value`]);
//! - the keep term asks every other factor to stay: the mean over j ≠ a_k of
//!   KL(p_j(x_0) ‖ p_j(x_T)).
//!
//! The loss is their batch means, target + w_keep · keep: the paper's "flip the target
//! attribute, keep the others" for factors with more than two values (a binary attribute's
//! flip is the one-level move). A cross-entropy rather than a squared error of the
//! expected value: the regressor's softmax is confident, and the expected value of a
//! confident distribution barely moves until the image crosses a class boundary (tried
//! first: its gradient vanished and the fields learned to change nothing). Adam updates
//! the fields; the generator and the regressor stay frozen.

use super::sets;
use super::state::TrainState;
use super::{CancelToken, Progress, job};
use crate::limits::{self, MAX_BATCH, MAX_STEP_SCALE, MAX_WIDTH};
use crate::methods::OdeFlow;
use crate::models::factors::{FactorRegressor, FactorSpec};
use crate::models::ode::{OdeConfig, VectorFields};
use crate::models::{Generator, sample_latents};
use crate::nn::{Adam, Params};
use crate::store::{self, LoadedGenerator};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// NeuralODE's training defaults, defined once: `train-ode`'s flags,
/// [`OdeTrainConfig::new`] and the app's training panel read them here.
pub mod defaults {
    /// Hidden layers of each field (0: constant fields, the linear variant).
    pub const DEPTH: usize = 2;
    /// Width of the hidden layers.
    pub const HIDDEN: usize = 64;
    /// Iterations (the fair protocol's budget: the potentials' 1,000 at batch 16).
    pub const ITERS: u64 = 1000;
    /// Codes per batch.
    pub const BATCH_SIZE: usize = 16;
    /// Adam learning rate (1e-3 moved the fields too slowly for the fair budget: after 300
    /// iterations on scenes-vae they changed nothing visible).
    pub const LR: f64 = 1e-2;
    /// Shortest end time of a training integration.
    pub const MIN_TIME: f64 = 0.5;
    /// Longest end time.
    pub const MAX_TIME: f64 = 3.0;
    /// Change of the target factor per unit of time, as a fraction of its range.
    pub const RATE: f64 = 0.15;
    /// Weight of the keep term.
    pub const W_KEEP: f64 = 1.0;
    /// Fields per batch.
    pub const GROUPS: usize = 4;
    /// RK4 steps per unit of time.
    pub const SUBSTEPS: usize = 4;
    /// Time one traversal step integrates.
    pub const STEP: f64 = 0.3;
    /// Held-out accuracy a factor needs to be edited by default.
    pub const MIN_ACCURACY: f64 = 0.5;
    /// Steps of the strips and of the diversity diagnostic.
    pub const STRIP_STEPS: usize = 10;
    /// Random seed.
    pub const SEED: u64 = 0;
    /// Iterations between checkpoints.
    pub const CHECKPOINT_EVERY: u64 = 100;
}

/// Settings of a NeuralODE training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OdeTrainConfig {
    /// The generator folder (frozen).
    pub generator: PathBuf,
    /// The factor regressor folder (frozen; `None`: DATASET-factors beside the generator).
    pub regressor: Option<PathBuf>,
    /// The factors to edit, one field each (empty: every ordered or cyclic factor read
    /// with held-out accuracy ≥ 0.5).
    pub factors: Vec<String>,
    /// Hidden layers of each field (0: constant fields).
    pub depth: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Total iterations.
    pub iters: u64,
    /// Codes per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Shortest end time.
    pub min_time: f64,
    /// Longest end time.
    pub max_time: f64,
    /// Change of the target factor per unit of time (fraction of its range).
    pub rate: f64,
    /// Weight of the keep term.
    pub w_keep: f64,
    /// Fields per batch.
    pub groups: usize,
    /// RK4 steps per unit of time.
    pub substeps: usize,
    /// Time one traversal step of the trained set integrates.
    pub step: f64,
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

impl OdeTrainConfig {
    /// The defaults (see [`defaults`]).
    pub fn new(generator: PathBuf, out: PathBuf) -> Self {
        Self {
            generator,
            regressor: None,
            factors: Vec::new(),
            depth: defaults::DEPTH,
            hidden: defaults::HIDDEN,
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            min_time: defaults::MIN_TIME,
            max_time: defaults::MAX_TIME,
            rate: defaults::RATE,
            w_keep: defaults::W_KEEP,
            groups: defaults::GROUPS,
            substeps: defaults::SUBSTEPS,
            step: defaults::STEP,
            seed: defaults::SEED,
            checkpoint_every: defaults::CHECKPOINT_EVERY,
            log_every: 10,
            out,
            command: String::new(),
            restart: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.iters == 0 || self.batch_size == 0 || self.groups == 0 {
            return Err(Error::config(
                "--iters, --batch-size and --groups must be at least 1",
            ));
        }
        if self.depth > 3 {
            return Err(Error::config(format!(
                "--depth is 0 (constant fields) to 3, not {}",
                self.depth
            )));
        }
        if self.depth > 0 && self.hidden == 0 {
            return Err(Error::config("--hidden must be at least 1"));
        }
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        limits::check_count("--hidden", self.hidden, MAX_WIDTH)?;
        limits::check_count("--substeps", self.substeps, 1000)?;
        if self.substeps == 0 {
            return Err(Error::config("--substeps must be at least 1"));
        }
        for (name, v) in [
            ("--lr", self.lr),
            ("--min-time", self.min_time),
            ("--max-time", self.max_time),
            ("--step", self.step),
            ("--rate", self.rate),
        ] {
            limits::check_magnitude(name, v, MAX_STEP_SCALE)?;
            if v <= 0.0 {
                return Err(Error::config(format!("{name} must be positive, not {v}")));
            }
        }
        if self.min_time > self.max_time {
            return Err(Error::config(format!(
                "--min-time {} is above --max-time {}",
                self.min_time, self.max_time
            )));
        }
        limits::check_count(
            "RK4 steps per integration (--max-time × --substeps)",
            (self.max_time * self.substeps as f64).ceil() as usize,
            10_000,
        )?;
        if !(self.w_keep.is_finite() && self.w_keep >= 0.0) {
            return Err(Error::config("--w-keep must be finite and non-negative"));
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

    /// The regressor folder: the one given, or DATASET-factors beside the generator.
    pub fn regressor_dir(&self, generator: &LoadedGenerator) -> Result<PathBuf> {
        if let Some(dir) = &self.regressor {
            return Ok(dir.clone());
        }
        let Some(dataset) = &generator.manifest.dataset else {
            return Err(Error::config(format!(
                "{} does not say which dataset it was trained on, so no factor regressor is \
                 known for it; pass --regressor",
                self.generator.display()
            )));
        };
        Ok(super::factors::default_regressor_dir(
            &self.generator,
            dataset,
        ))
    }
}

/// The factors the fields edit: `names` (each must be an ordered or cyclic factor of the
/// regressor), or when empty every such factor with held-out accuracy ≥
/// [`defaults::MIN_ACCURACY`] in `metrics` (`acc_<name>`; a factor without a measurement
/// counts). Returns their indices in the regressor's order.
pub fn edited_factors(
    factors: &[FactorSpec],
    names: &[String],
    metrics: &BTreeMap<String, f64>,
) -> Result<Vec<usize>> {
    let editable = |f: &FactorSpec| !f.categorical;
    if names.is_empty() {
        let chosen: Vec<usize> = factors
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                editable(f)
                    && metrics
                        .get(&format!("acc_{}", f.name))
                        .is_none_or(|a| *a >= defaults::MIN_ACCURACY)
            })
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return Err(Error::config(
                "the regressor reads no ordered or cyclic factor well enough to edit; name \
                 some with --factors",
            ));
        }
        return Ok(chosen);
    }
    let mut chosen = Vec::with_capacity(names.len());
    for name in names {
        let Some(i) = factors.iter().position(|f| f.name == *name) else {
            let known: Vec<&str> = factors.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::config(format!(
                "the regressor knows no factor '{name}' (it reads {})",
                known.join(", ")
            )));
        };
        if !editable(&factors[i]) {
            return Err(Error::config(format!(
                "factor '{name}' has no order (its values are categories), so there is no \
                 direction to move it in"
            )));
        }
        if chosen.contains(&i) {
            return Err(Error::config(format!("factor '{name}' is named twice")));
        }
        chosen.push(i);
    }
    Ok(chosen)
}

/// The value factor `f` should reach from value `from` when moved by `shift` of its range
/// (at least one value): `from + Δ` with Δ = max(1, round(shift·(n − 1))) for an ordered
/// factor, clamped to its last value (a factor at its top stays there), and
/// `(from + max(1, round(shift·n))) mod n` for a cyclic one.
pub fn target_value(f: &FactorSpec, from: usize, shift: f64) -> usize {
    let n = f.values;
    if f.cyclic {
        let delta = ((shift * n as f64).round() as usize).max(1);
        (from + delta) % n
    } else {
        let delta = ((shift * (n - 1) as f64).round() as usize).max(1);
        (from + delta).min(n - 1)
    }
}

/// The target term per sample (B) for factor `f`: the cross-entropy −log p_T(v*) of the
/// value v* = [`target_value`] of the start's most likely value, from the distributions at
/// the start `p0` and at the end `pt`, for a move of `shift` of its range.
pub fn target_term(f: &FactorSpec, p0: &Tensor, pt: &Tensor, shift: f64) -> Result<Tensor> {
    let start: Vec<Vec<f32>> = p0.to_dtype(DType::F32)?.to_vec2()?;
    let targets: Vec<u32> = start
        .iter()
        .map(|row| {
            let from = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            target_value(f, from, shift) as u32
        })
        .collect();
    let index = Tensor::from_vec(targets, (start.len(), 1), pt.device())?;
    Ok(pt
        .clamp(1e-12, 1.0)?
        .log()?
        .gather(&index, 1)?
        .squeeze(1)?
        .neg()?)
}

/// KL(p0 ‖ pt) per sample (B) of one factor's distributions.
pub fn keep_term(p0: &Tensor, pt: &Tensor) -> Result<Tensor> {
    let log = |p: &Tensor| -> Result<Tensor> { Ok(p.clamp(1e-12, 1.0)?.log()?) };
    Ok((p0 * (log(p0)? - log(pt)?)?)?.sum(1)?)
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct OdeTrainSummary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// Final losses (mean over the last logged window).
    pub metrics: BTreeMap<String, f64>,
    /// The edited factors, one per field.
    pub factors: Vec<String>,
}

/// The trainable fields and their optimiser, with the frozen regressor.
pub struct OdeTrainer {
    params: Params,
    fields: VectorFields,
    opt: Adam,
    regressor: FactorRegressor,
    /// The regressor's factor index each field edits.
    targets: Vec<usize>,
}

impl OdeTrainer {
    /// Fresh fields of architecture `arch`, editing the regressor's factors `targets`.
    pub fn new(
        arch: &OdeConfig,
        regressor: FactorRegressor,
        targets: Vec<usize>,
        cfg: &OdeTrainConfig,
        device: &Device,
    ) -> Result<Self> {
        let params = Params::new(cfg.seed, device);
        let fields = VectorFields::new(&params, arch)?;
        let opt = Adam::new(params.trainable_vars()?, cfg.lr)?;
        regressor.set_training(false);
        Ok(Self {
            params,
            fields,
            opt,
            regressor,
            targets,
        })
    }

    /// The fields being trained.
    pub fn fields(&self) -> &VectorFields {
        &self.fields
    }

    /// One iteration; returns the loss, its two terms and the end time.
    pub fn step(
        &mut self,
        generator: &dyn Generator,
        cfg: &OdeTrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        let dev = self.params.device().clone();
        let k_total = self.targets.len();
        let b = cfg.batch_size;
        let groups = cfg.groups.clamp(1, b.min(k_total));
        let mut ks: Vec<usize> = (0..k_total).collect();
        ks.shuffle(rng);
        let time = rng.gen_range(cfg.min_time..=cfg.max_time);
        let g = generator.config();
        let (mut z0s, mut zts, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &k) in ks.iter().cycle().take(groups).enumerate() {
            let size = b / groups + usize::from(i < b % groups);
            let z0 = sample_latents(g.prior, size, g.latent, rng, &dev)?;
            zts.push(self.fields.integrate(&z0, &[(k, 1.0)], time)?);
            z0s.push(z0);
            sizes.push((k, size));
        }
        let x0 = generator.decode(&Tensor::cat(&z0s, 0)?)?.detach();
        let xt = generator.decode(&Tensor::cat(&zts, 0)?.to_dtype(DType::F32)?)?;
        let p0: Vec<Tensor> = self
            .regressor
            .probabilities(&x0)?
            .into_iter()
            .map(|p| p.detach())
            .collect();
        let pt = self.regressor.probabilities(&xt)?;
        let factors = &self.regressor.config().factors;
        let shift = cfg.rate * time;
        let (mut target, mut keep) = (
            Tensor::zeros((), DType::F32, &dev)?,
            Tensor::zeros((), DType::F32, &dev)?,
        );
        let mut at = 0;
        for (k, size) in sizes {
            let rows = |t: &Tensor| t.narrow(0, at, size);
            let a = self.targets[k];
            target = (target
                + target_term(&factors[a], &rows(&p0[a])?, &rows(&pt[a])?, shift)?.sum_all()?)?;
            let others = (factors.len() - 1).max(1) as f64;
            for j in (0..factors.len()).filter(|&j| j != a) {
                let kl = keep_term(&rows(&p0[j])?, &rows(&pt[j])?)?.sum_all()?;
                keep = (keep + (kl / others)?)?;
            }
            at += size;
        }
        let target = (target / b as f64)?;
        let keep = (keep / b as f64)?;
        let loss = (&target + (&keep * cfg.w_keep)?)?;
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar()?) };
        let values = vec![
            ("loss".to_string(), scalar(&loss)?),
            ("l_target".to_string(), scalar(&target)?),
            ("l_keep".to_string(), scalar(&keep)?),
            ("time".to_string(), time),
        ];
        let bad = values
            .iter()
            .skip(1)
            .chain(values.first())
            .find(|(_, v)| !v.is_finite());
        if let Some((name, value)) = bad {
            return Err(Error::config(format!("loss term {name} became {value}")));
        }
        self.opt.backward_step(&loss)?;
        Ok(values)
    }

    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        super::state::gather(&[("ode_params.", &self.params)], &[("opt.", &self.opt)])
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        super::state::scatter(
            state,
            &[("ode_params.", &self.params)],
            &mut [("opt.", &mut self.opt)],
        )
    }
}

/// Trains a NeuralODE set as `cfg` says, resuming a run found in `cfg.out`.
pub fn train_ode(
    cfg: &OdeTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<OdeTrainSummary> {
    cfg.validate()?;
    let out = &cfg.out;
    let resumed = job::prepare(
        out,
        store::ode::MODEL,
        cfg.restart,
        &cfg.fingerprint(),
        device,
    )?;
    let generator = store::load_generator(&cfg.generator, device)?;
    let regressor_dir = cfg.regressor_dir(&generator)?;
    let regressor = super::factors::load_factor_regressor(&regressor_dir, device).map_err(|e| {
        Error::config(format!(
            "NeuralODE editing needs a factor regressor as its attribute regressor: {e} \
             (`latentflow train-factors --dataset DATASET --out {}` trains one)",
            regressor_dir.display()
        ))
    })?;
    let (rc, gc) = (regressor.model.config(), &generator.config);
    if (rc.channels, rc.image_size) != (gc.channels, gc.image_size) {
        return Err(Error::config(format!(
            "the regressor in {} reads {}-channel {}×{} images but the generator makes \
             {}-channel {}×{} ones",
            regressor_dir.display(),
            rc.channels,
            rc.image_size,
            rc.image_size,
            gc.channels,
            gc.image_size,
            gc.image_size
        )));
    }
    let metrics = store::generator::read_manifest(&regressor_dir)?.metrics;
    let targets = edited_factors(&rc.factors, &cfg.factors, &metrics)?;
    let names: Vec<String> = targets
        .iter()
        .map(|&i| rc.factors[i].name.clone())
        .collect();
    let arch = OdeConfig {
        k: targets.len(),
        latent: gc.latent,
        depth: cfg.depth,
        hidden: cfg.hidden,
        step: cfg.step,
        substeps: cfg.substeps,
        names: names.clone(),
    };
    arch.validate()?;
    limits::check_memory(
        &format!(
            "training {} NeuralODE fields with batches of {}",
            arch.k, cfg.batch_size
        ),
        limits::f32_bytes(
            gc.activation_count()
                .saturating_mul(3 * 8)
                .saturating_mul(cfg.batch_size as u128),
        ),
    )?;
    let mut trainer = OdeTrainer::new(&arch, regressor.model, targets, cfg, device)?;
    if let Some(state) = &resumed {
        trainer.restore(state)?;
    }
    let mut run = sets::SetJob::new(
        trainer,
        cfg,
        sets::SetRun {
            model: store::ode::MODEL,
            architecture: sets::architecture_json(&arch)?,
            generator_dir: &cfg.generator,
            generator: &generator,
            out,
            command: &cfg.command,
            seed: cfg.seed,
            settings: cfg.fingerprint(),
            strip_steps: defaults::STRIP_STEPS,
        },
        device,
    )?;
    let spec = job::LoopSpec {
        iters: cfg.iters,
        log_every: cfg.log_every,
        checkpoint_every: cfg.checkpoint_every,
        batch_size: cfg.batch_size,
        out,
    };
    let o = job::run(&mut run, spec, resumed, cancel, progress)?;
    Ok(OdeTrainSummary {
        iterations: o.iterations,
        elapsed_s: o.elapsed_s,
        metrics: o.metrics,
        factors: names,
    })
}

impl sets::SetTrainer for OdeTrainer {
    type Config = OdeTrainConfig;

    fn step(
        &mut self,
        generator: &dyn Generator,
        cfg: &OdeTrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        OdeTrainer::step(self, generator, cfg, rng)
    }

    fn method(&self) -> Box<dyn crate::methods::Traversal> {
        Box::new(OdeFlow::new(self.fields.clone()))
    }

    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        OdeTrainer::state_tensors(self)
    }

    fn weights(&self) -> Result<BTreeMap<String, Tensor>> {
        Ok(self.params.tensors()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, values: usize, cyclic: bool, categorical: bool) -> FactorSpec {
        FactorSpec {
            name: name.into(),
            values,
            cyclic,
            categorical,
        }
    }

    fn t(rows: &[&[f64]]) -> Tensor {
        let n = rows[0].len();
        let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), n), &Device::Cpu).unwrap()
    }

    fn values(x: Tensor) -> Vec<f64> {
        x.to_vec1().unwrap()
    }

    #[test]
    fn target_values_move_by_the_shift_wrap_cyclic_factors_and_clamp_ordered_ones() {
        let scale = spec("scale", 6, false, false);
        let hue = spec("hue", 10, true, false);
        assert_eq!(target_value(&scale, 1, 0.4), 3); // 0.4·5 = 2 levels
        assert_eq!(target_value(&scale, 4, 0.4), 5); // clamped at the top
        assert_eq!(target_value(&scale, 2, 0.01), 3); // at least one level
        assert_eq!(target_value(&hue, 8, 0.3), 1); // 3 levels, wrapping
        assert_eq!(target_value(&hue, 0, 0.0), 1);
    }

    #[test]
    fn the_target_term_matches_a_hand_computation() {
        // Ordered, 3 values, shift 0.5 (one level): from the start's most likely value 0
        // the target is 1: −ln 0.5; from 1 it is 2: −ln 0.2; from 2 it stays 2: −ln 0.7.
        let f = spec("scale", 3, false, false);
        let p0 = t(&[&[0.6, 0.4, 0.0], &[0.1, 0.8, 0.1], &[0.0, 0.1, 0.9]]);
        let pt = t(&[&[0.25, 0.5, 0.25], &[0.4, 0.4, 0.2], &[0.1, 0.2, 0.7]]);
        let v = values(target_term(&f, &p0, &pt, 0.5).unwrap());
        let want = [-(0.5f64.ln()), -(0.2f64.ln()), -(0.7f64.ln())];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{v:?}");
        }
        // Cyclic, 4 values, shift 0.5 (two values): from 3 the target wraps to 1.
        let f = spec("hue", 4, true, false);
        let p0 = t(&[&[0.0, 0.0, 0.1, 0.9]]);
        let pt = t(&[&[0.1, 0.6, 0.2, 0.1]]);
        let v = values(target_term(&f, &p0, &pt, 0.5).unwrap());
        assert!((v[0] + 0.6f64.ln()).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn the_keep_term_is_the_kl_divergence() {
        // KL((0.5, 0.5) ‖ (0.25, 0.75)) = 0.5 ln 2 + 0.5 ln(2/3).
        let v = values(
            keep_term(
                &t(&[&[0.5, 0.5], &[0.3, 0.7]]),
                &t(&[&[0.25, 0.75], &[0.3, 0.7]]),
            )
            .unwrap(),
        );
        let want = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        assert!((v[0] - want).abs() < 1e-12 && v[1].abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn edited_factors_default_to_the_well_read_ordered_ones_and_names_are_checked() {
        let factors = [
            spec("hue", 10, true, false),
            spec("shape", 3, false, true),
            spec("scale", 6, false, false),
            spec("orientation", 8, false, false),
        ];
        let metrics = BTreeMap::from([
            ("acc_hue".to_string(), 1.0),
            ("acc_scale".to_string(), 0.8),
            ("acc_orientation".to_string(), 0.12),
        ]);
        assert_eq!(edited_factors(&factors, &[], &metrics).unwrap(), vec![0, 2]);
        assert_eq!(
            edited_factors(&factors, &[], &BTreeMap::new()).unwrap(),
            vec![0, 2, 3]
        );
        let named = ["orientation".to_string(), "hue".to_string()];
        assert_eq!(
            edited_factors(&factors, &named, &metrics).unwrap(),
            vec![3, 0]
        );
        for (bad, why) in [
            ("shape", "no order"),
            ("colour", "knows no factor 'colour'"),
        ] {
            let e = edited_factors(&factors, &[bad.to_string()], &metrics).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let twice = ["hue".to_string(), "hue".to_string()];
        assert!(edited_factors(&factors, &twice, &metrics).is_err());
        let only_shape = [spec("shape", 3, false, true)];
        assert!(edited_factors(&only_shape, &[], &metrics).is_err());
    }
}
