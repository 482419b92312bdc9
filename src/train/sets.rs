//! What the trainers of traversal methods (potentials, WarpedSpace) share: how a set's
//! manifest refers to its generator, the manifest itself, the strip picture, and the
//! diversity diagnostics logged while training.

use super::state::LogRow;
use crate::data::image::grid;
use crate::methods::{PathSpec, Traversal};
use crate::models::Generator;
use crate::models::images::to_images;
use crate::store::LoadedGenerator;
use crate::store::manifest::{Manifest, Training};
use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// Iterations between two measurements of the directions' diversity while training.
pub const DIVERSITY_EVERY: u64 = 10;

/// How a set in `out` refers to the generator folder in its manifest: `..` when the set
/// lives inside it (the usual layout), else its absolute path (a path relative to the
/// working directory of the training run would mean nothing later).
pub fn generator_reference(out: &Path, generator: &Path) -> String {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    match (out.parent().and_then(canon), canon(generator)) {
        (Some(parent), Some(g)) if parent == g => "..".into(),
        (_, Some(g)) => g.display().to_string(),
        _ => generator.display().to_string(),
    }
}

/// What a set's manifest records besides its architecture.
pub struct SetRecord<'a> {
    /// The generator folder as the training command named it.
    pub generator_dir: &'a Path,
    /// The loaded generator (for its digest and dataset).
    pub generator: &'a LoadedGenerator,
    /// The set's folder.
    pub out: &'a Path,
    /// The command line.
    pub command: &'a str,
    /// The seed.
    pub seed: u64,
    /// The run's settings (its fingerprint).
    pub settings: &'a serde_json::Value,
}

/// The manifest of a trained set of model `model` with `architecture`, after `iteration`
/// iterations in `elapsed` seconds; its metrics are the last logged values.
pub fn set_manifest(
    model: &str,
    architecture: serde_json::Value,
    record: &SetRecord,
    iteration: u64,
    elapsed: f64,
    log: &[LogRow],
) -> Manifest {
    let mut manifest = Manifest::new(model, architecture);
    manifest.dataset = record.generator.manifest.dataset.clone();
    manifest.generator = Some(generator_reference(record.out, record.generator_dir));
    manifest.generator_digest = Some(record.generator.digest.clone());
    let settings: BTreeMap<String, serde_json::Value> = record
        .settings
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    manifest.training = Some(Training {
        command: record.command.to_string(),
        seed: record.seed,
        iterations: iteration,
        elapsed_s: elapsed,
        settings,
    });
    manifest.metrics = log
        .last()
        .map(|r| r.values.iter().cloned().collect())
        .unwrap_or_default();
    manifest
}

/// The architecture as a manifest's JSON.
pub fn architecture_json(arch: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(arch).map_err(|e| Error::config(e.to_string()))
}

/// Writes `strips.png`: one row per direction of `method`, the images of a `steps`-step
/// walk from `z` (one code).
pub fn save_strips(
    method: &dyn Traversal,
    generator: &LoadedGenerator,
    z: &Tensor,
    steps: usize,
    path: &Path,
) -> Result<()> {
    let mut frames = Vec::new();
    for k in 0..method.directions() {
        let walk = method.walk(z, &PathSpec::single(k, steps))?;
        for z in &walk {
            frames.extend(to_images(&generator.model.decode(z)?)?);
        }
    }
    grid(&frames, steps + 1, 2)?.save_png(path)
}

/// The logged diagnostics of a diversity measurement: `max_cos`, `cos_i_j` for i < j and
/// `len_k`; [`super::potentials::is_diagnostic`] tells them (and `c_k`) from the loss terms.
pub fn diversity_values(d: &crate::eval::diversity::Diversity) -> Vec<(String, f64)> {
    let mut values = vec![("max_cos".to_string(), d.max_abs_cosine)];
    for (i, row) in d.cosines.iter().enumerate() {
        for (j, c) in row.iter().enumerate().skip(i + 1) {
            values.push((format!("cos_{i}_{j}"), *c));
        }
    }
    for (k, l) in d.path_length.iter().enumerate() {
        values.push((format!("len_{k}"), *l));
    }
    values
}

/// The cosines between the directions' mean displacements z_T − z_0 from 16 fixed codes
/// (seeded by `seed`) and their path lengths ([`crate::eval::diversity`]).
pub fn measure_diversity(
    method: &dyn Traversal,
    generator: &LoadedGenerator,
    steps: usize,
    seed: u64,
    device: &candle_core::Device,
) -> Result<crate::eval::diversity::Diversity> {
    crate::eval::diversity::diversity(
        method,
        generator.config.prior,
        &crate::eval::diversity::DiversityConfig {
            codes: 16,
            steps,
            seed: seed ^ 0xd1,
            scale: 1.0,
        },
        device,
    )
}

/// The diversity diagnostics of a training run, measured every [`DIVERSITY_EVERY`]
/// iterations (the last values logged in between): the largest |cos|, the cosine of every
/// pair `cos_i_j` (i < j) and every direction's mean path length `len_k`.
#[derive(Default)]
pub struct DiversityLog {
    last: Option<crate::eval::diversity::Diversity>,
}

impl DiversityLog {
    /// The values to log at `iteration`, measuring `method` anew when it is due (see
    /// [`measure_diversity`]); none for fewer than two directions.
    pub fn values(
        &mut self,
        iteration: u64,
        method: impl FnOnce() -> Box<dyn Traversal>,
        generator: &LoadedGenerator,
        steps: usize,
        seed: u64,
        device: &candle_core::Device,
    ) -> Result<Vec<(String, f64)>> {
        let d = match self.last.take() {
            Some(d) if !iteration.is_multiple_of(DIVERSITY_EVERY) => d,
            _ => {
                let method = method();
                if method.directions() < 2 {
                    return Ok(Vec::new());
                }
                measure_diversity(method.as_ref(), generator, steps, seed, device)?
            }
        };
        let values = diversity_values(&d);
        self.last = Some(d);
        Ok(values)
    }
}

/// Everything a checkpoint of a trained set writes.
pub struct SetCheckpoint<'a> {
    /// The manifest's model name.
    pub model: &'a str,
    /// The set's architecture.
    pub architecture: serde_json::Value,
    /// What the manifest records besides.
    pub record: SetRecord<'a>,
    /// The training state (parameters of every network and the optimisers' moments).
    pub state: BTreeMap<String, Tensor>,
    /// The set's own weights.
    pub tensors: BTreeMap<String, Tensor>,
    /// The set as a traversal, for the strips.
    pub method: &'a dyn Traversal,
    /// The code the strips start from.
    pub strip_z: &'a Tensor,
    /// Steps of each strip.
    pub strip_steps: usize,
}

/// Writes a checkpoint into `record.out`: the training state (to resume), the set with its
/// manifest, `strips.png` and `loss.csv`.
pub fn save_set(c: &SetCheckpoint, iteration: u64, elapsed: f64, log: &[LogRow]) -> Result<()> {
    let out = c.record.out;
    super::state::TrainState {
        model: c.model.into(),
        iteration,
        elapsed_s: elapsed,
        settings: c.record.settings.clone(),
        log: log.to_vec(),
        tensors: c.state.clone(),
    }
    .save(&out.join(super::state::STATE_FILE))?;
    let mut manifest = set_manifest(
        c.model,
        c.architecture.clone(),
        &c.record,
        iteration,
        elapsed,
        log,
    );
    crate::store::save_checkpoint(out, &mut manifest, &c.tensors)?;
    save_strips(
        c.method,
        c.record.generator,
        c.strip_z,
        c.strip_steps,
        &out.join("strips.png"),
    )?;
    super::state::write_log_csv(&out.join("loss.csv"), log)
}

/// A method set's trainer, as [`SetJob`] drives it.
pub trait SetTrainer {
    /// Its settings.
    type Config;
    /// One iteration: the named values to log.
    fn step(
        &mut self,
        generator: &dyn crate::models::Generator,
        cfg: &Self::Config,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Vec<(String, f64)>>;
    /// The set as it stands, as a traversal (for the diagnostics and the strips).
    fn method(&self) -> Box<dyn Traversal>;
    /// Everything a resume needs (every network and optimiser).
    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>>;
    /// The set's own weights.
    fn weights(&self) -> Result<BTreeMap<String, Tensor>>;
}

/// What a set's run writes besides the trainer's tensors.
pub struct SetRun<'a> {
    /// The manifest's model name.
    pub model: &'static str,
    /// The set's architecture.
    pub architecture: serde_json::Value,
    /// The generator folder as named, and as loaded.
    pub generator_dir: &'a Path,
    /// See [`SetRun::generator_dir`].
    pub generator: &'a LoadedGenerator,
    /// The set's folder.
    pub out: &'a Path,
    /// The command line.
    pub command: &'a str,
    /// The run's seed (its iterations' generators, the strips' code).
    pub seed: u64,
    /// The run's settings (its fingerprint).
    pub settings: serde_json::Value,
    /// Steps of the strips and of the diversity diagnostic.
    pub strip_steps: usize,
}

/// A method set's training run as [`super::job::run`] drives it: the trainer's iterations
/// (each with its own seeded generator, so that a resumed run draws what an uninterrupted
/// one would), the diversity diagnostics, and checkpoints ([`save_set`]).
pub struct SetJob<'a, T: SetTrainer> {
    trainer: T,
    cfg: &'a T::Config,
    run: SetRun<'a>,
    strip_z: Tensor,
    diversity: DiversityLog,
}

impl<'a, T: SetTrainer> SetJob<'a, T> {
    /// A job of `trainer` with settings `cfg`; the strips start from one prior code of the
    /// run's seed.
    pub fn new(
        trainer: T,
        cfg: &'a T::Config,
        run: SetRun<'a>,
        device: &candle_core::Device,
    ) -> Result<Self> {
        use rand::SeedableRng;
        let g = &run.generator.config;
        let strip_z = crate::models::sample_latents(
            g.prior,
            1,
            g.latent,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(run.seed ^ 0x57a1),
            device,
        )?;
        Ok(Self {
            trainer,
            cfg,
            run,
            strip_z,
            diversity: DiversityLog::default(),
        })
    }
}

impl<T: SetTrainer> super::job::Steps for SetJob<'_, T> {
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.run.seed.wrapping_add(1));
        rng.set_stream(iteration);
        let mut values = self
            .trainer
            .step(&self.run.generator.model, self.cfg, &mut rng)?;
        let trainer = &self.trainer;
        values.extend(self.diversity.values(
            iteration,
            || trainer.method(),
            self.run.generator,
            self.run.strip_steps,
            self.run.seed,
            self.strip_z.device(),
        )?);
        Ok(values)
    }

    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()> {
        let method = self.trainer.method();
        let checkpoint = SetCheckpoint {
            model: self.run.model,
            architecture: self.run.architecture.clone(),
            record: SetRecord {
                generator_dir: self.run.generator_dir,
                generator: self.run.generator,
                out: self.run.out,
                command: self.run.command,
                seed: self.run.seed,
                settings: &self.run.settings,
            },
            state: self.trainer.state_tensors()?,
            tensors: self.trainer.weights()?,
            method: method.as_ref(),
            strip_z: &self.strip_z,
            strip_steps: self.run.strip_steps,
        };
        save_set(&checkpoint, iteration, elapsed_s, log)
    }
}
