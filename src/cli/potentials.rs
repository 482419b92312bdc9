//! `latentflow train-potentials` and `latentflow traverse`.

use super::train::with_progress;
use super::{TrainPotentialsArgs, TraverseArgs, command_line};
use crate::data::image::grid;
use crate::files::output::{FileKind, check_file};
use crate::limits::{self, MAX_SCALE, MAX_STEP_SCALE, MAX_STEPS};
use crate::methods::{PathSpec, Plan};
use crate::models::images::{decode_images, grid_bytes};
use crate::models::sample_latents;
use crate::session::device;
use crate::store::{default_method, load_generator};
use crate::train::potentials::{
    LossWeights, PotentialTrainConfig, defaults, train_potentials as run,
};
use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The training settings `train-potentials`' flags describe (the command line is left
/// empty for the caller to fill).
pub fn config_from_args(args: &TrainPotentialsArgs) -> Result<PotentialTrainConfig> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.generator.join(format!("potentials-{}", args.kind)));
    let mut cfg = PotentialTrainConfig::new(args.generator.clone(), out);
    cfg.kind = args.kind.parse()?;
    cfg.k = args.k;
    cfg.steps = args.steps;
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    if args.log_jacobian && args.jacobian == "squared" {
        bail!("--log-jacobian and --jacobian squared contradict each other");
    }
    let log_jacobian = args.log_jacobian || args.jacobian == "log";
    cfg.weights = LossWeights {
        u: args.w_u,
        f: args.w_f,
        j: args.w_j.unwrap_or(if log_jacobian {
            defaults::W_J
        } else {
            defaults::W_J_SQUARED
        }),
        k: args.w_k,
        d: args.w_d,
    };
    cfg.negative = args.negative;
    cfg.groups = args.groups;
    cfg.log_jacobian = log_jacobian;
    cfg.jacobian_at_next = args.jacobian_at == "next";
    cfg.grad_steps = args.grad_steps;
    cfg.classifier_warmup = args.classifier_warmup;
    cfg.diversity_on_walks = args.diversity_on == "walks";
    cfg.hidden = args.hidden;
    cfg.time_dim = args.time_dim;
    cfg.final_tanh = !args.no_final_tanh;
    cfg.linear_step = args.linear_step;
    cfg.wave_speed_floor = match args.wave_speed_floor.trim() {
        "off" => None,
        v => Some(v.parse::<f64>().map_err(|_| {
            anyhow::anyhow!("--wave-speed-floor takes a number in [0, 1) or off, not '{v}'")
        })?),
    };
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    Ok(cfg)
}

/// Trains a set of potentials on a frozen generator.
pub fn train_potentials(args: TrainPotentialsArgs) -> Result<()> {
    let mut cfg = config_from_args(&args)?;
    let out = cfg.out.clone();
    cfg.command = command_line();
    let summary = with_progress(cfg.iters, "codes/s", |cancel, report| {
        run(&cfg, &device()?, cancel, report).map_err(Into::into)
    })?;
    let metrics: Vec<String> = summary
        .metrics
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    println!(
        "trained {} iterations ({:.0} s in total); final: {}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        metrics.join(", "),
        out.display()
    );
    Ok(())
}

/// The method folder to use: the one given, or the model's default method
/// ([`default_method`]: a PDE set first), named on stderr so that a user sees which.
pub fn resolve_potentials(model: &Path, given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let chosen = default_method(model).with_context(|| {
        format!(
            "{} holds no potentials; train some with `latentflow train-potentials --generator {}` or pass --potentials",
            model.display(),
            model.display()
        )
    })?;
    eprintln!(
        "using the potentials in {} (the model's default set; --potentials picks another)",
        chosen.display()
    );
    Ok(chosen)
}

/// The plan the traversal flags describe.
pub fn plan_of(args: &TraverseArgs) -> Result<Plan> {
    if let Some(s) = &args.superpose {
        if args.switch_to.is_some() {
            bail!("--superpose and --switch-to cannot be combined");
        }
        return Ok(Plan::parse_superposition(s)?);
    }
    Ok(match args.switch_to {
        Some(then) => Plan::Switch {
            k: args.k,
            then,
            at: args.switch_at.unwrap_or(args.steps / 2),
        },
        None => {
            if args.switch_at.is_some() {
                bail!("--switch-at needs --switch-to");
            }
            Plan::Single(args.k)
        }
    })
}

/// Walks one latent code along the flow and saves the strip (and the per-step values).
pub fn traverse(args: TraverseArgs) -> Result<()> {
    if args.scale == 0 {
        bail!("--scale must be at least 1");
    }
    limits::check_count("--scale", args.scale, MAX_SCALE)?;
    limits::check_count("--steps", args.steps, MAX_STEPS)?;
    limits::check_magnitude("--step-scale", args.step_scale, MAX_STEP_SCALE)?;
    check_file(&args.out, FileKind::Png, args.force)?;
    if let Some(json) = &args.json {
        check_file(json, FileKind::Json, args.force)?;
    }
    if args.data_density && !args.preserve_density {
        bail!("--data-density chooses the density --preserve-density keeps: pass both");
    }
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let density = if args.data_density {
        let dir = crate::store::density::find_density(&args.source.model);
        let d = crate::store::density::load_density(&dir, &g, &dev).map_err(|e| {
            anyhow::anyhow!("{e} (fit one with `latentflow fit-density --model DIR`)")
        })?;
        Some(crate::methods::SharedDensity(std::sync::Arc::new(d)))
    } else {
        None
    };
    let spec = PathSpec {
        plan: plan_of(&args)?,
        steps: args.steps,
        negative: args.negative,
        scale: args.step_scale,
        preserve_density: args.preserve_density,
        density,
    };
    let c = &g.config;
    let n = args.steps + 1;
    limits::check_memory(
        &format!("traverse --steps {} --scale {}", args.steps, args.scale),
        grid_bytes(n, n, c.channels, c.image_size, c.image_size, args.scale),
    )?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let flow = crate::methods::open(&pot_dir, &g, &dev)?;
    let z0 = match &args.z {
        Some(p) => crate::edit::LatentCode::load(p, &g)?.tensor(&dev)?,
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
            sample_latents(g.config.prior, 1, g.config.latent, &mut rng, &dev)?
        }
    };
    let path = flow.path(&z0, &spec)?;
    let z_all = candle_core::Tensor::cat(&path.z, 0)?;
    let frames = decode_images(&g.model, &z_all)?;
    let mut strip = grid(&frames, frames.len(), 2)?;
    if args.scale > 1 {
        strip = strip.upscale_nearest(args.scale);
    }
    if let Some(json) = &args.json {
        let steps: Vec<serde_json::Value> = path
            .records
            .iter()
            .zip(&path.z)
            .map(|(r, z)| -> Result<serde_json::Value> {
                let mut point = serde_json::json!({
                    "t": r.t,
                    "z": z.squeeze(0)?.to_vec1::<f32>()?,
                    "step_norm": r.step_norm[0],
                });
                for s in &r.series {
                    point[s.name.as_str()] = s.values[0].into();
                }
                Ok(point)
            })
            .collect::<Result<_>>()?;
        let doc = serde_json::json!({
            "software": crate::files::MARK,
            "model": args.source.model.display().to_string(),
            "potentials": pot_dir.display().to_string(),
            "method": flow.method(),
            "seed": args.seed,
            "z": args.z.as_ref().map(|p| p.display().to_string()),
            "plan": format!("{:?}", spec.plan),
            "directions": spec
                .plan
                .directions()
                .into_iter()
                .map(|k| flow.direction_name(k))
                .collect::<Vec<_>>(),
            "negative": spec.negative,
            "steps": steps,
        });
        let text = serde_json::to_string_pretty(&doc)?;
        crate::files::atomic::write(json, text.as_bytes())?;
        println!("wrote {}", json.display());
    }
    strip.save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> TrainPotentialsArgs {
        let mut argv = vec!["latentflow", "train-potentials", "--generator", "g"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::TrainPotentials(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_flags_defaults_are_the_configs_defaults() {
        let from_flags = config_from_args(&args(&[])).unwrap();
        let from_code =
            PotentialTrainConfig::new("g".into(), Path::new("g").join("potentials-pde"));
        assert_eq!(from_flags, from_code);
        // The squared Jacobian term takes its own default weight.
        let squared = config_from_args(&args(&["--jacobian", "squared"])).unwrap();
        assert_eq!(squared.weights.j, defaults::W_J_SQUARED);
        assert!(!squared.log_jacobian);
    }
}
