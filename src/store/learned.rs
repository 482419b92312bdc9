//! Loading a learned method set (WarpedSpace's `warped`, NeuralODE's `ode`): its
//! architecture read from the manifest and checked, its latent size and generator checked
//! against the generator it is used with, and its tensors built into the model by name
//! (missing, extra or misshapen tensors refused).

use super::generator::{LoadedGenerator, read_manifest, read_weights};
use super::potentials::check_generator;
use super::{MANIFEST_FILE, manifest::Manifest};
use crate::nn::Params;
use crate::{Error, Result};
use candle_core::Device;
use serde::de::DeserializeOwned;
use std::path::Path;

/// A set's architecture as a manifest stores it.
pub trait SetConfig: DeserializeOwned {
    /// The manifest's model name.
    const MODEL: &'static str;
    /// What the set is called in errors ("a WarpedSpace set").
    const WHAT: &'static str;
    /// Its latent size.
    fn latent(&self) -> usize;
    /// Checks the sizes.
    fn check(&self) -> Result<()>;
}

/// The architecture in `manifest`, which must describe a `C`.
pub fn set_config<C: SetConfig>(dir: &Path, manifest: &Manifest) -> Result<C> {
    let path = dir.join(MANIFEST_FILE);
    if manifest.model != C::MODEL {
        return Err(Error::checkpoint(
            &path,
            format!("holds a '{}' model, not {}", manifest.model, C::WHAT),
        ));
    }
    let cfg: C = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid {}: {e}", C::WHAT)))?;
    cfg.check()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    Ok(cfg)
}

/// Loads the set in `dir` for `generator`, building it with `build` from a frozen store.
pub fn load_set<C: SetConfig, T>(
    dir: &Path,
    generator: &LoadedGenerator,
    device: &Device,
    build: impl FnOnce(&Params, &C) -> Result<T>,
) -> Result<(T, Manifest)> {
    let manifest = read_manifest(dir)?;
    let cfg: C = set_config(dir, &manifest)?;
    let latent = generator.config.latent;
    if cfg.latent() != latent {
        return Err(Error::checkpoint(
            dir.join(MANIFEST_FILE),
            format!(
                "this set acts on a {}-dimensional latent space but the generator's is {latent}-dimensional",
                cfg.latent()
            ),
        ));
    }
    check_generator(dir, &manifest, generator)?;
    let (path, tensors) = read_weights(dir, &manifest, device)?;
    let params = Params::from_tensors(tensors, false, device)?;
    let model = build(&params, &cfg).map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    if let Some(name) = params.unused()?.first() {
        return Err(Error::checkpoint(
            &path,
            format!("tensor {name} does not belong to {}", C::WHAT),
        ));
    }
    Ok((model, manifest))
}
