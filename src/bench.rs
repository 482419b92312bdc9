//! Timing helpers shared by `latentflow bench` and the criterion benches.

use crate::Result;
use crate::models::{Generator, sample_latents};
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// The median of `xs` (sorted in place); NaN for an empty slice.
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// Median milliseconds of `f` over `reps` runs after `warmup` untimed runs.
pub fn median_ms(reps: usize, warmup: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&mut times))
}

/// Median decode time in ms of one batch of `batch` prior samples.
pub fn decode_ms(g: &dyn Generator, batch: usize, reps: usize, device: &Device) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let z = sample_latents(g.prior(), batch, g.latent_dim(), &mut rng, device)?;
    median_ms(reps, 3, || {
        let x = g.decode(&z)?;
        // Force the computation to finish (matters on asynchronous devices).
        x.sum_all()?.to_vec0::<f32>()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(super::median(&mut [3., 1., 2.]), 2.);
        assert_eq!(super::median(&mut [4., 1., 2., 3.]), 2.5);
        assert!(super::median(&mut []).is_nan());
    }
}
