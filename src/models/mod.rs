//! Generators (a convolutional VAE and a DCGAN-style GAN) behind one [`Generator`]
//! trait, with exact forward-mode Jacobian-vector products.

pub mod classifier;
pub mod config;
pub mod density;
pub mod factors;
pub mod flow_vae;
pub mod gan;
pub mod images;
pub mod ode;
pub mod potential;
pub mod vae;
pub mod warped;

pub use config::{GeneratorConfig, GeneratorKind, LatentPrior};
pub use gan::{Discriminator, Gan};
pub use vae::Vae;

use crate::nn::Params;
use candle_core::{Device, Result, Tensor};
use rand::Rng;

/// A map from latent codes to images.
pub trait Generator: Send + Sync {
    /// The architecture.
    fn config(&self) -> &GeneratorConfig;
    /// x = G(z): (n, latent) → (n, channels, size, size), values in [0, 1].
    fn decode(&self, z: &Tensor) -> Result<Tensor>;
    /// (G(z), J_G(z)·v), computed exactly by forward-mode differentiation.
    fn jvp(&self, z: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)>;

    /// Size of a latent code.
    fn latent_dim(&self) -> usize {
        self.config().latent
    }
    /// (channels, height, width) of one image.
    fn image_shape(&self) -> (usize, usize, usize) {
        let c = self.config();
        (c.channels, c.image_size, c.image_size)
    }
    /// The distribution latent codes are drawn from.
    fn prior(&self) -> LatentPrior {
        self.config().prior
    }
}

/// Either built-in generator, as loaded from a checkpoint.
#[derive(Debug)]
pub enum GeneratorModel {
    /// A variational autoencoder (the decoder is the generator).
    Vae(Vae),
    /// A generative adversarial network's generator.
    Gan(Gan),
}

impl GeneratorModel {
    /// Builds (or loads, from a store holding a checkpoint's tensors) the model `cfg`
    /// describes. For a GAN the discriminator is not built.
    pub fn new(p: &Params, cfg: &GeneratorConfig) -> Result<Self> {
        Ok(match cfg.kind {
            GeneratorKind::Vae => GeneratorModel::Vae(Vae::new(p, cfg)?),
            GeneratorKind::Gan => GeneratorModel::Gan(Gan::new(p, cfg)?),
        })
    }

    fn inner(&self) -> &dyn Generator {
        match self {
            GeneratorModel::Vae(m) => m,
            GeneratorModel::Gan(m) => m,
        }
    }
}

impl Generator for GeneratorModel {
    fn config(&self) -> &GeneratorConfig {
        self.inner().config()
    }
    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.inner().decode(z)
    }
    fn jvp(&self, z: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        self.inner().jvp(z, v)
    }
}

/// `n` latent codes drawn from `prior` with `rng`, as an (n, dim) tensor.
pub fn sample_latents(
    prior: LatentPrior,
    n: usize,
    dim: usize,
    rng: &mut impl Rng,
    device: &Device,
) -> Result<Tensor> {
    let values: Vec<f32> = match prior {
        LatentPrior::StandardNormal => (0..n * dim)
            .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
            .collect(),
    };
    Tensor::from_vec(values, (n, dim), device)
}

/// Standard-normal noise of the given shape from `rng` (reproducible, unlike candle's CPU
/// random tensors, which cannot be seeded).
pub fn randn(shape: &[usize], rng: &mut impl Rng, device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    Tensor::from_vec(values, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fd::{randn64, relative_error};
    use candle_core::DType;

    fn build(kind: GeneratorKind, channels: usize) -> Result<GeneratorModel> {
        let mut cfg = GeneratorConfig::new(kind, 6, channels);
        cfg.base = 4;
        cfg.image_size = 32;
        let p = Params::new(11, &Device::Cpu).with_dtype(DType::F64)?;
        GeneratorModel::new(&p, &cfg)
    }

    #[test]
    fn generator_jvps_match_finite_differences() -> Result<()> {
        for (kind, c) in [
            (GeneratorKind::Vae, 1),
            (GeneratorKind::Vae, 3),
            (GeneratorKind::Gan, 3),
        ] {
            let g = build(kind, c)?;
            let z = randn64(&[3, 6], 5)?;
            let v = randn64(&[3, 6], 6)?;
            let (x, t) = g.jvp(&z, &v)?;
            assert_eq!(x.dims(), &[3, c, 32, 32]);
            let dx = (x - g.decode(&z)?)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(
                dx < 1e-12,
                "{kind:?}: jvp value differs from decode by {dx}"
            );
            let err = relative_error(|z| g.decode(z), &z, &v, &t, 1e-6)?;
            assert!(err < 1e-6, "{kind:?} c={c}: relative error {err}");
        }
        Ok(())
    }

    #[test]
    fn decoded_images_are_in_unit_range() -> Result<()> {
        let g = build(GeneratorKind::Gan, 1)?;
        let x = g.decode(&randn64(&[2, 6], 1)?)?;
        let (lo, hi) = (
            x.min_all()?.to_scalar::<f64>()?,
            x.max_all()?.to_scalar::<f64>()?,
        );
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        Ok(())
    }
}
