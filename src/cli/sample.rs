//! `latentflow sample`: decode prior samples of a model into a PNG grid.

use super::SampleArgs;
use crate::data::image::grid;
use crate::files::output::{FileKind, check_file};
use crate::limits::{self, MAX_SAMPLES, MAX_SCALE};
use crate::models::images::{decode_images, grid_bytes};
use crate::models::{Generator, sample_latents};
use crate::session::device;
use crate::store::load_generator;
use anyhow::{Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Decodes `n` latent codes drawn with `seed` and saves them as a grid.
pub fn sample(args: SampleArgs) -> Result<()> {
    if args.n == 0 || args.scale == 0 {
        bail!("--n and --scale must be at least 1");
    }
    limits::check_count("--n", args.n, MAX_SAMPLES)?;
    limits::check_count("--scale", args.scale, MAX_SCALE)?;
    check_file(&args.out, FileKind::Png, args.force)?;
    let dev = device()?;
    let g = load_generator(&args.model, &dev)?;
    let cols = args
        .cols
        .unwrap_or_else(|| (args.n as f64).sqrt().ceil() as usize)
        .max(1);
    let c = &g.config;
    limits::check_memory(
        &format!("sample --n {} --scale {}", args.n, args.scale),
        grid_bytes(
            args.n,
            cols,
            c.channels,
            c.image_size,
            c.image_size,
            args.scale,
        ),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let z = sample_latents(
        g.model.prior(),
        args.n,
        g.model.latent_dim(),
        &mut rng,
        &dev,
    )?;
    let images = decode_images(&g.model, &z)?;
    let mut picture = grid(&images, cols, 2)?;
    if args.scale > 1 {
        picture = picture.upscale_nearest(args.scale);
    }
    picture.save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Finds the latent code of an image and saves it as JSON (and, on request, the model's
/// input beside its reconstruction).
pub fn encode(args: super::EncodeArgs) -> Result<()> {
    limits::check_count("--steps", args.steps, limits::MAX_STEPS)?;
    if !(args.lr.is_finite() && args.lr > 0.0 && args.lr <= 10.0) {
        bail!("--lr must be a number in (0, 10]");
    }
    check_file(&args.out, FileKind::Json, args.force)?;
    if let Some(r) = &args.reconstruction {
        check_file(r, FileKind::Png, args.force)?;
    }
    let dev = device()?;
    let g = load_generator(&args.model, &dev)?;
    let image = crate::edit::read_image(&args.image, &g)?;
    let opts = crate::edit::InvertOptions {
        steps: args.steps,
        lr: args.lr,
        ..Default::default()
    };
    let every = (args.steps / 10).max(1);
    let (latent, mse) = crate::edit::encode(
        &g,
        &image,
        &dev,
        &opts,
        &crate::train::CancelToken::new(),
        &mut |step, steps, loss| {
            if steps > 1 && (step % every == 0 || step == steps) {
                eprintln!("inversion step {step}/{steps}: loss {loss:.6e}");
            }
        },
    )?;
    let mut code = crate::edit::LatentCode::new(&g, latent, args.image.display().to_string());
    code.reconstruction_mse = Some(mse);
    if let Some(r) = &args.reconstruction {
        let recon = crate::edit::reconstruction(&g, &code.latent, &dev)?;
        grid(&[image, recon], 2, 2)?.save_png(r)?;
        println!("wrote {}", r.display());
    }
    code.save(&args.out)?;
    println!(
        "wrote {} (reconstruction mean squared error {mse:.5} per value)",
        args.out.display()
    );
    Ok(())
}
