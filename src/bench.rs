//! Timing helpers shared by `latentflow bench` and the criterion benches.

use crate::Result;
use crate::models::{Generator, sample_latents};
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

pub use crate::stats::median;

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

/// Figures of `latentflow bench potentials` (milliseconds, medians).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PotentialBench {
    /// One iteration of the potential losses alone (d = 128, batch 32, K = 8, 5 flow
    /// steps, exact Laplacian): forward, backward and Adam.
    pub derivs_ms: f64,
    /// The Laplacian (with u, ∇u and the time derivatives) in one forward pass, batch 32.
    pub laplacian_forward_ms: f64,
    /// The same Laplacian by one backward pass per latent dimension (d = 128 passes).
    pub laplacian_backward_ms: f64,
    /// A whole training iteration with a 64×64 DCGAN-style generator (64 base channels):
    /// potential losses, JVP, classifier, backward.
    pub train_iter_ms: f64,
}

/// The Laplacian of potential `k` at (z, t) by d backward passes through the hand-written
/// gradient: row i of the Hessian is the gradient of (∇u)_i. What autograd frameworks do.
pub fn laplacian_by_backward(
    p: &crate::models::potential::Potentials,
    z: &candle_core::Tensor,
    t: &candle_core::Tensor,
    k: usize,
) -> Result<candle_core::Tensor> {
    let var = candle_core::Var::from_tensor(z)?;
    let g = p.grad(var.as_tensor(), t, k)?;
    let d = z.dim(1)?;
    let mut diag = Vec::with_capacity(d);
    for i in 0..d {
        let grads = g.narrow(1, i, 1)?.sum_all()?.backward()?;
        let row = grads
            .get(var.as_tensor())
            .ok_or_else(|| crate::Error::config("no gradient reached z"))?;
        diag.push(row.narrow(1, i, 1)?);
    }
    Ok(candle_core::Tensor::cat(&diag, 1)?.sum(1)?)
}

/// Runs the generator-free and the full potential-training figures on fresh weights.
pub fn potential_bench(reps: usize, device: &Device) -> Result<PotentialBench> {
    use crate::models::potential::{PotentialConfig, PotentialKind};
    use crate::train::potentials::PotentialTrainer;
    use candle_core::Tensor;

    let (d, b, k) = (128, 32, 8);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let arch = PotentialConfig::new(PotentialKind::Pde, k, d);
    let mut trainer = PotentialTrainer::new(&arch, 3, 64, 1e-4, 0, device)?;
    let z0 = crate::models::randn(&[b, d], &mut rng, device)?;
    let derivs_ms = median_ms(reps, 2, || {
        let terms = trainer.pde_terms(&z0, 3, 5, 1.0, 0)?;
        let loss = (&terms.l_u + &terms.l_f)?;
        trainer.step_potentials(&loss)
    })?;
    let t = Tensor::full(5f32, b, device)?;
    let pots = trainer.potentials().clone();
    let laplacian_forward_ms = median_ms(reps, 2, || {
        pots.eval(&z0, &t, 3)?
            .laplacian
            .sum_all()?
            .to_vec0::<f32>()?;
        Ok(())
    })?;
    let laplacian_backward_ms = median_ms(reps.div_ceil(4).max(3), 1, || {
        laplacian_by_backward(&pots, &z0, &t, 3)?
            .sum_all()?
            .to_vec0::<f32>()?;
        Ok(())
    })?;

    let train_iter_ms = train_iter_ms(reps, device)?;
    Ok(PotentialBench {
        derivs_ms,
        laplacian_forward_ms,
        laplacian_backward_ms,
        train_iter_ms,
    })
}

/// Median ms of one potential-training iteration (`train_iter_ms`): K = 8 PDE potentials
/// over d = 128, batch 32, 5 flow steps, with a frozen 64×64 DCGAN-style generator (64
/// base channels) on fresh weights — potential losses, JVP, classifier, backward, Adam.
/// `benches/pytorch/potentials.py` is the same iteration in PyTorch.
pub fn train_iter_ms(reps: usize, device: &Device) -> Result<f64> {
    use crate::models::potential::{PotentialConfig, PotentialKind};
    use crate::models::{GeneratorConfig, GeneratorKind, GeneratorModel};
    use crate::nn::Params;
    use crate::train::potentials::{PotentialTrainConfig, PotentialTrainer};

    let (d, b, k) = (128, 32, 8);
    let arch = PotentialConfig::new(PotentialKind::Pde, k, d);
    let gcfg = GeneratorConfig::new(GeneratorKind::Gan, d, 3);
    // Fresh weights, then frozen as a loaded checkpoint is in a real training run: no
    // gradient flows into the generator's weights.
    let fresh = Params::new(0, device);
    GeneratorModel::new(&fresh, &gcfg)?;
    let frozen = Params::from_tensors(fresh.tensors()?, false, device)?;
    let generator = GeneratorModel::new(&frozen, &gcfg)?;
    let mut cfg = PotentialTrainConfig::new(Default::default(), Default::default());
    cfg.k = k;
    cfg.steps = 5;
    cfg.batch_size = b;
    let mut full = PotentialTrainer::new(&arch, 3, 64, 1e-4, 0, device)?;
    let mut step_rng = ChaCha8Rng::seed_from_u64(1);
    median_ms(reps, 2, || {
        full.step(&generator, &cfg, &mut step_rng).map(|_| ())
    })
}

/// Median ms of one traversal frame: `steps` steps of `flow` from one code, then one
/// decode of the end point.
pub fn frame_ms(
    g: &dyn Generator,
    flow: &dyn crate::methods::Traversal,
    steps: usize,
    reps: usize,
    device: &Device,
) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let z = sample_latents(g.prior(), 1, g.latent_dim(), &mut rng, device)?;
    let spec = crate::methods::PathSpec::single(0, steps);
    median_ms(reps, 3, || {
        let path = flow.walk(&z, &spec)?;
        let last = path.last().cloned().unwrap_or_else(|| z.clone());
        g.decode(&last)?.sum_all()?.to_vec0::<f32>()?;
        Ok(())
    })
}

#[cfg(test)]
mod laplacian_tests {
    use crate::models::potential::{PotentialConfig, PotentialKind, Potentials};
    use crate::nn::Params;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn backward_laplacian_agrees_with_the_forward_one() {
        let p = Params::new(4, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 2, 6);
        cfg.hidden = 10;
        cfg.time_dim = 6;
        let pots = Potentials::new(&p, &cfg).unwrap();
        let z = crate::nn::fd::randn64(&[3, 6], 9).unwrap();
        let t = Tensor::new(&[0.0f64, 1.0, 2.5], &Device::Cpu).unwrap();
        let fwd = pots.eval(&z, &t, 1).unwrap().laplacian;
        let bwd = super::laplacian_by_backward(&pots, &z, &t, 1).unwrap();
        let err = (fwd - bwd).unwrap().abs().unwrap().max_all().unwrap();
        assert!(err.to_scalar::<f64>().unwrap() < 1e-10);
    }
}
