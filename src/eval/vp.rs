//! The VP score (variation predictability, as in the papers): for random starting codes z_0
//! and random directions k, a method walks T steps; a CNN with four convolutions and batch
//! normalisation ([`VpClassifier`]) trained on 10% of the labelled image pairs (x_0, x_T)
//! predicts k on the other 90%. A method whose directions
//! each do one recognisable thing scores high; chance is 1/K.

use crate::limits::{self, MAX_BATCH, MAX_EPOCHS, MAX_PAIRS, MAX_STEPS};
use crate::methods::{PathSpec, Traversal};
use crate::models::classifier::{VpClassifier, cross_entropy};
use crate::models::{Generator, sample_latents};
use crate::nn::{Adam, Params};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of one VP evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct VpConfig {
    /// Labelled pairs in total.
    pub pairs: usize,
    /// Steps T from x_0 to x_T.
    pub steps: usize,
    /// Fraction of the pairs the CNN trains on.
    pub train_fraction: f64,
    /// CNN training epochs.
    pub epochs: usize,
    /// CNN batch size.
    pub batch_size: usize,
    /// CNN learning rate.
    pub lr: f64,
    /// Seed of the codes, the directions, the split and the CNN.
    pub seed: u64,
    /// Multiplies every step of the walks (1: the method's own; see
    /// [`crate::eval::diversity::scale_for_length`] for comparing at one path length).
    pub scale: f64,
}

impl Default for VpConfig {
    fn default() -> Self {
        Self {
            pairs: 10_000,
            steps: 10,
            train_fraction: 0.1,
            epochs: 30,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
            scale: 1.0,
        }
    }
}

/// The outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct VpResult {
    /// Top-1 accuracy on the held-out pairs.
    pub accuracy: f64,
    /// Pairs trained on.
    pub train_pairs: usize,
    /// Pairs tested on.
    pub test_pairs: usize,
    /// 1/K.
    pub chance: f64,
}

/// Latent end points of `n` pairs with labels, generated in chunks of one direction each.
fn pair_latents(
    g: &dyn Generator,
    method: &dyn Traversal,
    n: usize,
    steps: usize,
    scale: f64,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor, Vec<u32>)> {
    let k_total = method.directions();
    // Chunks of one direction each, directions in turn and every direction's share equal
    // (to within one pair): the labels are balanced however few pairs there are.
    let chunk = n.div_ceil(k_total).clamp(1, 32);
    let offset = rng.gen_range(0..k_total);
    let (mut z0s, mut zts, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut counts = vec![0usize; k_total];
    let mut made = 0;
    let mut turn = 0;
    while made < n {
        let k = (offset + turn) % k_total;
        turn += 1;
        // Direction k's share: ⌈n/K⌉ for the first n mod K directions in turn, ⌊n/K⌋ after.
        let order = (k + k_total - offset) % k_total;
        let share = n / k_total + usize::from(order < n % k_total);
        let m = chunk.min(share - counts[k]).min(n - made);
        if m == 0 {
            continue;
        }
        counts[k] += m;
        let z0 = sample_latents(g.prior(), m, g.latent_dim(), rng, device)?;
        let spec = PathSpec {
            scale,
            ..PathSpec::single(k, steps)
        };
        spec.validate(k_total)?;
        let path = method.path(&z0, &spec)?;
        let zt = path.z.last().cloned().unwrap_or_else(|| z0.clone());
        z0s.push(z0);
        zts.push(zt.to_dtype(candle_core::DType::F32)?);
        labels.extend(std::iter::repeat_n(k as u32, m));
        made += m;
    }
    Ok((Tensor::cat(&z0s, 0)?, Tensor::cat(&zts, 0)?, labels))
}

/// Decodes the pairs at `idx`.
fn decode_pairs(
    g: &dyn Generator,
    z0: &Tensor,
    zt: &Tensor,
    labels: &[u32],
    idx: &[usize],
) -> Result<(Tensor, Tensor, Tensor)> {
    let dev = z0.device();
    let ids = Tensor::new(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), dev)?;
    let a = g.decode(&z0.index_select(&ids, 0)?)?;
    let b = g.decode(&zt.index_select(&ids, 0)?)?;
    let y = Tensor::new(idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(), dev)?;
    Ok((a, b, y))
}

/// Computes the VP score of `method` on generator `g`. `progress(done, total)` is called
/// after each unit of work.
pub fn vp_score(
    g: &dyn Generator,
    method: &dyn Traversal,
    cfg: &VpConfig,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<VpResult> {
    if cfg.pairs < 20 || cfg.steps == 0 || cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(Error::config(
            "the VP score needs at least 20 pairs, 1 step, 1 epoch and a positive batch size",
        ));
    }
    limits::check_count("--pairs", cfg.pairs, MAX_PAIRS)?;
    limits::check_count("--steps", cfg.steps, MAX_STEPS)?;
    limits::check_count("the batch size", cfg.batch_size, MAX_BATCH)?;
    limits::check_count("--epochs", cfg.epochs, MAX_EPOCHS)?;
    if !(cfg.train_fraction > 0.0 && cfg.train_fraction < 1.0) {
        return Err(Error::config("the training fraction must be in (0, 1)"));
    }
    let gc = g.config();
    let image = limits::product(&[gc.channels, gc.image_size, gc.image_size]);
    let train_pairs = (cfg.pairs as f64 * cfg.train_fraction).ceil() as u128;
    // The training pairs' images (kept for every epoch) and every pair's two codes.
    let floats = train_pairs
        .saturating_mul(2)
        .saturating_mul(image)
        .saturating_add(limits::product(&[cfg.pairs, 2, gc.latent]))
        .saturating_add(
            gc.activation_count()
                .saturating_mul(24 * cfg.batch_size as u128),
        );
    limits::check_memory(
        &format!("a VP evaluation with {} pairs", cfg.pairs),
        limits::f32_bytes(floats),
    )?;
    let k = method.directions();
    if k < 2 {
        return Err(Error::config(format!(
            "the VP score tells directions apart and needs at least 2; this method has {k}"
        )));
    }
    if cfg.pairs < 2 * k {
        return Err(Error::config(format!(
            "{} pairs are too few for {k} directions: the classifier needs at least two \
             pairs per direction (one to train on, one to test); use --pairs {} or more",
            cfg.pairs,
            2 * k
        )));
    }
    if method.latent_dim() != g.latent_dim() {
        return Err(Error::config(format!(
            "the method acts on {} dimensions but the generator's latent space has {}",
            method.latent_dim(),
            g.latent_dim()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (z0, zt, labels) =
        pair_latents(g, method, cfg.pairs, cfg.steps, cfg.scale, &mut rng, device)?;
    let mut order: Vec<usize> = (0..cfg.pairs).collect();
    order.shuffle(&mut rng);
    let n_train =
        ((cfg.pairs as f64 * cfg.train_fraction).round() as usize).clamp(1, cfg.pairs - 1);
    let (train, test) = order.split_at(n_train);
    let train_batches = n_train.div_ceil(cfg.batch_size);
    let test_batches = test.len().div_ceil(cfg.batch_size);
    let total = train_batches + cfg.epochs * train_batches + test_batches;
    let mut done = 0;

    // The training images are decoded once; the test pairs are decoded as they are used.
    let mut cached = Vec::with_capacity(train_batches);
    for ids in train.chunks(cfg.batch_size) {
        cached.push(decode_pairs(g, &z0, &zt, &labels, ids)?);
        done += 1;
        progress(done, total);
    }
    let cfg_g = g.config();
    let params = Params::new(cfg.seed ^ 0x5c0e, device);
    let cnn = VpClassifier::new(
        &params,
        2 * cfg_g.channels,
        cfg_g.image_size,
        method.directions(),
    )?;
    let mut opt = Adam::new(params.trainable_vars()?, cfg.lr)?;
    let mut batch_order: Vec<usize> = (0..cached.len()).collect();
    cnn.set_training(true);
    for _ in 0..cfg.epochs {
        batch_order.shuffle(&mut rng);
        for &i in &batch_order {
            let (a, b, y) = &cached[i];
            let (loss, _) = cross_entropy(&cnn.forward(a, b)?, y)?;
            opt.backward_step(&loss)?;
            done += 1;
            progress(done, total);
        }
    }
    cnn.set_training(false);
    let mut correct = 0.0;
    for ids in test.chunks(cfg.batch_size) {
        let (a, b, y) = decode_pairs(g, &z0, &zt, &labels, ids)?;
        let (_, acc) = cross_entropy(&cnn.forward(&a, &b)?, &y)?;
        correct += acc * ids.len() as f64;
        done += 1;
        progress(done, total);
    }
    Ok(VpResult {
        accuracy: correct / test.len() as f64,
        train_pairs: n_train,
        test_pairs: test.len(),
        chance: 1.0 / method.directions() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::TraversalPath;
    use crate::models::{GeneratorConfig, GeneratorKind};

    /// Directions that move far along one latent axis each: perfectly predictable.
    struct Axes(usize);

    impl Traversal for Axes {
        fn method(&self) -> String {
            "axes".into()
        }
        fn latent_dim(&self) -> usize {
            self.0
        }
        fn directions(&self) -> usize {
            2
        }
        fn direction_name(&self, k: usize) -> String {
            format!("axis {k}")
        }
        fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
            let k = spec.plan.directions()[0];
            let mut shift = vec![0f32; self.0];
            shift[k] = 6.0;
            let shift = Tensor::new(shift, z0.device())?.unsqueeze(0)?;
            let zt = z0.broadcast_add(&shift)?;
            Ok(TraversalPath {
                z: vec![z0.clone(), zt],
                records: Vec::new(),
            })
        }
    }

    /// A generator whose left half shows sigmoid(z_0) and right half sigmoid(z_1).
    struct Halves(GeneratorConfig);

    impl Generator for Halves {
        fn config(&self) -> &GeneratorConfig {
            &self.0
        }
        fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
            let n = z.dim(0)?;
            let s = candle_nn::ops::sigmoid(z)?;
            let left = s
                .narrow(1, 0, 1)?
                .reshape((n, 1, 1, 1))?
                .broadcast_as((n, 1, 64, 32))?;
            let right = s
                .narrow(1, 1, 1)?
                .reshape((n, 1, 1, 1))?
                .broadcast_as((n, 1, 64, 32))?;
            Tensor::cat(&[&left, &right], 3)?.contiguous()
        }
        fn jvp(&self, z: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
            Ok((self.decode(z)?, self.decode(v)?.zeros_like()?))
        }
    }

    /// Both directions do the same thing: the labels cannot be predicted.
    struct Same;

    impl Traversal for Same {
        fn method(&self) -> String {
            "same".into()
        }
        fn latent_dim(&self) -> usize {
            2
        }
        fn directions(&self) -> usize {
            2
        }
        fn direction_name(&self, k: usize) -> String {
            k.to_string()
        }
        fn path(&self, z0: &Tensor, _: &PathSpec) -> Result<TraversalPath> {
            let zt = (z0 + 3.0)?;
            Ok(TraversalPath {
                z: vec![z0.clone(), zt],
                records: Vec::new(),
            })
        }
    }

    #[test]
    fn distinct_directions_score_above_chance_and_identical_ones_do_not() {
        let dev = Device::Cpu;
        let g = Halves(GeneratorConfig::new(GeneratorKind::Vae, 2, 1));
        let cfg = VpConfig {
            pairs: 200,
            epochs: 15,
            train_fraction: 0.3,
            seed: 1,
            ..VpConfig::default()
        };
        let r = vp_score(&g, &Axes(2), &cfg, &dev, &mut |_, _| {}).unwrap();
        assert_eq!((r.train_pairs, r.test_pairs), (60, 140));
        assert!(r.accuracy > 0.9, "distinct directions: {}", r.accuracy);
        let r = vp_score(&g, &Same, &cfg, &dev, &mut |_, _| {}).unwrap();
        assert!(r.accuracy < 0.7, "identical directions: {}", r.accuracy);
    }

    #[test]
    fn every_direction_gets_an_equal_share_of_the_pairs() {
        let dev = Device::Cpu;
        let g = Halves(GeneratorConfig::new(GeneratorKind::Vae, 2, 1));
        for (n, expected) in [(5, [3, 2]), (6, [3, 3]), (131, [66, 65]), (64, [32, 32])] {
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let (z0, zt, labels) = pair_latents(&g, &Axes(2), n, 1, 1.0, &mut rng, &dev).unwrap();
            assert_eq!((z0.dim(0).unwrap(), zt.dim(0).unwrap()), (n, n));
            let mut counts = [0, 0];
            for l in &labels {
                counts[*l as usize] += 1;
            }
            counts.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(counts, expected, "{n} pairs");
        }
    }

    #[test]
    fn one_direction_or_too_few_pairs_are_refused() {
        let dev = Device::Cpu;
        let g = Halves(GeneratorConfig::new(GeneratorKind::Vae, 2, 1));
        struct One;
        impl Traversal for One {
            fn method(&self) -> String {
                "one".into()
            }
            fn latent_dim(&self) -> usize {
                2
            }
            fn directions(&self) -> usize {
                1
            }
            fn direction_name(&self, k: usize) -> String {
                k.to_string()
            }
            fn path(&self, z0: &Tensor, _: &PathSpec) -> Result<TraversalPath> {
                Ok(TraversalPath {
                    z: vec![z0.clone()],
                    records: Vec::new(),
                })
            }
        }
        let cfg = VpConfig {
            pairs: 40,
            epochs: 1,
            ..VpConfig::default()
        };
        let e = vp_score(&g, &One, &cfg, &dev, &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("at least 2"), "{e}");
        /// Many directions, fewer pairs than two per direction.
        struct Many;
        impl Traversal for Many {
            fn method(&self) -> String {
                "many".into()
            }
            fn latent_dim(&self) -> usize {
                2
            }
            fn directions(&self) -> usize {
                16
            }
            fn direction_name(&self, k: usize) -> String {
                k.to_string()
            }
            fn path(&self, z0: &Tensor, _: &PathSpec) -> Result<TraversalPath> {
                Ok(TraversalPath {
                    z: vec![z0.clone()],
                    records: Vec::new(),
                })
            }
        }
        let cfg = VpConfig { pairs: 31, ..cfg };
        let e = vp_score(&g, &Many, &cfg, &dev, &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("--pairs 32"), "{e}");
    }
}
