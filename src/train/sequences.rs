//! Transformation sequences as training batches: which transformations a name list stands
//! for in a dataset (checked to fit the sequence length), their display names, and batches
//! of B sequences drawn as a pure function of (seed, iteration), sorted by transformation
//! (each potential then sees a contiguous run of rows), rendered ahead on a background
//! thread.

use crate::data::Dataset;
use crate::data::sequence::{Split, Transform, check_fits, sample_sequence, stack_sequences};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use crossbeam_channel::{Receiver, bounded};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// The transformations `names` stand for in `ds`, resolved and checked to fit `frames`.
pub fn resolve_transforms(
    ds: &dyn Dataset,
    names: &[String],
    frames: usize,
) -> Result<Vec<Transform>> {
    let mut out = Vec::new();
    for name in names {
        match name.trim() {
            "factors" => out.extend(
                ds.factors()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !f.categorical)
                    .map(|(i, _)| Transform::Factor(i)),
            ),
            "images" => {
                out.extend([Transform::Scale, Transform::Rotate]);
                if ds.channels() == 3 {
                    out.push(Transform::Hue);
                }
            }
            other => out.push(other.parse::<Transform>()?.resolve(ds)?),
        }
    }
    if out.is_empty() {
        return Err(Error::config(format!(
            "no transformations: dataset {} has no sweepable factors",
            ds.name()
        )));
    }
    for (i, t) in out.iter().enumerate() {
        if out[..i].contains(t) {
            return Err(Error::config(format!(
                "transformation {} is listed twice",
                t.label(ds)
            )));
        }
        check_fits(ds, t, frames)?;
    }
    Ok(out)
}

/// Display names of `transforms`: the factor's name, `scale`, `rotate` or `hue`, or the
/// full label (`factor:NAME`) where two would read the same.
pub fn transform_names(ds: &dyn Dataset, transforms: &[Transform]) -> Vec<String> {
    let short: Vec<String> = transforms
        .iter()
        .map(|t| {
            let l = t.label(ds);
            l.strip_prefix("factor:").map(str::to_string).unwrap_or(l)
        })
        .collect();
    short
        .iter()
        .zip(transforms)
        .map(|(s, t)| {
            if short.iter().filter(|o| *o == s).count() > 1 {
                t.label(ds)
            } else {
                s.clone()
            }
        })
        .collect()
}

/// A batch: frames (F·B, C, S, S), frame-major, and each sequence's transformation
/// (sorted, when the batch comes from [`sequence_batch`]).
pub struct SequenceBatch {
    /// The frames.
    pub x: Tensor,
    /// The index into the transformations of each sequence (B).
    pub labels: Vec<u32>,
}

/// The batch of `seed`'s iteration `iteration`: `batch` sequences of `frames` frames from
/// `split`, transformations drawn uniformly.
#[allow(clippy::too_many_arguments)]
pub fn sequence_batch(
    ds: &dyn Dataset,
    transforms: &[Transform],
    frames: usize,
    batch: usize,
    split: Split,
    seed: u64,
    iteration: u64,
    device: &Device,
) -> Result<SequenceBatch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e9_0e9c);
    rng.set_stream(iteration);
    // Sorted by transformation, so each potential sees a contiguous run of rows.
    let mut labels: Vec<u32> = (0..batch)
        .map(|_| rng.gen_range(0..transforms.len()) as u32)
        .collect();
    labels.sort_unstable();
    let seqs = labels
        .iter()
        .map(|&k| sample_sequence(ds, &transforms[k as usize], frames, split, &mut rng))
        .collect::<Result<Vec<_>>>()?;
    Ok(SequenceBatch {
        x: stack_sequences(&seqs, device)?,
        labels,
    })
}

/// Batches for iterations `start..end`, rendered ahead by a background thread.
pub(crate) struct SequenceStream {
    rx: Receiver<Result<SequenceBatch>>,
}

impl SequenceStream {
    pub(crate) fn new(
        ds: Arc<dyn Dataset>,
        transforms: Vec<Transform>,
        frames: usize,
        batch: usize,
        seed: u64,
        range: std::ops::Range<u64>,
    ) -> Self {
        let (tx, rx) = bounded(2);
        std::thread::spawn(move || {
            for it in range {
                let b = sequence_batch(
                    ds.as_ref(),
                    &transforms,
                    frames,
                    batch,
                    Split::Train,
                    seed,
                    it,
                    &Device::Cpu,
                );
                let failed = b.is_err();
                if tx.send(b).is_err() || failed {
                    break;
                }
            }
        });
        Self { rx }
    }

    pub(crate) fn next(&self, device: &Device) -> Result<SequenceBatch> {
        let b = self
            .rx
            .recv()
            .map_err(|_| Error::config("the sequence producer stopped"))??;
        Ok(SequenceBatch {
            x: b.x.to_device(device)?,
            labels: b.labels,
        })
    }
}
