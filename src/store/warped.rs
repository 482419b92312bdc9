//! Loading WarpedSpace sets (`model: "warped"`, see [`crate::models::warped`]); they are
//! written by [`crate::train::warped`].

use super::LoadedGenerator;
use super::learned::{SetConfig, load_set};
use super::manifest::Manifest;
use crate::Result;
use crate::models::warped::{WarpedConfig, Warps};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The model name in a WarpedSpace set's manifest.
pub const MODEL: &str = "warped";

impl SetConfig for WarpedConfig {
    const MODEL: &'static str = MODEL;
    const WHAT: &'static str = "a WarpedSpace set";
    fn latent(&self) -> usize {
        self.latent
    }
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

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

/// Loads the WarpedSpace set in `dir` for `generator`.
pub fn load_warped(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
) -> Result<LoadedWarped> {
    let (warps, manifest) = load_set(dir, generator, device, Warps::new)?;
    Ok(LoadedWarped {
        warps,
        manifest,
        dir: dir.to_path_buf(),
    })
}
