//! The flow-factorized VAE's metrics on held-out transformation sequences.
//!
//! - **Equivariance error** per transformation k: E_k = Σ_{t=1}^{T} Σ_pixels |x_t − Decode(z_t)|
//!   with z_t the flow of potential k started at the encoder's mean of x_0, averaged over
//!   sequences; without potentials (the naive VAE) z_t = z_0, the papers' baseline ∇u = 0.
//!   Beside it, the **floor** Σ_t Σ_pixels |x_t − Decode(μ(x_t))|: the same sum with each
//!   frame's own encoding, what the best latent flow through this decoder can reach.
//! - **Log-likelihood** of single images by importance sampling, the IWAE bound
//!   log p(x) ≥ E[log (1/S) Σ_s p(x | z_s) p(z_s) / q(z_s | x)], z_s ∼ q(z | x), with the
//!   model's own Bernoulli decoder (the likelihood every VAE here is trained with; for
//!   pixel values in (0, 1) it is not a normalised density, so the numbers compare models,
//!   not datasets). Measured on the start frames x_0 ("original") and on one transformed
//!   frame x_t, t ∈ 1..T, of each sequence ("transformed").
//!
//! Sequences start from the held-out tenth of the starts ([`Split::Test`]), which training
//! never draws.

use crate::data::Dataset;
use crate::data::sequence::{Split, Transform, sample_sequence, stack_sequences};
use crate::methods::{PathSpec, Traversal};
use crate::models::{Generator, Vae, randn};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Refuses `n` sequences of `frames` frames of `ds` that would not fit in memory (the
/// frames, their reconstructions and the decoder's activations, about 8× the frames).
fn check_fits_memory(ds: &dyn Dataset, n: usize, frames: usize) -> Result<()> {
    let values = (ds.channels() * ds.size() * ds.size()) as u64;
    let bytes = (n as u64)
        .saturating_mul(frames as u64)
        .saturating_mul(values)
        .saturating_mul(4 * 8);
    crate::limits::check_memory(
        &format!("evaluating {n} sequences of {frames} frames per transformation (--n)"),
        bytes,
    )
}

/// Held-out sequences of one transformation: frames frame-major (F·n, C, S, S).
fn held_out(
    ds: &dyn Dataset,
    transform: &Transform,
    frames: usize,
    n: usize,
    seed: u64,
    index: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe0a1);
    rng.set_stream(index as u64);
    let seqs = (0..n)
        .map(|_| sample_sequence(ds, transform, frames, Split::Test, &mut rng))
        .collect::<Result<Vec<_>>>()?;
    stack_sequences(&seqs, device)
}

/// E_k and its floor for each transformation.
#[derive(Debug, Clone, PartialEq)]
pub struct Equivariance {
    /// Mean over sequences of Σ_{t≥1} Σ_pixels |x_t − Decode(z_t)|, per transformation.
    pub error: Vec<f64>,
    /// The same with z_t the encoder's mean of x_t itself (the decoder's floor).
    pub floor: Vec<f64>,
}

/// E_k for each transformation: `flow` with `potential_of[j]` the potential that stands
/// for `transforms[j]` (None: the naive baseline, z_t = z_0), over `n` held-out sequences
/// of `steps` steps each, and the floor (see [`Equivariance`]).
#[allow(clippy::too_many_arguments)]
pub fn equivariance_errors(
    vae: &Vae,
    flow: Option<(&dyn Traversal, &[usize])>,
    ds: &dyn Dataset,
    transforms: &[Transform],
    steps: usize,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Equivariance> {
    if n == 0 {
        return Err(Error::config("equivariance needs at least one sequence"));
    }
    check_fits_memory(ds, n, steps + 1)?;
    if let Some((_, map)) = flow
        && map.len() != transforms.len()
    {
        return Err(Error::config("one potential per transformation is needed"));
    }
    let frames = steps + 1;
    let mut out = Vec::with_capacity(transforms.len());
    let mut floor = Vec::with_capacity(transforms.len());
    let sum_abs = |a: Tensor, b: &Tensor| -> Result<f64> {
        Ok((a - b)?
            .abs()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            / n as f64)
    };
    for (j, transform) in transforms.iter().enumerate() {
        let x = held_out(ds, transform, frames, n, seed, j, device)?;
        let (mu, _) = vae.encode(&x.narrow(0, 0, n)?)?;
        let codes = match flow {
            Some((f, map)) => f.walk(&mu, &PathSpec::single(map[j], steps))?,
            None => vec![mu.clone(); frames],
        };
        let decoded = vae.decode(&Tensor::cat(&codes[1..], 0)?)?;
        let target = x.narrow(0, n, steps * n)?;
        out.push(sum_abs(decoded, &target)?);
        let (own, _) = vae.encode(&target)?;
        floor.push(sum_abs(vae.decode(&own)?, &target)?);
    }
    Ok(Equivariance { error: out, floor })
}

/// log (1/S) Σ exp(a_s) per row of `a` (B, S), computed stably.
pub fn log_mean_exp(a: &Tensor) -> Result<Tensor> {
    let s = a.dim(1)? as f64;
    let m = a.max_keepdim(1)?;
    let sum = a.broadcast_sub(&m)?.exp()?.sum_keepdim(1)?;
    Ok((sum.log()? + m)?.squeeze(1)?.affine(1.0, -s.ln())?)
}

/// The IWAE bound of each image of `x` (N, C, S, S) with `samples` importance samples (in
/// chunks that decode at most `chunk` images at once).
pub fn iwae_log_likelihood(vae: &Vae, x: &Tensor, samples: usize, seed: u64) -> Result<Vec<f64>> {
    if samples == 0 {
        return Err(Error::config("the IWAE bound needs at least one sample"));
    }
    // One image's samples are decoded at once.
    let values = x.elem_count() / x.dim(0)?.max(1);
    crate::limits::check_memory(
        &format!("decoding {samples} importance samples of an image at once (--samples)"),
        (samples as u64)
            .saturating_mul(values as u64)
            .saturating_mul(4 * 8),
    )?;
    let n = x.dim(0)?;
    let chunk = (512 / samples).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1a7e);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let m = chunk.min(n - start);
        let xs = x.narrow(0, start, m)?;
        let (mu, logvar) = vae.encode(&xs)?;
        let d = mu.dim(1)?;
        // (m·S, d): sample s of image i at row i·S + s.
        let rep = |t: &Tensor| -> Result<Tensor> {
            Ok(t.unsqueeze(1)?
                .broadcast_as((m, samples, d))?
                .reshape((m * samples, d))?)
        };
        let (mu_r, lv_r) = (rep(&mu)?, rep(&logvar)?);
        let eps = randn(&[m * samples, d], &mut rng, x.device())?;
        let z = (&mu_r + (lv_r.affine(0.5, 0.0)?.exp()? * &eps)?)?;
        // log N(z; 0, I) − log N(z; μ, σ²) = Σ −½z² + ½ε² + ½ logvar.
        let log_prior_ratio = ((z.sqr()?.affine(-0.5, 0.0)? + eps.sqr()?.affine(0.5, 0.0)?)?
            + lv_r.affine(0.5, 0.0)?)?
        .sum(1)?;
        let logits = vae.decode_logits(&z)?;
        let dims = xs.dims()[1..].to_vec();
        let mut shape = vec![m, samples];
        shape.extend(&dims);
        let target = xs
            .unsqueeze(1)?
            .broadcast_as(shape)?
            .reshape(logits.dims())?
            .contiguous()?;
        // log p(x | z) = −Σ BCE per sample.
        let per = bce_rows(&logits, &target)?.neg()?;
        let log_w = (per + log_prior_ratio)?.reshape((m, samples))?;
        let ll: Vec<f64> = log_mean_exp(&log_w)?.to_dtype(DType::F64)?.to_vec1()?;
        out.extend(ll);
        start += m;
    }
    Ok(out)
}

/// Σ of the binary cross-entropy with logits over every dimension but the first (B).
fn bce_rows(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let stable = logits.abs()?.neg()?.exp()?.affine(1., 1.)?.log()?;
    Ok(((logits.relu()? - (logits * targets)?)? + stable)?
        .flatten_from(1)?
        .sum(1)?)
}

/// Mean IWAE log-likelihood of the "original" (x_0) and "transformed" (one x_t, t ≥ 1)
/// frames of `n` held-out sequences per transformation.
#[allow(clippy::too_many_arguments)]
pub fn log_likelihoods(
    vae: &Vae,
    ds: &dyn Dataset,
    transforms: &[Transform],
    steps: usize,
    n: usize,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<(f64, f64)> {
    if n == 0 {
        return Err(Error::config(
            "the log-likelihood needs at least one sequence",
        ));
    }
    let frames = steps + 1;
    let (mut orig, mut trans) = (Vec::new(), Vec::new());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf4a3);
    for (j, transform) in transforms.iter().enumerate() {
        let x = held_out(ds, transform, frames, n, seed, j, device)?;
        orig.extend(iwae_log_likelihood(
            vae,
            &x.narrow(0, 0, n)?,
            samples,
            seed + 2 * j as u64,
        )?);
        let picked: Vec<u32> = (0..n)
            .map(|i| (rng.gen_range(1..frames) * n + i) as u32)
            .collect();
        let idx = Tensor::new(picked, device)?;
        let xt = x.index_select(&idx, 0)?;
        trans.extend(iwae_log_likelihood(
            vae,
            &xt,
            samples,
            seed + 2 * j as u64 + 1,
        )?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok((mean(&orig), mean(&trans)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{GeneratorConfig, GeneratorKind};
    use crate::nn::Params;

    #[test]
    fn log_mean_exp_by_hand() {
        let a = Tensor::new(&[[0f64, 2f64.ln()], [1000.0, 1000.0]], &Device::Cpu).unwrap();
        let v: Vec<f64> = log_mean_exp(&a).unwrap().to_vec1().unwrap();
        assert!((v[0] - 1.5f64.ln()).abs() < 1e-12);
        assert!((v[1] - 1000.0).abs() < 1e-9);
    }

    fn tiny_vae() -> Vae {
        let mut cfg = GeneratorConfig::new(GeneratorKind::Vae, 3, 1);
        cfg.base = 4;
        cfg.image_size = 16;
        Vae::new(&Params::new(4, &Device::Cpu), &cfg).unwrap()
    }

    #[test]
    fn the_iwae_bound_with_one_sample_is_the_elbo_estimate_and_tightens_with_more() {
        let vae = tiny_vae();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = randn(&[6, 1, 16, 16], &mut rng, &Device::Cpu)
            .unwrap()
            .affine(0.2, 0.5)
            .unwrap()
            .clamp(0.0, 1.0)
            .unwrap();
        // S = 1, by hand: −BCE(x, decode(z)) − KL-sample, averaged over many seeds, is the
        // ELBO = −E[BCE] − KL(q ‖ p); the mean over 6 images and 200 seeds is near it.
        let (mu, logvar) = vae.encode(&x).unwrap();
        let kl = crate::train::losses::gaussian_kl(&mu, &logvar)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let mut one = 0.0;
        for seed in 0..200 {
            one += iwae_log_likelihood(&vae, &x, 1, seed)
                .unwrap()
                .iter()
                .sum::<f64>()
                / 6.0;
        }
        one /= 200.0;
        let recon = crate::train::losses::bce_with_logits(&vae.decode_logits(&mu).unwrap(), &x)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        // The decoder barely depends on z at initialisation: E[BCE] ≈ BCE at the mean.
        let elbo = -recon - kl;
        assert!((one - elbo).abs() < 0.02 * elbo.abs(), "{one} vs {elbo}");
        let many: f64 = iwae_log_likelihood(&vae, &x, 50, 0)
            .unwrap()
            .iter()
            .sum::<f64>()
            / 6.0;
        assert!(many >= one - 1e-3, "{many} < {one}");
    }
}
