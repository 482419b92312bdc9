//! The JSON manifest that describes a checkpoint: what the weights are, how they were
//! made, and which tensors they must contain.

use crate::files::{atomic, input};
use crate::limits::{MAX_MANIFEST_BYTES, MAX_RANK, MAX_TENSORS};
use crate::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The manifest format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Shape and dtype of one stored tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type as safetensors names it (always "F32" when written by latentflow).
    pub dtype: String,
}

/// How the weights were trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Training {
    /// The exact command line.
    pub command: String,
    /// The random seed.
    pub seed: u64,
    /// Iterations completed.
    pub iterations: u64,
    /// Wall-clock seconds spent training (summed over resumed runs).
    pub elapsed_s: f64,
    /// Every other hyperparameter (batch size, learning rate, β, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// The manifest of a checkpoint folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always "latentflow".
    pub format: String,
    /// Version of this format ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// What the weights are: "generator" or "potentials".
    pub model: String,
    /// The architecture and its configuration (for generators a
    /// [`crate::models::GeneratorConfig`], which includes the latent prior).
    pub architecture: serde_json::Value,
    /// The dataset the weights were trained on, as `latentflow` names it.
    #[serde(default)]
    pub dataset: Option<String>,
    /// For potentials: the generator folder they were trained on, relative to their own
    /// folder (usually `..`) or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// For potentials: the digest of the generator's weights they were trained on
    /// ([`super::tensors::digest`]), so they are never used with other weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_digest: Option<String>,
    /// How the weights were trained.
    #[serde(default)]
    pub training: Option<Training>,
    /// Final metrics (losses), by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The weights file, relative to the folder (`model.safetensors`, or a PyTorch
    /// `.pth`/`.pt` state dict).
    pub weights: String,
    /// Every tensor the weights file must contain.
    pub tensors: BTreeMap<String, TensorInfo>,
}

impl Manifest {
    /// A manifest for `model` with `architecture`, listing no tensors yet.
    pub fn new(model: &str, architecture: serde_json::Value) -> Self {
        Self {
            format: "latentflow".into(),
            format_version: FORMAT_VERSION,
            model: model.into(),
            architecture,
            dataset: None,
            generator: None,
            generator_digest: None,
            training: None,
            metrics: BTreeMap::new(),
            weights: super::WEIGHTS_FILE.into(),
            tensors: BTreeMap::new(),
        }
    }

    /// Records the names, shapes and dtype of `tensors` (as they will be stored: F32).
    pub fn set_tensors(&mut self, tensors: &BTreeMap<String, Tensor>) {
        self.tensors = tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    TensorInfo {
                        shape: t.dims().to_vec(),
                        dtype: "F32".into(),
                    },
                )
            })
            .collect();
    }

    /// Reads and checks a manifest file (a regular file of at most
    /// [`MAX_MANIFEST_BYTES`]).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = input::read(path, MAX_MANIFEST_BYTES, "manifest")?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::checkpoint(path, format!("invalid manifest: {e}")))?;
        if m.format != "latentflow" {
            return Err(Error::checkpoint(
                path,
                format!("unknown format '{}'", m.format),
            ));
        }
        if m.format_version > FORMAT_VERSION {
            return Err(Error::checkpoint(
                path,
                format!(
                    "format version {} is newer than this build reads ({FORMAT_VERSION}); update latentflow",
                    m.format_version
                ),
            ));
        }
        if m.tensors.len() > MAX_TENSORS {
            return Err(Error::Limit(format!(
                "{}: {} tensors, above the limit of {MAX_TENSORS}",
                path.display(),
                m.tensors.len()
            )));
        }
        for (name, info) in &m.tensors {
            if info.shape.len() > MAX_RANK {
                return Err(Error::Limit(format!(
                    "{}: tensor {name} has {} dimensions, above the limit of {MAX_RANK}",
                    path.display(),
                    info.shape.len()
                )));
            }
            if !super::tensors::FLOAT_DTYPES.contains(&info.dtype.as_str()) {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "tensor {name} has dtype '{}'; expected one of {:?}",
                        info.dtype,
                        super::tensors::FLOAT_DTYPES
                    ),
                ));
            }
        }
        Ok(m)
    }

    /// The weights file of the checkpoint in `dir`: a file directly inside the folder (no
    /// sub-folder, no `..`, not absolute, and not a symbolic link that leads elsewhere).
    pub fn weights_path(&self, dir: &Path) -> Result<PathBuf> {
        let manifest = dir.join(super::MANIFEST_FILE);
        let mut parts = Path::new(&self.weights).components();
        if !matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(Error::checkpoint(
                manifest,
                format!(
                    "weights '{}' must name a file inside the model folder (no folders, no \
                     '..', not an absolute path)",
                    self.weights
                ),
            ));
        }
        let path = dir.join(&self.weights);
        if let (Ok(real), Ok(real_dir)) = (std::fs::canonicalize(&path), std::fs::canonicalize(dir))
            && real.parent() != Some(real_dir.as_path())
        {
            return Err(Error::checkpoint(
                manifest,
                format!(
                    "weights '{}' is a link to {}, outside the model folder",
                    self.weights,
                    real.display()
                ),
            ));
        }
        Ok(path)
    }

    /// Writes the manifest atomically (pretty-printed JSON).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::checkpoint(path, format!("cannot serialise manifest: {e}")))?;
        atomic::write(path, format!("{text}\n").as_bytes())
    }

    /// Checks that the tensors read from `weights_path` are exactly the listed ones, with
    /// the listed shapes and dtypes.
    pub fn check_tensors(
        &self,
        weights_path: &Path,
        read: &super::tensors::ReadTensors,
    ) -> Result<()> {
        let tensors = &read.tensors;
        for (name, info) in &self.tensors {
            if let Some(stored) = read.dtypes.get(name)
                && *stored != info.dtype
            {
                return Err(Error::checkpoint(
                    weights_path,
                    format!(
                        "tensor {name} is stored as {stored} but the manifest says {}",
                        info.dtype
                    ),
                ));
            }
            match tensors.get(name) {
                None => {
                    return Err(Error::checkpoint(
                        weights_path,
                        format!("tensor {name} listed in the manifest is missing from the weights"),
                    ));
                }
                Some(t) if t.dims() != info.shape.as_slice() => {
                    return Err(Error::checkpoint(
                        weights_path,
                        format!(
                            "tensor {name} has shape {:?} but the manifest says {:?}",
                            t.dims(),
                            info.shape
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = tensors.keys().find(|n| !self.tensors.contains_key(*n)) {
            return Err(Error::checkpoint(
                weights_path,
                format!("tensor {extra} is not listed in the manifest"),
            ));
        }
        Ok(())
    }
}
