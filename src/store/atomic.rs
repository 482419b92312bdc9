//! Atomic file writes: the new content goes to a temporary file in the same folder, is
//! flushed to disk, and replaces the target by a rename, so a reader (or a crash) sees
//! either the old file or the new one, never a mixture.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically. The parent folder must exist.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Creates `dir` (and its parents) with an error that names it.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Checks, before long work starts, that files can be created in `dir` (creating it if
/// needed), so an unwritable output is reported at once rather than after training.
pub fn check_writable(dir: &Path) -> Result<()> {
    create_dir(dir)?;
    let probe = dir.join(format!(".latentflow-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("a.txt");
        write(&path, b"one")?;
        write(&path, b"two")?;
        assert_eq!(
            std::fs::read(&path).map_err(|e| Error::io(&path, e))?,
            b"two"
        );
        let entries = std::fs::read_dir(dir.path())
            .map_err(|e| Error::io("tmp", e))?
            .count();
        assert_eq!(entries, 1);
        Ok(())
    }

    #[test]
    fn missing_parent_is_an_error_naming_the_path() {
        let err = write(Path::new("/nonexistent-dir/x/y.bin"), b"1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-dir/x/y.bin"), "{err}");
    }
}
