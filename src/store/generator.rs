//! Saving and loading generator checkpoints, with every consistency check between the
//! manifest, the weights file and the architecture.

use super::{MANIFEST_FILE, WEIGHTS_FILE, manifest::Manifest, pth, tensors};
use crate::files::atomic;
use crate::models::{GeneratorConfig, GeneratorKind, GeneratorModel};
use crate::nn::Params;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A generator read from a checkpoint folder.
#[derive(Debug)]
pub struct LoadedGenerator {
    /// The model, frozen (its weights are constants).
    pub model: GeneratorModel,
    /// The manifest it was described by.
    pub manifest: Manifest,
    /// The architecture.
    pub config: GeneratorConfig,
    /// The folder it came from.
    pub dir: PathBuf,
    /// The digest of its weights ([`tensors::digest`]).
    pub digest: String,
}

/// Reads the weights named by `manifest` (a file inside `dir`), in safetensors or PyTorch
/// format, and checks them against the manifest's list of tensors.
pub fn read_weights(
    dir: &Path,
    manifest: &Manifest,
    device: &Device,
) -> Result<(PathBuf, BTreeMap<String, Tensor>)> {
    let path = manifest.weights_path(dir)?;
    let read = match path.extension().and_then(|e| e.to_str()) {
        Some("pth" | "pt") => pth::read_pth(&path, device)?,
        _ => tensors::read_safetensors(&path, device)?,
    };
    manifest.check_tensors(&path, &read)?;
    Ok((path, read.tensors))
}

/// Reads the manifest of a checkpoint folder, with a clear error if `dir` is not one.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    if !dir.is_dir() {
        return Err(Error::checkpoint(
            dir,
            "not a model folder (it does not exist or is not a folder)",
        ));
    }
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Err(Error::checkpoint(
            dir,
            format!("not a model folder: {MANIFEST_FILE} is missing"),
        ));
    }
    Manifest::load(&path)
}

/// The generator configuration of a manifest.
pub fn generator_config(dir: &Path, manifest: &Manifest) -> Result<GeneratorConfig> {
    let path = dir.join(MANIFEST_FILE);
    if manifest.model != "generator" {
        return Err(Error::checkpoint(
            &path,
            format!("holds a '{}' model, not a generator", manifest.model),
        ));
    }
    let cfg: GeneratorConfig = serde_json::from_value(manifest.architecture.clone())
        .map_err(|e| Error::checkpoint(&path, format!("invalid generator architecture: {e}")))?;
    cfg.validate()
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    Ok(cfg)
}

/// Loads a frozen generator from a checkpoint folder. Every tensor is checked against the
/// manifest and the architecture; NaN/Inf weights are rejected.
pub fn load_generator(dir: &Path, device: &Device) -> Result<LoadedGenerator> {
    let manifest = read_manifest(dir)?;
    let config = generator_config(dir, &manifest)?;
    let (path, tensors) = read_weights(dir, &manifest, device)?;
    let digest = tensors::digest(&tensors)?;
    let params = Params::from_tensors(tensors, false, device)?;
    let model = GeneratorModel::new(&params, &config)
        .map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    let unused: Vec<String> = params
        .unused()?
        .into_iter()
        .filter(|n| !(config.kind == GeneratorKind::Gan && n.starts_with("discriminator.")))
        .collect();
    if let Some(name) = unused.first() {
        return Err(Error::checkpoint(
            &path,
            format!(
                "tensor {name} does not belong to a {:?} with this config",
                config.kind
            ),
        ));
    }
    Ok(LoadedGenerator {
        model,
        manifest,
        config,
        dir: dir.to_path_buf(),
        digest,
    })
}

/// Writes `tensors` and the manifest (with its tensor list filled in) into `dir`,
/// each atomically, weights first.
pub fn save_checkpoint(
    dir: &Path,
    manifest: &mut Manifest,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<()> {
    atomic::create_dir(dir)?;
    manifest.weights = WEIGHTS_FILE.into();
    manifest.set_tensors(tensors);
    tensors::save_safetensors(&dir.join(WEIGHTS_FILE), tensors)?;
    manifest.save(&dir.join(MANIFEST_FILE))
}
