//! The user's own folder for work latentflow writes on its own account (the app's training
//! panel): never the shipped `models/` folder unless the user picks it. Potential sets
//! kept there for a model are listed with the model's own sets.

use std::path::{Path, PathBuf};

/// latentflow's data folder: `$LATENTFLOW_DATA_DIR`, else the platform's data directory
/// (`$XDG_DATA_HOME` or `~/.local/share` on Linux and other Unix systems,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows) with `latentflow`
/// appended; `None` when none of them is set.
pub fn data_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("LATENTFLOW_DATA_DIR") {
        return Some(d);
    }
    let base = if cfg!(target_os = "windows") {
        env("APPDATA")?
    } else if cfg!(target_os = "macos") {
        env("HOME")?.join("Library").join("Application Support")
    } else {
        env("XDG_DATA_HOME").or_else(|| env("HOME").map(|h| h.join(".local").join("share")))?
    };
    Some(base.join("latentflow"))
}

/// Where the user's potential sets for the model in `model_dir` are kept:
/// `DATA/potentials/NAME-HASH`, NAME the model folder's name and HASH a stable hash of
/// its canonical path (two models of one name do not share a folder).
pub fn user_sets_dir(model_dir: &Path) -> Option<PathBuf> {
    Some(user_sets_dir_in(&data_dir()?, model_dir))
}

/// [`user_sets_dir`] under a given data folder.
pub fn user_sets_dir_in(data: &Path, model_dir: &Path) -> PathBuf {
    let canon = std::fs::canonicalize(model_dir).unwrap_or_else(|_| model_dir.to_path_buf());
    let name = canon
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    // FNV-1a: stable across runs and Rust versions (std's hasher is not).
    let hash = canon
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    data.join("potentials").join(format!("{name}-{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_gets_its_own_stable_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("one/scenes-vae");
        let b = tmp.path().join("two/scenes-vae");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let data = Path::new("/data");
        let da = user_sets_dir_in(data, &a);
        assert!(da.starts_with("/data/potentials"));
        assert!(
            da.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("scenes-vae-")
        );
        assert_ne!(da, user_sets_dir_in(data, &b));
        // The same folder however it is spelled.
        let spelled = tmp.path().join("one/../one/scenes-vae");
        assert_eq!(da, user_sets_dir_in(data, &spelled));
    }
}
