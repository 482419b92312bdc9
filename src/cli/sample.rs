//! `latentflow sample`: decode prior samples of a model into a PNG grid.

use super::{SampleArgs, device};
use crate::data::image::grid;
use crate::models::{Generator, images::to_images, sample_latents};
use crate::store::load_generator;
use anyhow::{Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Decodes `n` latent codes drawn with `seed` and saves them as a grid.
pub fn sample(args: SampleArgs) -> Result<()> {
    if args.n == 0 || args.n > 4096 || args.scale == 0 || args.scale > 16 {
        bail!("--n must be in 1..=4096 and --scale in 1..=16");
    }
    let dev = device()?;
    let g = load_generator(&args.model, &dev)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let z = sample_latents(
        g.model.prior(),
        args.n,
        g.model.latent_dim(),
        &mut rng,
        &dev,
    )?;
    let images = to_images(&g.model.decode(&z)?)?;
    let cols = args
        .cols
        .unwrap_or_else(|| (args.n as f64).sqrt().ceil() as usize)
        .max(1);
    let mut picture = grid(&images, cols, 2)?;
    if args.scale > 1 {
        picture = picture.upscale_nearest(args.scale);
    }
    picture.save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
