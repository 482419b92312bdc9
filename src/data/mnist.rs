//! [`Mnist`]: images from an IDX3 ubyte file (the MNIST / Fashion-MNIST format), raw or
//! gzip-compressed (recognised by its content, not its name), held in memory as bytes and
//! resized bilinearly on access.
//!
//! The format: a big-endian `u32` magic number 0x00000803 (unsigned bytes, 3 dimensions),
//! then the dimensions n, rows, cols as big-endian `u32`s, then n·rows·cols pixel bytes,
//! row-major, 0 black to 255 white.

use super::{Dataset, Image, radix};
use crate::files::input;
use crate::limits;
use crate::{Error, Result};
use flate2::read::GzDecoder;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned bytes with three dimensions.
pub const IDX3_UBYTE_MAGIC: u32 = 0x0000_0803;

const HEADER_BYTES: usize = 16;

/// The images of one IDX3 file.
#[derive(Debug, Clone)]
pub struct Mnist {
    path: PathBuf,
    count: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    size: usize,
}

impl Mnist {
    /// Reads the whole file (decompressing it if it is gzip) and checks its header and
    /// length; images are resized to `size`×`size` on access.
    pub fn open(path: PathBuf, size: usize) -> Result<Self> {
        if size == 0 {
            return Err(Error::config("image size must be at least 1"));
        }
        // The images are held in memory: the file, and what it decompresses to, must fit.
        let max = limits::memory_budget().bytes;
        let raw = input::read(&path, max, "IDX file")?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            input::read_limited(
                GzDecoder::new(raw.as_slice()),
                max,
                &path,
                "IDX file (decompressed)",
                0,
            )
            .map_err(|e| match e {
                Error::Io { source, .. } => {
                    Error::dataset(&path, format!("cannot decompress gzip data: {source}"))
                }
                other => other,
            })?
        } else {
            raw
        };
        Self::parse(path, bytes, size)
    }

    fn parse(path: PathBuf, mut bytes: Vec<u8>, size: usize) -> Result<Self> {
        if bytes.len() < HEADER_BYTES {
            return Err(Error::dataset(
                path,
                format!(
                    "truncated IDX file: the header needs {HEADER_BYTES} bytes, the file has {}",
                    bytes.len()
                ),
            ));
        }
        let word = |i: usize| {
            u32::from_be_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        };
        let magic = word(0);
        if magic != IDX3_UBYTE_MAGIC {
            return Err(Error::dataset(
                path,
                format!("not an IDX image file: magic number 0x{magic:08x}, expected 0x00000803"),
            ));
        }
        let (count, rows, cols) = (word(1) as usize, word(2) as usize, word(3) as usize);
        if count == 0 || rows == 0 || cols == 0 {
            return Err(Error::dataset(
                path,
                format!("IDX file holds no pixels: {count} images of {rows}×{cols}"),
            ));
        }
        let expected = count
            .checked_mul(rows)
            .and_then(|n| n.checked_mul(cols))
            .and_then(|n| n.checked_add(HEADER_BYTES))
            .ok_or_else(|| {
                Error::dataset(
                    &path,
                    format!("IDX dimensions {count}×{rows}×{cols} are too large"),
                )
            })?;
        if bytes.len() < expected {
            return Err(Error::dataset(
                path,
                format!(
                    "truncated IDX file: the header says {count} images of {rows}×{cols}, which \
                     needs {expected} bytes, but the file has {} bytes",
                    bytes.len()
                ),
            ));
        }
        bytes.truncate(expected);
        bytes.drain(..HEADER_BYTES);
        Ok(Self {
            path,
            count,
            rows,
            cols,
            pixels: bytes,
            size,
        })
    }

    /// The file the images came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows and columns of the stored images (28×28 for MNIST).
    pub fn native_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The stored image `index` at its native size.
    pub fn native_image(&self, index: usize) -> Result<Image> {
        radix::check_index(&self.name(), self.count, index)?;
        let n = self.rows * self.cols;
        let data = self.pixels[index * n..(index + 1) * n]
            .iter()
            .map(|&b| f32::from(b) / 255.0);
        Image::from_data(1, self.rows, self.cols, data.collect())
    }
}

impl Dataset for Mnist {
    fn name(&self) -> String {
        format!("mnist:{}", self.path.display())
    }

    fn len(&self) -> usize {
        self.count
    }

    fn channels(&self) -> usize {
        1
    }

    fn size(&self) -> usize {
        self.size
    }

    fn image(&self, index: usize) -> Result<Image> {
        let native = self.native_image(index)?;
        if (self.rows, self.cols) == (self.size, self.size) {
            Ok(native)
        } else {
            Ok(native.resize_bilinear(self.size, self.size))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    /// An IDX3 file of `count` images of 3×2 pixels; image k has pixel p = 10·k + p.
    fn idx_bytes(magic: u32, count: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [magic, count, 3, 2] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        for k in 0..count {
            bytes.extend((0..6).map(|p| (10 * k + p) as u8));
        }
        bytes
    }

    #[test]
    fn reads_raw_and_gzip_files() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_bytes(IDX3_UBYTE_MAGIC, 4);
        let raw = dir.path().join("images.idx");
        std::fs::write(&raw, &bytes).unwrap();
        // Gzip is recognised by content: give it a name without ".gz".
        let gz = dir.path().join("images-compressed");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&bytes).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        for path in [raw, gz] {
            let mnist = Mnist::open(path.clone(), 3).unwrap();
            assert_eq!((mnist.len(), mnist.channels(), mnist.size()), (4, 1, 3));
            assert_eq!(mnist.native_size(), (3, 2));
            let native = mnist.native_image(2).unwrap();
            let expected: Vec<f32> = (20..26).map(|v| v as f32 / 255.0).collect();
            assert_eq!(native.data, expected);
            let image = mnist.image(2).unwrap();
            assert_eq!((image.channels, image.height, image.width), (1, 3, 3));
            // Row 1 of the native image is [22, 23]; the resized middle column averages them.
            assert!(
                (image.get(0, 1, 1) - 22.5 / 255.0).abs() < 1e-6,
                "{}",
                image.get(0, 1, 1)
            );
            assert_eq!(image.get(0, 0, 0), 20.0 / 255.0);
            assert!(mnist.image(4).is_err());
            assert!(mnist.name().starts_with("mnist:"));
        }
    }

    #[test]
    fn resizes_mnist_shaped_images_to_64() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for word in [IDX3_UBYTE_MAGIC, 1, 28, 28] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        // A white vertical bar in columns 10..18.
        bytes.extend((0..28 * 28).map(|i| {
            if (10..18).contains(&(i % 28)) {
                255u8
            } else {
                0
            }
        }));
        let path = dir.path().join("train-images-idx3-ubyte");
        std::fs::write(&path, &bytes).unwrap();
        let image = Mnist::open(path, 64).unwrap().image(0).unwrap();
        assert_eq!((image.height, image.width), (64, 64));
        assert_eq!(image.get(0, 30, 32), 1.0);
        assert_eq!(image.get(0, 30, 5), 0.0);
        assert_eq!(image.get(0, 30, 60), 0.0);
    }

    #[test]
    fn bad_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels");
        std::fs::write(&path, idx_bytes(0x0000_0801, 2)).unwrap();
        let err = Mnist::open(path, 8).unwrap_err().to_string();
        assert!(
            err.contains("not an IDX image file: magic number 0x00000801, expected 0x00000803"),
            "{err}"
        );
        let path = dir.path().join("short");
        let mut bytes = idx_bytes(IDX3_UBYTE_MAGIC, 4);
        bytes.truncate(16 + 20);
        std::fs::write(&path, &bytes).unwrap();
        let err = Mnist::open(path, 8).unwrap_err().to_string();
        assert!(
            err.contains("truncated") && err.contains("40 bytes") && err.contains("36 bytes"),
            "{err}"
        );
        let path = dir.path().join("tiny");
        std::fs::write(&path, [0u8, 0, 8]).unwrap();
        let err = Mnist::open(path, 8).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("3"), "{err}");
        let path = dir.path().join("bad.gz");
        std::fs::write(&path, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        let err = Mnist::open(path, 8).unwrap_err().to_string();
        assert!(err.contains("gzip"), "{err}");
        let err = Mnist::open(dir.path().join("absent"), 8).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
