//! Training WarpedSpace's warping functions ([`crate::models::warped`]) on a frozen
//! generator, as a resumable job. Per iteration, for a batch of codes z ~ prior, each code
//! draws a path k and a signed shift ε (|ε| uniform in [min, max], either sign); the
//! shifted code is z' = z + ε ∇f_k(z)/‖∇f_k(z)‖. A reconstructor (the pair classifier with
//! K + 1 outputs) sees (G(z), G(z')) and predicts k (cross-entropy L_k) and ε (the shift
//! penalty L_ε = mean |ε̂ − ε|); the loss L_k + λ L_ε trains the support vectors, the
//! γ_k and the reconstructor together (Adam each), as in the reference.

use super::sets;
use super::state::TrainState;
use super::{CancelToken, Progress, job};
use crate::limits::{self, MAX_BATCH, MAX_K, MAX_STEP_SCALE};
use crate::methods::WarpedFlow;
use crate::models::classifier::{PairClassifier, cross_entropy};
use crate::models::warped::{WarpedConfig, Warps};
use crate::models::{Generator, sample_latents};
use crate::nn::{Adam, Params};
use crate::store;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// WarpedSpace's training defaults, defined once: `train-warped`'s flags,
/// [`WarpedTrainConfig::new`] and the app's training panel read them here.
pub mod defaults {
    /// Paths K.
    pub const K: usize = 6;
    /// Dipoles per path.
    pub const DIPOLES: usize = 8;
    /// Iterations (the fair protocol's budget: the potentials' 1,000 at batch 16).
    pub const ITERS: u64 = 1000;
    /// Codes per batch.
    pub const BATCH_SIZE: usize = 16;
    /// Adam learning rate of the support vectors and γ.
    pub const LR: f64 = 1e-2;
    /// Adam learning rate of the reconstructor.
    pub const RECONSTRUCTOR_LR: f64 = 1e-3;
    /// Smallest training shift |ε|.
    pub const MIN_SHIFT: f64 = 0.5;
    /// Largest training shift |ε|.
    pub const MAX_SHIFT: f64 = 2.0;
    /// Weight λ of the shift penalty.
    pub const W_SHIFT: f64 = 0.25;
    /// Length of one traversal step of the trained set.
    pub const STEP: f64 = 0.3;
    /// Steps of the strips and of the diversity diagnostic.
    pub const STRIP_STEPS: usize = 10;
    /// Random seed.
    pub const SEED: u64 = 0;
    /// Iterations between checkpoints.
    pub const CHECKPOINT_EVERY: u64 = 100;
}

/// Settings of a WarpedSpace training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarpedTrainConfig {
    /// The generator folder (frozen during training).
    pub generator: PathBuf,
    /// Paths K.
    pub k: usize,
    /// Dipoles per path.
    pub dipoles: usize,
    /// Total iterations.
    pub iters: u64,
    /// Codes per batch.
    pub batch_size: usize,
    /// Adam learning rate of the warping functions.
    pub lr: f64,
    /// Adam learning rate of the reconstructor.
    pub reconstructor_lr: f64,
    /// Smallest training shift |ε|.
    pub min_shift: f64,
    /// Largest training shift |ε|.
    pub max_shift: f64,
    /// Weight λ of the shift penalty.
    pub w_shift: f64,
    /// Length of one traversal step of the trained set.
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

impl WarpedTrainConfig {
    /// The defaults (see [`defaults`]).
    pub fn new(generator: PathBuf, out: PathBuf) -> Self {
        Self {
            generator,
            k: defaults::K,
            dipoles: defaults::DIPOLES,
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            reconstructor_lr: defaults::RECONSTRUCTOR_LR,
            min_shift: defaults::MIN_SHIFT,
            max_shift: defaults::MAX_SHIFT,
            w_shift: defaults::W_SHIFT,
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
        if self.k < 2 || self.dipoles == 0 || self.iters == 0 || self.batch_size == 0 {
            return Err(Error::config(
                "--k must be at least 2 (the reconstructor tells paths apart) and --dipoles, \
                 --iters and --batch-size at least 1",
            ));
        }
        limits::check_count("--k", self.k, MAX_K)?;
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        limits::check_count("--dipoles", self.dipoles, 4096)?;
        for (name, v) in [
            ("--lr", self.lr),
            ("--reconstructor-lr", self.reconstructor_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(format!("{name} must be positive, not {v}")));
            }
        }
        for (name, v) in [
            ("--min-shift", self.min_shift),
            ("--max-shift", self.max_shift),
            ("--step", self.step),
        ] {
            limits::check_magnitude(name, v, MAX_STEP_SCALE)?;
            if v <= 0.0 {
                return Err(Error::config(format!("{name} must be positive, not {v}")));
            }
        }
        if self.min_shift > self.max_shift {
            return Err(Error::config(format!(
                "--min-shift {} is above --max-shift {}",
                self.min_shift, self.max_shift
            )));
        }
        if !(self.w_shift.is_finite() && self.w_shift >= 0.0) {
            return Err(Error::config("--w-shift must be finite and non-negative"));
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

    /// The architecture these settings train.
    pub fn architecture(&self, latent: usize) -> WarpedConfig {
        WarpedConfig {
            k: self.k,
            latent,
            dipoles: self.dipoles,
            step: self.step,
            names: Vec::new(),
        }
    }

    /// Bytes an iteration on a generator `g` takes, estimated from above: per code the
    /// generator's two passes with gradient and the reconstructor, and the support sets'
    /// differences.
    pub fn memory_bytes(&self, g: &crate::models::GeneratorConfig) -> u64 {
        let per_code = g.activation_count().saturating_mul(3 * 8).saturating_add(
            (self.k as u128)
                .saturating_mul(2 * self.dipoles as u128)
                .saturating_mul(g.latent as u128)
                .saturating_mul(4),
        );
        limits::f32_bytes(per_code.saturating_mul(self.batch_size as u128))
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct WarpedTrainSummary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Where this invocation started.
    pub resumed_from: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// Final losses (mean over the last logged window) and reconstructor accuracy.
    pub metrics: BTreeMap<String, f64>,
}

/// The trainable parts: the warping functions, the reconstructor and their optimisers.
pub struct WarpedTrainer {
    warp_params: Params,
    rec_params: Params,
    warps: Warps,
    reconstructor: PairClassifier,
    opt_warp: Adam,
    opt_rec: Adam,
}

impl WarpedTrainer {
    /// Fresh warping functions of architecture `arch` and a reconstructor for
    /// `channels`-channel images of side `size`.
    pub fn new(
        arch: &WarpedConfig,
        channels: usize,
        size: usize,
        cfg: &WarpedTrainConfig,
        device: &Device,
    ) -> Result<Self> {
        let warp_params = Params::new(cfg.seed, device);
        let warps = Warps::new(&warp_params, arch)?;
        let rec_params = Params::new(cfg.seed ^ 0x7ec0, device);
        let reconstructor = PairClassifier::new(&rec_params, 2 * channels, size, arch.k + 1)?;
        let opt_warp = Adam::new(warp_params.trainable_vars()?, cfg.lr)?;
        let opt_rec = Adam::new(rec_params.trainable_vars()?, cfg.reconstructor_lr)?;
        Ok(Self {
            warp_params,
            rec_params,
            warps,
            reconstructor,
            opt_warp,
            opt_rec,
        })
    }

    /// The warping functions being trained.
    pub fn warps(&self) -> &Warps {
        &self.warps
    }

    /// One iteration; returns the loss, L_k, L_ε, the reconstructor's accuracy and the
    /// mean γ.
    pub fn step(
        &mut self,
        generator: &dyn Generator,
        cfg: &WarpedTrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        let dev = self.warp_params.device().clone();
        let (b, k) = (cfg.batch_size, cfg.k);
        let g = generator.config();
        let z = sample_latents(g.prior, b, g.latent, rng, &dev)?;
        let labels: Vec<u32> = (0..b).map(|_| rng.gen_range(0..k) as u32).collect();
        let shifts: Vec<f32> = (0..b)
            .map(|_| {
                let m = rng.gen_range(cfg.min_shift..=cfg.max_shift);
                (if rng.gen_bool(0.5) { m } else { -m }) as f32
            })
            .collect();
        let mut onehot = vec![0f32; b * k];
        for (i, &l) in labels.iter().enumerate() {
            onehot[i * k + l as usize] = 1.0;
        }
        let onehot = Tensor::from_vec(onehot, (b, k, 1), &dev)?;
        let eps = Tensor::from_vec(shifts, b, &dev)?;
        let unit = self
            .warps
            .unit_directions(&self.warps.eval(&z)?.grad)?
            .broadcast_mul(&onehot)?
            .sum(1)?; // (B, d): each code's own path
        let shifted = (&z + unit.broadcast_mul(&eps.unsqueeze(1)?)?)?;
        let x0 = generator.decode(&z)?.detach();
        let x1 = generator.decode(&shifted)?;
        let out = self.reconstructor.forward(&x0, &x1)?;
        let logits = out.narrow(1, 0, k)?;
        let predicted = out.narrow(1, k, 1)?.squeeze(1)?;
        let (l_k, acc) = cross_entropy(&logits, &Tensor::new(labels, &dev)?)?;
        let l_shift = (predicted - &eps)?.abs()?.mean_all()?;
        let loss = (&l_k + (&l_shift * cfg.w_shift)?)?;
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar()?) };
        let values = vec![
            ("loss".to_string(), scalar(&loss)?),
            ("l_k".to_string(), scalar(&l_k)?),
            ("l_shift".to_string(), scalar(&l_shift)?),
            ("acc".to_string(), acc),
            (
                "gamma".to_string(),
                scalar(&self.warps.gammas()?.mean_all()?)?,
            ),
        ];
        let bad = values
            .iter()
            .skip(1)
            .chain(values.first())
            .find(|(_, v)| !v.is_finite());
        if let Some((name, value)) = bad {
            return Err(Error::config(format!("loss term {name} became {value}")));
        }
        let grads = loss.backward()?;
        self.opt_warp.step(&grads)?;
        self.opt_rec.step(&grads)?;
        Ok(values)
    }

    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        super::state::gather(
            &[("warp.", &self.warp_params), ("rec.", &self.rec_params)],
            &[("opt0.", &self.opt_warp), ("opt1.", &self.opt_rec)],
        )
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        super::state::scatter(
            state,
            &[("warp.", &self.warp_params), ("rec.", &self.rec_params)],
            &mut [("opt0.", &mut self.opt_warp), ("opt1.", &mut self.opt_rec)],
        )
    }
}

/// Trains a WarpedSpace set as `cfg` says, resuming a run found in `cfg.out`.
pub fn train_warped(
    cfg: &WarpedTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<WarpedTrainSummary> {
    cfg.validate()?;
    let out = &cfg.out;
    let resumed = job::prepare(
        out,
        store::warped::MODEL,
        cfg.restart,
        &cfg.fingerprint(),
        device,
    )?;
    let generator = store::load_generator(&cfg.generator, device)?;
    let arch = cfg.architecture(generator.config.latent);
    arch.validate()?;
    limits::check_memory(
        &format!(
            "training {} WarpedSpace paths with batches of {}",
            cfg.k, cfg.batch_size
        ),
        cfg.memory_bytes(&generator.config),
    )?;
    let (channels, size) = (generator.config.channels, generator.config.image_size);
    let mut trainer = WarpedTrainer::new(&arch, channels, size, cfg, device)?;
    if let Some(state) = &resumed {
        trainer.restore(state)?;
    }
    let mut run = sets::SetJob::new(
        trainer,
        cfg,
        sets::SetRun {
            model: store::warped::MODEL,
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
    Ok(WarpedTrainSummary {
        iterations: o.iterations,
        resumed_from: o.resumed_from,
        elapsed_s: o.elapsed_s,
        metrics: o.metrics,
    })
}

impl sets::SetTrainer for WarpedTrainer {
    type Config = WarpedTrainConfig;

    fn step(
        &mut self,
        generator: &dyn Generator,
        cfg: &WarpedTrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        WarpedTrainer::step(self, generator, cfg, rng)
    }

    fn method(&self) -> Box<dyn crate::methods::Traversal> {
        Box::new(WarpedFlow::new(self.warps.clone()))
    }

    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        WarpedTrainer::state_tensors(self)
    }

    fn weights(&self) -> Result<BTreeMap<String, Tensor>> {
        Ok(self.warp_params.tensors()?)
    }
}
