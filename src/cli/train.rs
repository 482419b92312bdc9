//! `latentflow train-generator`: train with a progress bar; Ctrl-C checkpoints and stops.

use super::{TrainGeneratorArgs, command_line};
use crate::session::device;
use crate::train::{CancelToken, GeneratorTrainConfig, Progress, train_generator as run_training};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

/// Trains the generator the arguments describe.
pub fn train_generator(args: TrainGeneratorArgs) -> Result<()> {
    let mut cfg = GeneratorTrainConfig::new(&args.dataset, args.kind, args.out.clone());
    cfg.latent = args.latent;
    cfg.base = args.base;
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.beta = args.beta;
    cfg.kl_warmup = args.kl_warmup;
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    cfg.command = command_line();

    let summary = with_progress(args.iters, "img/s", |cancel, report| {
        run_training(&cfg, &device()?, cancel, report).map_err(Into::into)
    });
    let summary = summary?;
    let metrics: Vec<String> = summary
        .metrics
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    println!(
        "trained {} iterations ({:.0} s in total, {:.0} img/s); final: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        summary.images_per_s,
        metrics.join(", "),
        args.out.display()
    );
    Ok(())
}

/// Runs a training job with a progress bar; Ctrl-C cancels it (the job checkpoints and
/// returns [`crate::Error::Cancelled`]). `rate` names the throughput unit shown.
pub fn with_progress<T>(
    total: u64,
    rate: &str,
    job: impl FnOnce(&CancelToken, &mut dyn FnMut(Progress)) -> Result<T>,
) -> Result<T> {
    let cancel = CancelToken::new();
    let handler_token = cancel.clone();
    // A second Ctrl-C (or a failure to install the handler) falls back to the default.
    let _ = ctrlc::set_handler(move || handler_token.cancel());
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} it  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = job(&cancel, &mut |p| match p {
        Progress::Started { iteration, .. } => {
            if iteration > 0 {
                bar.suspend(|| eprintln!("resuming at iteration {iteration}"));
            }
            bar.set_position(iteration);
        }
        Progress::Iteration {
            iteration,
            losses,
            images_per_s,
            ..
        } => {
            bar.set_position(iteration);
            let terms: Vec<String> = losses
                .iter()
                .filter(|(n, _)| !crate::train::potentials::is_diagnostic(n))
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            bar.set_message(format!("{}  {images_per_s:.0} {rate}", terms.join("  ")));
        }
        Progress::Checkpoint { .. } => {}
    });
    bar.finish_and_clear();
    result
}

/// `latentflow train-factors`.
pub fn train_factors(args: super::TrainFactorsArgs) -> Result<()> {
    use crate::train::factors::{FactorTrainConfig, train_factors as run};
    let mut cfg = FactorTrainConfig::new(&args.dataset, args.out.clone());
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    cfg.command = super::command_line();
    let summary = with_progress(cfg.iters, "img/s", |cancel, report| {
        run(&cfg, &crate::session::device()?, cancel, report).map_err(Into::into)
    })?;
    let acc: Vec<String> = summary
        .held_out
        .iter()
        .map(|(n, v)| format!("{} {v:.3}", n.trim_start_matches("acc_")))
        .collect();
    println!(
        "trained {} iterations ({:.0} s in total); held-out accuracy per factor: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        acc.join(", "),
        args.out.display()
    );
    Ok(())
}
