//! [`ImageFolder`]: a user's own pictures, the PNG and JPEG files at the top level of one
//! folder, decoded lazily, centre-cropped to a square and resized.

use super::{Dataset, Image, radix};
use crate::files::input;
use crate::limits::{self, MAX_FOLDER_FILES, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_SIDE};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// File extensions (lower case) that are read as images.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The PNG/JPEG files of one folder, sorted by file name.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    dir: PathBuf,
    files: Vec<PathBuf>,
    size: usize,
    channels: usize,
}

impl ImageFolder {
    /// Lists the images of `dir` (top level only), to be handed out as RGB `size`×`size`.
    pub fn open(dir: PathBuf, size: usize) -> Result<Self> {
        Self::with_channels(dir, size, 3)
    }

    /// Like [`ImageFolder::open`] with `channels` 1 (grey) or 3 (RGB).
    pub fn with_channels(dir: PathBuf, size: usize, channels: usize) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(Error::config(format!(
                "images have 1 or 3 channels, not {channels}"
            )));
        }
        if size == 0 {
            return Err(Error::config("image size must be at least 1"));
        }
        if !dir.exists() {
            return Err(Error::dataset(dir, "folder does not exist"));
        }
        if !dir.is_dir() {
            return Err(Error::dataset(dir, "not a folder"));
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::dataset(&dir, format!("cannot list folder: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| Error::dataset(&dir, format!("cannot list folder: {e}")))?
                .path();
            if is_image_name(&path) && path.is_file() {
                files.push(path);
                limits::check_count(
                    &format!("the number of images in {}", dir.display()),
                    files.len(),
                    MAX_FOLDER_FILES,
                )?;
            }
        }
        if files.is_empty() {
            return Err(Error::dataset(dir, "no PNG or JPEG images in this folder"));
        }
        files.sort();
        Ok(Self {
            dir,
            files,
            size,
            channels,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image files, in index order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Decodes every file once, returning the first failure (naming its file), so that a
    /// bad file is found before a long job starts rather than in the middle of it.
    pub fn validate(&self) -> Result<()> {
        for index in 0..self.files.len() {
            self.image(index)?;
        }
        Ok(())
    }
}

/// Whether the file name has an image extension (case-insensitive).
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Decodes one file, by its content (not its extension): a regular file of at most
/// [`MAX_IMAGE_FILE_BYTES`], at most [`MAX_IMAGE_SIDE`] pixels a side, with the decoder's
/// allocations bounded.
pub fn decode(path: &Path) -> Result<::image::DynamicImage> {
    let bad = |msg: String| Error::Image {
        path: path.to_path_buf(),
        msg,
    };
    let (file, _) = input::open_regular(path, MAX_IMAGE_FILE_BYTES, "image file")?;
    let mut reader = ::image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut limits = ::image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        ::image::ImageError::Limits(l) => Error::Limit(format!(
            "{}: {l} (images may be at most {MAX_IMAGE_SIDE} pixels a side and take {} decoded)",
            path.display(),
            crate::limits::human_bytes(MAX_DECODE_BYTES)
        )),
        other => bad(format!("cannot decode image: {other}")),
    })
}

/// Memory the decoder of one image may allocate.
const MAX_DECODE_BYTES: u64 = 1 << 30;

impl Dataset for ImageFolder {
    fn name(&self) -> String {
        format!("folder:{}", self.dir.display())
    }

    fn len(&self) -> usize {
        self.files.len()
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn size(&self) -> usize {
        self.size
    }

    fn check(&self) -> Result<()> {
        self.validate()
    }

    fn image(&self, index: usize) -> Result<Image> {
        radix::check_index(&self.name(), self.files.len(), index)?;
        let path = &self.files[index];
        let picture = decode(path)?;
        Image::from_dynamic(&picture, self.channels, self.size).map_err(|e| Error::Image {
            path: path.clone(),
            msg: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{Rgb, RgbImage};

    /// A `w`×`h` picture of one colour.
    fn write(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
        RgbImage::from_pixel(w, h, Rgb(rgb)).save(path).unwrap();
    }

    #[test]
    fn lists_sorted_images_and_decodes_them() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("b.png"), 10, 20, [255, 0, 0]);
        write(&dir.path().join("a.PNG"), 40, 30, [0, 0, 255]);
        write(&dir.path().join("c.jpg"), 16, 16, [0, 255, 0]);
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        std::fs::create_dir(dir.path().join("sub.png")).unwrap();
        let folder = ImageFolder::open(dir.path().to_path_buf(), 8).unwrap();
        assert_eq!(folder.len(), 3);
        assert_eq!(folder.channels(), 3);
        assert_eq!(folder.size(), 8);
        let names: Vec<_> = folder
            .files()
            .iter()
            .map(|p| p.file_name().unwrap())
            .collect();
        assert_eq!(names, ["a.PNG", "b.png", "c.jpg"]);
        let blue = folder.image(0).unwrap();
        assert_eq!((blue.channels, blue.height, blue.width), (3, 8, 8));
        assert!(blue.plane(2).iter().all(|&v| v == 1.0) && blue.plane(0).iter().all(|&v| v == 0.0));
        let red = folder.image(1).unwrap();
        assert!(red.plane(0).iter().all(|&v| v == 1.0) && red.plane(1).iter().all(|&v| v == 0.0));
        // JPEG is lossy: green within a few levels.
        let green = folder.image(2).unwrap();
        assert!(
            green.plane(1).iter().all(|&v| v > 0.95) && green.plane(0).iter().all(|&v| v < 0.05)
        );
        assert!(folder.image(3).is_err());
        folder.validate().unwrap();
        let grey = ImageFolder::with_channels(dir.path().to_path_buf(), 4, 1).unwrap();
        let grey = grey.image(1).unwrap();
        assert_eq!(grey.data.len(), 16);
        // Luma of pure red is about 0.2126 (Rec. 709 weights).
        assert!((grey.data[0] - 0.2126).abs() < 0.02, "{}", grey.data[0]);
    }

    #[test]
    fn bad_folders_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::open(dir.path().to_path_buf(), 8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no PNG or JPEG"), "{err}");
        let missing = dir.path().join("missing");
        let err = ImageFolder::open(missing, 8).unwrap_err().to_string();
        assert!(
            err.contains("missing") && err.contains("does not exist"),
            "{err}"
        );
        let file = dir.path().join("file.png");
        write(&file, 2, 2, [0, 0, 0]);
        let err = ImageFolder::open(file, 8).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
    }

    #[test]
    fn corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("good.png"), 4, 4, [9, 9, 9]);
        std::fs::write(
            dir.path().join("broken.png"),
            b"\x89PNG\r\n\x1a\nthis is not a png",
        )
        .unwrap();
        let folder = ImageFolder::open(dir.path().to_path_buf(), 8).unwrap();
        assert_eq!(folder.len(), 2);
        let err = folder.image(0).unwrap_err();
        assert!(matches!(err, Error::Image { .. }), "{err}");
        assert!(err.to_string().contains("broken.png"), "{err}");
        folder.image(1).unwrap();
        let err = folder.validate().unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
        let err = folder.check().unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
    }
}
