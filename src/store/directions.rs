//! Saving and loading direction sets (`model: "directions"`): K fixed latent directions
//! found in closed form (SeFa, GANSpace), each stored with the length of one step. A walk
//! along direction k is z_{t+1} = z_t + n_k; like potential sets they are checked against
//! the generator they were computed for.

use super::generator::{LoadedGenerator, read_manifest, read_weights};
use super::potentials::check_generator;
use super::{MANIFEST_FILE, manifest::Manifest};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The model name in a direction set's manifest.
pub const MODEL: &str = "directions";
/// The tensor holding the (K, d) step vectors.
pub const TENSOR: &str = "directions";

/// The architecture of a direction set (the manifest's `architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionsConfig {
    /// How they were found: "sefa" or "ganspace".
    pub method: String,
    /// Latent size d.
    pub latent: usize,
    /// Number of directions K.
    pub k: usize,
    /// Length of one step along each direction.
    pub step: f64,
    /// Display names (empty: "direction k").
    #[serde(default)]
    pub names: Vec<String>,
}

impl DirectionsConfig {
    /// Display name of direction `k`.
    pub fn name(&self, k: usize) -> String {
        self.names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("direction {k}"))
    }

    fn validate(&self) -> Result<()> {
        if self.k == 0 || self.latent == 0 {
            return Err(Error::config(
                "a direction set needs K ≥ 1 and a latent size ≥ 1",
            ));
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(Error::config(format!(
                "the step length must be positive and finite, not {}",
                self.step
            )));
        }
        if !self.names.is_empty() && self.names.len() != self.k {
            return Err(Error::config(format!(
                "{} names for {} directions",
                self.names.len(),
                self.k
            )));
        }
        Ok(())
    }
}

/// A direction set as loaded.
#[derive(Debug, Clone)]
pub struct LoadedDirections {
    /// Its architecture.
    pub config: DirectionsConfig,
    /// (K, d) step vectors, each of length `config.step`.
    pub directions: Tensor,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its folder.
    pub dir: PathBuf,
}

/// The configuration in a manifest that must describe a direction set.
pub fn directions_config(dir: &Path, manifest: &Manifest) -> Result<DirectionsConfig> {
    let path = dir.join(MANIFEST_FILE);
    if manifest.model != MODEL {
        return Err(Error::checkpoint(
            &path,
            format!("holds a '{}' model, not directions", manifest.model),
        ));
    }
    let cfg: DirectionsConfig = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid direction set: {e}")))?;
    cfg.validate()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    Ok(cfg)
}

/// Loads the direction set in `dir` for `generator`.
pub fn load_directions(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
) -> Result<LoadedDirections> {
    let manifest = read_manifest(dir)?;
    let config = directions_config(dir, &manifest)?;
    let latent = generator.config.latent;
    if config.latent != latent {
        return Err(Error::checkpoint(
            dir.join(MANIFEST_FILE),
            format!(
                "these directions are {}-dimensional but the generator's latent space is {latent}-dimensional",
                config.latent
            ),
        ));
    }
    check_generator(dir, &manifest, generator)?;
    let (path, mut tensors) = read_weights(dir, &manifest, device)?;
    let Some(directions) = tensors.remove(TENSOR) else {
        return Err(Error::checkpoint(&path, format!("no tensor '{TENSOR}'")));
    };
    if let Some(name) = tensors.keys().next() {
        return Err(Error::checkpoint(
            &path,
            format!("tensor {name} does not belong to a direction set"),
        ));
    }
    if directions.dims() != [config.k, config.latent] {
        return Err(Error::checkpoint(
            &path,
            format!(
                "'{TENSOR}' has shape {:?}, not [{}, {}]",
                directions.dims(),
                config.k,
                config.latent
            ),
        ));
    }
    Ok(LoadedDirections {
        config,
        directions: directions.to_dtype(DType::F32)?,
        manifest,
        dir: dir.to_path_buf(),
    })
}

/// Writes a direction set: `directions` (K rows of length d, any norm) are scaled to
/// length `config.step`; the manifest records the generator (by digest), the command and
/// `settings`.
pub fn save_directions(
    out: &Path,
    config: &DirectionsConfig,
    directions: &[Vec<f32>],
    generator: &LoadedGenerator,
    command: &str,
    settings: BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    config.validate()?;
    if directions.len() != config.k || directions.iter().any(|d| d.len() != config.latent) {
        return Err(Error::config(format!(
            "expected {} directions of size {}",
            config.k, config.latent
        )));
    }
    let mut flat = Vec::with_capacity(config.k * config.latent);
    for d in directions {
        let norm = d.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::config("a direction is zero or not finite"));
        }
        flat.extend(
            d.iter()
                .map(|x| (f64::from(*x) * config.step / norm) as f32),
        );
    }
    let tensor = Tensor::from_vec(flat, (config.k, config.latent), &Device::Cpu)?;
    let mut manifest = Manifest::new(
        MODEL,
        serde_json::to_value(config).map_err(|e| Error::config(e.to_string()))?,
    );
    manifest.dataset = generator.manifest.dataset.clone();
    manifest.generator_digest = Some(generator.digest.clone());
    manifest.training = Some(super::manifest::Training {
        command: command.into(),
        seed: settings
            .get("seed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        iterations: 0,
        elapsed_s: 0.0,
        settings,
    });
    let tensors = BTreeMap::from([(TENSOR.to_string(), tensor)]);
    super::save_checkpoint(out, &mut manifest, &tensors)
}
