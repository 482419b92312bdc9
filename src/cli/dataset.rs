//! `latentflow dataset preview`: a PNG grid of dataset images or sequences.

use super::PreviewArgs;
use crate::data::sequence::{SequenceSpec, Transform, sequence};
use crate::data::{self, image::grid};
use crate::files::output::{FileKind, check_file};
use crate::limits::{self, MAX_GRID_IMAGES, MAX_STEPS};
use crate::models::images::grid_bytes;
use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Saves a grid of `n` images (or `n` sequences, one per row).
pub fn preview(args: PreviewArgs) -> Result<()> {
    if args.n == 0 || args.cols == 0 || args.frames == 0 {
        bail!("--n, --cols and --frames must be positive");
    }
    let frames = if args.sequence.is_some() {
        limits::check_count("--frames", args.frames, MAX_STEPS)?;
        args.frames
    } else {
        1
    };
    let count = args.n.saturating_mul(frames);
    limits::check_count(
        "the number of images (--n × --frames)",
        count,
        MAX_GRID_IMAGES,
    )?;
    check_file(&args.out, FileKind::Png, args.force)?;
    let ds = data::open(&args.dataset, data::IMAGE_SIZE)?;
    let cols = if args.sequence.is_some() {
        frames
    } else {
        args.cols
    };
    limits::check_memory(
        &format!("dataset preview --n {} (× {frames} frames)", args.n),
        grid_bytes(count, cols, ds.channels(), ds.size(), ds.size(), 1),
    )?;
    ds.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let images = match &args.sequence {
        None => (0..args.n)
            .map(|_| ds.image(rng.gen_range(0..ds.len())))
            .collect::<crate::Result<Vec<_>>>()?,
        Some(name) => {
            let transform: Transform = name.parse()?;
            let spec = SequenceSpec { transform, frames };
            let mut imgs = Vec::with_capacity(count);
            for _ in 0..args.n {
                imgs.extend(sequence(ds.as_ref(), &spec, &mut rng)?);
            }
            imgs
        }
    };
    grid(&images, cols, 2)?.save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
