//! Training batches: which images an iteration sees is a pure function of (seed,
//! iteration), so a resumed run sees exactly the batches it would have seen; a background
//! thread renders the next batches while the current one trains.

use crate::data::Dataset;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use crossbeam_channel::{Receiver, bounded};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// The dataset indices of iteration `iteration`'s batch.
pub fn batch_indices(seed: u64, iteration: u64, batch: usize, len: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(iteration);
    (0..batch).map(|_| rng.gen_range(0..len)).collect()
}

/// The images at `indices` as one (n, c, s, s) tensor.
pub fn load_batch(ds: &dyn Dataset, indices: &[usize], device: &Device) -> Result<Tensor> {
    let (c, s) = (ds.channels(), ds.size());
    let mut data = Vec::with_capacity(indices.len() * c * s * s);
    for &i in indices {
        let img = ds.image(i)?;
        data.extend_from_slice(&img.data);
    }
    Ok(Tensor::from_vec(data, (indices.len(), c, s, s), device)?)
}

/// Batches for iterations `start..end`, produced ahead by a background thread.
pub struct BatchStream {
    rx: Receiver<Result<Tensor>>,
}

impl BatchStream {
    /// Starts the producer. It renders on the CPU and stops when the stream is dropped.
    pub fn new(ds: Arc<dyn Dataset>, batch: usize, seed: u64, start: u64, end: u64) -> Self {
        let (tx, rx) = bounded(3);
        std::thread::spawn(move || {
            for it in start..end {
                let idx = batch_indices(seed, it, batch, ds.len());
                let b = load_batch(ds.as_ref(), &idx, &Device::Cpu);
                let failed = b.is_err();
                if tx.send(b).is_err() || failed {
                    break;
                }
            }
        });
        Self { rx }
    }

    /// The next batch, moved to `device`.
    pub fn next(&self, device: &Device) -> Result<Tensor> {
        let b = self
            .rx
            .recv()
            .map_err(|_| Error::config("the batch producer stopped"))??;
        Ok(b.to_device(device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_depend_only_on_seed_and_iteration() {
        let a = batch_indices(1, 5, 8, 1000);
        assert_eq!(a, batch_indices(1, 5, 8, 1000));
        assert_ne!(a, batch_indices(1, 6, 8, 1000));
        assert_ne!(a, batch_indices(2, 5, 8, 1000));
        assert!(a.iter().all(|&i| i < 1000));
    }
}
