//! Loading a density model (`model: "density"`, see [`crate::models::density`]), written by
//! [`crate::train::density`]: the data's density beside a VAE, for walks that keep it.

use super::LoadedGenerator;
use super::learned::{SetConfig, load_set};
use crate::Result;
use crate::models::density::{DataDensity, DensityConfig};
use candle_core::Device;
use std::path::Path;

/// The model name in a density model's manifest.
pub const MODEL: &str = "density";

impl SetConfig for DensityConfig {
    const MODEL: &'static str = MODEL;
    const WHAT: &'static str = "a density model";
    fn latent(&self) -> usize {
        self.latent
    }
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

/// Loads the density model in `dir` for `generator`.
pub fn load_density(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
) -> Result<DataDensity> {
    Ok(load_set(dir, generator, device, DataDensity::new)?.0)
}

/// The folder a model's density model lives in: `density` inside the model folder.
pub fn density_dir(model_dir: &Path) -> std::path::PathBuf {
    model_dir.join("density")
}

/// The density model a model uses: the one the user fitted in the app (in the user's data
/// folder for the model, where trained sets go), else `density` inside the model folder.
pub fn find_density(model_dir: &Path) -> std::path::PathBuf {
    super::user::user_sets_dir(model_dir)
        .map(|d| d.join("density"))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| density_dir(model_dir))
}
