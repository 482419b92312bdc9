//! Animated GIF export of a traversal: the frames of the path (optionally a grid of several
//! seeds), looped or ping-pong, upscaled, with the app state that made it embedded as a
//! JSON comment so dropping the file on the window restores it.

use super::Loaded;
use super::render::{RenderRequest, request_path};
use crate::data::image::grid;
use crate::models::{Generator, images::to_images};
use crate::store::atomic;
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

/// Prefix of the embedded state comment.
pub const STATE_PREFIX: &str = "latentflow-state:";

/// Writes the GIF; `progress` gets the fraction done.
pub fn export_gif(
    model: &Loaded,
    req: &RenderRequest,
    opts: &GifOptions,
    device: &Device,
    progress: &mut dyn FnMut(f32),
) -> Result<()> {
    if opts.fps == 0 || opts.fps > 100 || opts.scale == 0 || opts.scale > 16 || opts.seeds == 0 {
        return Err(Error::config(
            "GIF export needs fps in 1..=100, scale in 1..=16 and at least one seed",
        ));
    }
    let mut req = req.clone();
    req.batch = opts.seeds - 1;
    let (path, _) = request_path(model, &req, device)?;
    let g = &model.generator.model;
    let n = path.len();
    let mut frames = Vec::with_capacity(n);
    for (i, z) in path.iter().enumerate() {
        let images = to_images(&g.decode(&z.to_dtype(candle_core::DType::F32)?)?)?;
        let cols = (opts.seeds as f64).sqrt().ceil() as usize;
        let mut picture = grid(&images, cols, 2)?;
        if opts.scale > 1 {
            picture = picture.upscale_nearest(opts.scale);
        }
        frames.push(picture);
        progress(0.8 * (i + 1) as f32 / n as f32);
    }
    let mut order: Vec<usize> = (0..n).collect();
    if opts.ping_pong && n > 2 {
        order.extend((1..n - 1).rev());
    }
    let (w, h) = (frames[0].width as u16, frames[0].height as u16);
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, w, h, &[])
            .map_err(|e| Error::config(format!("GIF encoder: {e}")))?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(|e| Error::config(format!("GIF encoder: {e}")))?;
        if !opts.state_json.is_empty() {
            let text = format!("{STATE_PREFIX}{}", opts.state_json);
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
            enc.write_raw_extension(gif::Extension::Comment.into(), &chunks)
                .map_err(|e| Error::config(format!("GIF encoder: {e}")))?;
        }
        let delay = (100.0 / opts.fps as f64).round().max(1.0) as u16;
        for (j, &i) in order.iter().enumerate() {
            let rgb = frames[i].to_rgb8();
            let mut frame = gif::Frame::from_rgb_speed(w, h, rgb.as_raw(), 10);
            frame.delay = delay;
            enc.write_frame(&frame)
                .map_err(|e| Error::config(format!("GIF encoder: {e}")))?;
            progress(0.8 + 0.2 * (j + 1) as f32 / order.len() as f32);
        }
    }
    atomic::write(&opts.out, &bytes)
}

/// The state JSON embedded in a GIF written by [`export_gif`], if any: the first comment
/// extension that starts with [`STATE_PREFIX`], found before the first image.
pub fn read_gif_state(path: &std::path::Path) -> Result<Option<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = || Error::dataset(path, "not a GIF file (or a damaged one)");
    if bytes.len() < 13 || !bytes.starts_with(b"GIF8") {
        return Err(bad());
    }
    let flags = bytes[10];
    let mut pos = 13
        + if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        };
    while let Some(&block) = bytes.get(pos) {
        match block {
            0x21 => {
                let label = *bytes.get(pos + 1).ok_or_else(bad)?;
                pos += 2;
                let mut data = Vec::new();
                loop {
                    let len = *bytes.get(pos).ok_or_else(bad)? as usize;
                    pos += 1;
                    if len == 0 {
                        break;
                    }
                    data.extend_from_slice(bytes.get(pos..pos + len).ok_or_else(bad)?);
                    pos += len;
                }
                if label == 0xFE
                    && let Some(json) = data.strip_prefix(STATE_PREFIX.as_bytes())
                {
                    return Ok(Some(String::from_utf8_lossy(json).into_owned()));
                }
            }
            _ => return Ok(None), // an image or the trailer: comments come first
        }
    }
    Ok(None)
}
