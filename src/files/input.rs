//! Bounded reads: only regular files (following symbolic links), never larger than a limit
//! the caller names, and decompression that stops at a limit. A FIFO, a device such as
//! `/dev/zero`, or a folder in place of a file is refused before it is opened, so a read
//! can neither hang nor exhaust memory.

use crate::limits::human_bytes;
use crate::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Opens `path` after checking that it is a regular file of at most `max` bytes; `what`
/// says what the file is for messages ("weights file", "IDX file"). Returns the file and
/// its size.
pub fn open_regular(path: &Path, max: u64, what: &str) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(Error::Limit(format!(
            "{}: the {what} is {kind}; latentflow reads only regular files",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(too_big(path, what, meta.len(), max));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok((file, meta.len()))
}

fn too_big(path: &Path, what: &str, size: u64, max: u64) -> Error {
    Error::Limit(format!(
        "{}: the {what} is {}, above the limit of {}",
        path.display(),
        human_bytes(size),
        human_bytes(max)
    ))
}

/// Reads the whole of `path`, a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let (file, size) = open_regular(path, max, what)?;
    read_limited(file, max, path, what, size)
}

/// Reads `reader` to its end, failing once it yields more than `max` bytes (a file that
/// grows while read, a decompression bomb). `expected` sizes the buffer (bounded by `max`).
pub fn read_limited(
    reader: impl Read,
    max: u64,
    path: &Path,
    what: &str,
    expected: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(expected.min(max)).unwrap_or(0));
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > max {
        return Err(Error::Limit(format!(
            "{}: the {what} holds more than {}, the limit",
            path.display(),
            human_bytes(max)
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 5, "test file").unwrap(), b"hello");
        let e = read(&p, 4, "test file").unwrap_err().to_string();
        assert!(
            e.contains("the test file is 5 bytes, above the limit of 4 bytes"),
            "{e}"
        );
    }

    #[test]
    fn folders_devices_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path(), 1 << 20, "weights file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = read(Path::new("/dev/zero"), 1 << 20, "weights file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(read(&dir.path().join("absent"), 10, "x").is_err());
    }

    #[test]
    fn endless_streams_stop_at_the_limit() {
        let e = read_limited(std::io::repeat(7), 1000, Path::new("z"), "stream", 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 1000 bytes"), "{e}");
        assert_eq!(
            read_limited(&b"abc"[..], 3, Path::new("z"), "s", 3).unwrap(),
            b"abc"
        );
    }
}
