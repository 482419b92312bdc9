//! The rule for outputs: a path that exists is replaced only when it is latentflow's own
//! file of the same kind (it carries the mark, [`super::MARK`]) and the user asked for it
//! (`--force`). A file of the user's is never touched, whatever the flags.

use super::{MARK, gif, input, png};
use crate::{Error, Result};
use std::path::Path;

/// The kinds of single-file output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A picture (strip, grid, screenshot).
    Png,
    /// An animation.
    Gif,
    /// Per-step values of a traversal.
    Json,
    /// A table (CSV, Markdown) whose first line is a comment naming latentflow
    /// ([`text_mark`]).
    Text,
}

/// The first line latentflow writes into its text files: a comment (`# …` for CSV,
/// `<!-- … -->` for Markdown) naming it, so that `--force` may replace them later.
pub fn text_mark(markdown: bool) -> String {
    if markdown {
        format!("<!-- written by {MARK} -->")
    } else {
        format!("# written by {MARK}")
    }
}

/// JSON documents larger than this are not opened to look for the mark.
const MAX_JSON_BYTES: u64 = 256 << 20;

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Png => "PNG",
            FileKind::Gif => "GIF",
            FileKind::Json => "JSON",
            FileKind::Text => "text",
        }
    }

    /// Whether the file at `path` is latentflow's own of this kind.
    fn is_own(self, path: &Path) -> bool {
        match self {
            FileKind::Png => png::is_marked(path),
            FileKind::Gif => gif::is_marked(path),
            FileKind::Json => input::read(path, MAX_JSON_BYTES, "JSON file")
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v.get("software").and_then(|s| s.as_str()) == Some(MARK)),
            FileKind::Text => input::read(path, MAX_JSON_BYTES, "text file")
                .ok()
                .and_then(|b| {
                    let first = b.split(|c| *c == b'\n').next()?.to_vec();
                    String::from_utf8(first).ok()
                })
                .is_some_and(|l| l == text_mark(true) || l == text_mark(false)),
        }
    }
}

/// Checks, before any work, that `path` may be written as a file of `kind`: its folder
/// exists, and either nothing is at `path`, or (with `force`) a file latentflow wrote of
/// the same kind.
pub fn check_file(path: &Path, kind: FileKind, force: bool) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::config(format!(
            "cannot write {}: the folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
        Ok(meta) => meta,
    };
    if meta.is_dir() {
        return Err(Error::config(format!(
            "{} is a folder; give a file name",
            path.display()
        )));
    }
    if !meta.is_file() || !kind.is_own(path) {
        return Err(Error::config(format!(
            "{} exists and is not a {} that latentflow wrote; choose another name (latentflow \
             never replaces files it did not write)",
            path.display(),
            kind.name()
        )));
    }
    if !force {
        return Err(Error::config(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_files_are_replaced_and_only_when_forced() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.png");
        check_file(&new, FileKind::Png, false).unwrap();
        let ours = dir.path().join("ours.png");
        std::fs::write(&ours, png::encode_rgb8(1, 1, &[0, 0, 0], &[]).unwrap()).unwrap();
        let e = check_file(&ours, FileKind::Png, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --force"), "{e}");
        check_file(&ours, FileKind::Png, true).unwrap();
        let e = check_file(&ours, FileKind::Gif, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a GIF that latentflow wrote"), "{e}");

        let theirs = dir.path().join("photo.png");
        ::image::RgbImage::new(2, 2).save(&theirs).unwrap();
        let e = check_file(&theirs, FileKind::Png, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a PNG that latentflow wrote"), "{e}");

        let json = dir.path().join("v.json");
        std::fs::write(&json, br#"{"software":"latentflow","steps":[]}"#).unwrap();
        check_file(&json, FileKind::Json, true).unwrap();
        std::fs::write(&json, br#"{"steps":[]}"#).unwrap();
        assert!(check_file(&json, FileKind::Json, true).is_err());

        let e = check_file(dir.path(), FileKind::Png, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_file(&dir.path().join("no/x.png"), FileKind::Png, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
