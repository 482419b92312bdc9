//! Architecture descriptions of the built-in generators, stored in checkpoint manifests.

use crate::limits::MAX_LATENT;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which built-in architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// Convolutional VAE (Burgess et al. style encoder/decoder).
    Vae,
    /// DCGAN-style generator and discriminator.
    Gan,
}

impl std::str::FromStr for GeneratorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vae" => Ok(GeneratorKind::Vae),
            "gan" => Ok(GeneratorKind::Gan),
            _ => Err(Error::config(format!(
                "unknown generator kind '{s}' (expected vae or gan)"
            ))),
        }
    }
}

/// The distribution of latent codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LatentPrior {
    /// z ~ N(0, I).
    #[default]
    StandardNormal,
}

/// Everything needed to build a generator's layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// VAE or GAN.
    pub kind: GeneratorKind,
    /// Size of the latent code.
    pub latent: usize,
    /// Image channels (1 grey, 3 RGB).
    pub channels: usize,
    /// Width of the first convolution; deeper layers use multiples of it.
    pub base: usize,
    /// Side of the square images: a power of two, at least 8.
    pub image_size: usize,
    /// The latent prior.
    #[serde(default)]
    pub prior: LatentPrior,
}

impl GeneratorConfig {
    /// A configuration with the default widths for `kind` (VAE 32, GAN 64) at 64×64.
    pub fn new(kind: GeneratorKind, latent: usize, channels: usize) -> Self {
        let base = match kind {
            GeneratorKind::Vae => 32,
            GeneratorKind::Gan => 64,
        };
        Self {
            kind,
            latent,
            channels,
            base,
            image_size: 64,
            prior: LatentPrior::StandardNormal,
        }
    }

    /// Checks that the numbers describe a buildable network.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.latent > MAX_LATENT {
            return Err(Error::config(format!(
                "latent size {} is not in 1..={MAX_LATENT}",
                self.latent
            )));
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(Error::config(format!(
                "image channels {} must be 1 (grey) or 3 (RGB)",
                self.channels
            )));
        }
        if self.base == 0 || self.base > 1024 {
            return Err(Error::config(format!(
                "base width {} is not in 1..=1024",
                self.base
            )));
        }
        if !self.image_size.is_power_of_two() || self.image_size < 8 || self.image_size > 256 {
            return Err(Error::config(format!(
                "image size {} must be a power of two in 8..=256",
                self.image_size
            )));
        }
        Ok(())
    }

    /// Number of stride-2 stages between 4×4 and the image size.
    pub fn stages(&self) -> usize {
        (self.image_size / 4).trailing_zeros() as usize
    }

    /// Width of stride-2 stage `i`, counted from the image side (the encoder's and the
    /// discriminator's order).
    fn stage_width(&self, i: usize) -> usize {
        match self.kind {
            GeneratorKind::Vae => self.base << (i / 2).min(3),
            GeneratorKind::Gan => self.base << i.min(4),
        }
    }

    /// The number of weights of both networks (encoder and decoder, or generator and
    /// discriminator), estimated from above.
    pub fn param_count(&self) -> u128 {
        let mut n: u128 = 0;
        let mut cin = self.channels as u128;
        for i in 0..self.stages() {
            let w = self.stage_width(i) as u128;
            // Weights, bias, and batch norm's scale, shift and running statistics.
            n = n.saturating_add(16 * cin * w + 5 * w);
            cin = w;
        }
        let top = cin;
        let hidden = 8 * self.base as u128;
        let latent = self.latent as u128;
        // Both directions of the convolutions, then the dense layers between the top stage
        // and the latent code (the VAE's fc layers; the GAN's 4×4 first and last layers).
        let dense = match self.kind {
            GeneratorKind::Vae => {
                2 * top * 16 * (hidden + 1) + 3 * latent * (hidden + 1) + 4 * hidden
            }
            GeneratorKind::Gan => 16 * top * (latent + 1) + 5 * top,
        };
        n.saturating_mul(2).saturating_add(dense)
    }

    /// The feature-map values one image produces in one network, estimated from above.
    pub fn activation_count(&self) -> u128 {
        let side = self.image_size as u128;
        let mut n = self.channels as u128 * side * side;
        for i in 0..self.stages() {
            let s = side >> (i + 1);
            n = n.saturating_add(self.stage_width(i) as u128 * s * s);
        }
        n
    }

    /// Bytes a training step with batches of `batch` images takes, estimated from above:
    /// the weights with their gradients and Adam's two moments, and per image both
    /// networks' feature maps, their gradients and the convolutions' unfolded inputs.
    /// Meant to refuse what cannot fit, not to predict the peak.
    pub fn training_bytes(&self, batch: usize) -> u64 {
        let weights = self.param_count().saturating_mul(4);
        let per_image = self.activation_count().saturating_mul(2 * 12);
        crate::limits::f32_bytes(weights.saturating_add(per_image.saturating_mul(batch as u128)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Discriminator, Gan, Vae};
    use crate::nn::Params;
    use candle_core::Device;

    fn counted(p: &Params) -> u128 {
        p.tensors()
            .unwrap()
            .values()
            .map(|t| t.elem_count() as u128)
            .sum()
    }

    #[test]
    fn parameter_estimates_bound_the_real_networks_closely() {
        for kind in [GeneratorKind::Vae, GeneratorKind::Gan] {
            for (base, size) in [(4, 16), (8, 64), (16, 32)] {
                let mut cfg = GeneratorConfig::new(kind, 5, 3);
                cfg.base = base;
                cfg.image_size = size;
                let p = Params::new(0, &Device::Cpu);
                match kind {
                    GeneratorKind::Vae => {
                        Vae::new(&p, &cfg).unwrap();
                    }
                    GeneratorKind::Gan => {
                        Gan::new(&p, &cfg).unwrap();
                        Discriminator::new(&p, &cfg).unwrap();
                    }
                }
                let real = counted(&p);
                let est = cfg.param_count();
                assert!(
                    est >= real && est <= 2 * real,
                    "{kind:?} base {base} size {size}: {est} vs {real}"
                );
            }
        }
    }

    #[test]
    fn absurd_widths_need_more_memory_than_a_machine_has() {
        let mut cfg = GeneratorConfig::new(GeneratorKind::Vae, 16, 3);
        cfg.base = 1024;
        assert!(
            cfg.training_bytes(64) > 16 << 30,
            "{}",
            cfg.training_bytes(64)
        );
        cfg.base = 32;
        assert!(
            cfg.training_bytes(64) < 2 << 30,
            "{}",
            cfg.training_bytes(64)
        );
    }
}
