//! Loading WarpedSpace sets (`model: "warped"`, see [`crate::models::warped`]), checked
//! against their manifest and the generator they were trained on. They are written by
//! [`crate::train::warped`].

use super::generator::{LoadedGenerator, read_manifest, read_weights};
use super::potentials::check_generator;
use super::{MANIFEST_FILE, manifest::Manifest};
use crate::models::warped::{WarpedConfig, Warps};
use crate::nn::Params;
use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The model name in a WarpedSpace set's manifest.
pub const MODEL: &str = "warped";

/// A WarpedSpace set as loaded.
#[derive(Debug, Clone)]
pub struct LoadedWarped {
    /// The warping functions, frozen.
    pub warps: Warps,
    /// Their manifest.
    pub manifest: Manifest,
    /// The folder.
    pub dir: PathBuf,
}

/// The configuration in a manifest that must describe a WarpedSpace set.
pub fn warped_config(dir: &Path, manifest: &Manifest) -> Result<WarpedConfig> {
    let path = dir.join(MANIFEST_FILE);
    if manifest.model != MODEL {
        return Err(Error::checkpoint(
            &path,
            format!("holds a '{}' model, not a WarpedSpace set", manifest.model),
        ));
    }
    let cfg: WarpedConfig = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid WarpedSpace set: {e}")))?;
    cfg.validate()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    Ok(cfg)
}

/// Loads the WarpedSpace set in `dir` for `generator`.
pub fn load_warped(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
) -> Result<LoadedWarped> {
    let manifest = read_manifest(dir)?;
    let cfg = warped_config(dir, &manifest)?;
    let latent = generator.config.latent;
    if cfg.latent != latent {
        return Err(Error::checkpoint(
            dir.join(MANIFEST_FILE),
            format!(
                "these paths are {}-dimensional but the generator's latent space is {latent}-dimensional",
                cfg.latent
            ),
        ));
    }
    check_generator(dir, &manifest, generator)?;
    let (path, tensors) = read_weights(dir, &manifest, device)?;
    let params = Params::from_tensors(tensors, false, device)?;
    let warps = Warps::new(&params, &cfg).map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    if let Some(name) = params.unused()?.first() {
        return Err(Error::checkpoint(
            &path,
            format!("tensor {name} does not belong to a WarpedSpace set"),
        ));
    }
    Ok(LoadedWarped {
        warps,
        manifest,
        dir: dir.to_path_buf(),
    })
}
