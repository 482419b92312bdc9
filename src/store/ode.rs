//! Loading NeuralODE sets (`model: "ode"`, see [`crate::models::ode`]); they are written by
//! [`crate::train::ode`].

use super::LoadedGenerator;
use super::learned::{SetConfig, load_set};
use super::manifest::Manifest;
use crate::Result;
use crate::models::ode::{OdeConfig, VectorFields};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The model name in a NeuralODE set's manifest.
pub const MODEL: &str = "ode";

impl SetConfig for OdeConfig {
    const MODEL: &'static str = MODEL;
    const WHAT: &'static str = "a NeuralODE set";
    fn latent(&self) -> usize {
        self.latent
    }
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

/// A NeuralODE set as loaded.
#[derive(Debug, Clone)]
pub struct LoadedOde {
    /// The vector fields, frozen.
    pub fields: VectorFields,
    /// Their manifest.
    pub manifest: Manifest,
    /// The folder.
    pub dir: PathBuf,
}

/// Loads the NeuralODE set in `dir` for `generator`.
pub fn load_ode(dir: &Path, generator: &LoadedGenerator, device: &Device) -> Result<LoadedOde> {
    let (fields, manifest) = load_set(dir, generator, device, VectorFields::new)?;
    Ok(LoadedOde {
        fields,
        manifest,
        dir: dir.to_path_buf(),
    })
}
