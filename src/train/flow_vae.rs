//! Training the flow-factorized VAE, the VAE with wave potentials (the first paper's §4.3)
//! and the naive baseline on transformation sequences, as one resumable job.
//!
//! The output folder is a VAE (a generator checkpoint any command opens) and, for the flow
//! and wave variants, its potentials in `potentials-ffvae/` (Hamilton–Jacobi) or
//! `potentials-wave/` (wave equation), named after the transformations. `sequences.png`
//! shows held-out sequences (odd rows) above what the model makes of them from x_0 alone
//! (even rows: the flow from the encoder's mean, or x_0's reconstruction for the naive VAE).
//!
//! Every batch is B sequences of T + 1 frames of transformations drawn uniformly from the
//! list, each from a start that is not held out ([`Split::Train`]); which sequences an
//! iteration sees is a pure function of (seed, iteration). A run may start from a trained
//! VAE (`init`): the comparisons here fine-tune the shipped VAE with every variant, one
//! budget each. The objective of each variant is in [`crate::models::flow_vae`].

use super::job;
use super::losses::{bce_with_logits, gaussian_kl};
use super::sequences::{
    SequenceBatch, SequenceStream, resolve_transforms, sequence_batch, transform_names,
};
use super::sets::{SetRecord, save_strips, set_manifest};
use super::state::{LogRow, STATE_FILE, TrainState, write_log_csv};
use super::{CancelToken, Progress};
use crate::data::image::grid;
use crate::data::sequence::{Split, Transform};
use crate::data::{self, Dataset, Image};
use crate::limits::{self, MAX_BATCH, MAX_K, MAX_WIDTH};
use crate::methods::{PathSpec, Traversal, potential_flow::PotentialFlow};
use crate::models::flow_vae::{
    SequenceClassifier, Supervision, Variant, categorical_kl_uniform, flow_kl, gaussian_entropy,
    gumbel_softmax_st, log_abs_one_plus, one_hot, temperature,
};
use crate::models::images::to_images;
use crate::models::potential::{PotentialConfig, PotentialKind, Potentials};
use crate::models::{Generator, GeneratorConfig, GeneratorKind, Vae, randn};
use crate::nn::{Adam, Params};
use crate::store::{self, Manifest, manifest::Training};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The defaults of `train-ffvae`, defined once.
pub mod defaults {
    /// Steps T per sequence (T + 1 frames).
    pub const STEPS: usize = 7;
    /// Iterations.
    pub const ITERS: u64 = 2000;
    /// Sequences per batch.
    pub const BATCH_SIZE: usize = 16;
    /// Learning rate of the potentials, force networks, diffusion and classifier.
    pub const LR: f64 = 1e-3;
    /// Learning rate of the VAE.
    pub const VAE_LR: f64 = 3e-4;
    /// Weight of the PINN terms.
    pub const W_PINN: f64 = 1.0;
    /// Hidden width of the potentials and force networks.
    pub const HIDDEN: usize = 128;
    /// Time-embedding size.
    pub const TIME_DIM: usize = 32;
    /// Hidden width of the weak supervision's classifier.
    pub const CLASSIFIER_HIDDEN: usize = 128;
    /// Latent size of a VAE trained from scratch.
    pub const LATENT: usize = 16;
    /// Checkpoint interval.
    pub const CHECKPOINT_EVERY: u64 = 250;
    /// Log interval.
    pub const LOG_EVERY: u64 = 10;
    /// Held-out sequences measured at each checkpoint (weak supervision's k-accuracy; fewer
    /// for sequences longer than 16 frames).
    pub const HELD_OUT: usize = 256;
}

/// Settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowVaeTrainConfig {
    /// Dataset specification (see [`crate::data::open`]); empty: the `init` VAE's dataset.
    pub dataset: String,
    /// The transformations: names (see [`Transform`]), `factors` (every sweepable factor)
    /// or `images` (zoom, rotation and, for RGB, hue).
    pub transforms: Vec<String>,
    /// What is trained.
    pub variant: Variant,
    /// Whether k is given.
    pub supervision: Supervision,
    /// Number of potentials K (0: one per transformation).
    pub k: usize,
    /// Steps T per sequence.
    pub steps: usize,
    /// Iterations.
    pub iters: u64,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Learning rate of everything but the VAE.
    pub lr: f64,
    /// Learning rate of the VAE (0: the VAE stays frozen).
    pub vae_lr: f64,
    /// Weight of the PINN terms.
    pub w_pinn: f64,
    /// Hidden width of the potentials.
    pub hidden: usize,
    /// Time-embedding size.
    pub time_dim: usize,
    /// Latent size (a VAE from scratch only; `init` sets it otherwise).
    pub latent: usize,
    /// A trained VAE to start from.
    pub init: Option<PathBuf>,
    /// Random seed.
    pub seed: u64,
    /// Checkpoint interval.
    pub checkpoint_every: u64,
    /// Log interval.
    pub log_every: u64,
    /// Output folder.
    #[serde(skip)]
    pub out: PathBuf,
    /// Replace a finished model in `out`.
    #[serde(skip)]
    pub restart: bool,
    /// The command line, for the manifest.
    #[serde(skip)]
    pub command: String,
}

impl FlowVaeTrainConfig {
    /// The defaults for `dataset`'s factor sweeps into `out`.
    pub fn new(dataset: &str, out: PathBuf) -> Self {
        Self {
            dataset: dataset.to_string(),
            transforms: vec!["factors".into()],
            variant: Variant::Flow,
            supervision: Supervision::Full,
            k: 0,
            steps: defaults::STEPS,
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            vae_lr: defaults::VAE_LR,
            w_pinn: defaults::W_PINN,
            hidden: defaults::HIDDEN,
            time_dim: defaults::TIME_DIM,
            latent: defaults::LATENT,
            init: None,
            seed: 0,
            checkpoint_every: defaults::CHECKPOINT_EVERY,
            log_every: defaults::LOG_EVERY,
            out,
            restart: false,
            command: String::new(),
        }
    }

    /// Checks the numbers (the dataset and transformations are checked on opening).
    pub fn validate(&self) -> Result<()> {
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        if self.k != 0 {
            limits::check_count("--k", self.k, MAX_K)?;
        }
        limits::check_count("--hidden", self.hidden, MAX_WIDTH)?;
        limits::check_count("--steps", self.steps, 64)?;
        if self.iters == 0 || self.checkpoint_every == 0 || self.log_every == 0 {
            return Err(Error::config(
                "--iters, --checkpoint-every and --log-every must be positive",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(format!(
                "--lr must be positive, not {}",
                self.lr
            )));
        }
        if !(self.vae_lr.is_finite() && self.vae_lr >= 0.0) {
            return Err(Error::config(format!(
                "--vae-lr must be zero (a frozen VAE) or positive, not {}",
                self.vae_lr
            )));
        }
        if self.vae_lr == 0.0 && self.variant == Variant::Naive {
            return Err(Error::config(
                "the naive variant trains only the VAE: --vae-lr 0 would train nothing",
            ));
        }
        if !(self.w_pinn.is_finite() && self.w_pinn >= 0.0) {
            return Err(Error::config("--w-pinn must be zero or positive"));
        }
        Ok(())
    }

    /// The name of the potential set's folder inside the output.
    pub fn set_folder(&self) -> Option<&'static str> {
        match self.variant {
            Variant::Flow => Some("potentials-ffvae"),
            Variant::Wave => Some("potentials-wave"),
            Variant::Naive => None,
        }
    }

    /// The potentials' architecture on a `latent`-dimensional space, named `names`.
    pub fn architecture(&self, latent: usize, names: Vec<String>) -> PotentialConfig {
        let kind = if self.variant == Variant::Wave {
            PotentialKind::Pde
        } else {
            PotentialKind::Hj
        };
        let mut cfg = PotentialConfig::new(kind, self.k, latent);
        cfg.hidden = self.hidden;
        cfg.time_dim = self.time_dim;
        cfg.names = names;
        if kind == PotentialKind::Pde {
            cfg.wave_speed_floor = Some(0.5);
        }
        cfg
    }
}

/// The networks of a run and their optimisers.
pub struct FlowVaeTrainer {
    variant: Variant,
    supervision: Supervision,
    steps: usize,
    w_pinn: f64,
    vae_lr: f64,
    params: Params,
    vae: Vae,
    /// A frozen VAE's weights as constants (made at the first step, after loading or
    /// resuming): the backward pass then skips the gradients of weights nobody updates.
    frozen: Option<Vae>,
    potentials: Option<Potentials>,
    classifier: Option<SequenceClassifier>,
    opt_vae: Adam,
    opt_rest: Option<Adam>,
}

impl FlowVaeTrainer {
    /// Builds the networks of `cfg` in a fresh store seeded by `cfg.seed` (the VAE with
    /// `arch`, the potentials named `names`).
    pub fn new(
        cfg: &FlowVaeTrainConfig,
        arch: &GeneratorConfig,
        names: Vec<String>,
    ) -> Result<Self> {
        Self::on(cfg, arch, names, &Device::Cpu)
    }

    /// [`FlowVaeTrainer::new`] on `device`.
    pub fn on(
        cfg: &FlowVaeTrainConfig,
        arch: &GeneratorConfig,
        names: Vec<String>,
        device: &Device,
    ) -> Result<Self> {
        let params = Params::new(cfg.seed, device);
        let vae = Vae::new(&params, arch)?;
        let potentials = match cfg.variant {
            Variant::Naive => None,
            _ => Some(Potentials::new(
                &params.pp("set"),
                &cfg.architecture(arch.latent, names),
            )?),
        };
        let classifier = match (cfg.variant, cfg.supervision) {
            (Variant::Flow, Supervision::Weak) => Some(SequenceClassifier::new(
                &params,
                cfg.steps,
                arch.latent,
                defaults::CLASSIFIER_HIDDEN,
                cfg.k,
            )?),
            _ => None,
        };
        let vars = params.trainable_vars()?;
        let is_vae = |n: &str| n.starts_with("encoder.") || n.starts_with("decoder.");
        let (vae_vars, rest): (Vec<_>, Vec<_>) = vars.into_iter().partition(|(n, _)| is_vae(n));
        let opt_vae = Adam::new(vae_vars, cfg.vae_lr)?;
        let opt_rest = (!rest.is_empty())
            .then(|| Adam::new(rest, cfg.lr))
            .transpose()?;
        Ok(Self {
            variant: cfg.variant,
            supervision: cfg.supervision,
            steps: cfg.steps,
            w_pinn: cfg.w_pinn,
            vae_lr: cfg.vae_lr,
            params,
            vae,
            frozen: None,
            potentials,
            classifier,
            opt_vae,
            opt_rest,
        })
    }

    /// Starts the VAE from the weights of a trained one.
    pub fn load_vae(&self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.params.trainable_vars()? {
            if !(name.starts_with("encoder.") || name.starts_with("decoder.")) {
                continue;
            }
            let t = tensors.get(&name).ok_or_else(|| {
                Error::config(format!("the VAE to start from lacks tensor {name}"))
            })?;
            if t.dims() != var.dims() {
                return Err(Error::config(format!(
                    "tensor {name} of the VAE to start from has shape {:?}, not {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_device(var.device())?.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    /// The VAE.
    pub fn vae(&self) -> &Vae {
        self.frozen.as_ref().unwrap_or(&self.vae)
    }

    /// The potentials (flow and wave variants).
    pub fn potentials(&self) -> Option<&Potentials> {
        self.potentials.as_ref()
    }

    /// The weak supervision's classifier.
    pub fn classifier(&self) -> Option<&SequenceClassifier> {
        self.classifier.as_ref()
    }

    fn optimizers(&mut self) -> Vec<&mut Adam> {
        let mut v = vec![&mut self.opt_vae];
        if let Some(o) = self.opt_rest.as_mut() {
            v.push(o);
        }
        v
    }

    /// One iteration on `batch` (its frames frame-major, T + 1 of them); returns the named
    /// values. A non-finite term stops it before any weight changes, naming the term.
    pub fn step(
        &mut self,
        batch: &SequenceBatch,
        iteration: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        if self.vae_lr == 0.0 && self.frozen.is_none() {
            let p = Params::from_tensors(self.vae_tensors()?, false, batch.x.device())?;
            self.frozen = Some(Vae::new(&p, self.vae.config())?);
        }
        let (loss, values) = self.loss(batch, iteration, rng)?;
        // Name the first term that went bad (the total follows any of them).
        let bad = values
            .iter()
            .filter(|(n, _)| n != "loss")
            .chain(values.iter().filter(|(n, _)| n == "loss"))
            .find(|(_, v)| !v.is_finite());
        if let Some((name, v)) = bad {
            return Err(Error::config(format!("loss term {name} became {v}")));
        }
        let grads = loss.backward()?;
        if self.vae_lr > 0.0 {
            self.opt_vae.step(&grads)?;
        }
        if let Some(o) = self.opt_rest.as_mut() {
            o.step(&grads)?;
        }
        Ok(values)
    }

    /// The loss of one batch and its named terms (per sequence, summed over frames).
    pub fn loss(
        &self,
        batch: &SequenceBatch,
        iteration: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Vec<(String, f64)>)> {
        let frames = self.steps + 1;
        let b = batch.labels.len();
        if batch.x.dim(0)? != frames * b {
            return Err(Error::config(format!(
                "a batch of {b} sequences of {frames} frames needs {} images, not {}",
                frames * b,
                batch.x.dim(0)?
            )));
        }
        match self.variant {
            Variant::Naive => self.naive_loss(batch, rng),
            Variant::Wave => self.wave_loss(batch, rng),
            Variant::Flow => self.flow_loss(batch, iteration, rng),
        }
    }

    /// Encodes `x` and samples z = μ + σ ε.
    fn sample(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor, Tensor)> {
        let (mu, logvar) = self.vae().encode(x)?;
        let eps = randn(mu.dims(), rng, x.device())?;
        let z = (&mu + (logvar.affine(0.5, 0.)?.exp()? * eps)?)?;
        Ok((mu, logvar, z))
    }

    fn naive_loss(
        &self,
        batch: &SequenceBatch,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Vec<(String, f64)>)> {
        let frames = (self.steps + 1) as f64;
        let (mu, logvar, z) = self.sample(&batch.x, rng)?;
        let recon = (bce_with_logits(&self.vae().decode_logits(&z)?, &batch.x)? * frames)?;
        let kl = (gaussian_kl(&mu, &logvar)? * frames)?;
        let loss = (&recon + &kl)?;
        let values = named(&[("loss", &loss), ("recon", &recon), ("kl", &kl)])?;
        Ok((loss, values))
    }

    fn wave_loss(
        &self,
        batch: &SequenceBatch,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Vec<(String, f64)>)> {
        let pots = self.need_potentials()?;
        let (frames, b) = (self.steps + 1, batch.labels.len());
        let (mu, logvar, z) = self.sample(&batch.x, rng)?;
        let recon = (bce_with_logits(&self.vae().decode_logits(&z)?, &batch.x)? * frames as f64)?;
        let kl = (gaussian_kl(&mu, &logvar)? * frames as f64)?;
        let mix = Mixing::of_labels(&batch.labels, pots.len(), &mu)?;
        let means: Vec<Tensor> = (0..frames)
            .map(|t| mu.narrow(0, t * b, b))
            .collect::<candle_core::Result<_>>()?;
        let dev = mu.device();
        // ‖∇u(ẑ_0, 0)‖², the first paper's initial condition.
        let ic = mix.combine(pots, &means[0], |k, rows| {
            let t0 = Tensor::zeros(rows.dim(0)?, rows.dtype(), rows.device())?;
            Ok(vec![pots.grad(rows, &t0, k)?.sqr()?.sum(1)?])
        })?;
        let ic = ic
            .first()
            .cloned()
            .ok_or_else(|| Error::config("no initial condition"))?;
        let mut zhat = means[0].clone();
        let mut l_z = Tensor::zeros((), DType::F32, dev)?;
        let mut pinn = Tensor::zeros((), DType::F32, dev)?;
        for s in 0..self.steps {
            let (g, _, res2) = mixed_step(pots, &zhat, s as f64, &mix)?;
            pinn = (pinn + res2.mean_all()?)?;
            let moved = ((&means[s + 1] - &means[s])? - &g)?;
            zhat = (&zhat + &g)?;
            let off = (&means[s + 1] - &zhat)?;
            l_z = ((l_z + moved.sqr()?.sum(1)?.mean_all()?)? + off.sqr()?.sum(1)?.mean_all()?)?;
        }
        let pinn = ((pinn / self.steps as f64)? + ic.mean_all()?)?;
        let loss = (((&recon + &kl)? + &l_z)? + (&pinn * self.w_pinn)?)?;
        let values = named(&[
            ("loss", &loss),
            ("recon", &recon),
            ("kl", &kl),
            ("l_z", &l_z),
            ("pinn", &pinn),
        ])?;
        Ok((loss, values))
    }

    fn flow_loss(
        &self,
        batch: &SequenceBatch,
        iteration: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Vec<(String, f64)>)> {
        let pots = self.need_potentials()?;
        let (frames, b) = (self.steps + 1, batch.labels.len());
        let x0 = batch.x.narrow(0, 0, b)?;
        let (mu, logvar, z0) = self.sample(&x0, rng)?;
        let dev = mu.device().clone();
        let mut extra = Vec::new();
        let (mix, kl_k) = match (self.supervision, &self.classifier) {
            (Supervision::Weak, Some(clf)) => {
                // The classifier reads the encoder's means of every frame (the encoder is
                // trained by the reconstructions, not through the classifier).
                let (mu_all, _) = self.vae().encode(&batch.x)?;
                let mu_all = mu_all.detach();
                let means: Vec<Tensor> = (0..frames)
                    .map(|t| mu_all.narrow(0, t * b, b))
                    .collect::<candle_core::Result<_>>()?;
                let logits = clf.logits(&means)?;
                let tau = temperature(iteration);
                let (y, _) = gumbel_softmax_st(&logits, tau, rng)?;
                let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
                extra.push(("tau".to_string(), tau));
                extra.push((
                    "k_acc".to_string(),
                    matched_accuracy(&batch.labels, &predicted, pots.len()).0,
                ));
                (
                    Mixing::Soft(y),
                    Some(categorical_kl_uniform(&logits)?.mean_all()?),
                )
            }
            _ => (Mixing::of_labels(&batch.labels, pots.len(), &mu)?, None),
        };
        // Initial condition at t = 0: ‖∇u(z_0, 0)‖² + f(z_0, 0)².
        let ic = mix.combine(pots, &z0, |k, rows| {
            let t0 = Tensor::zeros(rows.dim(0)?, rows.dtype(), rows.device())?;
            let g = pots.grad(rows, &t0, k)?;
            let f = pots.force(rows, &t0, k)?;
            Ok(vec![(g.sqr()?.sum(1)? + f.sqr()?)?])
        })?;
        let ic = ic
            .first()
            .cloned()
            .ok_or_else(|| Error::config("no initial condition"))?;
        let mut z = z0.clone();
        let (mut codes, mut log_dets) = (Vec::new(), Vec::new());
        let mut pinn = Tensor::zeros((), DType::F32, &dev)?;
        for s in 1..=self.steps {
            let (g, lap, res2) = mixed_step(pots, &z, s as f64, &mix)?;
            pinn = (pinn + res2.mean_all()?)?;
            log_dets.push(log_abs_one_plus(&lap)?);
            z = (&z + &g)?;
            codes.push(z.clone());
        }
        let mut all = vec![z0];
        all.extend(codes.iter().cloned());
        let logits = self.vae().decode_logits(&Tensor::cat(&all, 0)?)?;
        let recon = (bce_with_logits(&logits, &batch.x)? * frames as f64)?;
        let kl = gaussian_kl(&mu, &logvar)?;
        let y = mix.weights(b, pots.len(), &mu)?;
        let d = y.matmul(&pots.diffusion()?.unsqueeze(1)?)?.squeeze(1)?;
        let kl_flow = flow_kl(&gaussian_entropy(&logvar)?, &log_dets, &codes, &d)?;
        let pinn = ((pinn / self.steps as f64)? + ic.mean_all()?)?;
        let mut loss = (((&recon + &kl)? + &kl_flow)? + (&pinn * self.w_pinn)?)?;
        let mut terms = vec![
            ("recon", recon.clone()),
            ("kl", kl),
            ("kl_flow", kl_flow),
            ("pinn", pinn),
        ];
        if let Some(kl_k) = kl_k {
            loss = (loss + &kl_k)?;
            terms.push(("kl_k", kl_k));
        }
        let mut values = vec![("loss".to_string(), scalar(&loss)?)];
        for (n, t) in &terms {
            values.push((n.to_string(), scalar(t)?));
        }
        let dk = pots.diffusion()?.to_vec1::<f32>()?;
        values.push((
            "diffusion".into(),
            dk.iter().map(|v| *v as f64).sum::<f64>() / dk.len().max(1) as f64,
        ));
        values.extend(extra);
        Ok((loss, values))
    }

    fn need_potentials(&self) -> Result<&Potentials> {
        self.potentials
            .as_ref()
            .ok_or_else(|| Error::config("this variant has no potentials"))
    }

    /// Every parameter and optimiser moment, for resuming.
    pub fn state_tensors(&mut self) -> Result<BTreeMap<String, Tensor>> {
        let mut out: BTreeMap<String, Tensor> = self
            .params
            .tensors()?
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t))
            .collect();
        for (i, opt) in self.optimizers().into_iter().enumerate() {
            for (n, t) in opt.state() {
                out.insert(format!("opt{i}.{n}"), t);
            }
        }
        Ok(out)
    }

    /// Restores a resumed run.
    pub fn restore(&mut self, state: &TrainState) -> Result<()> {
        let part = |prefix: &str| -> BTreeMap<String, Tensor> {
            state
                .tensors
                .iter()
                .filter_map(|(n, t)| n.strip_prefix(prefix).map(|n| (n.to_string(), t.clone())))
                .collect()
        };
        self.params.load(&part("model."))?;
        let iteration = state.iteration;
        for (i, opt) in self.optimizers().into_iter().enumerate() {
            opt.load_state(&part(&format!("opt{i}.")), iteration)?;
        }
        Ok(())
    }

    /// The VAE's weights (`encoder.*`, `decoder.*`).
    pub fn vae_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        Ok(self
            .params
            .tensors()?
            .into_iter()
            .filter(|(n, _)| n.starts_with("encoder.") || n.starts_with("decoder."))
            .collect())
    }

    /// The potential set's weights (without the `set.` prefix).
    pub fn set_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        Ok(self
            .params
            .tensors()?
            .into_iter()
            .filter_map(|(n, t)| n.strip_prefix("set.").map(|n| (n.to_string(), t)))
            .collect())
    }
}

/// Column k of `y` (B, K) as (B).
fn column(y: &Tensor, k: usize) -> Result<Tensor> {
    Ok(y.narrow(1, k, 1)?.squeeze(1)?)
}

/// How a batch's rows use the potentials: runs of rows with one known potential each
/// (labels sorted, so a run is contiguous and each potential sees only its rows), or a
/// mixture y (B, K) with gradient (weak supervision: every potential on every row).
enum Mixing {
    Runs(Vec<(usize, usize, usize)>),
    Soft(Tensor),
}

impl Mixing {
    /// Runs of `labels` (k, start, length) when they are sorted, else the one-hot mixture.
    fn of_labels(labels: &[u32], k: usize, like: &Tensor) -> Result<Self> {
        if labels.windows(2).any(|w| w[0] > w[1]) {
            return Ok(Mixing::Soft(one_hot(labels, k, like)?));
        }
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            match runs.last_mut() {
                Some((kk, _, len)) if *kk == l as usize => *len += 1,
                _ => runs.push((l as usize, i, 1)),
            }
        }
        Ok(Mixing::Runs(runs))
    }

    /// Per row: Σ_k y_k v_k of a per-potential value (B) given as a closure of (k, rows).
    fn combine(
        &self,
        pots: &Potentials,
        z: &Tensor,
        mut f: impl FnMut(usize, &Tensor) -> Result<Vec<Tensor>>,
    ) -> Result<Vec<Tensor>> {
        match self {
            Mixing::Runs(runs) => {
                let mut parts: Vec<Vec<Tensor>> = Vec::new();
                for &(k, start, len) in runs {
                    parts.push(f(k, &z.narrow(0, start, len)?)?);
                }
                let n = parts.first().map(Vec::len).unwrap_or(0);
                (0..n)
                    .map(|i| {
                        let pieces: Vec<&Tensor> = parts.iter().map(|p| &p[i]).collect();
                        Ok(Tensor::cat(&pieces, 0)?)
                    })
                    .collect()
            }
            Mixing::Soft(y) => {
                let mut acc: Option<Vec<Tensor>> = None;
                for k in 0..pots.len() {
                    let yk = column(y, k)?;
                    let vals = f(k, z)?;
                    let weighted = vals
                        .iter()
                        .map(|v| {
                            Ok(if v.rank() == 2 {
                                v.broadcast_mul(&yk.unsqueeze(1)?)?
                            } else {
                                (v * &yk)?
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    acc = Some(match acc {
                        None => weighted,
                        Some(a) => a
                            .iter()
                            .zip(&weighted)
                            .map(|(x, y)| Ok((x + y)?))
                            .collect::<Result<Vec<_>>>()?,
                    });
                }
                acc.ok_or_else(|| Error::config("a set has at least one potential"))
            }
        }
    }

    /// Each row's mixture weights (B, K).
    fn weights(&self, b: usize, k: usize, like: &Tensor) -> Result<Tensor> {
        match self {
            Mixing::Soft(y) => Ok(y.clone()),
            Mixing::Runs(runs) => {
                let mut labels = vec![0u32; b];
                for &(kk, start, len) in runs {
                    labels[start..start + len].fill(kk as u32);
                }
                one_hot(&labels, k, like)
            }
        }
    }
}

/// One step of the potentials mixed by `mix` at (z, t): Σ_k y_k ∇u^k, Σ_k y_k Δu^k and
/// Σ_k y_k r_k² with r_k the residual of the set's equation.
fn mixed_step(
    pots: &Potentials,
    z: &Tensor,
    t: f64,
    mix: &Mixing,
) -> Result<(Tensor, Tensor, Tensor)> {
    let out = mix.combine(pots, z, |k, rows| {
        let time = Tensor::full(t as f32, rows.dim(0)?, rows.device())?.to_dtype(rows.dtype())?;
        let ev = pots.eval(rows, &time, k)?;
        let r = pots.equation_residual(rows, &time, &ev, k)?;
        Ok(vec![ev.grad, ev.laplacian, r.sqr()?])
    })?;
    let [grad, lap, res2]: [Tensor; 3] = out
        .try_into()
        .map_err(|_| Error::config("a mixed step makes three values"))?;
    Ok((grad, lap, res2))
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn named(items: &[(&str, &Tensor)]) -> Result<Vec<(String, f64)>> {
    items
        .iter()
        .map(|(n, t)| Ok((n.to_string(), scalar(t)?)))
        .collect()
}

/// The accuracy of `predicted` clusters against `truth` labels under the best greedy
/// one-to-one matching of clusters to labels (the largest agreement first), and the match:
/// `matching[c]` is the label cluster c stands for (None when left over). Both sides have
/// `k` classes.
pub fn matched_accuracy(truth: &[u32], predicted: &[u32], k: usize) -> (f64, Vec<Option<usize>>) {
    let mut counts = vec![vec![0usize; k]; k];
    for (&t, &p) in truth.iter().zip(predicted) {
        if (t as usize) < k && (p as usize) < k {
            counts[p as usize][t as usize] += 1;
        }
    }
    let mut matching = vec![None; k];
    let mut used = vec![false; k];
    let mut hits = 0;
    loop {
        let best = (0..k)
            .filter(|&c| matching[c].is_none())
            .flat_map(|c| (0..k).filter(|&l| !used[l]).map(move |l| (c, l)))
            .max_by_key(|&(c, l)| (counts[c][l], std::cmp::Reverse((c, l))));
        let Some((c, l)) = best else { break };
        matching[c] = Some(l);
        used[l] = true;
        hits += counts[c][l];
    }
    (hits as f64 / truth.len().max(1) as f64, matching)
}

/// What [`train_flow_vae`] returns.
#[derive(Debug, Clone)]
pub struct FlowVaeTrainSummary {
    /// Iterations completed.
    pub iterations: u64,
    /// Where this invocation started.
    pub resumed_from: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// The last logged values.
    pub metrics: BTreeMap<String, f64>,
    /// The held-out k-accuracy of weak supervision.
    pub k_accuracy: Option<f64>,
}

/// Trains (or resumes) as `cfg` says, reporting through `progress`.
pub fn train_flow_vae(
    cfg: &FlowVaeTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<FlowVaeTrainSummary> {
    cfg.validate()?;
    let dataset = match (cfg.dataset.trim(), &cfg.init) {
        ("", Some(dir)) => store::generator::read_manifest(dir)?
            .dataset
            .ok_or_else(|| {
                Error::config(format!("{} names no dataset; give one", dir.display()))
            })?,
        ("", None) => return Err(Error::config("no dataset given")),
        (d, _) => d.to_string(),
    };
    let ds: Arc<dyn Dataset> = Arc::from(data::open(&dataset, data::IMAGE_SIZE)?);
    ds.check()?;
    let frames = cfg.steps + 1;
    let transforms = resolve_transforms(ds.as_ref(), &cfg.transforms, frames)?;
    let names = transform_names(ds.as_ref(), &transforms);
    // K = 0: one potential per transformation.
    let resolved;
    let cfg = if cfg.k == 0 {
        resolved = FlowVaeTrainConfig {
            k: names.len(),
            ..cfg.clone()
        };
        &resolved
    } else {
        cfg
    };
    check_k(cfg, &names)?;
    let (arch, init) = match &cfg.init {
        Some(dir) => {
            let g = store::load_generator(dir, device)?;
            if g.config.kind != GeneratorKind::Vae {
                return Err(Error::config(format!(
                    "{} holds a GAN; the flow-factorized model starts from a VAE",
                    dir.display()
                )));
            }
            if g.config.channels != ds.channels() || g.config.image_size != ds.size() {
                return Err(Error::config(format!(
                    "the VAE in {} makes {}-channel {}-pixel images, the dataset {} has {}-channel {}-pixel ones",
                    dir.display(),
                    g.config.channels,
                    g.config.image_size,
                    ds.name(),
                    ds.channels(),
                    ds.size()
                )));
            }
            let (_, tensors) = store::generator::read_weights(dir, &g.manifest, device)?;
            (g.config.clone(), Some(tensors))
        }
        None => {
            let mut arch = GeneratorConfig::new(GeneratorKind::Vae, cfg.latent, ds.channels());
            arch.image_size = ds.size();
            arch.validate()?;
            (arch, None)
        }
    };
    limits::check_memory(
        &format!(
            "training a flow-factorized VAE on batches of {} sequences of {frames} frames",
            cfg.batch_size
        ),
        arch.training_bytes(cfg.batch_size * frames),
    )?;
    let fingerprint = job::fingerprint(cfg);
    let resumed = match job::prepare(&cfg.out, "generator", cfg.restart, &fingerprint, device) {
        Err(e) => return Err(explain_other_run(e, &cfg.out, cfg)),
        other => other?,
    };
    let potential_names = match cfg.supervision {
        Supervision::Full => names.clone(),
        Supervision::Weak => (0..cfg.k).map(|k| format!("potential {k}")).collect(),
    };
    let mut trainer = FlowVaeTrainer::on(cfg, &arch, potential_names, device)?;
    if let Some(t) = &init {
        trainer.load_vae(t)?;
    }
    let first = match &resumed {
        Some(state) => {
            trainer.restore(state)?;
            state.iteration
        }
        None => 0,
    };
    let mut run = FlowVaeJob {
        trainer,
        stream: SequenceStream::new(
            ds.clone(),
            transforms.clone(),
            frames,
            cfg.batch_size,
            cfg.seed,
            first..cfg.iters,
        ),
        cfg,
        arch: &arch,
        ds: ds.as_ref(),
        transforms: &transforms,
        names: &names,
        device,
        k_accuracy: None,
    };
    let spec = job::LoopSpec {
        iters: cfg.iters,
        log_every: cfg.log_every,
        checkpoint_every: cfg.checkpoint_every,
        batch_size: cfg.batch_size,
        out: &cfg.out,
    };
    let o = job::run(&mut run, spec, resumed, cancel, progress)?;
    Ok(FlowVaeTrainSummary {
        iterations: o.iterations,
        resumed_from: o.resumed_from,
        elapsed_s: o.elapsed_s,
        metrics: o.metrics,
        k_accuracy: run.k_accuracy,
    })
}

/// K must match the transformations under full supervision (one potential each).
fn check_k(cfg: &FlowVaeTrainConfig, names: &[String]) -> Result<()> {
    let full = cfg.supervision == Supervision::Full || cfg.variant == Variant::Wave;
    if cfg.variant != Variant::Naive && full && cfg.k != names.len() {
        return Err(Error::config(format!(
            "--k {} does not match the {} transformations ({}): one potential per transformation",
            cfg.k,
            names.len(),
            names.join(", ")
        )));
    }
    if cfg.variant == Variant::Wave && cfg.supervision == Supervision::Weak {
        return Err(Error::config(
            "the wave variant is trained with known transformations (--supervision full)",
        ));
    }
    Ok(())
}

/// A resume refused for other settings, said in the terms of this command when K differs.
fn explain_other_run(e: Error, out: &Path, cfg: &FlowVaeTrainConfig) -> Error {
    let Ok(state) = TrainState::load(&out.join(STATE_FILE), &Device::Cpu) else {
        return e;
    };
    match state.settings.get("k").and_then(|v| v.as_u64()) {
        Some(k) if k as usize != cfg.k && cfg.variant != Variant::Naive => Error::config(format!(
            "{} holds a run with K = {k} potentials, not --k {}; pass --restart to start over \
             or choose another --out",
            out.display(),
            cfg.k
        )),
        _ => e,
    }
}

struct FlowVaeJob<'a> {
    trainer: FlowVaeTrainer,
    stream: SequenceStream,
    cfg: &'a FlowVaeTrainConfig,
    arch: &'a GeneratorConfig,
    ds: &'a dyn Dataset,
    transforms: &'a [Transform],
    names: &'a [String],
    device: &'a Device,
    k_accuracy: Option<f64>,
}

impl job::Steps for FlowVaeJob<'_> {
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>> {
        let batch = self.stream.next(self.device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed.wrapping_add(7));
        rng.set_stream(iteration);
        self.trainer.step(&batch, iteration, &mut rng)
    }

    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()> {
        self.save_all(iteration, log, elapsed_s)
    }
}

impl FlowVaeJob<'_> {
    fn held_out(&self, n: usize, iteration: u64) -> Result<SequenceBatch> {
        sequence_batch(
            self.ds,
            self.transforms,
            self.cfg.steps + 1,
            n,
            Split::Test,
            self.cfg.seed ^ 0x7e57,
            iteration,
            self.device,
        )
    }

    /// Weak supervision: the classifier's predictions on held-out sequences, matched to
    /// the true transformations; names the potentials after what they stand for.
    fn match_potentials(&mut self) -> Result<Option<Vec<String>>> {
        let Some(clf) = self.trainer.classifier() else {
            return Ok(None);
        };
        // At most 4,096 frames are encoded at once (fewer sequences for long ones).
        let n = defaults::HELD_OUT.min(4096 / (self.cfg.steps + 1)).max(1);
        let b = self.held_out(n, 0)?;
        let frames = self.cfg.steps + 1;
        let n = b.labels.len();
        let (mu, _) = self.trainer.vae().encode(&b.x)?;
        let means: Vec<Tensor> = (0..frames)
            .map(|t| mu.narrow(0, t * n, n))
            .collect::<candle_core::Result<_>>()?;
        let predicted: Vec<u32> = clf.logits(&means)?.argmax(1)?.to_vec1()?;
        let k = self.cfg.k.max(self.names.len());
        let (acc, matching) = matched_accuracy(&b.labels, &predicted, k);
        self.k_accuracy = Some(acc);
        Ok(Some(
            (0..self.cfg.k)
                .map(|c| match matching[c].and_then(|l| self.names.get(l)) {
                    Some(name) => name.clone(),
                    None => format!("potential {c}"),
                })
                .collect(),
        ))
    }

    fn save_all(&mut self, iteration: u64, log: &[LogRow], elapsed: f64) -> Result<()> {
        let out = &self.cfg.out;
        let cfg = self.cfg;
        let settings = job::fingerprint(cfg);
        TrainState {
            model: "generator".into(),
            iteration,
            elapsed_s: elapsed,
            settings: settings.clone(),
            log: log.to_vec(),
            tensors: self.trainer.state_tensors()?,
        }
        .save(&out.join(STATE_FILE))?;
        let weak_names = self.match_potentials()?;
        let mut metrics: BTreeMap<String, f64> = log
            .last()
            .map(|r| r.values.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(acc) = self.k_accuracy {
            metrics.insert("k_accuracy".into(), acc);
        }
        // The VAE.
        let mut manifest = Manifest::new(
            "generator",
            serde_json::to_value(self.arch).map_err(|e| Error::config(e.to_string()))?,
        );
        manifest.dataset = Some(self.ds.name());
        let mut train_settings: BTreeMap<String, serde_json::Value> = settings
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        train_settings.insert(
            "transform_labels".into(),
            self.transforms
                .iter()
                .map(|t| t.label(self.ds))
                .collect::<Vec<_>>()
                .into(),
        );
        train_settings.insert("transform_names".into(), self.names.to_vec().into());
        manifest.training = Some(Training {
            command: cfg.command.clone(),
            seed: cfg.seed,
            iterations: iteration,
            elapsed_s: elapsed,
            settings: train_settings,
        });
        manifest.metrics = metrics.clone();
        store::save_checkpoint(out, &mut manifest, &self.trainer.vae_tensors()?)?;
        write_log_csv(&out.join("loss.csv"), log)?;
        // The potentials, referring to the VAE just written.
        let generator = store::load_generator(out, &Device::Cpu)?;
        let set = match (cfg.set_folder(), self.trainer.potentials()) {
            (Some(folder), Some(pots)) => {
                let dir = out.join(folder);
                let mut arch = pots.config().clone();
                if let Some(names) = weak_names {
                    arch.names = names;
                }
                let record = SetRecord {
                    generator_dir: out,
                    generator: &generator,
                    out: &dir,
                    command: &cfg.command,
                    seed: cfg.seed,
                    settings: &settings,
                };
                let mut m = set_manifest(
                    "potentials",
                    super::sets::architecture_json(&arch)?,
                    &record,
                    iteration,
                    elapsed,
                    log,
                );
                m.metrics = metrics;
                let tensors = self.trainer.set_tensors()?;
                store::save_checkpoint(&dir, &mut m, &tensors)?;
                let frozen =
                    Potentials::new(&Params::from_tensors(tensors, false, &Device::Cpu)?, &arch)?;
                Some((dir, PotentialFlow::new(frozen)))
            }
            _ => None,
        };
        // The pictures are best effort: a model gone bad (diverging walks) still gets its
        // checkpoint, and the next iteration's loss names what went wrong.
        let pictures = || -> Result<()> {
            let fixed = self.held_out(4, 1)?;
            let crate::models::GeneratorModel::Vae(vae) = &generator.model else {
                return Err(Error::config("the saved model is not a VAE"));
            };
            let (mu, _) = vae.encode(&fixed.x.to_device(&Device::Cpu)?.narrow(0, 0, 4)?)?;
            if let Some((dir, flow)) = &set {
                save_strips(
                    flow,
                    &generator,
                    &mu.narrow(0, 0, 1)?,
                    cfg.steps,
                    &dir.join("strips.png"),
                )?;
            }
            // Which potential stands for each transformation (by name: weak supervision's
            // potentials are named after what they were matched to).
            let flow = set.as_ref().map(|(_, f)| {
                let potential_of: Vec<Option<usize>> = self
                    .names
                    .iter()
                    .map(|n| (0..f.directions()).find(|&k| f.direction_name(k) == *n))
                    .collect();
                (f as &dyn Traversal, potential_of)
            });
            sequences_picture(
                &generator.model,
                flow.as_ref().map(|(f, m)| (*f, m.as_slice())),
                &fixed,
                &mu,
                cfg.steps,
                &out.join("sequences.png"),
            )
        };
        // A failure here is not lost: it comes from weights that the next iteration's
        // loss check reports by term (or the walks in the app and CLI report on opening).
        let _ = pictures();
        Ok(())
    }
}

/// `sequences.png`: each held-out sequence above the model's version of it from x_0 (the
/// flow of the potential that stands for its transformation; x_0's code held when none).
fn sequences_picture(
    generator: &dyn Generator,
    flow: Option<(&dyn Traversal, &[Option<usize>])>,
    batch: &SequenceBatch,
    mu: &Tensor,
    steps: usize,
    path: &Path,
) -> Result<()> {
    let n = batch.labels.len();
    let frames = steps + 1;
    let data = to_images(&batch.x.to_device(&Device::Cpu)?)?;
    let mut rows: Vec<Image> = Vec::new();
    for i in 0..n {
        rows.extend((0..frames).map(|t| data[t * n + i].clone()));
        let z0 = mu.narrow(0, i, 1)?;
        let potential =
            flow.and_then(|(f, m)| Some((f, m.get(batch.labels[i] as usize).copied()??)));
        let codes = match potential {
            Some((f, k)) => f.walk(&z0, &PathSpec::single(k, steps))?,
            None => vec![z0; frames],
        };
        rows.extend(to_images(&generator.decode(&Tensor::cat(&codes, 0)?)?)?);
    }
    grid(&rows, frames, 2)?.save_png(path)
}

/// Milliseconds per training iteration of `variant` on random sequences (the time does
/// not depend on the images): `batch` sequences of `steps` steps, K = `k`, 64×64 RGB, the
/// scenes VAE's architecture (latent 16, base 32), the VAE trained at `vae_lr` (0: frozen);
/// the median of `reps` after one warm-up.
#[allow(clippy::too_many_arguments)]
pub fn measure_iteration_ms(
    variant: Variant,
    supervision: Supervision,
    vae_lr: f64,
    batch: usize,
    steps: usize,
    k: usize,
    reps: usize,
    device: &Device,
) -> Result<f64> {
    let mut cfg = FlowVaeTrainConfig::new("scenes", PathBuf::new());
    cfg.variant = variant;
    cfg.supervision = supervision;
    cfg.vae_lr = vae_lr;
    cfg.k = k;
    cfg.steps = steps;
    let mut arch = GeneratorConfig::new(GeneratorKind::Vae, defaults::LATENT, 3);
    arch.image_size = 64;
    arch.validate()?;
    let names = (0..k).map(|i| format!("potential {i}")).collect();
    let mut trainer = FlowVaeTrainer::on(&cfg, &arch, names, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = Tensor::rand(0f32, 1f32, ((steps + 1) * batch, 3, 64, 64), device)?;
    let mut labels: Vec<u32> = (0..batch).map(|_| rng.gen_range(0..k as u32)).collect();
    labels.sort_unstable();
    let batch = SequenceBatch { x, labels };
    trainer.step(&batch, 0, &mut rng)?;
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|i| -> Result<f64> {
            let start = std::time::Instant::now();
            trainer.step(&batch, i as u64 + 1, &mut rng)?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_finds_the_permutation() {
        let truth = [0, 0, 1, 1, 2, 2, 2];
        let pred = [2, 2, 0, 0, 1, 1, 0];
        let (acc, m) = matched_accuracy(&truth, &pred, 3);
        assert!((acc - 6.0 / 7.0).abs() < 1e-12);
        assert_eq!(m, vec![Some(1), Some(2), Some(0)]);
    }

    fn tiny(variant: Variant, supervision: Supervision) -> (FlowVaeTrainer, SequenceBatch) {
        let mut cfg = FlowVaeTrainConfig::new("sprites", PathBuf::from("/nonexistent"));
        cfg.variant = variant;
        cfg.supervision = supervision;
        cfg.k = 2;
        cfg.steps = 2;
        cfg.hidden = 8;
        cfg.time_dim = 4;
        let mut arch = GeneratorConfig::new(GeneratorKind::Vae, 3, 1);
        arch.base = 4;
        arch.image_size = 16;
        let t = FlowVaeTrainer::new(&cfg, &arch, vec!["a".into(), "b".into()]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let x = randn(&[9, 1, 16, 16], &mut rng, &Device::Cpu)
            .unwrap()
            .affine(0.1, 0.5)
            .unwrap()
            .clamp(0.0, 1.0)
            .unwrap();
        (
            t,
            SequenceBatch {
                x,
                labels: vec![0, 1, 1],
            },
        )
    }

    #[test]
    fn every_variant_takes_a_step_and_refuses_a_short_batch() {
        for (v, s) in [
            (Variant::Flow, Supervision::Full),
            (Variant::Flow, Supervision::Weak),
            (Variant::Wave, Supervision::Full),
            (Variant::Naive, Supervision::Full),
        ] {
            let (mut t, batch) = tiny(v, s);
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let values = t.step(&batch, 0, &mut rng).unwrap();
            assert!(
                values.iter().all(|(_, v)| v.is_finite()),
                "{v:?} {values:?}"
            );
            let short = SequenceBatch {
                x: batch.x.narrow(0, 0, 6).unwrap(),
                labels: batch.labels.clone(),
            };
            let e = t.step(&short, 1, &mut rng).unwrap_err().to_string();
            assert!(e.contains("needs 9 images, not 6"), "{e}");
        }
    }

    #[test]
    fn the_flow_loss_is_the_sum_of_its_terms() {
        let (t, batch) = tiny(Variant::Flow, Supervision::Full);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (loss, values) = t.loss(&batch, 0, &mut rng).unwrap();
        let get = |n: &str| values.iter().find(|(k, _)| k == n).unwrap().1;
        let sum = get("recon") + get("kl") + get("kl_flow") + get("pinn");
        assert!(
            (scalar(&loss).unwrap() - sum).abs() < 1e-3 * sum.abs(),
            "{values:?}"
        );
    }

    #[test]
    fn transforms_resolve_and_k_must_match() {
        let ds = crate::data::scenes::Scenes::new();
        let t = resolve_transforms(&ds, &["factors".into()], 8).unwrap();
        assert_eq!(
            transform_names(&ds, &t),
            [
                "floor_hue",
                "wall_hue",
                "object_hue",
                "scale",
                "orientation"
            ]
        );
        let e = resolve_transforms(&ds, &["factors".into()], 9)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scale") && e.contains("at most 7 steps"), "{e}");
        let both = resolve_transforms(&ds, &["factor:scale".into(), "scale".into()], 4).unwrap();
        assert_eq!(transform_names(&ds, &both), ["factor:scale", "scale"]);
        let e = resolve_transforms(&ds, &["hue".into(), "hue".into()], 4).unwrap_err();
        assert!(e.to_string().contains("twice"));
        let mut cfg = FlowVaeTrainConfig::new("scenes", PathBuf::from("x"));
        cfg.k = 4;
        let e = check_k(&cfg, &transform_names(&ds, &t))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--k 4 does not match the 5 transformations"),
            "{e}"
        );
        cfg.supervision = Supervision::Weak;
        assert!(check_k(&cfg, &transform_names(&ds, &t)).is_ok());
    }
}
