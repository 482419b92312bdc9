//! `latentflow fit-directions`: SeFa or GANSpace directions of a generator, found in
//! closed form (no training), or DP-LaSE's, learned in seconds; saved as a direction set
//! beside the potentials.

use super::{FitDensityArgs, FitDirectionsArgs, command_line};
use crate::methods::closed_form::{DirectionMethod, FitConfig, fit_and_save};
use crate::session::device;
use crate::store::load_generator;
use anyhow::Result;

/// Fits the directions, saves them with `strips.png`, and prints what ranks them.
pub fn fit_directions(args: FitDirectionsArgs) -> Result<()> {
    let method: DirectionMethod = args.method.parse()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.generator.join(format!("directions-{}", method.name())));
    let dev = device()?;
    let g = load_generator(&args.generator, &dev)?;
    let cfg = FitConfig {
        method,
        k: args.k,
        step: args.step,
        samples: args.samples,
        seed: args.seed,
        iters: args.iters,
        subspaces: args.subspaces,
        subspace: args.subspace,
    };
    if method != DirectionMethod::DpLase && args.subspaces > 0 {
        anyhow::bail!("--subspaces refines DP-LaSE only (--method dplase)");
    }
    let scores = fit_and_save(&g, &cfg, &out, &command_line(), args.force, &dev)?;
    let ranked: Vec<String> = scores.iter().map(|s| format!("{s:.4}")).collect();
    println!(
        "{} directions by {} ({} {}); step {}; wrote {}",
        args.k,
        method.name(),
        method.score_name(),
        ranked.join(", "),
        args.step,
        out.display()
    );
    Ok(())
}

/// Fits the density model of the data's codes and prints what the correction achieves.
pub fn fit_density(args: FitDensityArgs) -> Result<()> {
    use crate::train::density::{DensityFitConfig, fit_and_save};
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::store::density::density_dir(&args.model));
    let dev = device()?;
    let g = load_generator(&args.model, &dev)?;
    let cfg = DensityFitConfig {
        components: args.components,
        hidden: args.hidden,
        samples: args.samples,
        iters: args.iters,
        correction_iters: args.correction_iters,
        seed: args.seed,
    };
    let mut last = 0usize;
    let s = fit_and_save(
        &g,
        &cfg,
        &out,
        &command_line(),
        args.force,
        &dev,
        &mut |stage, it, total, loss| {
            if it == total || it >= last + total.div_ceil(10) {
                last = if it == total { 0 } else { it };
                eprintln!("{stage}: {it}/{total}, loss {loss:.4}");
            }
        },
    )?;
    println!(
        "held-out codes: mean log-density {:.3} under the fit, {:.3} under N(0, I); \
         held-out walks' log-density gap {:.3} rescaled, {:.3} corrected; wrote {}",
        s.log_density,
        s.prior_log_density,
        s.gap_rescaled,
        s.gap_corrected,
        out.display()
    );
    Ok(())
}
