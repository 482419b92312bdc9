//! `latentflow eval vp`.

use super::potentials::resolve_potentials;
use super::{EvalVpArgs, device};
use crate::eval::vp::{VpConfig, vp_score};
use crate::methods::{PotentialFlow, Traversal};
use crate::store::{load_generator, load_potentials};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Prints the VP score (mean and per seed) as one JSON line.
pub fn vp(args: EvalVpArgs) -> Result<()> {
    if args.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    crate::limits::check_count(
        "the number of --seeds",
        args.seeds.len(),
        crate::limits::MAX_EVAL_SEEDS,
    )?;
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let pots = load_potentials(&pot_dir, &g, &dev)?;
    let flow = PotentialFlow::new(pots.potentials);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut scores = Vec::new();
    for &seed in &args.seeds {
        let cfg = VpConfig {
            pairs: args.pairs,
            steps: args.steps,
            epochs: args.epochs,
            seed,
            ..VpConfig::default()
        };
        bar.set_message(format!("seed {seed}"));
        let r = vp_score(&g.model, &flow, &cfg, &dev, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        scores.push(r.accuracy);
    }
    bar.finish_and_clear();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    let line = serde_json::json!({
        "model": args.source.model.display().to_string(),
        "potentials": pot_dir.display().to_string(),
        "method": flow.method(),
        "k": flow.directions(),
        "pairs": args.pairs,
        "steps": args.steps,
        "seeds": args.seeds,
        "vp": scores,
        "vp_mean": mean,
        "vp_std": std,
        "chance": 1.0 / flow.directions() as f64,
    });
    println!("{line}");
    Ok(())
}
