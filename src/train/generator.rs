//! Training a generator (VAE or GAN) on a dataset, as a resumable job.
//!
//! The output folder is a checkpoint (see [`crate::store`]) plus `samples.png` (an 8×8
//! grid from fixed latent codes), `reconstructions.png` (VAE: data rows above their
//! reconstructions), `loss.csv`, and `train-state.safetensors` for resuming. Running the
//! same command again after an interruption continues from the last checkpoint.

use super::batches::{BatchStream, batch_indices, load_batch};
use super::losses::{bce_with_logits, gaussian_kl};
use super::state::{LogRow, STATE_FILE, TrainState, write_log_csv};
use super::{CancelToken, Progress, job};
use crate::data::{self, Dataset, Image, image::grid};
use crate::limits::{self, MAX_BATCH};
use crate::models::images::to_images;
use crate::models::{
    Discriminator, Gan, Generator, GeneratorConfig, GeneratorKind, Vae, randn, sample_latents,
};
use crate::nn::{Adam, Params};
use crate::store::{self, Manifest, manifest::Training};
use crate::{Error, Result};
use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The generator training defaults, defined once: `train-generator`'s flags and
/// [`GeneratorTrainConfig::new`] read them here.
pub mod defaults {
    /// Latent size.
    pub const LATENT: usize = 10;
    /// Total iterations.
    pub const ITERS: u64 = 5000;
    /// Images per batch.
    pub const BATCH_SIZE: usize = 64;
    /// Weight of the KL term (VAE).
    pub const BETA: f64 = 1.0;
    /// Iterations of the KL warm-up (0: none).
    pub const KL_WARMUP: u64 = 0;
    /// Random seed.
    pub const SEED: u64 = 0;
    /// Iterations between checkpoints.
    pub const CHECKPOINT_EVERY: u64 = 250;
}

/// Settings of a generator training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorTrainConfig {
    /// Dataset specification (see [`crate::data::open`]).
    pub dataset: String,
    /// VAE or GAN.
    pub kind: GeneratorKind,
    /// Latent size.
    pub latent: usize,
    /// Base width (None: the kind's default).
    pub base: Option<usize>,
    /// Total iterations (a resumed run continues up to this).
    pub iters: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Learning rate (None: 1e-3 for a VAE, 2e-4 for a GAN).
    pub lr: Option<f64>,
    /// Weight of the KL term (VAE).
    pub beta: f64,
    /// Iterations over which the KL weight rises linearly from 0 to `beta` (0: none).
    /// Small objects on a black background (sprites) otherwise collapse the posterior.
    #[serde(default)]
    pub kl_warmup: u64,
    /// Random seed.
    pub seed: u64,
    /// Write a checkpoint every this many iterations.
    pub checkpoint_every: u64,
    /// Report losses every this many iterations.
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

impl GeneratorTrainConfig {
    /// Defaults for `dataset` and `kind`, writing to `out`.
    pub fn new(dataset: &str, kind: GeneratorKind, out: PathBuf) -> Self {
        Self {
            dataset: dataset.into(),
            kind,
            latent: defaults::LATENT,
            base: None,
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: None,
            beta: defaults::BETA,
            kl_warmup: defaults::KL_WARMUP,
            seed: defaults::SEED,
            checkpoint_every: defaults::CHECKPOINT_EVERY,
            log_every: 10,
            out,
            command: String::new(),
            restart: false,
        }
    }

    fn learning_rate(&self) -> f64 {
        self.lr.unwrap_or(match self.kind {
            GeneratorKind::Vae => 1e-3,
            GeneratorKind::Gan => 2e-4,
        })
    }

    fn validate(&self) -> Result<()> {
        if self.iters == 0 || self.batch_size == 0 {
            return Err(Error::config("--iters and --batch-size must be positive"));
        }
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        if self.checkpoint_every == 0 || self.log_every == 0 {
            return Err(Error::config(
                "checkpoint and log intervals must be positive",
            ));
        }
        let lr = self.learning_rate();
        if !(lr.is_finite() && lr > 0.0 && self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::config(
                "--lr must be positive and --beta non-negative",
            ));
        }
        Ok(())
    }

    /// The settings that must agree for a run to be resumed (everything but `iters`).
    fn fingerprint(&self) -> serde_json::Value {
        job::fingerprint(self)
    }
}

/// What a finished (or already complete) run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// The iteration this invocation started from (non-zero after a resume).
    pub resumed_from: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// Final losses (mean over the last logged window).
    pub metrics: BTreeMap<String, f64>,
    /// Training throughput of this invocation.
    pub images_per_s: f64,
}

/// The models being trained and their optimisers.
enum Trainer {
    Vae {
        vae: Vae,
        opt: Adam,
    },
    Gan {
        generator: Gan,
        disc: Discriminator,
        opt_g: Adam,
        opt_d: Adam,
    },
}

fn vars_with_prefix(p: &Params, prefix: &str) -> Result<Vec<(String, Var)>> {
    Ok(p.trainable_vars()?
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect())
}

impl Trainer {
    fn new(p: &Params, cfg: &GeneratorConfig, lr: f64) -> Result<Self> {
        Ok(match cfg.kind {
            GeneratorKind::Vae => {
                let vae = Vae::new(p, cfg)?;
                let opt = Adam::new(p.trainable_vars()?, lr)?;
                Trainer::Vae { vae, opt }
            }
            GeneratorKind::Gan => {
                let generator = Gan::new(p, cfg)?;
                let disc = Discriminator::new(p, cfg)?;
                let opt_g = Adam::with_betas(vars_with_prefix(p, "generator.")?, lr, 0.5, 0.999)?;
                let opt_d =
                    Adam::with_betas(vars_with_prefix(p, "discriminator.")?, lr, 0.5, 0.999)?;
                Trainer::Gan {
                    generator,
                    disc,
                    opt_g,
                    opt_d,
                }
            }
        })
    }

    fn optimizers(&mut self) -> Vec<&mut Adam> {
        match self {
            Trainer::Vae { opt, .. } => vec![opt],
            Trainer::Gan { opt_g, opt_d, .. } => vec![opt_g, opt_d],
        }
    }

    fn generator(&self) -> &dyn Generator {
        match self {
            Trainer::Vae { vae, .. } => vae,
            Trainer::Gan { generator, .. } => generator,
        }
    }

    /// One update on batch `x`; returns the named loss terms.
    fn step(&mut self, x: &Tensor, beta: f64, rng: &mut ChaCha8Rng) -> Result<Vec<(String, f64)>> {
        let n = x.dim(0)?;
        match self {
            Trainer::Vae { vae, opt } => {
                let (mu, logvar) = vae.encode(x)?;
                let eps = randn(mu.dims(), rng, x.device())?;
                let z = (&mu + (logvar.affine(0.5, 0.)?.exp()? * eps)?)?;
                let recon = bce_with_logits(&vae.decode_logits(&z)?, x)?;
                let kl = gaussian_kl(&mu, &logvar)?;
                let loss = (&recon + (&kl * beta)?)?;
                let values = scalars(&[("loss", &loss), ("recon", &recon), ("kl", &kl)])?;
                check_finite_losses(&values)?;
                opt.backward_step(&loss)?;
                Ok(values)
            }
            Trainer::Gan {
                generator,
                disc,
                opt_g,
                opt_d,
            } => {
                generator.set_training(true);
                disc.set_training(true);
                let latent = generator.config().latent;
                let z = randn(&[n, latent], rng, x.device())?;
                let fake = generator.decode(&z)?;
                let ones = Tensor::ones((n, 1), x.dtype(), x.device())?;
                let zeros = ones.zeros_like()?;
                // Discriminator: real → 1, fake → 0 (fake detached: no generator gradient).
                let d_real = bce_with_logits(&disc.forward(x)?, &ones)?;
                let d_fake = bce_with_logits(&disc.forward(&fake.detach())?, &zeros)?;
                let d_loss = ((d_real + d_fake)? * 0.5)?;
                // Generator: the non-saturating loss −log D(G(z)).
                let g_loss = bce_with_logits(&disc.forward(&fake)?, &ones)?;
                let values = scalars(&[("d_loss", &d_loss), ("g_loss", &g_loss)])?;
                check_finite_losses(&values)?;
                opt_d.backward_step(&d_loss)?;
                opt_g.step(&g_loss.backward()?)?;
                generator.set_training(false);
                disc.set_training(false);
                Ok(values)
            }
        }
    }
}

fn scalars(named: &[(&str, &Tensor)]) -> Result<Vec<(String, f64)>> {
    named
        .iter()
        .map(|(n, t)| {
            Ok((
                n.to_string(),
                t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?,
            ))
        })
        .collect()
}

fn check_finite_losses(values: &[(String, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !v.is_finite()) {
        Some((name, v)) => Err(Error::config(format!("loss term {name} became {v}"))),
        None => Ok(()),
    }
}

/// Trains (or resumes training) as `cfg` says, reporting through `progress`.
pub fn train_generator(
    cfg: &GeneratorTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainSummary> {
    cfg.validate()?;
    let out = &cfg.out;
    let resumed = job::prepare(out, "generator", cfg.restart, &cfg.fingerprint(), device)?;
    let ds: Arc<dyn Dataset> = Arc::from(data::open(&cfg.dataset, data::IMAGE_SIZE)?);
    let mut arch = GeneratorConfig::new(cfg.kind, cfg.latent, ds.channels());
    if let Some(base) = cfg.base {
        arch.base = base;
    }
    arch.image_size = ds.size();
    arch.validate()?;
    limits::check_memory(
        &format!(
            "training a {:?} of base width {} with batches of {}",
            arch.kind, arch.base, cfg.batch_size
        ),
        arch.training_bytes(cfg.batch_size),
    )?;
    ds.check()?;
    let params = Params::new(cfg.seed, device);
    let mut trainer = Trainer::new(&params, &arch, cfg.learning_rate())?;
    let first = match &resumed {
        Some(state) => {
            restore(&params, &mut trainer, state)?;
            state.iteration
        }
        None => 0,
    };
    let fixed_z = sample_latents(
        arch.prior,
        64,
        arch.latent,
        &mut ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed),
        device,
    )?;
    let mut run = GeneratorJob {
        trainer,
        stream: BatchStream::new(ds.clone(), cfg.batch_size, cfg.seed, first, cfg.iters),
        ctx: SaveContext {
            cfg,
            arch: &arch,
            params: &params,
            ds: ds.as_ref(),
            fixed_z: &fixed_z,
            device,
        },
    };
    let spec = job::LoopSpec {
        iters: cfg.iters,
        log_every: cfg.log_every,
        checkpoint_every: cfg.checkpoint_every,
        batch_size: cfg.batch_size,
        out,
    };
    let o = job::run(&mut run, spec, resumed, cancel, progress)?;
    Ok(TrainSummary {
        iterations: o.iterations,
        resumed_from: o.resumed_from,
        elapsed_s: o.elapsed_s,
        metrics: o.metrics,
        images_per_s: o.items_per_s,
    })
}

/// The generator run as [`job::run`] drives it.
struct GeneratorJob<'a> {
    trainer: Trainer,
    stream: BatchStream,
    ctx: SaveContext<'a>,
}

impl job::Steps for GeneratorJob<'_> {
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>> {
        let cfg = self.ctx.cfg;
        let x = self.stream.next(self.ctx.device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1));
        rng.set_stream(iteration);
        let beta = match cfg.kl_warmup {
            0 => cfg.beta,
            w => cfg.beta * ((iteration + 1) as f64 / w as f64).min(1.0),
        };
        self.trainer.step(&x, beta, &mut rng)
    }

    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()> {
        self.ctx.save(iteration, &mut self.trainer, log, elapsed_s)
    }
}

fn restore(params: &Params, trainer: &mut Trainer, state: &TrainState) -> Result<()> {
    let model: BTreeMap<String, Tensor> = state
        .tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix("model.").map(|n| (n.to_string(), t.clone())))
        .collect();
    params.load(&model)?;
    for (i, opt) in trainer.optimizers().into_iter().enumerate() {
        let prefix = format!("opt{i}.");
        let st: BTreeMap<String, Tensor> = state
            .tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(&prefix).map(|n| (n.to_string(), t.clone())))
            .collect();
        opt.load_state(&st, state.iteration)?;
    }
    Ok(())
}

struct SaveContext<'a> {
    cfg: &'a GeneratorTrainConfig,
    arch: &'a GeneratorConfig,
    params: &'a Params,
    ds: &'a dyn Dataset,
    fixed_z: &'a Tensor,
    device: &'a Device,
}

impl SaveContext<'_> {
    /// Writes the training state, the exported checkpoint, the pictures and the log.
    fn save(
        &self,
        iteration: u64,
        trainer: &mut Trainer,
        log: &[LogRow],
        elapsed: f64,
    ) -> Result<()> {
        let out = &self.cfg.out;
        let model = self.params.tensors()?;
        let mut tensors: BTreeMap<String, Tensor> = model
            .iter()
            .map(|(n, t)| (format!("model.{n}"), t.clone()))
            .collect();
        for (i, opt) in trainer.optimizers().into_iter().enumerate() {
            for (n, t) in opt.state() {
                tensors.insert(format!("opt{i}.{n}"), t);
            }
        }
        let state = TrainState {
            model: "generator".into(),
            iteration,
            elapsed_s: elapsed,
            settings: self.cfg.fingerprint(),
            log: log.to_vec(),
            tensors,
        };
        state.save(&out.join(STATE_FILE))?;

        let mut manifest = Manifest::new(
            "generator",
            serde_json::to_value(self.arch).map_err(|e| Error::config(e.to_string()))?,
        );
        manifest.dataset = Some(self.ds.name());
        let mut settings = BTreeMap::new();
        settings.insert("batch_size".into(), self.cfg.batch_size.into());
        settings.insert("lr".into(), self.cfg.learning_rate().into());
        settings.insert("beta".into(), self.cfg.beta.into());
        settings.insert("kl_warmup".into(), self.cfg.kl_warmup.into());
        manifest.training = Some(Training {
            command: self.cfg.command.clone(),
            seed: self.cfg.seed,
            iterations: iteration,
            elapsed_s: elapsed,
            settings,
        });
        manifest.metrics = log
            .last()
            .map(|r| r.values.iter().cloned().collect())
            .unwrap_or_default();
        store::save_checkpoint(out, &mut manifest, &model)?;

        let samples = to_images(&trainer.generator().decode(self.fixed_z)?)?;
        grid(&samples, 8, 2)?.save_png(&out.join("samples.png"))?;
        if let Trainer::Vae { vae, .. } = trainer {
            let idx = batch_indices(self.cfg.seed ^ 0xda7a, 0, 16, self.ds.len());
            let x = load_batch(self.ds, &idx, self.device)?;
            let (mu, _) = vae.encode(&x)?;
            let recon = to_images(&vae.decode(&mu)?)?;
            let data = to_images(&x)?;
            let rows: Vec<Image> = (0..2)
                .flat_map(|r| {
                    let d = data[r * 8..r * 8 + 8].iter().cloned();
                    d.chain(recon[r * 8..r * 8 + 8].iter().cloned())
                        .collect::<Vec<_>>()
                })
                .collect();
            grid(&rows, 8, 2)?.save_png(&out.join("reconstructions.png"))?;
        }
        write_log_csv(&out.join("loss.csv"), log)
    }
}

/// Training images per second of `arch` on one fixed batch of `batch_size` random images
/// (no data loading: the figure a PyTorch script of the same network reproduces): the
/// median over `iters` updates after two warm-up ones.
pub fn measure_compute_throughput(
    arch: &GeneratorConfig,
    batch_size: usize,
    iters: usize,
    device: &Device,
) -> Result<f64> {
    let params = Params::new(0, device);
    let mut trainer = Trainer::new(&params, arch, 1e-3)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let shape = [batch_size, arch.channels, arch.image_size, arch.image_size];
    let x = Tensor::rand(0f32, 1f32, &shape[..], device)?;
    let mut times = Vec::with_capacity(iters);
    for it in 0..iters + 2 {
        let t = Instant::now();
        trainer.step(&x, 1.0, &mut rng)?;
        if it >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(batch_size as f64 / crate::stats::median(&mut times))
}

/// Training throughput (images per second) of a fresh model of architecture `arch` on
/// `dataset`: the median over `iters` timed iterations after two warm-up ones, data
/// rendering included.
pub fn measure_train_throughput(
    arch: &GeneratorConfig,
    dataset: &str,
    batch_size: usize,
    iters: usize,
    device: &Device,
) -> Result<f64> {
    let ds: Arc<dyn Dataset> = Arc::from(data::open(dataset, arch.image_size)?);
    let params = Params::new(0, device);
    let lr = match arch.kind {
        GeneratorKind::Vae => 1e-3,
        GeneratorKind::Gan => 2e-4,
    };
    let mut trainer = Trainer::new(&params, arch, lr)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut times = Vec::with_capacity(iters);
    for it in 0..iters + 2 {
        let t = Instant::now();
        let x = load_batch(
            ds.as_ref(),
            &batch_indices(0, it as u64, batch_size, ds.len()),
            device,
        )?;
        trainer.step(&x, 1.0, &mut rng)?;
        if it >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(batch_size as f64 / crate::stats::median(&mut times))
}
