//! `latentflow export-gif`: the app's GIF export from the command line.

use super::ExportGifArgs;
use super::potentials::resolve_potentials;
use crate::files::output::{FileKind, check_file};
use crate::limits::{self, MAX_STEPS};
use crate::session::device;
use crate::session::{GifOptions, RenderRequest, export_gif, load_model};
use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

/// Writes an animated GIF of one traversal (a grid of `--seeds` codes per frame).
pub fn export_gif_cmd(args: ExportGifArgs) -> Result<()> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    limits::check_count("--steps", args.steps, MAX_STEPS)?;
    check_file(&args.out, FileKind::Gif, args.force)?;
    let dev = device()?;
    let model = load_model(&args.source.model, &dev)?;
    let wanted = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if let Some((_, why)) = model
        .unusable
        .iter()
        .find(|(d, _)| canon(d) == canon(&wanted))
    {
        bail!("cannot use the potentials in {}: {why}", wanted.display());
    }
    let method = model
        .methods
        .iter()
        .position(|(m, _)| canon(&m.dir) == canon(&wanted))
        .with_context(|| {
            format!(
                "{} is not a potential set inside {}",
                wanted.display(),
                args.source.model.display()
            )
        })?;
    let k_total = model.methods[method].0.names.len();
    if args.k >= k_total {
        bail!(
            "potential {} is out of range: there are {k_total} (0..{})",
            args.k,
            k_total - 1
        );
    }
    let mut sliders = vec![0.0; k_total];
    sliders[args.k] = if args.negative {
        -(args.steps as f64)
    } else {
        args.steps as f64
    };
    let start = match &args.z {
        Some(p) => Some(crate::edit::LatentCode::load(p, &model.generator)?.latent),
        None => None,
    };
    if args.data_density && !args.preserve_density {
        anyhow::bail!("--data-density chooses the density --preserve-density keeps: pass both");
    }
    let req = RenderRequest {
        generation: 0,
        seed: args.seed,
        method,
        sliders,
        switch: None,
        batch: 0,
        step_scale: 1.0,
        start: start.clone(),
        preserve_density: args.preserve_density,
        data_density: args.data_density,
    };
    let state = crate::session::state::Saved {
        model: std::fs::canonicalize(&args.source.model)
            .unwrap_or_else(|_| args.source.model.clone()),
        state: crate::session::state::AppState {
            seed: args.seed,
            method,
            method_folder: model.methods[method]
                .0
                .dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned()),
            sliders: req.sliders.clone(),
            max_t: args.steps as f64,
            preserve_density: args.preserve_density,
            data_density: args.data_density,
            ..Default::default()
        },
    };
    let opts = GifOptions {
        out: args.out.clone(),
        fps: args.fps,
        ping_pong: args.ping_pong,
        scale: args.scale,
        seeds: args.seeds,
        state_json: serde_json::to_string(&state)?,
    };
    let bar = ProgressBar::new(100);
    export_gif(&model, &req, &opts, &dev, &mut |f| {
        bar.set_position((f * 100.0) as u64)
    })?;
    bar.finish_and_clear();
    println!("wrote {}", args.out.display());
    Ok(())
}
