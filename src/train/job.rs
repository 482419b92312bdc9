//! What every training job shares: refusing to overwrite a finished model, resuming a run
//! with the same settings, and the loop (pause, cancel with a checkpoint, progress reports,
//! logging, periodic checkpoints, errors that name the iteration).

use super::state::{LogRow, STATE_FILE, TrainState};
use super::{CancelToken, Progress};
use crate::files::atomic;
use crate::store;
use crate::{Error, Result};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Checks the output folder `out` of a run that trains a `model` ("generator",
/// "potentials") and loads the run to resume, if any. The folder may be new, empty, or
/// hold latentflow's own run or model *of the same kind*: anything else — a folder of the
/// user's, another kind of model (say, the generator the potentials are trained on) — is
/// refused whatever the flags. A finished model is replaced only with `restart`, and a
/// run with other settings is not resumed.
pub fn prepare(
    out: &Path,
    model: &str,
    restart: bool,
    fingerprint: &serde_json::Value,
    device: &Device,
) -> Result<Option<TrainState>> {
    let state_path = out.join(STATE_FILE);
    let manifest_path = out.join(store::MANIFEST_FILE);
    let refuse = |why: String| {
        Err(Error::config(format!(
            "{} {why}; choose another --out",
            out.display()
        )))
    };
    if out.exists() {
        if !out.is_dir() {
            return refuse("is a file, not a folder".into());
        }
        let has_manifest = manifest_path.exists();
        let has_state = state_path.exists();
        if has_manifest {
            let found = match store::Manifest::load(&manifest_path) {
                Ok(m) => m.model,
                Err(e) => return refuse(format!("holds a manifest latentflow cannot read ({e})")),
            };
            if found != model {
                return refuse(format!(
                    "holds a {found} model, not {model}, and is never replaced by one"
                ));
            }
        }
        if has_state {
            let found = super::state::peek_model(&state_path)?;
            if found != model {
                return refuse(format!(
                    "holds a training run of a {found} model, not {model}"
                ));
            }
        }
        if !has_manifest && !has_state && !is_empty_of_user_files(out)? {
            return refuse(format!(
                "is not empty and holds no latentflow {model}; latentflow writes only into a \
                 new or empty folder or its own model"
            ));
        }
        if has_manifest && !has_state && !restart {
            return Err(Error::config(format!(
                "{} already holds {}; choose another --out or pass --restart to overwrite it",
                out.display(),
                if model == "generator" {
                    "a generator"
                } else {
                    model
                }
            )));
        }
    }
    atomic::check_writable(out)?;
    if restart || !state_path.exists() {
        return Ok(None);
    }
    let state = TrainState::load(&state_path, device)?;
    if &state.settings != fingerprint {
        return Err(Error::config(format!(
            "{} holds a run with other settings ({}); pass --restart to start over or choose another --out",
            out.display(),
            state.settings
        )));
    }
    Ok(Some(state))
}

/// Whether `dir` holds nothing but temporary files that latentflow leaves while writing.
fn is_empty_of_user_files(dir: &Path) -> Result<bool> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.contains(".tmp-")) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a run's settings must match to be resumed: all of them but the iterations and the
/// checkpoint and log intervals (a run may be resumed for longer, or report more often).
pub fn fingerprint(settings: &impl serde::Serialize) -> serde_json::Value {
    let mut v = serde_json::to_value(settings).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        for key in ["iters", "checkpoint_every", "log_every"] {
            m.remove(key);
        }
    }
    v
}

/// One training job as the loop drives it.
pub trait Steps {
    /// Runs iteration `iteration` (0-based) and returns its named values.
    fn step(&mut self, iteration: u64) -> Result<Vec<(String, f64)>>;
    /// Writes a checkpoint after `iteration` iterations (the loop has created the output
    /// folder: it is made at the first checkpoint, so a run that dies before leaves none).
    fn save(&mut self, iteration: u64, log: &[LogRow], elapsed_s: f64) -> Result<()>;
}

/// Loop settings.
#[derive(Debug, Clone, Copy)]
pub struct LoopSpec<'a> {
    /// Total iterations.
    pub iters: u64,
    /// Report every this many iterations.
    pub log_every: u64,
    /// Checkpoint every this many iterations.
    pub checkpoint_every: u64,
    /// Items per iteration (for the throughput).
    pub batch_size: usize,
    /// The output folder (named in errors).
    pub out: &'a Path,
}

/// How a loop ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Where this invocation started.
    pub resumed_from: u64,
    /// Training seconds in total.
    pub elapsed_s: f64,
    /// The last logged values.
    pub metrics: BTreeMap<String, f64>,
    /// Items per second in this invocation.
    pub items_per_s: f64,
}

/// Runs `job` from the resumed position to `spec.iters`.
pub fn run(
    job: &mut dyn Steps,
    spec: LoopSpec,
    resumed: Option<TrainState>,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let (mut iteration, elapsed_prev, mut log) = match resumed {
        Some(s) => (s.iteration, s.elapsed_s, s.log),
        None => (0, 0.0, Vec::new()),
    };
    let resumed_from = iteration;
    progress(Progress::Started {
        iteration,
        total: spec.iters,
    });
    let start = Instant::now();
    let mut window = Vec::new();
    while iteration < spec.iters {
        cancel.wait_while_paused();
        if cancel.is_cancelled() {
            atomic::create_dir(spec.out)?;
            job.save(
                iteration,
                &log,
                elapsed_prev + start.elapsed().as_secs_f64(),
            )?;
            progress(Progress::Checkpoint { iteration });
            return Err(Error::Cancelled);
        }
        let values = job.step(iteration).map_err(|e| {
            Error::config(format!(
                "training stopped at iteration {}: {e}; the last good checkpoint in {} is kept",
                iteration + 1,
                spec.out.display()
            ))
        })?;
        iteration += 1;
        window.push(values);
        let elapsed = elapsed_prev + start.elapsed().as_secs_f64();
        if iteration % spec.log_every == 0 || iteration == spec.iters {
            let values = mean_values(&window);
            window.clear();
            let done = (iteration - resumed_from) as f64;
            log.push(LogRow {
                iteration,
                elapsed_s: elapsed,
                values: values.clone(),
            });
            progress(Progress::Iteration {
                iteration,
                total: spec.iters,
                losses: values,
                images_per_s: done * spec.batch_size as f64
                    / start.elapsed().as_secs_f64().max(1e-9),
            });
        }
        if iteration % spec.checkpoint_every == 0 || iteration == spec.iters {
            atomic::create_dir(spec.out)?;
            job.save(iteration, &log, elapsed)?;
            progress(Progress::Checkpoint { iteration });
        }
    }
    if resumed_from == spec.iters {
        // Nothing left to do, but make sure the exported files exist.
        atomic::create_dir(spec.out)?;
        job.save(iteration, &log, elapsed_prev)?;
    }
    let run_s = start.elapsed().as_secs_f64();
    Ok(Outcome {
        iterations: iteration,
        resumed_from,
        elapsed_s: elapsed_prev + run_s,
        metrics: log
            .last()
            .map(|r| r.values.iter().cloned().collect())
            .unwrap_or_default(),
        items_per_s: (iteration - resumed_from) as f64 * spec.batch_size as f64 / run_s.max(1e-9),
    })
}

/// The mean of each named value over a window of log rows (all rows name the same values
/// in the same order).
fn mean_values(window: &[Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let Some(first) = window.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let sum: f64 = window.iter().map(|v| v[i].1).sum();
            (name.clone(), sum / window.len() as f64)
        })
        .collect()
}
