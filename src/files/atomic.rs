//! Atomic file writes: the new content goes to a temporary file in the same folder, is
//! flushed to disk, and replaces the target by a rename, so a reader (or a crash) sees
//! either the old file or the new one, never a mixture.
//!
//! Temporary files are named `.NAME.tmp-PID-N`, created exclusively (an existing file of
//! that name is never opened), and removed on failure. Those that a killed process left
//! behind (their PID no longer runs) are removed the next time NAME is written.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::config(format!("{} is not a file name", path.display())))
}

/// The prefix of the temporary files of `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Whether a process with this id runs (Linux: `/proc/PID` exists). Where that cannot be
/// told, every process counts as running, so nothing is removed.
pub(crate) fn process_runs(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// The PID in a temporary name's suffix (`PID` or `PID-N`), if it has that form.
fn temp_pid(suffix: &str) -> Option<u32> {
    let (pid, n) = suffix.split_once('-').unwrap_or((suffix, "0"));
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes the temporary files of `name` in `dir` that a process which no longer runs left
/// behind (regular files only). Failures are ignored: this is tidying, not the write.
pub fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = temp_prefix(name);
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = entry_name.strip_prefix(&prefix).and_then(temp_pid) else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && pid != std::process::id() && !process_runs(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` atomically. The parent folder must exist.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = file_name(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temps(&dir, &name);
    let tmp = dir.join(format!(
        "{}{}-{}",
        temp_prefix(&name),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut created = false;
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        created = true;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        if created {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Creates `dir` (and its parents) with an error that names it.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Checks, before long work starts, that `dir` could be written: files can be created in
/// it, or, when it does not exist yet, in the nearest folder above it that does (which is
/// where it will be created). Creates nothing that stays: a run that dies before its first
/// checkpoint leaves no empty folder behind.
pub fn check_writable(dir: &Path) -> Result<()> {
    let mut probe_dir = dir.to_path_buf();
    while !probe_dir.exists() {
        match probe_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir = p.to_path_buf(),
            _ => {
                probe_dir = PathBuf::from(".");
                break;
            }
        }
    }
    if !probe_dir.is_dir() {
        return Err(Error::config(format!(
            "{} cannot be created: {} is not a folder",
            dir.display(),
            probe_dir.display()
        )));
    }
    let probe = probe_dir.join(format!(".latentflow-write-test-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

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
        assert_eq!(names(dir.path()), ["a.txt"]);
        Ok(())
    }

    #[test]
    fn missing_parent_is_an_error_naming_the_path() {
        let err = write(Path::new("/nonexistent-dir/x/y.bin"), b"1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-dir/x/y.bin"), "{err}");
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's pid_max: that process cannot run.
        let stale = dir.path().join(".a.txt.tmp-4194304");
        let stale_n = dir.path().join(".a.txt.tmp-4194304-7");
        let live = dir.path().join(".a.txt.tmp-1"); // init always runs
        let other = dir.path().join(".b.txt.tmp-4194304");
        let user = dir.path().join(".a.txt.tmp-notes");
        for p in [&stale, &stale_n, &live, &other, &user] {
            std::fs::write(p, b"x").unwrap();
        }
        write(&dir.path().join("a.txt"), b"new").unwrap();
        assert_eq!(
            names(dir.path()),
            [
                ".a.txt.tmp-1",
                ".a.txt.tmp-notes",
                ".b.txt.tmp-4194304",
                "a.txt"
            ]
        );
    }

    #[test]
    fn an_existing_file_with_a_temporary_name_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let clash = dir
            .path()
            .join(format!(".a.txt.tmp-{}-0", std::process::id()));
        std::fs::write(&clash, b"keep").unwrap();
        // Whatever the counter is, the write either uses another name or fails; it never
        // truncates the clashing file.
        for _ in 0..3 {
            let _ = write(&dir.path().join("a.txt"), b"new");
        }
        assert_eq!(std::fs::read(&clash).unwrap(), b"keep");
    }

    #[test]
    fn writability_is_checked_without_creating_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a").join("b");
        check_writable(&out).unwrap();
        assert!(!dir.path().join("a").exists());
        assert!(names(dir.path()).is_empty());
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let err = check_writable(&file.join("sub")).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
    }
}
