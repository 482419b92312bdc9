//! What the user set in the app, how it is persisted between runs, and how it is embedded
//! in exported files (a PNG iTXt chunk, a GIF comment) so dropping such a file on the
//! window restores it.

use crate::data::Image;
use crate::data::image::grid;
use crate::worker::Switch;
use crate::worker::export::read_gif_state;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Keyword of the PNG text chunk that holds the state.
pub const PNG_KEYWORD: &str = "latentflow-state";

/// The traversal the user set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    /// Seed of z_0.
    pub seed: u64,
    /// Index of the potential set.
    pub method: usize,
    /// Folder name of the potential set (wins over `method` when the model has it: indexes
    /// shift when sets are added).
    #[serde(default)]
    pub method_folder: Option<String>,
    /// One time per potential, in [−max_t, max_t].
    pub sliders: Vec<f64>,
    /// Slider range T.
    pub max_t: f64,
    /// Multiplies every step.
    pub step_scale: f64,
    /// Switching instead of the sliders.
    pub switch_on: bool,
    /// The switching control.
    pub switch: Switch,
    /// Show several starting codes moved by the same traversal.
    pub batch_view: bool,
    /// How many extra codes the batch view shows.
    pub batch_n: usize,
    /// Zoom of the main image.
    pub zoom: f32,
    /// Dark theme.
    pub dark: bool,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            seed: 0,
            method: 0,
            method_folder: None,
            sliders: Vec::new(),
            max_t: 10.0,
            step_scale: 1.0,
            switch_on: false,
            switch: Switch {
                k: 0,
                then: 1,
                at: 5,
                steps: 10,
            },
            batch_view: false,
            batch_n: 7,
            zoom: 5.0,
            dark: true,
        }
    }
}

impl AppState {
    /// Every slider to 0.
    pub fn reset_sliders(&mut self) {
        self.sliders.iter_mut().for_each(|t| *t = 0.0);
        self.switch_on = false;
    }

    /// Keeps the switching control within `k` potentials.
    pub fn clamp_switch(&mut self, k: usize) {
        let last = k.saturating_sub(1);
        self.switch.k = self.switch.k.min(last);
        self.switch.then = self.switch.then.min(last);
        if k < 2 {
            self.switch_on = false;
        }
    }
}

/// What persists between runs (eframe storage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Persisted {
    /// Seed.
    pub seed: u64,
    /// Slider range.
    pub max_t: f64,
    /// Batch view on.
    pub batch_view: bool,
    /// Dark theme.
    pub dark: bool,
}

impl From<&AppState> for Persisted {
    fn from(s: &AppState) -> Self {
        Self {
            seed: s.seed,
            max_t: s.max_t,
            batch_view: s.batch_view,
            dark: s.dark,
        }
    }
}

/// The state embedded in exports: the model folder and the traversal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// Model folder.
    pub model: PathBuf,
    /// The traversal.
    pub state: AppState,
}

/// Saves `frames` as a one-row strip PNG with `state_json` in an iTXt chunk.
pub fn save_png_with_state(frames: &[Image], path: &Path, state_json: &str) -> Result<()> {
    let strip = grid(frames, frames.len().max(1), 2)?;
    let rgb = strip.to_rgb8();
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, strip.width as u32, strip.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if !state_json.is_empty() {
            enc.add_itxt_chunk(PNG_KEYWORD.into(), state_json.into())
                .map_err(|e| Error::config(format!("PNG encoder: {e}")))?;
        }
        let mut w = enc
            .write_header()
            .map_err(|e| Error::config(format!("PNG encoder: {e}")))?;
        w.write_image_data(rgb.as_raw())
            .map_err(|e| Error::config(format!("PNG encoder: {e}")))?;
    }
    crate::store::atomic::write(path, &bytes)
}

/// The state embedded in a PNG or GIF written by the app or `export-gif`, if any.
pub fn read_embedded_state(path: &Path) -> Result<Option<Saved>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match ext.as_deref() {
        Some("gif") => read_gif_state(path)?,
        Some("png") => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = png::Decoder::new(std::io::BufReader::new(file))
                .read_info()
                .map_err(|e| Error::dataset(path, format!("not a PNG: {e}")))?;
            reader
                .info()
                .utf8_text
                .iter()
                .find(|c| c.keyword == PNG_KEYWORD)
                .and_then(|c| c.get_text().ok())
        }
        _ => {
            return Err(Error::dataset(
                path,
                "drop a model folder, or a PNG or GIF exported by latentflow",
            ));
        }
    };
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| Error::dataset(path, format!("the embedded state is invalid: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.png");
        let saved = Saved {
            model: PathBuf::from("models/scenes-vae"),
            state: AppState {
                seed: 42,
                sliders: vec![0.0, 3.5],
                ..AppState::default()
            },
        };
        let frames = vec![Image::new(3, 8, 8); 3];
        save_png_with_state(&frames, &path, &serde_json::to_string(&saved).unwrap()).unwrap();
        assert_eq!(read_embedded_state(&path).unwrap(), Some(saved));
        assert_eq!(::image::open(&path).unwrap().width(), 3 * 8 + 2 * 2);
        let plain = dir.path().join("p.png");
        save_png_with_state(&frames, &plain, "").unwrap();
        assert_eq!(read_embedded_state(&plain).unwrap(), None);
        assert!(read_embedded_state(&dir.path().join("x.txt")).is_err());
    }
}
