//! Checkpoints on disk: safetensors weights plus a JSON manifest, written atomically and
//! validated on load (every tensor's name, shape and dtype; no NaN or Inf).
//!
//! A checkpoint is a folder:
//! - `manifest.json` ([`Manifest`]): format version, architecture and its config, dataset,
//!   latent prior, training command, final metrics, and the list of tensors;
//! - `model.safetensors`: the weights, named like PyTorch `state_dict` keys;
//! - optionally `train-state.safetensors` + `train-state.json`: optimiser moments and
//!   progress, so an interrupted run resumes.
//!
//! The format is documented for PyTorch users in `docs/checkpoint-format.md`.

pub mod density;
pub mod directions;
pub mod generator;
pub mod learned;
pub mod manifest;
pub mod methods;
pub mod ode;
pub mod pickle;
pub mod potentials;
pub mod pth;
pub mod tensors;
pub mod user;
pub mod warped;

pub use directions::{LoadedDirections, load_directions, save_directions};
pub use generator::{LoadedGenerator, load_generator, save_checkpoint};
pub use manifest::{FORMAT_VERSION, Manifest, TensorInfo};
pub use methods::{default_method, find_methods, rename_directions};
pub use ode::{LoadedOde, load_ode};
pub use potentials::{LoadedPotentials, load_potentials};
pub use tensors::{load_safetensors, save_safetensors};
pub use warped::{LoadedWarped, load_warped};

/// File name of the manifest inside a checkpoint folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the weights inside a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The shipped default model: `models/scenes-vae` under the working directory, or else
/// under the source tree this binary was built from.
pub fn default_model_dir() -> std::path::PathBuf {
    let rel = std::path::Path::new("models").join("scenes-vae");
    if rel.join(MANIFEST_FILE).is_file() {
        return rel;
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
