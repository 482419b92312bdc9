//! Saving and loading potential sets (`model: "potentials"`), checked against their
//! manifest and against the generator they are used with.

use super::generator::{LoadedGenerator, read_manifest, read_weights};
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

/// Loads a frozen potential set for `generator`: its latent size must match, and so must
/// the generator the set records — the digest of its weights when the manifest has one,
/// else the folder.
pub fn load_potentials(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
) -> Result<LoadedPotentials> {
    let manifest = read_manifest(dir)?;
    let cfg = potential_config(dir, &manifest)?;
    let latent = generator.config.latent;
    if cfg.latent != latent {
        return Err(Error::checkpoint(
            dir.join(MANIFEST_FILE),
            format!(
                "these potentials act on a {}-dimensional latent space but the generator's is {latent}-dimensional",
                cfg.latent
            ),
        ));
    }
    check_generator(dir, &manifest, generator)?;
    let (path, tensors) = read_weights(dir, &manifest, device)?;
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

/// Checks that the potentials in `dir` were trained on `generator`'s weights.
pub(super) fn check_generator(
    dir: &Path,
    manifest: &Manifest,
    generator: &LoadedGenerator,
) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    if let Some(recorded) = &manifest.generator_digest {
        if *recorded != generator.digest {
            return Err(Error::checkpoint(
                path,
                format!(
                    "these potentials were trained on other weights than those of {} (the \
                     generator was retrained or replaced since); train them again",
                    generator.dir.display()
                ),
            ));
        }
        return Ok(());
    }
    let Some(recorded) = &manifest.generator else {
        return Ok(());
    };
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let trained_on = canon(&dir.join(recorded));
    if trained_on.is_none() || trained_on != canon(&generator.dir) {
        return Err(Error::checkpoint(
            path,
            format!(
                "these potentials were trained on the generator in '{recorded}' (relative to \
                 their folder), not on {}",
                generator.dir.display()
            ),
        ));
    }
    Ok(())
}
