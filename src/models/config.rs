//! Architecture descriptions of the built-in generators, stored in checkpoint manifests.

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
        if self.latent == 0 || self.latent > 4096 {
            return Err(Error::config(format!(
                "latent size {} is not in 1..=4096",
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
}
