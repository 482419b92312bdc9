//! `latentflow sample`: decode prior samples of a model into a PNG grid.

use super::{SampleArgs, device};
use crate::data::image::grid;
use crate::files::output::{FileKind, check_file};
use crate::limits::{self, MAX_SAMPLES, MAX_SCALE};
use crate::models::images::{decode_images, grid_bytes};
use crate::models::{Generator, sample_latents};
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
