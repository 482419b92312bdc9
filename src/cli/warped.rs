//! `latentflow train-warped` and `latentflow train-ode`: WarpedSpace's paths and NeuralODE
//! editing's fields on a frozen generator.

use super::train::with_progress;
use super::{TrainOdeArgs, TrainWarpedArgs, command_line};
use crate::session::device;
use crate::train::ode::{OdeTrainConfig, train_ode as run_ode};
use crate::train::potentials::is_diagnostic;
use crate::train::warped::{WarpedTrainConfig, train_warped as run};
use anyhow::Result;
use std::collections::BTreeMap;

/// The final values of a run as one line (the per-pair diagnostics left out).
fn final_values(metrics: &BTreeMap<String, f64>) -> String {
    let values: Vec<String> = metrics
        .iter()
        .filter(|(n, _)| !is_diagnostic(n))
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    values.join(", ")
}

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
    println!(
        "trained {} iterations ({:.0} s in total); final: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        final_values(&summary.metrics),
        cfg.out.display()
    );
    Ok(())
}

/// The training settings `train-ode`'s flags describe (the command line is left empty for
/// the caller to fill).
pub fn ode_config_from_args(args: &TrainOdeArgs) -> OdeTrainConfig {
    let folder = if args.depth == 0 { "ode-linear" } else { "ode" };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.generator.join(folder));
    let mut cfg = OdeTrainConfig::new(args.generator.clone(), out);
    cfg.regressor = args.regressor.clone();
    cfg.factors = args.factors.iter().map(|f| f.trim().to_string()).collect();
    cfg.depth = args.depth;
    cfg.hidden = args.hidden;
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.min_time = args.min_time;
    cfg.max_time = args.max_time;
    cfg.rate = args.rate;
    cfg.w_keep = args.w_keep;
    cfg.groups = args.groups;
    cfg.substeps = args.substeps;
    cfg.step = args.step;
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    cfg
}

/// Trains the fields, with a progress bar, and prints the final values.
pub fn train_ode(args: TrainOdeArgs) -> Result<()> {
    let mut cfg = ode_config_from_args(&args);
    cfg.command = command_line();
    let summary = with_progress(cfg.iters, "codes/s", |cancel, report| {
        run_ode(&cfg, &device()?, cancel, report).map_err(Into::into)
    })?;
    println!(
        "trained {} iterations ({:.0} s in total), one field per factor ({}); final: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        summary.factors.join(", "),
        final_values(&summary.metrics),
        cfg.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_bare_commands_train_with_the_documented_defaults() {
        let cli = crate::cli::Cli::parse_from(["latentflow", "train-warped", "--generator", "g"]);
        let Some(crate::cli::Command::TrainWarped(args)) = cli.command else {
            panic!("not train-warped");
        };
        let from_flags = config_from_args(&args);
        let want = WarpedTrainConfig::new("g".into(), std::path::Path::new("g").join("warped"));
        assert_eq!(from_flags, want);
        let cli = crate::cli::Cli::parse_from(["latentflow", "train-ode", "--generator", "g"]);
        let Some(crate::cli::Command::TrainOde(args)) = cli.command else {
            panic!("not train-ode");
        };
        let want = OdeTrainConfig::new("g".into(), std::path::Path::new("g").join("ode"));
        assert_eq!(ode_config_from_args(&args), want);
    }
}
