//! `latentflow import-pth`: turn a PyTorch state dict into a latentflow model folder.
//!
//! The model is written into a temporary folder that this run creates beside `--out`
//! (`.NAME.importing-PID`, never an existing folder), loaded back with every check, and
//! then renamed to `--out`, which must be new or an empty folder. On failure only what
//! this run created is removed, file by file.

use super::{ImportPthArgs, command_line};
use crate::models::GeneratorConfig;
use crate::session::device;
use crate::store::{self, Manifest, generator::load_generator, manifest::Training, pth};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Reads the state dict, checks it against the architecture, and writes the folder.
pub fn import_pth(args: ImportPthArgs) -> Result<()> {
    let out = &args.out;
    check_target(out)?;
    let mut cfg = GeneratorConfig::new(args.kind, args.latent, args.channels);
    cfg.base = args.base;
    cfg.image_size = args.image_size;
    cfg.validate()?;
    let dev = device()?;
    let tensors = pth::load_pth(&args.pth, &dev)?;
    let mut manifest = Manifest::new("generator", serde_json::to_value(&cfg)?);
    manifest.training = Some(Training {
        command: command_line(),
        ..Default::default()
    });
    let tmp = create_temp_dir(out)?;
    let result = (|| -> Result<()> {
        store::save_checkpoint(&tmp, &mut manifest, &tensors)?;
        load_generator(&tmp, &dev).with_context(|| {
            format!(
                "{} does not match the given architecture",
                args.pth.display()
            )
        })?;
        std::fs::rename(&tmp, out).with_context(|| format!("cannot create {}", out.display()))
    })();
    if let Err(e) = result {
        remove_temp_dir(&tmp);
        return Err(e);
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// `--out` must not exist yet, or be an empty folder.
fn check_target(out: &Path) -> Result<()> {
    if out.file_name().is_none() {
        bail!(
            "--out {} does not name a new folder; give a folder name such as models/imported",
            out.display()
        );
    }
    match std::fs::symlink_metadata(out) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => {
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("cannot read {}", out.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "{} is not empty; import-pth writes only a new or empty folder",
                    out.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!("{} exists and is not a folder", out.display()),
    }
}

/// Creates the temporary folder `.NAME.importing-PID` beside `out` (its parent is created
/// if needed). Creation fails rather than reuse a folder that exists.
fn create_temp_dir(out: &Path) -> Result<PathBuf> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Folders a killed import left behind (their process no longer runs).
    let prefix = format!(".{name}.importing-");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            let dead = entry_name
                .strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !crate::files::atomic::process_runs(pid));
            if dead {
                remove_temp_dir(&entry.path());
            }
        }
    }
    let tmp = parent.join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

/// Removes a temporary folder of [`import_pth`] if it holds nothing but what an import
/// writes (the weights, the manifest and their temporary files); anything else there is
/// left alone.
fn remove_temp_dir(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let own = name == store::WEIGHTS_FILE
            || name == store::MANIFEST_FILE
            || (name.starts_with('.') && name.contains(".tmp-"));
        if !own || !entry.file_type().is_ok_and(|t| t.is_file()) {
            return;
        }
        ours.push(entry.path());
    }
    for f in ours {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir(tmp);
}
