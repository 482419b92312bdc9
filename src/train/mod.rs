//! Training loops as resumable jobs. A job runs on the calling thread, checks a
//! cancellation flag every iteration, reports [`Progress`] through a callback (the CLI
//! draws a progress bar from it, the app a loss plot), and checkpoints periodically so an
//! interruption loses at most the work since the last checkpoint.

pub mod batches;
pub mod density;
pub mod factors;
pub mod flow_vae;
pub mod generator;
pub mod job;
pub mod losses;
pub mod ode;
pub mod potentials;
pub mod sequences;
pub mod sets;
pub mod state;
pub mod warped;

pub use generator::{GeneratorTrainConfig, TrainSummary, train_generator};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared flags that ask a running job to stop, or to pause, at the next iteration.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>, Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Pauses (true) or resumes (false) the job.
    pub fn set_paused(&self, paused: bool) {
        self.1.store(paused, Ordering::SeqCst);
    }
    /// Whether the job is asked to pause.
    pub fn is_paused(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }
    /// Blocks while paused (returns at once when cancelled); jobs call it each iteration.
    pub fn wait_while_paused(&self) {
        while self.is_paused() && !self.is_cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A training job the app's panel (through the worker) can start: one per trainable
/// traversal method.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainJob {
    /// PDE potentials or the linear baseline.
    Potentials(potentials::PotentialTrainConfig),
    /// WarpedSpace's paths.
    Warped(warped::WarpedTrainConfig),
    /// NeuralODE editing's fields.
    Ode(ode::OdeTrainConfig),
    /// A flow-factorized VAE fine-tuned from the loaded VAE (a new model folder).
    FlowVae(flow_vae::FlowVaeTrainConfig),
}

impl TrainJob {
    /// The folder the job writes.
    pub fn out(&self) -> &std::path::Path {
        match self {
            TrainJob::Potentials(c) => &c.out,
            TrainJob::Warped(c) => &c.out,
            TrainJob::Ode(c) => &c.out,
            TrainJob::FlowVae(c) => &c.out,
        }
    }

    /// Whether the job makes a new model (to open when it is done) rather than a set of
    /// the loaded one.
    pub fn makes_model(&self) -> bool {
        matches!(self, TrainJob::FlowVae(_))
    }

    /// Trains on the generator in `dir` (the one loaded in the app).
    pub fn set_generator(&mut self, dir: std::path::PathBuf) {
        match self {
            TrainJob::Potentials(c) => c.generator = dir,
            TrainJob::Warped(c) => c.generator = dir,
            TrainJob::Ode(c) => c.generator = dir,
            TrainJob::FlowVae(c) => c.init = Some(dir),
        }
    }

    /// Runs the job to its end (or a cancel), reporting progress.
    pub fn run(
        &self,
        device: &candle_core::Device,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Progress),
    ) -> crate::Result<()> {
        match self {
            TrainJob::Potentials(c) => {
                potentials::train_potentials(c, device, cancel, progress).map(|_| ())
            }
            TrainJob::Warped(c) => warped::train_warped(c, device, cancel, progress).map(|_| ()),
            TrainJob::Ode(c) => ode::train_ode(c, device, cancel, progress).map(|_| ()),
            TrainJob::FlowVae(c) => {
                flow_vae::train_flow_vae(c, device, cancel, progress).map(|_| ())
            }
        }
    }
}

/// What a training job reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The job started at `iteration` (non-zero when resuming) of `total`.
    Started { iteration: u64, total: u64 },
    /// One logged iteration: named loss terms and throughput.
    Iteration {
        iteration: u64,
        total: u64,
        losses: Vec<(String, f64)>,
        images_per_s: f64,
    },
    /// A checkpoint was written after `iteration`.
    Checkpoint { iteration: u64 },
}
