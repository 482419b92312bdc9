//! `latentflow dataset preview`: a PNG grid of dataset images or sequences.

use super::PreviewArgs;
use crate::data::sequence::{SequenceSpec, Transform, sequence};
use crate::data::{self, image::grid};
use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Saves a grid of `n` images (or `n` sequences, one per row).
pub fn preview(args: PreviewArgs) -> Result<()> {
    if args.n == 0 || args.cols == 0 {
        bail!("--n and --cols must be positive");
    }
    let ds = data::open(&args.dataset, data::IMAGE_SIZE)?;
    ds.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let (images, cols) = match &args.sequence {
        None => {
            let imgs = (0..args.n)
                .map(|_| ds.image(rng.gen_range(0..ds.len())))
                .collect::<crate::Result<Vec<_>>>()?;
            (imgs, args.cols)
        }
        Some(name) => {
            let transform: Transform = name.parse()?;
            let spec = SequenceSpec {
                transform,
                frames: args.frames,
            };
            let mut imgs = Vec::with_capacity(args.n * args.frames);
            for _ in 0..args.n {
                imgs.extend(sequence(ds.as_ref(), &spec, &mut rng)?);
            }
            (imgs, args.frames)
        }
    };
    grid(&images, cols, 2)?.save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
