//! `latentflow eval compare --train DIR`: the comparison's runs made by the command itself.
//! Every trainable method is trained with one budget (iterations, batch) and the same
//! training seeds on the generator, the fitted ones fitted with the same seeds, into
//! `DIR/NAME-METHOD-SEED` folders; runs already there are resumed or kept, so an
//! interrupted protocol goes on where it stopped. The folders are then compared.

use super::EvalCompareArgs;
use super::train::with_progress;
use crate::methods::closed_form::{DirectionMethod, FitConfig, fit_and_save};
use crate::models::potential::PotentialKind;
use crate::store::LoadedGenerator;
use crate::train::ode::OdeTrainConfig;
use crate::train::potentials::PotentialTrainConfig;
use crate::train::warped::WarpedTrainConfig;
use crate::train::{CancelToken, Progress, TrainJob};
use anyhow::{Result, bail};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The steps of the potentials' roll-outs in the protocol (the fair protocol's).
const STEPS: usize = 10;

/// One run of the protocol: a folder and how to make it.
enum Run {
    Train(Box<TrainJob>),
    Fit(FitConfig),
}

/// The runs for `g` as `args` asks, in the order they are compared: for each method, its
/// seeds (SeFa, deterministic, once).
fn runs(args: &EvalCompareArgs, dir: &Path, g: &LoadedGenerator) -> Vec<(PathBuf, Run)> {
    let name = g
        .dir
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let folder = |method: &str, seed: u64| dir.join(format!("{name}-{method}-{seed}"));
    let generator = g.dir.clone();
    let mut out = Vec::new();
    for kind in [PotentialKind::Pde, PotentialKind::Linear] {
        for &seed in &args.train_seeds {
            let method = if kind == PotentialKind::Pde {
                "pde"
            } else {
                "linear"
            };
            let mut c = PotentialTrainConfig::new(generator.clone(), folder(method, seed));
            c.kind = kind;
            c.k = args.k;
            c.steps = STEPS;
            c.iters = args.train_iters;
            c.batch_size = args.train_batch;
            c.seed = seed;
            out.push((c.out.clone(), Run::Train(Box::new(TrainJob::Potentials(c)))));
        }
    }
    for method in [
        DirectionMethod::Sefa,
        DirectionMethod::Ganspace,
        DirectionMethod::DpLase,
    ] {
        let seeds: &[u64] = if method == DirectionMethod::Sefa {
            &args.train_seeds[..1]
        } else {
            &args.train_seeds
        };
        for &seed in seeds {
            let mut cfg = FitConfig::new(method, args.k.min(g.config.latent));
            cfg.seed = seed;
            out.push((folder(method.name(), seed), Run::Fit(cfg)));
        }
    }
    for &seed in &args.train_seeds {
        let mut c = WarpedTrainConfig::new(generator.clone(), folder("warped", seed));
        c.k = args.k;
        c.iters = args.train_iters;
        c.batch_size = args.train_batch;
        c.seed = seed;
        out.push((c.out.clone(), Run::Train(Box::new(TrainJob::Warped(c)))));
    }
    if !args.no_ode {
        for &seed in &args.train_seeds {
            let mut c = OdeTrainConfig::new(generator.clone(), folder("ode", seed));
            c.regressor = args.regressor.clone();
            c.iters = args.train_iters;
            c.batch_size = args.train_batch;
            c.seed = seed;
            out.push((c.out.clone(), Run::Train(Box::new(TrainJob::Ode(c)))));
        }
    }
    out
}

/// Makes every run of the protocol in `dir` that is not there yet (a finished training run
/// is kept, an interrupted one resumed) and returns the folders to compare.
pub fn train_all(
    args: &EvalCompareArgs,
    dir: &Path,
    g: &LoadedGenerator,
    device: &Device,
) -> Result<Vec<PathBuf>> {
    if args.train_seeds.is_empty() {
        bail!("--train-seeds needs at least one seed");
    }
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if !args.no_ode {
        let mut probe = OdeTrainConfig::new(g.dir.clone(), PathBuf::new());
        probe.regressor = args.regressor.clone();
        let regressor = probe.regressor_dir(g)?;
        if !regressor.is_dir() {
            bail!(
                "NeuralODE's runs need a factor regressor, and {} is not one: train it with \
                 `latentflow train-factors`, pass --regressor, or leave NeuralODE out with --no-ode",
                regressor.display()
            );
        }
    }
    crate::files::atomic::create_dir(dir)?;
    let runs = runs(args, dir, g);
    let total = runs.len();
    let mut folders = Vec::with_capacity(total);
    for (i, (out, run)) in runs.into_iter().enumerate() {
        let done = out.join(crate::store::MANIFEST_FILE).is_file();
        match run {
            Run::Fit(cfg) => {
                if !done {
                    eprintln!("[{}/{total}] fitting {}", i + 1, out.display());
                    fit_and_save(g, &cfg, &out, &super::command_line(), false, device)?;
                }
            }
            Run::Train(mut job) => {
                eprintln!("[{}/{total}] training {}", i + 1, out.display());
                set_command(&mut job);
                let iters = args.train_iters;
                with_progress(
                    iters,
                    "codes/s",
                    |cancel: &CancelToken, report: &mut dyn FnMut(Progress)| {
                        job.run(device, cancel, report).map_err(Into::into)
                    },
                )?;
            }
        }
        folders.push(out);
    }
    Ok(folders)
}

fn set_command(job: &mut TrainJob) {
    let command = super::command_line();
    match job {
        TrainJob::Potentials(c) => c.command = command,
        TrainJob::Warped(c) => c.command = command,
        TrainJob::Ode(c) => c.command = command,
        TrainJob::FlowVae(c) => c.command = command,
    }
}
