//! The user's own images: read one (PNG or JPEG, any size: centre-cropped and resized to
//! the generator's input), find its latent code z_0 — the VAE's posterior mean, or for a
//! GAN an optimisation-based inversion (Adam on ‖G(z) − x‖² with a small pull towards the
//! prior) — and save or reopen latent codes as JSON, so that every traversal, plot and
//! export can start from them.

use crate::data::Image;
use crate::files::{MARK, input};
use crate::models::{GeneratorModel, images::to_images};
use crate::store::LoadedGenerator;
use crate::train::CancelToken;
use crate::{Error, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Latent-code files larger than this are refused.
const MAX_CODE_BYTES: u64 = 1 << 20;

/// A latent code saved as JSON (`latentflow encode --out z.json`, the app's "Save z").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentCode {
    /// Always "latentflow" (files latentflow may replace carry it).
    pub software: String,
    /// The code, one value per latent dimension.
    pub latent: Vec<f32>,
    /// The digest of the generator's weights the code belongs to.
    pub generator_digest: String,
    /// Where it came from (an image path, "seed N", ...).
    #[serde(default)]
    pub source: String,
    /// Mean squared error of the generator's reconstruction G(z) of the image, when the
    /// code was encoded from one.
    #[serde(default)]
    pub reconstruction_mse: Option<f64>,
}

impl LatentCode {
    /// A code of `generator`.
    pub fn new(generator: &LoadedGenerator, latent: Vec<f32>, source: String) -> Self {
        Self {
            software: MARK.into(),
            latent,
            generator_digest: generator.digest.clone(),
            source,
            reconstruction_mse: None,
        }
    }

    /// Writes the code (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::config(e.to_string()))?;
        crate::files::atomic::write(path, text.as_bytes())
    }

    /// Reads a code and checks it against `generator`: the same weights, one finite value
    /// per latent dimension.
    pub fn load(path: &Path, generator: &LoadedGenerator) -> Result<Self> {
        let bytes = input::read(path, MAX_CODE_BYTES, "latent code file")?;
        let bad = |msg: String| Error::config(format!("{}: {msg}", path.display()));
        let code: LatentCode = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a latentflow latent code ({e})")))?;
        let d = generator.config.latent;
        if code.latent.len() != d {
            return Err(bad(format!(
                "the code has {} values but the generator's latent space has {d} dimensions",
                code.latent.len()
            )));
        }
        if code.latent.iter().any(|v| !v.is_finite()) {
            return Err(bad("the code holds a value that is not finite".into()));
        }
        if code.generator_digest != generator.digest {
            return Err(bad(format!(
                "the code belongs to other weights than those of {} (encode the image again \
                 with this model)",
                generator.dir.display()
            )));
        }
        Ok(code)
    }

    /// The code as a (1, d) tensor.
    pub fn tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.latent.clone(),
            (1, self.latent.len()),
            device,
        )?)
    }
}

/// Reads an image file (PNG, JPEG, ...: by content, with the decoder's limits) and makes it
/// the generator's input: centre-cropped to a square, resized, grey or RGB.
pub fn read_image(path: &Path, generator: &LoadedGenerator) -> Result<Image> {
    let picture = crate::data::folder::decode(path)?;
    let c = &generator.config;
    Image::from_dynamic(&picture, c.channels, c.image_size).map_err(|e| Error::Image {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Settings of a GAN inversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvertOptions {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Weight of ‖z‖² / d (keeps the code where the generator was trained).
    pub prior_weight: f64,
}

impl Default for InvertOptions {
    fn default() -> Self {
        Self {
            steps: 300,
            lr: 0.05,
            prior_weight: 1e-3,
        }
    }
}

/// The latent code of `image`: the VAE's posterior mean, or for a GAN the code that an
/// inversion finds (`progress(step, steps, loss)` after each step; `cancel` stops it with
/// [`Error::Cancelled`]). Returns the code and the reconstruction's mean squared error.
pub fn encode(
    generator: &LoadedGenerator,
    image: &Image,
    device: &Device,
    opts: &InvertOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<(Vec<f32>, f64)> {
    let c = &generator.config;
    if (image.channels, image.height, image.width) != (c.channels, c.image_size, c.image_size) {
        return Err(Error::config(format!(
            "the image is {}×{}×{} but the generator makes {}×{}×{}",
            image.channels, image.height, image.width, c.channels, c.image_size, c.image_size
        )));
    }
    let x = Tensor::from_vec(
        image.data.clone(),
        (1, c.channels, c.image_size, c.image_size),
        device,
    )?;
    let z = match &generator.model {
        GeneratorModel::Vae(vae) => {
            let (mu, _) = vae.encode(&x)?;
            progress(1, 1, f64::NAN);
            mu
        }
        GeneratorModel::Gan(_) => invert(generator, &x, opts, cancel, progress)?,
    };
    let recon = crate::models::Generator::decode(&generator.model, &z)?;
    let mse = (recon - &x)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64;
    let code: Vec<f32> = z.flatten_all()?.to_vec1()?;
    if code.iter().any(|v| !v.is_finite()) {
        return Err(Error::config(
            "the encoded code is not finite; try fewer steps or a lower learning rate",
        ));
    }
    Ok((code, mse))
}

/// Optimisation-based inversion of a generator: z ← Adam on mean (G(z) − x)² +
/// w ‖z‖² / d, from z = 0 (the prior's mean).
fn invert(
    generator: &LoadedGenerator,
    x: &Tensor,
    opts: &InvertOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<Tensor> {
    if opts.steps == 0 || !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err(Error::config(
            "an inversion needs at least one step and a positive learning rate",
        ));
    }
    let d = generator.config.latent;
    let z = Var::zeros((1, d), candle_core::DType::F32, x.device())?;
    let mut opt = candle_nn::AdamW::new(
        vec![z.clone()],
        candle_nn::ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    for step in 1..=opts.steps {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let g = crate::models::Generator::decode(&generator.model, z.as_tensor())?;
        let fit = (g - x)?.sqr()?.mean_all()?;
        let prior = (z.as_tensor().sqr()?.sum_all()? * (opts.prior_weight / d as f64))?;
        let loss = (fit + prior)?;
        let value = loss.to_scalar::<f32>()? as f64;
        if !value.is_finite() {
            return Err(Error::config(
                "the inversion diverged; lower the learning rate",
            ));
        }
        opt.backward_step(&loss)?;
        progress(step, opts.steps, value);
    }
    Ok(z.as_tensor().clone())
}

/// The generator's reconstruction G(z) of a code, as an image.
pub fn reconstruction(generator: &LoadedGenerator, code: &[f32], device: &Device) -> Result<Image> {
    let z = Tensor::from_vec(code.to_vec(), (1, code.len()), device)?;
    let out = crate::models::Generator::decode(&generator.model, &z)?;
    to_images(&out)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::config("the generator returned no image"))
}
