//! Training potentials on a frozen generator (PDE traversal, and its linear baseline on
//! the same code path), as a resumable job that reports [`Progress`].
//!
//! Per iteration one step t ∈ [0, T) and (with `negative`) one sign are drawn for the whole
//! batch, and the batch is split into `groups` groups with one potential k each (the
//! papers draw one k per batch, `groups = 1`; several per batch give the classifier more
//! than one class per update, which it needs to learn on a CPU budget). The codes z_0 ~ prior are rolled t steps along the flow
//! (without gradient), and
//!
//! - L_u = mean ‖∇u^k(z_0, 0)‖² (initial condition),
//! - L_f = mean (∂²_t u^k − c_k² Δ_z u^k)² at (z_t, t) (wave equation),
//! - L_J = −mean ‖J_G(z_t) ∇u^k‖² (squared norm over all pixels; exact forward-mode JVP
//!   through G), or with `log_jacobian` −mean log ‖J_G(z_t) ∇u^k‖²: on our CPU budget the
//!   squared form lets L_u and L_f win and every gradient collapse to zero (observed on the
//!   scenes VAE after ~500 iterations at several weights); the logarithm keeps pulling as
//!   ∇u shrinks and is scale-free, so its weight does not depend on the image size,
//! - L_k = cross-entropy of a pair classifier that sees (G(z_t), G(z_t ± ∇u^k)) and predicts k,
//!
//! weighted and summed; Adam updates the potentials, the wave speeds and the classifier
//! together. A negative step (z_{t+1} = z_t − ∇u, the reflection of the forward step about
//! z_t) keeps the same label, so a potential has to mean the same thing both ways.

use super::sets;
use super::state::{LogRow, TrainState};
use super::{CancelToken, Progress, job};
use crate::limits::{self, MAX_BATCH, MAX_K, MAX_STEP_SCALE, MAX_STEPS, MAX_WIDTH};
use crate::methods::PotentialFlow;
use crate::models::classifier::{PairClassifier, cross_entropy};
use crate::models::potential::{PotentialConfig, PotentialKind, Potentials};
use crate::models::{Generator, sample_latents};
use crate::nn::{Adam, Params};
use crate::store::{self, LoadedGenerator};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Weights of the four loss terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// Initial condition L_u.
    pub u: f64,
    /// Wave-equation residual L_f.
    pub f: f64,
    /// Jacobian term L_J.
    pub j: f64,
    /// Classifier cross-entropy L_k.
    pub k: f64,
    /// Diversity term L_d: mean squared cosine between different potentials' mean steps
    /// (applied the same way to the linear baseline's directions).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub d: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            u: defaults::W_U,
            f: defaults::W_F,
            j: defaults::W_J,
            k: defaults::W_K,
            d: defaults::W_D,
        }
    }
}

/// The wave speeds' floor of new runs (see [`PotentialConfig::wave_speed_floor`]).
pub const DEFAULT_WAVE_SPEED_FLOOR: f64 = defaults::WAVE_SPEED_FLOOR;

/// The training settings' defaults, defined once: `train-potentials`' flags,
/// [`PotentialTrainConfig::new`] and the app's training panel all read them here.
pub mod defaults {
    /// Potentials K.
    pub const K: usize = 8;
    /// Flow steps T per roll-out.
    pub const STEPS: usize = 10;
    /// Iterations.
    pub const ITERS: u64 = 2000;
    /// Codes per batch.
    pub const BATCH_SIZE: usize = 32;
    /// Adam learning rate.
    pub const LR: f64 = 1e-3;
    /// Weights of L_u, L_f, L_J (the logarithmic form), L_k and L_d.
    pub const W_U: f64 = 1.0;
    /// See [`W_U`].
    pub const W_F: f64 = 1.0;
    /// See [`W_U`]; the squared L_J sums over every pixel and wants [`W_J_SQUARED`].
    pub const W_J: f64 = 1.0;
    /// L_J's weight in its squared form.
    pub const W_J_SQUARED: f64 = 0.02;
    /// See [`W_U`].
    pub const W_K: f64 = 1.0;
    /// See [`W_U`] (against collapse: docs/methods.md, "Diversity term").
    pub const W_D: f64 = 10.0;
    /// Potentials per batch.
    pub const GROUPS: usize = 4;
    /// Hidden width of each potential MLP.
    pub const HIDDEN: usize = 128;
    /// Width of the time embedding.
    pub const TIME_DIM: usize = 32;
    /// Length of a linear potential's initial step.
    pub const LINEAR_STEP: f64 = 0.5;
    /// Smallest wave speed c_k.
    pub const WAVE_SPEED_FLOOR: f64 = 0.5;
    /// Random seed.
    pub const SEED: u64 = 0;
    /// Iterations between checkpoints.
    pub const CHECKPOINT_EVERY: u64 = 100;
    /// The app's training panel: a shorter run that ends while the user watches.
    pub const PANEL_K: usize = 6;
    /// See [`PANEL_K`].
    pub const PANEL_ITERS: u64 = 500;
    /// See [`PANEL_K`].
    pub const PANEL_BATCH_SIZE: usize = 16;
    /// The panel checkpoints and logs more often, for its live curves.
    pub const PANEL_CHECKPOINT_EVERY: u64 = 50;
    /// See [`PANEL_CHECKPOINT_EVERY`].
    pub const PANEL_LOG_EVERY: u64 = 5;
}

/// Settings of a potential training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotentialTrainConfig {
    /// The generator folder (frozen during training).
    pub generator: PathBuf,
    /// PDE potentials or the linear baseline.
    pub kind: PotentialKind,
    /// Number of potentials K.
    pub k: usize,
    /// Steps T per traversal.
    pub steps: usize,
    /// Total iterations.
    pub iters: u64,
    /// Latent codes per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Loss weights.
    pub weights: LossWeights,
    /// Also train negative traversals.
    pub negative: bool,
    /// Groups per batch, each with its own potential (1: the papers' one k per batch).
    pub groups: usize,
    /// L_J = −log ‖J ∇u‖² instead of −‖J ∇u‖².
    #[serde(default)]
    pub log_jacobian: bool,
    /// Evaluate L_J at the next point (z_{t+1}, t+1) rather than at (z_t, t): never at
    /// t = 0, where the initial condition L_u wants ∇u = 0 and the two terms fight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jacobian_at_next: bool,
    /// Keep the gradient through the last this many steps of the roll-out z_0 → z_t (0:
    /// the roll-out carries none, and only the step taken at z_t is shaped by L_f, L_J and
    /// L_k).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grad_steps: usize,
    /// Iterations at the start in which only the classifier learns (the potentials stay
    /// as initialised).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub classifier_warmup: u64,
    /// Measure the diversity term on the walks' displacements z_T − z_0 (a few codes walked
    /// T steps by every potential, gradient through every step) instead of on the mean
    /// single step at the batch's points.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diversity_on_walks: bool,
    /// Hidden width of each potential.
    pub hidden: usize,
    /// Time-embedding size.
    pub time_dim: usize,
    /// u = tanh(v).
    pub final_tanh: bool,
    /// Step length of linear potentials.
    pub linear_step: f64,
    /// A floor for the wave speeds (see [`PotentialConfig::wave_speed_floor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_speed_floor: Option<f64>,
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

impl PotentialTrainConfig {
    /// Defaults: K = 8 PDE potentials, T = 10, 32 codes per batch, the logarithmic Jacobian
    /// term at the next point, the diversity term at weight 10 and wave speeds above 0.5
    /// (chosen by the experiments in docs/methods.md).
    pub fn new(generator: PathBuf, out: PathBuf) -> Self {
        Self {
            generator,
            kind: PotentialKind::Pde,
            k: defaults::K,
            steps: defaults::STEPS,
            iters: defaults::ITERS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            weights: LossWeights::default(),
            negative: false,
            groups: defaults::GROUPS,
            log_jacobian: true,
            jacobian_at_next: true,
            grad_steps: 0,
            diversity_on_walks: false,
            classifier_warmup: 0,
            hidden: defaults::HIDDEN,
            time_dim: defaults::TIME_DIM,
            final_tanh: true,
            linear_step: defaults::LINEAR_STEP,
            wave_speed_floor: Some(defaults::WAVE_SPEED_FLOOR),
            seed: defaults::SEED,
            checkpoint_every: defaults::CHECKPOINT_EVERY,
            log_every: 10,
            out,
            command: String::new(),
            restart: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.k == 0 || self.steps == 0 || self.iters == 0 || self.batch_size == 0 {
            return Err(Error::config(
                "--k, --steps, --iters and --batch-size must be at least 1",
            ));
        }
        limits::check_count("--k", self.k, MAX_K)?;
        limits::check_count("--steps", self.steps, MAX_STEPS)?;
        limits::check_count("--batch-size", self.batch_size, MAX_BATCH)?;
        limits::check_count("--hidden", self.hidden, MAX_WIDTH)?;
        limits::check_count("--time-dim", self.time_dim, MAX_WIDTH)?;
        limits::check_magnitude("--linear-step", self.linear_step, MAX_STEP_SCALE)?;
        if self.classifier_warmup >= self.iters {
            return Err(Error::config(format!(
                "--classifier-warmup {} leaves none of the {} iterations to the potentials",
                self.classifier_warmup, self.iters
            )));
        }
        if self.grad_steps > self.steps {
            return Err(Error::config(format!(
                "--grad-steps {} is more than the {} steps of a roll-out",
                self.grad_steps, self.steps
            )));
        }
        if self.checkpoint_every == 0 || self.log_every == 0 {
            return Err(Error::config(
                "checkpoint and log intervals must be positive",
            ));
        }
        let w = self.weights;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("--lr must be positive"));
        }
        if [w.u, w.f, w.j, w.k, w.d]
            .iter()
            .any(|x| !x.is_finite() || *x < 0.0)
        {
            return Err(Error::config(
                "loss weights must be finite and non-negative",
            ));
        }
        Ok(())
    }

    fn fingerprint(&self) -> serde_json::Value {
        job::fingerprint(self)
    }

    /// Bytes a training iteration on a generator `g` takes, estimated from above: the
    /// potentials with gradients and Adam's moments, and per code the generator's value
    /// and tangent passes (with the next image and the classifier) and the potentials'
    /// carried Jacobians.
    pub fn memory_bytes(&self, g: &crate::models::GeneratorConfig) -> u64 {
        let latent = g.latent as u128;
        let (k, hidden, time) = (self.k as u128, self.hidden as u128, self.time_dim as u128);
        let weights = k
            .saturating_mul(hidden)
            .saturating_mul(latent + time + 4)
            .saturating_mul(4);
        let per_code = g
            .activation_count()
            .saturating_mul(3 * 12)
            .saturating_add(hidden.saturating_mul(latent + 4).saturating_mul(16));
        limits::f32_bytes(weights.saturating_add(per_code.saturating_mul(self.batch_size as u128)))
    }

    /// The potential architecture these settings train.
    pub fn architecture(&self, latent: usize) -> PotentialConfig {
        let mut cfg = PotentialConfig::new(self.kind, self.k, latent);
        cfg.hidden = self.hidden;
        cfg.time_dim = self.time_dim;
        cfg.final_tanh = self.final_tanh;
        cfg.step = self.linear_step;
        cfg.wave_speed_floor = self.wave_speed_floor;
        cfg
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct PotentialTrainSummary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Where this invocation started.
    pub resumed_from: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// Final losses (mean over the last logged window) and classifier accuracy.
    pub metrics: BTreeMap<String, f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The generator-free loss terms of one iteration.
#[derive(Debug)]
pub struct PdeTerms {
    /// Initial condition ‖∇u(z_0, 0)‖² (mean).
    pub l_u: Tensor,
    /// Wave residual f² at (z_t, t) (mean).
    pub l_f: Tensor,
    /// The rolled codes z_t (gradient through the roll-out's last `grad_steps` steps).
    pub z_t: Tensor,
    /// The next step ±∇u(z_t, t) (with gradient).
    pub step: Tensor,
}

/// The trainable parts: potentials, classifier and their optimisers.
pub struct PotentialTrainer {
    pot_params: Params,
    clf_params: Params,
    potentials: Potentials,
    classifier: PairClassifier,
    opt_pot: Adam,
    opt_clf: Adam,
    /// Whether an iteration updates the potentials (false: the classifier alone learns,
    /// a warm-up).
    update_potentials: bool,
}

impl PotentialTrainer {
    /// Whether the next iterations update the potentials, or only the classifier (its
    /// warm-up, so that L_k pulls the potentials apart with a classifier that already
    /// tells something).
    pub fn set_update_potentials(&mut self, update: bool) {
        self.update_potentials = update;
    }

    /// Fresh potentials of architecture `arch` and a classifier for `channels`-channel images.
    pub fn new(
        arch: &PotentialConfig,
        channels: usize,
        size: usize,
        lr: f64,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let pot_params = Params::new(seed, device);
        let potentials = Potentials::new(&pot_params, arch)?;
        let clf_params = Params::new(seed ^ 0xc1a5, device);
        let classifier = PairClassifier::new(&clf_params, 2 * channels, size, arch.k)?;
        let opt_pot = Adam::new(pot_params.trainable_vars()?, lr)?;
        let opt_clf = Adam::new(clf_params.trainable_vars()?, lr)?;
        Ok(Self {
            pot_params,
            clf_params,
            potentials,
            classifier,
            opt_pot,
            opt_clf,
            update_potentials: true,
        })
    }

    /// The potentials being trained.
    pub fn potentials(&self) -> &Potentials {
        &self.potentials
    }

    /// One iteration; returns the named loss terms, the classifier accuracy and the mean
    /// wave speed.
    pub fn step(
        &mut self,
        generator: &dyn Generator,
        cfg: &PotentialTrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>> {
        let dev = self.pot_params.device().clone();
        let b = cfg.batch_size;
        // The batch is split into groups, each with its own potential (distinct ones while
        // there are enough), so the classifier sees several classes per update.
        let groups = cfg.groups.clamp(1, b.min(cfg.k));
        let mut ks: Vec<usize> = (0..cfg.k).collect();
        ks.shuffle(rng);
        let t = rng.gen_range(0..cfg.steps);
        let sign = if cfg.negative && rng.gen_bool(0.5) {
            -1.0
        } else {
            1.0
        };
        let gcfg = generator.config();
        let (mut l_u, mut l_f) = (
            Tensor::zeros((), DType::F32, &dev)?,
            Tensor::zeros((), DType::F32, &dev)?,
        );
        let (mut zs, mut steps, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        let mut next_steps = Vec::new();
        for (g, &k) in ks.iter().cycle().take(groups).enumerate() {
            let size = b / groups + usize::from(g < b % groups);
            let z0 = sample_latents(gcfg.prior, size, gcfg.latent, rng, &dev)?;
            let terms = self.pde_terms(&z0, k, t, sign, cfg.grad_steps)?;
            let share = size as f64 / b as f64;
            l_u = (l_u + (terms.l_u * share)?)?;
            l_f = (l_f + (terms.l_f * share)?)?;
            if cfg.jacobian_at_next {
                // ±∇u(z_{t+1}, t+1), with gradient through z_{t+1} = z_t + step.
                let z1 = (&terms.z_t + &terms.step)?;
                let t1 = Tensor::full((t + 1) as f32, size, &dev)?;
                next_steps.push((self.potentials.grad(&z1, &t1, k)? * sign)?);
            }
            zs.push(terms.z_t);
            steps.push(terms.step);
            labels.extend(std::iter::repeat_n(k as u32, size));
        }
        let z = Tensor::cat(&zs, 0)?;
        let v = Tensor::cat(&steps, 0)?;
        // The Jacobian term's point and direction, and the classifier's pair (x_t, x_{t+1}).
        let (x_t, x_next, jv) = if cfg.jacobian_at_next {
            let z1 = (&z + &v)?;
            let (x_next, jv) = generator.jvp(&z1, &Tensor::cat(&next_steps, 0)?)?;
            (generator.decode(&z)?, x_next, jv)
        } else {
            let (x_t, jv) = generator.jvp(&z, &v)?;
            (x_t, generator.decode(&(&z + &v)?)?, jv)
        };
        // −‖J_G(z_t) ∇u‖² per code (summed over pixels), averaged over the batch; or its
        // logarithm, whose pull does not vanish as ∇u → 0.
        let norm_sq = jv.sqr()?.flatten_from(1)?.sum(1)?;
        let l_j = if cfg.log_jacobian {
            (norm_sq + 1e-6)?.log()?.mean_all()?.neg()?
        } else {
            norm_sq.mean_all()?.neg()?
        };
        let labels = Tensor::new(labels, &dev)?;
        let logits = self.classifier.forward(&x_t.detach(), &x_next)?;
        let (l_k, acc) = cross_entropy(&logits, &labels)?;
        let w = cfg.weights;
        let mut loss = ((((&l_u * w.u)? + (&l_f * w.f)?)? + (&l_j * w.j)?)? + (&l_k * w.k)?)?;
        let l_d = if w.d > 0.0 {
            let l_d = if cfg.diversity_on_walks {
                let z0 = sample_latents(gcfg.prior, WALK_CODES, gcfg.latent, rng, &dev)?;
                self.walk_diversity(&z0, cfg.steps)?
            } else {
                self.diversity(&z.detach(), t)?
            };
            loss = (loss + (&l_d * w.d)?)?;
            Some(l_d)
        } else {
            None
        };
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar()?) };
        let mut values = vec![
            ("loss".to_string(), scalar(&loss)?),
            ("l_u".to_string(), scalar(&l_u)?),
            ("l_f".to_string(), scalar(&l_f)?),
            ("l_j".to_string(), scalar(&l_j)?),
            ("l_k".to_string(), scalar(&l_k)?),
            ("acc".to_string(), acc),
        ];
        if let Some(l_d) = &l_d {
            values.push(("l_d".to_string(), scalar(l_d)?));
        }
        values.extend([(
            "wave_speed".to_string(),
            scalar(&self.potentials.speeds()?.mean_all()?)?,
        )]);
        // Name the first bad term (the total is bad whenever a term is).
        let bad = values
            .iter()
            .skip(1)
            .chain(values.first())
            .find(|(_, v)| !v.is_finite());
        if let Some((name, value)) = bad {
            return Err(Error::config(format!("loss term {name} became {value}")));
        }
        let grads = loss.backward()?;
        if self.update_potentials {
            self.opt_pot.step(&grads)?;
        }
        self.opt_clf.step(&grads)?;
        Ok(values)
    }

    /// The generator-free part of an iteration: roll `z0` for `t` steps along potential
    /// `k` (with gradient through the last `grad_steps` of them only), then L_u at (z_0, 0),
    /// L_f at (z_t, t) and the next step ±∇u(z_t, t).
    pub fn pde_terms(
        &self,
        z0: &Tensor,
        k: usize,
        t: usize,
        sign: f64,
        grad_steps: usize,
    ) -> Result<PdeTerms> {
        let b = z0.dim(0)?;
        let dev = z0.device();
        let time = |s: usize| Tensor::full(s as f32, b, dev);
        let mut z = z0.clone();
        for s in 0..t {
            let g = self.potentials.grad(&z, &time(s)?, k)?;
            // Steps s with t − s ≤ grad_steps (the last ones) keep their gradient.
            let g = if t - s <= grad_steps { g } else { g.detach() };
            z = (&z + (g * sign)?)?;
        }
        let zero_grad = self.potentials.grad(z0, &time(0)?, k)?;
        let l_u = zero_grad.sqr()?.sum(1)?.mean_all()?;
        let ev = self.potentials.eval(&z, &time(t)?, k)?;
        let l_f = self.potentials.residual(&ev, k)?.sqr()?.mean_all()?;
        let step = (&ev.grad * sign)?;
        Ok(PdeTerms {
            l_u,
            l_f,
            z_t: z,
            step,
        })
    }

    /// The diversity term L_d at the codes `z` and step `t`: with m_k the mean over `z`
    /// of ∇u^k(z, t) for every k, the mean over k ≠ l of cos²(m_k, m_l). Zero when the
    /// mean steps are orthogonal, one when they share an axis (in either direction); for
    /// linear potentials m_k is the direction itself, so both kinds get the same term.
    pub fn diversity(&self, z: &Tensor, t: usize) -> Result<Tensor> {
        let k = self.potentials.len();
        let dev = z.device();
        if k < 2 {
            return Ok(Tensor::zeros((), DType::F32, dev)?);
        }
        let time = Tensor::full(t as f32, z.dim(0)?, dev)?;
        let mut means = Vec::with_capacity(k);
        for i in 0..k {
            means.push(self.potentials.grad(z, &time, i)?.mean(0)?);
        }
        mean_squared_cosine(&means)
    }

    /// The diversity term on whole walks: every potential walks the codes `z0` for `steps`
    /// steps (gradient through every step), m_k is the mean displacement z_T − z_0, and the
    /// term is the mean over k ≠ l of cos²(m_k, m_l) — what `eval diversity` measures.
    pub fn walk_diversity(&self, z0: &Tensor, steps: usize) -> Result<Tensor> {
        let k = self.potentials.len();
        let dev = z0.device();
        if k < 2 {
            return Ok(Tensor::zeros((), DType::F32, dev)?);
        }
        let mut means = Vec::with_capacity(k);
        for i in 0..k {
            let mut z = z0.clone();
            for s in 0..steps {
                let time = Tensor::full(s as f32, z0.dim(0)?, dev)?;
                z = (&z + self.potentials.grad(&z, &time, i)?)?;
            }
            means.push((z - z0)?.mean(0)?);
        }
        mean_squared_cosine(&means)
    }

    /// Updates the potentials (only) from the gradients of `loss`; for benchmarks of the
    /// potential losses alone.
    pub fn step_potentials(&mut self, loss: &Tensor) -> Result<()> {
        self.opt_pot.step(&loss.backward()?)?;
        Ok(())
    }

    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        super::state::gather(
            &[("pot.", &self.pot_params), ("clf.", &self.clf_params)],
            &[("opt0.", &self.opt_pot), ("opt1.", &self.opt_clf)],
        )
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        super::state::scatter(
            state,
            &[("pot.", &self.pot_params), ("clf.", &self.clf_params)],
            &mut [("opt0.", &mut self.opt_pot), ("opt1.", &mut self.opt_clf)],
        )
    }
}

/// Trains potentials as `cfg` says, resuming a run found in `cfg.out`.
pub fn train_potentials(
    cfg: &PotentialTrainConfig,
    device: &Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<PotentialTrainSummary> {
    cfg.validate()?;
    let out = &cfg.out;
    let resumed = job::prepare(out, "potentials", cfg.restart, &cfg.fingerprint(), device)?;
    let generator = store::load_generator(&cfg.generator, device)?;
    let arch = cfg.architecture(generator.config.latent);
    arch.validate()?;
    limits::check_memory(
        &format!(
            "training {} potentials of width {} with batches of {}",
            cfg.k, cfg.hidden, cfg.batch_size
        ),
        cfg.memory_bytes(&generator.config),
    )?;
    let (channels, size) = (generator.config.channels, generator.config.image_size);
    let mut trainer = PotentialTrainer::new(&arch, channels, size, cfg.lr, cfg.seed, device)?;
    if let Some(state) = &resumed {
        trainer.restore(state)?;
    }
    let strip_z = sample_latents(
        generator.config.prior,
        1,
        generator.config.latent,
        &mut ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x57a1),
        device,
    )?;
    let mut run = PotentialJob {
        diversity: sets::DiversityLog::default(),
        trainer,
        saver: Saver {
            cfg,
            arch: &arch,
            generator: &generator,
            strip_z: &strip_z,
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
    Ok(PotentialTrainSummary {
        iterations: o.iterations,
        resumed_from: o.resumed_from,
        elapsed_s: o.elapsed_s,
        metrics: o.metrics,
    })
}

/// The mean over k ≠ l of cos²(m_k, m_l) for K ≥ 2 vectors: (Σ cos² − K) / (K(K − 1)),
/// the diagonal being exactly one.
fn mean_squared_cosine(means: &[Tensor]) -> Result<Tensor> {
    let k = means.len();
    let m = Tensor::stack(means, 0)?;
    let norm = (m.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
    let m = m.broadcast_div(&norm)?;
    let cos_sq = m.matmul(&m.t()?)?.sqr()?;
    Ok(((cos_sq.sum_all()? - k as f64)? / (k * (k - 1)) as f64)?)
}

/// Codes walked per iteration by the diversity term on walks.
const WALK_CODES: usize = 8;

/// The potential run as [`job::run`] drives it.
struct PotentialJob<'a> {
    trainer: PotentialTrainer,
    saver: Saver<'a>,
    /// The last diversity measured (see [`PotentialJob::diversity`]).
    diversity: sets::DiversityLog,
}

/// Whether a logged name is a per-potential or per-pair diagnostic (`cos_i_j`, `len_k`,
/// `c_k`) rather than a loss term or a summary: progress lines and loss plots leave them
/// out; loss.csv keeps them.
pub fn is_diagnostic(name: &str) -> bool {
    ["cos_", "len_", "c_"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()))
    })
}

/// The K×K cosine matrix rebuilt from logged `cos_i_j` values (the diagonal is 1), or
/// `None` when the values hold no pair.
pub fn cosine_matrix(values: &[(String, f64)]) -> Option<Vec<Vec<f64>>> {
    let pairs: Vec<(usize, usize, f64)> = values
        .iter()
        .filter_map(|(name, v)| {
            let (i, j) = name.strip_prefix("cos_")?.split_once('_')?;
            Some((i.parse().ok()?, j.parse().ok()?, *v))
        })
        .collect();
    let k = pairs.iter().map(|&(i, j, _)| i.max(j) + 1).max()?;
    if k > MAX_K {
        return None;
    }
    let mut m = vec![vec![0.0; k]; k];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for (i, j, c) in pairs {
        m[i][j] = c;
        m[j][i] = c;
    }
    Some(m)
}

impl job::Steps for PotentialJob<'_> {
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>> {
        let cfg = self.saver.cfg;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1));
        rng.set_stream(iteration);
        self.trainer
            .set_update_potentials(iteration >= cfg.classifier_warmup);
        let mut values = self
            .trainer
            .step(&self.saver.generator.model, cfg, &mut rng)?;
        let potentials = self.trainer.potentials().clone();
        values.extend(self.diversity.values(
            iteration,
            || Box::new(PotentialFlow::new(potentials)),
            self.saver.generator,
            cfg.steps,
            cfg.seed,
            self.saver.strip_z.device(),
        )?);
        if cfg.kind == PotentialKind::Pde {
            let speeds = self.trainer.potentials().speeds()?.to_vec1::<f32>()?;
            for (k, c) in speeds.iter().enumerate() {
                values.push((format!("c_{k}"), f64::from(*c)));
            }
        }
        Ok(values)
    }

    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()> {
        self.saver.save(iteration, &self.trainer, log, elapsed_s)
    }
}

struct Saver<'a> {
    cfg: &'a PotentialTrainConfig,
    arch: &'a PotentialConfig,
    generator: &'a LoadedGenerator,
    strip_z: &'a Tensor,
}

impl Saver<'_> {
    /// Writes the training state, the potentials with their manifest, one traversal strip
    /// per potential (`strips.png`, a row each) and the loss log.
    fn save(
        &self,
        iteration: u64,
        trainer: &PotentialTrainer,
        log: &[LogRow],
        elapsed: f64,
    ) -> Result<()> {
        let settings = self.cfg.fingerprint();
        let flow = PotentialFlow::new(trainer.potentials.clone());
        let checkpoint = sets::SetCheckpoint {
            model: "potentials",
            architecture: sets::architecture_json(self.arch)?,
            record: sets::SetRecord {
                generator_dir: &self.cfg.generator,
                generator: self.generator,
                out: &self.cfg.out,
                command: &self.cfg.command,
                seed: self.cfg.seed,
                settings: &settings,
            },
            state: trainer.state_tensors()?,
            tensors: trainer.pot_params.tensors()?,
            method: &flow,
            strip_z: self.strip_z,
            strip_steps: self.cfg.steps,
        };
        sets::save_set(&checkpoint, iteration, elapsed, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{GeneratorConfig, GeneratorKind, GeneratorModel};

    fn tiny_generator(dev: &Device) -> GeneratorModel {
        let mut cfg = GeneratorConfig::new(GeneratorKind::Vae, 3, 1);
        cfg.base = 4;
        GeneratorModel::new(&Params::new(0, dev), &cfg).unwrap()
    }

    fn config(kind: PotentialKind) -> PotentialTrainConfig {
        let mut cfg = PotentialTrainConfig::new(PathBuf::new(), PathBuf::new());
        cfg.kind = kind;
        cfg.k = 2;
        cfg.steps = 3;
        cfg.batch_size = 4;
        cfg.hidden = 8;
        cfg.time_dim = 4;
        cfg.negative = true;
        cfg
    }

    #[test]
    fn iterations_report_finite_terms_and_move_the_weights() {
        let dev = Device::Cpu;
        let g = tiny_generator(&dev);
        for (kind, log_jacobian, at_next) in [
            (PotentialKind::Pde, false, false),
            (PotentialKind::Pde, true, false),
            (PotentialKind::Pde, true, true),
            (PotentialKind::Linear, false, false),
            (PotentialKind::Linear, true, true),
        ] {
            let mut cfg = config(kind);
            cfg.log_jacobian = log_jacobian;
            cfg.jacobian_at_next = at_next;
            let arch = cfg.architecture(3);
            let mut tr = PotentialTrainer::new(&arch, 1, 64, 1e-2, 0, &dev).unwrap();
            let before: BTreeMap<String, Tensor> = tr
                .pot_params
                .tensors()
                .unwrap()
                .into_iter()
                .map(|(n, t)| (n, t.copy().unwrap()))
                .collect();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            for _ in 0..3 {
                let v = tr.step(&g, &cfg, &mut rng).unwrap();
                // The loss terms in a fixed order (the job adds the diversity
                // diagnostics; `c_k` may follow them).
                let names: Vec<&str> = v
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| !is_diagnostic(n))
                    .collect();
                assert_eq!(
                    names,
                    [
                        "loss",
                        "l_u",
                        "l_f",
                        "l_j",
                        "l_k",
                        "acc",
                        "l_d",
                        "wave_speed"
                    ]
                );
                assert!(v.iter().all(|(_, x)| x.is_finite()));
            }
            let after = tr.pot_params.tensors().unwrap();
            let moved = before.iter().any(|(n, t)| {
                let d = (t - &after[n]).unwrap().abs().unwrap().sum_all().unwrap();
                d.to_scalar::<f32>().unwrap() > 0.0
            });
            assert!(moved, "{kind:?}: no weight changed");
        }
    }

    #[test]
    fn the_diversity_term_is_the_mean_squared_cosine_of_the_mean_steps() {
        let dev = Device::Cpu;
        for kind in [PotentialKind::Pde, PotentialKind::Linear] {
            let mut cfg = config(kind);
            cfg.k = 3;
            let arch = cfg.architecture(4);
            let tr = PotentialTrainer::new(&arch, 1, 64, 1e-2, 7, &dev).unwrap();
            let z = Tensor::randn(0f32, 1.0, (5, 4), &dev).unwrap();
            let t = 2;
            // By hand: each code's step on its own, averaged in f64, then cos² per pair.
            let mut means = Vec::new();
            for k in 0..3 {
                let mut m = [0f64; 4];
                for i in 0..5 {
                    let zi = z.narrow(0, i, 1).unwrap();
                    let ti = Tensor::full(t as f32, 1, &dev).unwrap();
                    let g = tr.potentials.grad(&zi, &ti, k).unwrap();
                    for (mj, gj) in m
                        .iter_mut()
                        .zip(g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                    {
                        *mj += f64::from(gj) / 5.0;
                    }
                }
                means.push(m);
            }
            let dot = |a: &[f64; 4], b: &[f64; 4]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
            let mut expected = 0.0;
            for i in 0..3 {
                for j in 0..3 {
                    if i != j {
                        let c = dot(&means[i], &means[j])
                            / (dot(&means[i], &means[i]) * dot(&means[j], &means[j])).sqrt();
                        expected += c * c / 6.0;
                    }
                }
            }
            let got: f32 = tr.diversity(&z, t).unwrap().to_scalar().unwrap();
            assert!(
                (f64::from(got) - expected).abs() < 1e-5,
                "{kind:?}: {got} vs {expected}"
            );
            assert!(expected > 0.0 && expected < 1.0);
        }
    }

    #[test]
    fn the_walk_diversity_is_the_mean_squared_cosine_of_the_displacements() {
        let dev = Device::Cpu;
        // Linear potentials: a walk of T steps moves T times the direction, so the walk
        // term equals the step term.
        let mut cfg = config(PotentialKind::Linear);
        cfg.k = 3;
        let tr = PotentialTrainer::new(&cfg.architecture(4), 1, 64, 1e-2, 3, &dev).unwrap();
        let z = Tensor::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let walks: f32 = tr.walk_diversity(&z, 4).unwrap().to_scalar().unwrap();
        let steps: f32 = tr.diversity(&z, 0).unwrap().to_scalar().unwrap();
        assert!((walks - steps).abs() < 1e-5, "{walks} vs {steps}");
        // PDE potentials: by hand, each code walked on its own, displacements averaged.
        let mut cfg = config(PotentialKind::Pde);
        cfg.k = 3;
        let tr = PotentialTrainer::new(&cfg.architecture(4), 1, 64, 1e-2, 5, &dev).unwrap();
        let mut means = Vec::new();
        for k in 0..3 {
            let mut m = [0f64; 4];
            for i in 0..5 {
                let z0 = z.narrow(0, i, 1).unwrap();
                let mut zi = z0.clone();
                for s in 0..3 {
                    let ts = Tensor::full(s as f32, 1, &dev).unwrap();
                    zi = (&zi + tr.potentials.grad(&zi, &ts, k).unwrap()).unwrap();
                }
                let d: Vec<f32> = (zi - &z0)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                for (mj, dj) in m.iter_mut().zip(d) {
                    *mj += f64::from(dj) / 5.0;
                }
            }
            means.push(m);
        }
        let cos = |a: &[f64; 4], b: &[f64; 4]| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let n = |v: &[f64; 4]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            dot / (n(a) * n(b))
        };
        let want = [(0, 1), (0, 2), (1, 2)]
            .iter()
            .map(|&(i, j)| cos(&means[i], &means[j]).powi(2))
            .sum::<f64>()
            / 3.0;
        let got: f32 = tr.walk_diversity(&z, 3).unwrap().to_scalar().unwrap();
        assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn the_diversity_term_is_logged_and_pulls_the_weights() {
        let dev = Device::Cpu;
        let g = tiny_generator(&dev);
        let mut cfg = config(PotentialKind::Linear);
        cfg.k = 3;
        cfg.weights = LossWeights {
            u: 0.0,
            f: 0.0,
            j: 0.0,
            k: 0.0,
            d: 1.0,
        };
        let arch = cfg.architecture(3);
        let mut tr = PotentialTrainer::new(&arch, 1, 64, 5e-2, 3, &dev).unwrap();
        let z = Tensor::randn(0f32, 1.0, (8, 3), &dev).unwrap();
        let before: f32 = tr.diversity(&z, 0).unwrap().to_scalar().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..40 {
            let v = tr.step(&g, &cfg, &mut rng).unwrap();
            assert!(v.iter().any(|(n, _)| n == "l_d"));
        }
        let after: f32 = tr.diversity(&z, 0).unwrap().to_scalar().unwrap();
        // Three directions in three dimensions can be made orthogonal.
        assert!(after < 0.5 * before && after < 0.05, "{before} → {after}");
    }

    #[test]
    fn logged_cosines_rebuild_the_matrix_and_diagnostics_are_told_apart() {
        let d = crate::eval::diversity::Diversity {
            cosines: vec![
                vec![1.0, 0.5, -0.25],
                vec![0.5, 1.0, 0.0],
                vec![-0.25, 0.0, 1.0],
            ],
            max_abs_cosine: 0.5,
            displacement: vec![1.0; 3],
            path_length: vec![1.0, 2.0, 3.0],
            length_over_displacement: vec![1.0; 3],
        };
        let values = sets::diversity_values(&d);
        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "max_cos", "cos_0_1", "cos_0_2", "cos_1_2", "len_0", "len_1", "len_2"
            ]
        );
        assert_eq!(cosine_matrix(&values), Some(d.cosines.clone()));
        assert_eq!(cosine_matrix(&values[..1]), None);
        for n in ["cos_0_1", "len_2", "c_0"] {
            assert!(is_diagnostic(n), "{n}");
        }
        for n in ["max_cos", "l_d", "loss", "acc", "wave_speed", "c_x"] {
            assert!(!is_diagnostic(n), "{n}");
        }
    }

    #[test]
    fn during_the_warm_up_only_the_classifier_learns() {
        let dev = Device::Cpu;
        let g = tiny_generator(&dev);
        let cfg = config(PotentialKind::Pde);
        let arch = cfg.architecture(3);
        let mut tr = PotentialTrainer::new(&arch, 1, 64, 1e-2, 0, &dev).unwrap();
        let snapshot = |p: &Params| -> BTreeMap<String, Tensor> {
            p.tensors()
                .unwrap()
                .into_iter()
                .map(|(n, t)| (n, t.copy().unwrap()))
                .collect()
        };
        let moved = |before: &BTreeMap<String, Tensor>, p: &Params| {
            let after = p.tensors().unwrap();
            before.iter().any(|(n, t)| {
                let d = (t - &after[n]).unwrap().abs().unwrap().sum_all().unwrap();
                d.to_scalar::<f32>().unwrap() > 0.0
            })
        };
        let (pots, clf) = (snapshot(&tr.pot_params), snapshot(&tr.clf_params));
        tr.set_update_potentials(false);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        tr.step(&g, &cfg, &mut rng).unwrap();
        assert!(!moved(&pots, &tr.pot_params) && moved(&clf, &tr.clf_params));
        tr.set_update_potentials(true);
        tr.step(&g, &cfg, &mut rng).unwrap();
        assert!(moved(&pots, &tr.pot_params));
        // A warm-up as long as the run is refused.
        let mut bad = config(PotentialKind::Pde);
        bad.classifier_warmup = bad.iters;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_rollout_carries_gradient_only_through_its_last_steps() {
        let dev = Device::Cpu;
        let arch = config(PotentialKind::Pde).architecture(3);
        let tr = PotentialTrainer::new(&arch, 1, 64, 1e-2, 0, &dev).unwrap();
        let z0 = Tensor::new(&[[0.3f32, -1.0, 0.5], [1.2, 0.1, -0.4]], &dev).unwrap();
        let none = tr.pde_terms(&z0, 0, 3, 1.0, 0).unwrap();
        let last2 = tr.pde_terms(&z0, 0, 3, 1.0, 2).unwrap();
        assert!(!none.z_t.track_op() && last2.z_t.track_op());
        // The same point either way, but different gradients of L_f for the weights.
        let same = (&none.z_t - &last2.z_t).unwrap().abs().unwrap();
        assert_eq!(same.max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        let (ga, gb) = (none.l_f.backward().unwrap(), last2.l_f.backward().unwrap());
        let differs = tr
            .pot_params
            .trainable_vars()
            .unwrap()
            .iter()
            .any(
                |(_, v)| match (ga.get(v.as_tensor()), gb.get(v.as_tensor())) {
                    (Some(a), Some(b)) => {
                        let d = (a - b).unwrap().abs().unwrap().sum_all().unwrap();
                        d.to_scalar::<f32>().unwrap() > 0.0
                    }
                    _ => false,
                },
            );
        assert!(differs, "the roll-out's gradient changed nothing");
        // More gradient steps than a roll-out has are refused.
        let mut bad = config(PotentialKind::Pde);
        bad.grad_steps = bad.steps + 1;
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("--grad-steps"), "{e}");
    }

    #[test]
    fn linear_potentials_have_no_pde_terms() {
        let dev = Device::Cpu;
        let g = tiny_generator(&dev);
        let cfg = config(PotentialKind::Linear);
        let mut tr = PotentialTrainer::new(&cfg.architecture(3), 1, 64, 1e-2, 0, &dev).unwrap();
        let v = tr
            .step(&g, &cfg, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        let get = |n: &str| v.iter().find(|(m, _)| m == n).unwrap().1;
        assert_eq!(get("l_f"), 0.0);
        // ∇u is the unit direction scaled to the step length: L_u = step².
        assert!((get("l_u") - cfg.linear_step.powi(2)).abs() < 1e-5);
    }

    /// A generator that decodes everything to NaN.
    struct Broken(GeneratorConfig);

    impl Generator for Broken {
        fn config(&self) -> &GeneratorConfig {
            &self.0
        }
        fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
            Tensor::full(f32::NAN, (z.dim(0)?, 1, 64, 64), z.device())
        }
        fn jvp(&self, z: &Tensor, _: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
            let x = self.decode(z)?;
            Ok((x.clone(), x))
        }
    }

    #[test]
    fn non_finite_terms_are_named() {
        let dev = Device::Cpu;
        let g = Broken(GeneratorConfig::new(GeneratorKind::Vae, 3, 1));
        let cfg = config(PotentialKind::Pde);
        let mut tr = PotentialTrainer::new(&cfg.architecture(3), 1, 64, 1e-2, 0, &dev).unwrap();
        let e = tr
            .step(&g, &cfg, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap_err();
        assert!(e.to_string().contains("loss term l_j became NaN"), "{e}");
    }
}
