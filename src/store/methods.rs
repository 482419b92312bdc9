//! The traversal methods stored beside a generator: potential sets (`potentials`),
//! direction sets (`directions`), WarpedSpace sets (`warped`) and NeuralODE sets (`ode`),
//! found, ordered and renamed by one rule.

use super::MANIFEST_FILE;
use super::directions::{self, directions_config};
use super::generator::read_manifest;
use super::learned::set_config;
use super::ode;
use super::potentials::potential_config;
use super::warped;
use crate::models::{ode::OdeConfig, warped::WarpedConfig};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The manifest models that are traversal methods.
pub const METHOD_MODELS: [&str; 4] = ["potentials", directions::MODEL, warped::MODEL, ode::MODEL];

/// The method folders of a generator: each sub-folder of its folder whose manifest names
/// a [`METHOD_MODELS`] model, and each one the user trained on it in the app (kept in
/// [`super::user::user_sets_dir`]); the paper's PDE sets first, then the others (the
/// baselines), each group sorted by folder name (the model's own before the user's on a
/// tie). The first is the default method of the app and of every command (see
/// [`default_method`]): one rule, in one place.
pub fn find_methods(model_dir: &Path) -> Vec<PathBuf> {
    let mut folders = vec![(0u8, model_dir.to_path_buf())];
    if let Some(user) = super::user::user_sets_dir(model_dir) {
        folders.push((1, user));
    }
    let mut found: Vec<(bool, std::ffi::OsString, u8, PathBuf)> = Vec::new();
    for (rank, folder) in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let Ok(m) = read_manifest(&p) else {
                continue;
            };
            if !METHOD_MODELS.contains(&m.model.as_str()) {
                continue;
            }
            let pde =
                m.model == "potentials" && potential_config(&p, &m).is_ok_and(|c| c.kind.is_mlp());
            let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            found.push((!pde, name, rank, p));
        }
    }
    found.sort();
    found.into_iter().map(|(.., p)| p).collect()
}

/// The method a command uses when none is named: the first of [`find_methods`] (a PDE
/// set when the folder holds one).
pub fn default_method(model_dir: &Path) -> Option<PathBuf> {
    find_methods(model_dir).into_iter().next()
}

/// Writes new display names into a method's manifest (atomically), after checking that
/// there is one non-empty name per direction.
pub fn rename_directions(dir: &Path, names: &[String]) -> Result<()> {
    let mut manifest = read_manifest(dir)?;
    let k = match manifest.model.as_str() {
        "potentials" => potential_config(dir, &manifest)?.k,
        directions::MODEL => directions_config(dir, &manifest)?.k,
        warped::MODEL => set_config::<WarpedConfig>(dir, &manifest)?.k,
        ode::MODEL => set_config::<OdeConfig>(dir, &manifest)?.k,
        other => {
            return Err(Error::checkpoint(
                dir.join(MANIFEST_FILE),
                format!("holds a '{other}' model, which has no directions to name"),
            ));
        }
    };
    if names.len() != k || names.iter().any(|n| n.trim().is_empty()) {
        return Err(Error::config(format!(
            "give one non-empty name per direction ({} names for {k})",
            names.len()
        )));
    }
    let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    if let Some(arch) = manifest.architecture.as_object_mut() {
        arch.insert("names".into(), serde_json::json!(names));
    }
    // The renamed manifest must still describe the same method.
    match manifest.model.as_str() {
        "potentials" => potential_config(dir, &manifest).map(|_| ())?,
        warped::MODEL => set_config::<WarpedConfig>(dir, &manifest).map(|_| ())?,
        ode::MODEL => set_config::<OdeConfig>(dir, &manifest).map(|_| ())?,
        _ => directions_config(dir, &manifest).map(|_| ())?,
    }
    manifest.save(&dir.join(MANIFEST_FILE))
}
