//! Datasets: procedural ones generated on the fly ([`sprites`], [`scenes`]), loaders for a
//! user's own images ([`folder`], [`mnist`]), and transformation sequences x_0..x_T
//! ([`sequence`]) for training with known transformations.
//!
//! Every dataset is deterministic and random-access by index: `image(i)` always returns the
//! same picture, and nothing is downloaded or stored.

pub mod color;
pub mod folder;
pub mod image;
pub mod mnist;
pub mod radix;
mod raytrace;
pub mod scenes;
pub mod sequence;
pub mod sprites;

pub use self::image::Image;
use crate::{Error, Result};
use std::path::PathBuf;

/// The side length of every image the built-in models see.
pub const IMAGE_SIZE: usize = 64;

/// One discrete factor of variation of a procedural dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// Short name, e.g. `"scale"`.
    pub name: &'static str,
    /// Number of values the factor takes.
    pub values: usize,
    /// Whether the factor wraps around (orientation, hue): a sweep past the last value
    /// continues at the first.
    pub cyclic: bool,
    /// Whether the factor is categorical (shape): it has no order, so it is never swept.
    pub categorical: bool,
}

/// A source of images, all of one size and channel count, addressed by index.
pub trait Dataset: Send + Sync {
    /// Name used in manifests and messages (`sprites`, `scenes`, `folder:DIR`, `mnist:FILE`).
    fn name(&self) -> String;
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether the dataset has no images (never true for an opened dataset).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Channels per image: 1 (grey) or 3 (RGB).
    fn channels(&self) -> usize;
    /// Side length of the (square) images.
    fn size(&self) -> usize {
        IMAGE_SIZE
    }
    /// The image at `index` (`index < len()`), values in [0, 1], channel-major.
    fn image(&self, index: usize) -> Result<Image>;
    /// Reads every stored item once so a bad file is reported before long work starts
    /// (procedural datasets have nothing to check).
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// The factors of variation, for procedural datasets; empty otherwise.
    fn factors(&self) -> &[Factor] {
        &[]
    }
    /// The factor values of image `index` (one per entry of [`Dataset::factors`]): the
    /// index in mixed radix over the factors, last factor fastest (as Shapes3D and
    /// dSprites lay out their images). Datasets without factors return an error.
    fn factor_values(&self, index: usize) -> Result<Vec<usize>> {
        let factors = self.factors();
        if factors.is_empty() || radix::combinations(factors) != self.len() || index >= self.len() {
            return Err(Error::config(format!(
                "dataset {} has no factor values for image {index}",
                self.name()
            )));
        }
        Ok(radix::decode_vec(factors, index))
    }
    /// The image with the given factor values (one per entry of [`Dataset::factors`]).
    /// Datasets without factors return an error.
    fn render_factors(&self, _values: &[usize]) -> Result<Image> {
        Err(Error::config(format!(
            "dataset {} has no factors",
            self.name()
        )))
    }
}

/// Opens a dataset from its specification: `sprites`, `scenes`, `folder:DIR` or
/// `mnist:FILE` (an IDX image file, raw or `.gz`). Folder and MNIST images are resized to
/// `size`×`size`.
pub fn open(spec: &str, size: usize) -> Result<Box<dyn Dataset>> {
    match spec.split_once(':') {
        None if spec == "sprites" => Ok(Box::new(sprites::Sprites::new())),
        None if spec == "scenes" => Ok(Box::new(scenes::Scenes::new())),
        Some(("folder", dir)) if !dir.is_empty() => Ok(Box::new(folder::ImageFolder::open(
            PathBuf::from(dir),
            size,
        )?)),
        Some(("mnist", file)) if !file.is_empty() => {
            Ok(Box::new(mnist::Mnist::open(PathBuf::from(file), size)?))
        }
        _ => Err(Error::UnknownDataset(spec.to_string())),
    }
}
