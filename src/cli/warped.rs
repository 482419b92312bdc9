//! `latentflow train-warped`: WarpedSpace's paths on a frozen generator.

use super::train::with_progress;
use super::{TrainWarpedArgs, command_line};
use crate::session::device;
use crate::train::potentials::is_diagnostic;
use crate::train::warped::{WarpedTrainConfig, train_warped as run};
use anyhow::Result;

/// The training settings `train-warped`'s flags describe (the command line is left empty
/// for the caller to fill).
pub fn config_from_args(args: &TrainWarpedArgs) -> WarpedTrainConfig {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.generator.join("warped"));
    let mut cfg = WarpedTrainConfig::new(args.generator.clone(), out);
    cfg.k = args.k;
    cfg.dipoles = args.dipoles;
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.reconstructor_lr = args.reconstructor_lr;
    cfg.min_shift = args.min_shift;
    cfg.max_shift = args.max_shift;
    cfg.w_shift = args.w_shift;
    cfg.step = args.step;
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    cfg
}

/// Trains the paths, with a progress bar, and prints the final values.
pub fn train_warped(args: TrainWarpedArgs) -> Result<()> {
    let mut cfg = config_from_args(&args);
    cfg.command = command_line();
    let summary = with_progress(cfg.iters, "codes/s", |cancel, report| {
        run(&cfg, &device()?, cancel, report).map_err(Into::into)
    })?;
    let metrics: Vec<String> = summary
        .metrics
        .iter()
        .filter(|(n, _)| !is_diagnostic(n))
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    println!(
        "trained {} iterations ({:.0} s in total); final: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        metrics.join(", "),
        cfg.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_bare_command_trains_with_the_documented_defaults() {
        let cli = crate::cli::Cli::parse_from(["latentflow", "train-warped", "--generator", "g"]);
        let Some(crate::cli::Command::TrainWarped(args)) = cli.command else {
            panic!("not train-warped");
        };
        let from_flags = config_from_args(&args);
        let want = WarpedTrainConfig::new("g".into(), std::path::Path::new("g").join("warped"));
        assert_eq!(from_flags, want);
    }
}
