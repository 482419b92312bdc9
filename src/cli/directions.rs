//! `latentflow fit-directions`: SeFa or GANSpace directions of a generator, found in
//! closed form (no training), or DP-LaSE's, learned in seconds; saved as a direction set
//! beside the potentials.

use super::{FitDirectionsArgs, command_line};
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
