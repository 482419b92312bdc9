//! Saving and loading potential sets (`model: "potentials"`), checked against their
//! manifest and against the generator they are used with.

use super::generator::{read_manifest, read_weights};
use super::{MANIFEST_FILE, manifest::Manifest};
use crate::models::potential::{PotentialConfig, Potentials};
use crate::nn::Params;
use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// A potential set read from a checkpoint folder.
#[derive(Debug, Clone)]
pub struct LoadedPotentials {
    /// The potentials, frozen.
    pub potentials: Potentials,
    /// Their manifest.
    pub manifest: Manifest,
    /// The folder.
    pub dir: PathBuf,
}

/// The potential configuration of a manifest.
pub fn potential_config(dir: &Path, manifest: &Manifest) -> Result<PotentialConfig> {
    let path = dir.join(MANIFEST_FILE);
    if manifest.model != "potentials" {
        return Err(Error::checkpoint(
            &path,
            format!("holds a '{}' model, not potentials", manifest.model),
        ));
    }
    let cfg: PotentialConfig = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid potential architecture: {e}")))?;
    cfg.validate()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    Ok(cfg)
}

/// Loads a frozen potential set; `latent` (the generator's latent size) must match.
pub fn load_potentials(dir: &Path, latent: usize, device: &Device) -> Result<LoadedPotentials> {
    let manifest = read_manifest(dir)?;
    let cfg = potential_config(dir, &manifest)?;
    if cfg.latent != latent {
        return Err(Error::checkpoint(
            dir.join(MANIFEST_FILE),
            format!(
                "these potentials act on a {}-dimensional latent space but the generator's is {latent}-dimensional",
                cfg.latent
            ),
        ));
    }
    let (path, tensors) = read_weights(dir, &manifest, device)?;
    manifest.check_tensors(&path, &tensors)?;
    let params = Params::from_tensors(tensors, false, device)?;
    let potentials =
        Potentials::new(&params, &cfg).map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    if let Some(name) = params.unused()?.first() {
        return Err(Error::checkpoint(
            &path,
            format!("tensor {name} does not belong to this potential set"),
        ));
    }
    Ok(LoadedPotentials {
        potentials,
        manifest,
        dir: dir.to_path_buf(),
    })
}

/// The potential sets inside a generator folder: each sub-folder whose manifest says
/// `potentials`, sorted by name.
pub fn find_potentials(model_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(model_dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| read_manifest(p).is_ok_and(|m| m.model == "potentials"))
        .collect();
    found.sort();
    found
}

/// Writes new display names into a potential set's manifest (atomically), after checking
/// that there is one non-empty name per potential.
pub fn rename_directions(dir: &Path, names: &[String]) -> Result<()> {
    let mut manifest = read_manifest(dir)?;
    let mut cfg = potential_config(dir, &manifest)?;
    if names.len() != cfg.k || names.iter().any(|n| n.trim().is_empty()) {
        return Err(Error::config(format!(
            "give one non-empty name per potential ({} names for {})",
            names.len(),
            cfg.k
        )));
    }
    cfg.names = names.iter().map(|n| n.trim().to_string()).collect();
    manifest.architecture = serde_json::to_value(&cfg).map_err(|e| Error::config(e.to_string()))?;
    manifest.save(&dir.join(MANIFEST_FILE))
}
