//! Animated GIF export of a traversal: the frames of the path (optionally a grid of several
//! seeds), looped or ping-pong, upscaled, with the app state that made it embedded as a
//! JSON comment so dropping the file on the window restores it.

use super::Loaded;
use super::render::{RenderRequest, request_path};
use crate::data::image::grid;
use crate::files::{MARK, atomic, gif::STATE_PREFIX};
use crate::limits::{self, MAX_GIF_SIDE, MAX_SCALE, MAX_SEEDS};
use crate::models::images::decode_images;
use crate::{Error, Result};
use candle_core::Device;
use std::path::PathBuf;

/// How to export.
#[derive(Debug, Clone, PartialEq)]
pub struct GifOptions {
    /// Output file.
    pub out: PathBuf,
    /// Frames per second.
    pub fps: u32,
    /// Play forwards then backwards.
    pub ping_pong: bool,
    /// Nearest-neighbour upscaling.
    pub scale: usize,
    /// Seeds shown side by side (1: only the request's seed).
    pub seeds: usize,
    /// JSON embedded as a GIF comment (the app state); empty for none.
    pub state_json: String,
}

/// Padding between the tiles of a grid of seeds.
const PAD: usize = 2;

impl GifOptions {
    /// Checks the options against the resource policy for an export of `frames` frames of
    /// a generator's `size`×`size` images: the GIF format's 16-bit sides, and the memory
    /// the frames take.
    pub fn check(&self, frames: usize, size: usize) -> Result<()> {
        if self.fps == 0 || self.fps > 100 {
            return Err(Error::config(format!("fps {} is not in 1..=100", self.fps)));
        }
        if self.scale == 0 || self.seeds == 0 {
            return Err(Error::config("scale and seeds must be at least 1"));
        }
        limits::check_count("the GIF scale", self.scale, MAX_SCALE)?;
        limits::check_count("the number of seeds", self.seeds, MAX_SEEDS)?;
        let (w, h) = self.frame_size(size);
        if w.max(h) > MAX_GIF_SIDE {
            return Err(Error::Limit(format!(
                "a GIF of {} seeds at scale {} would be {w}×{h} pixels, above the GIF \
                 format's limit of {MAX_GIF_SIDE} per side",
                self.seeds, self.scale
            )));
        }
        let pixels = limits::product(&[w, h]);
        // RGB8 of every frame kept for the encoder, one frame in f32 (grid and upscaled
        // copy), the encoded file (at most a byte a pixel a frame).
        let bytes = pixels
            .saturating_mul(frames as u128)
            .saturating_mul(4)
            .saturating_add(pixels.saturating_mul(3 * 4 * 2));
        limits::check_memory(
            &format!(
                "a GIF of {frames} frames of {} seeds at scale {} ({w}×{h})",
                self.seeds, self.scale
            ),
            u64::try_from(bytes).unwrap_or(u64::MAX),
        )
    }

    /// (width, height) of a frame of `size`×`size` images.
    fn frame_size(&self, size: usize) -> (usize, usize) {
        let cols = (self.seeds as f64).sqrt().ceil() as usize;
        let rows = self.seeds.div_ceil(cols.max(1));
        let side = |n: usize| (n * (size + PAD) - PAD).saturating_mul(self.scale);
        (side(cols), side(rows))
    }
}

/// Writes the GIF; `progress` gets the fraction done.
pub fn export_gif(
    model: &Loaded,
    req: &RenderRequest,
    opts: &GifOptions,
    device: &Device,
    progress: &mut dyn FnMut(f32),
) -> Result<()> {
    let frames = req.validate()?.1 + 1;
    opts.check(frames, model.generator.config.image_size)?;
    let mut req = req.clone();
    req.batch = opts.seeds - 1;
    let (path, _) = request_path(model, &req, device)?;
    let g = &model.generator.model;
    let n = path.len();
    let cols = (opts.seeds as f64).sqrt().ceil() as usize;
    let mut rgb_frames = Vec::with_capacity(n);
    let (mut w, mut h) = (0, 0);
    for (i, z) in path.iter().enumerate() {
        let images = decode_images(g, z)?;
        let mut picture = grid(&images, cols, PAD)?;
        if opts.scale > 1 {
            picture = picture.upscale_nearest(opts.scale);
        }
        (w, h) = (picture.width, picture.height);
        rgb_frames.push(picture.to_rgb8().into_raw());
        progress(0.8 * (i + 1) as f32 / n as f32);
    }
    let mut order: Vec<usize> = (0..n).collect();
    if opts.ping_pong && n > 2 {
        order.extend((1..n - 1).rev());
    }
    let too_big = || Error::Limit(format!("a {w}×{h} frame is too large for GIF"));
    let (w, h) = (
        u16::try_from(w).map_err(|_| too_big())?,
        u16::try_from(h).map_err(|_| too_big())?,
    );
    let encoder_error = |e: gif::EncodingError| Error::config(format!("GIF encoder: {e}"));
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, w, h, &[]).map_err(encoder_error)?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(encoder_error)?;
        enc.write_raw_extension(gif::Extension::Comment.into(), &[MARK.as_bytes()])
            .map_err(encoder_error)?;
        if !opts.state_json.is_empty() {
            let text = format!("{STATE_PREFIX}{}", opts.state_json);
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
            enc.write_raw_extension(gif::Extension::Comment.into(), &chunks)
                .map_err(encoder_error)?;
        }
        let delay = (100.0 / opts.fps as f64).round().max(1.0) as u16;
        for (j, &i) in order.iter().enumerate() {
            let mut frame = gif::Frame::from_rgb_speed(w, h, &rgb_frames[i], 10);
            frame.delay = delay;
            enc.write_frame(&frame).map_err(encoder_error)?;
            progress(0.8 + 0.2 * (j + 1) as f32 / order.len() as f32);
        }
    }
    atomic::write(&opts.out, &bytes)
}
