//! What a density-preserving walk does to image quality at large step sizes, measured by
//! a VAE's own round trip: an image the decoder makes from a code the prior knows well is
//! one the encoder maps back close to itself, while a code walked far out of the prior's
//! typical set (‖z‖ ≫ √d) decodes to an image the VAE cannot reproduce. The error is
//! mean (G(E(x_T)) − x_T)² per value, x_T = G(z_T), E the posterior mean — with and
//! without the density-preserving projection, per step scale.

use crate::methods::{PathSpec, Traversal};
use crate::models::{Generator, GeneratorModel, sample_latents};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Settings of the measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Step scales to measure.
    pub scales: Vec<f64>,
    /// Steps T of every walk.
    pub steps: usize,
    /// Starting codes (each walked along every direction).
    pub codes: usize,
    /// Seed of the codes.
    pub seed: u64,
}

/// One step scale's figures (means over codes and directions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityRow {
    /// The step scale.
    pub scale: f64,
    /// Round-trip error of G(z_T) for the plain walk.
    pub error_plain: f64,
    /// The same for the density-preserving walk.
    pub error_preserving: f64,
    /// ‖z_T‖ / ‖z_0‖ of the plain walk (1 for the preserving one by construction).
    pub norm_ratio_plain: f64,
}

/// The mean round-trip error (per value) of images `x` (n, c, s, s) through the VAE.
pub fn round_trip_error(model: &GeneratorModel, x: &Tensor) -> Result<f64> {
    let GeneratorModel::Vae(vae) = model else {
        return Err(Error::config(
            "the round-trip measure needs a VAE (its encoder); this generator is a GAN",
        ));
    };
    let (mu, _) = vae.encode(x)?;
    let back = model.decode(&mu)?;
    Ok((back - x)?
        .sqr()?
        .mean_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

/// Walks `codes` prior samples along every direction of `method` at each scale, with and
/// without density preservation, and measures the round trip of the end images.
pub fn density_quality(
    model: &GeneratorModel,
    method: &dyn Traversal,
    cfg: &QualityConfig,
    device: &Device,
) -> Result<Vec<QualityRow>> {
    if cfg.scales.is_empty() || cfg.codes == 0 {
        return Err(Error::config("give at least one step scale and one code"));
    }
    crate::limits::check_count("--codes", cfg.codes, crate::limits::MAX_BATCH)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let d = model.latent_dim();
    let z0 = sample_latents(model.prior(), cfg.codes, d, &mut rng, device)?;
    let n0 = crate::methods::row_norms(&z0)?;
    let mut rows = Vec::with_capacity(cfg.scales.len());
    for &scale in &cfg.scales {
        let mut sums = [0.0f64; 3];
        for k in 0..method.directions() {
            for (i, preserve) in [false, true].into_iter().enumerate() {
                let spec = PathSpec {
                    scale,
                    preserve_density: preserve,
                    ..PathSpec::single(k, cfg.steps)
                };
                let walk = method.walk(&z0, &spec)?;
                let Some(end) = walk.last() else {
                    return Err(Error::config("an empty walk"));
                };
                let end = end.to_dtype(DType::F32)?;
                let x = model.decode(&end)?;
                sums[i] += round_trip_error(model, &x)?;
                if !preserve {
                    sums[2] += crate::methods::row_norms(&end)?
                        .to_dtype(n0.dtype())?
                        .div(&n0)?
                        .mean_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?;
                }
            }
        }
        let k = method.directions() as f64;
        rows.push(QualityRow {
            scale,
            error_plain: sums[0] / k,
            error_preserving: sums[1] / k,
            norm_ratio_plain: sums[2] / k,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{GeneratorConfig, GeneratorKind};
    use crate::nn::Params;

    fn model(kind: GeneratorKind) -> GeneratorModel {
        let mut cfg = GeneratorConfig::new(kind, 3, 1);
        cfg.base = 4;
        GeneratorModel::new(&Params::new(0, &Device::Cpu), &cfg).unwrap()
    }

    #[test]
    fn the_round_trip_is_the_vaes_own_and_a_gan_is_refused() {
        let vae = model(GeneratorKind::Vae);
        let z = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let x = vae.decode(&z).unwrap();
        let e = round_trip_error(&vae, &x).unwrap();
        // By hand: decode the encoder's mean of x and compare.
        let GeneratorModel::Vae(v) = &vae else {
            unreachable!()
        };
        let back = vae.decode(&v.encode(&x).unwrap().0).unwrap();
        let want: f64 = (back - &x)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((e - want).abs() < 1e-12 && e > 0.0, "{e} {want}");
        let gan = model(GeneratorKind::Gan);
        let x = gan.decode(&z).unwrap();
        let err = round_trip_error(&gan, &x).unwrap_err().to_string();
        assert!(err.contains("needs a VAE"), "{err}");
    }
}
