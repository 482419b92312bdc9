//! The saved-state format: the traversal a user set up ([`AppState`]) and the model it
//! belongs to ([`Saved`]), embedded as JSON in every exported PNG (an iTXt chunk) and GIF
//! (a comment), and read back — bounded and validated — by the app's restore and
//! `app --restore`. The app, the worker's exports and `export-gif` all write it through
//! here.

use crate::data::Image;
use crate::data::image::grid;
use crate::files::{gif, png};
use crate::limits::{MAX_K, MAX_STATE_BYTES};
use crate::session::Switch;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// Keyword of the PNG text chunk that holds the state.
pub const PNG_KEYWORD: &str = "latentflow-state";

/// The slider range T the app offers.
pub const MAX_T_RANGE: RangeInclusive<f64> = 1.0..=50.0;
/// The step scale the app offers.
pub const STEP_SCALE_RANGE: RangeInclusive<f64> = 0.05..=5.0;
/// The longest switching walk the app offers.
pub const MAX_SWITCH_STEPS: usize = 50;
/// How many extra codes the batch view can show.
pub const BATCH_RANGE: RangeInclusive<usize> = 1..=15;
/// The zoom of the main image.
pub const ZOOM_RANGE: RangeInclusive<f32> = 1.0..=8.0;

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
    /// The starting code itself (the user's encoded image or a reopened code) instead of
    /// the seed's.
    #[serde(default)]
    pub start: Option<Vec<f32>>,
    /// Density-preserving walks (the norm of z_0 kept at every step).
    #[serde(default)]
    pub preserve_density: bool,
    /// With `preserve_density`: keep the data's density (the model's fitted density
    /// model) instead of the prior's.
    #[serde(default)]
    pub data_density: bool,
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
            start: None,
            preserve_density: false,
            data_density: false,
        }
    }
}

impl AppState {
    /// Every slider to 0.
    pub fn reset_sliders(&mut self) {
        self.sliders.iter_mut().for_each(|t| *t = 0.0);
        self.switch_on = false;
    }

    /// Checks that every value is one the app's controls could have set (a state read from
    /// a file may have been written by anyone).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::config(what));
        if !MAX_T_RANGE.contains(&self.max_t) {
            return bad(format!("max_t {} is outside {MAX_T_RANGE:?}", self.max_t));
        }
        if self.sliders.len() > MAX_K {
            return bad(format!(
                "{} sliders, above the limit of {MAX_K}",
                self.sliders.len()
            ));
        }
        if let Some(t) = self
            .sliders
            .iter()
            .find(|t| !(t.is_finite() && t.abs() <= self.max_t))
        {
            return bad(format!("slider value {t} is outside ±{}", self.max_t));
        }
        if !STEP_SCALE_RANGE.contains(&self.step_scale) {
            return bad(format!(
                "step_scale {} is outside {STEP_SCALE_RANGE:?}",
                self.step_scale
            ));
        }
        let s = self.switch;
        if s.steps == 0 || s.steps > MAX_SWITCH_STEPS || s.at > s.steps {
            return bad(format!(
                "switch at step {} of {} is outside 0..={MAX_SWITCH_STEPS}",
                s.at, s.steps
            ));
        }
        if s.k >= MAX_K || s.then >= MAX_K || self.method >= MAX_K {
            return bad("a potential or method index is out of range".into());
        }
        if !BATCH_RANGE.contains(&self.batch_n) {
            return bad(format!(
                "batch_n {} is outside {BATCH_RANGE:?}",
                self.batch_n
            ));
        }
        if !ZOOM_RANGE.contains(&self.zoom) {
            return bad(format!("zoom {} is outside {ZOOM_RANGE:?}", self.zoom));
        }
        if let Some(z) = &self.start
            && (z.len() > crate::limits::MAX_LATENT || z.iter().any(|v| !v.is_finite()))
        {
            return bad("the starting code is too long or not finite".into());
        }
        Ok(())
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
    let texts: &[(&str, &str)] = if state_json.is_empty() {
        &[]
    } else {
        &[(PNG_KEYWORD, state_json)]
    };
    crate::files::atomic::write(path, &strip.to_png(texts)?)
}

/// The state embedded in a PNG or GIF written by the app or `export-gif`, if any. The
/// file is read only as far as its text (bounded), and the state must be one the app
/// could have saved.
pub fn read_embedded_state(path: &Path) -> Result<Option<Saved>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match ext.as_deref() {
        Some("gif") => gif::read_comments(path)?.into_iter().find_map(|c| {
            c.strip_prefix(gif::STATE_PREFIX.as_bytes())
                .map(|j| String::from_utf8_lossy(j).into_owned())
        }),
        Some("png") => png::read_texts(path)?
            .into_iter()
            .find(|(k, _)| k == PNG_KEYWORD)
            .map(|(_, t)| t),
        _ => {
            return Err(Error::dataset(
                path,
                "drop a model folder, or a PNG or GIF exported by latentflow",
            ));
        }
    };
    let Some(json) = json else {
        return Ok(None);
    };
    let invalid =
        |why: String| Error::dataset(path, format!("the embedded state is invalid: {why}"));
    if json.len() as u64 > MAX_STATE_BYTES {
        return Err(invalid(format!(
            "it is {} bytes, above the limit of {MAX_STATE_BYTES}",
            json.len()
        )));
    }
    let saved: Saved = serde_json::from_str(&json).map_err(|e| invalid(e.to_string()))?;
    saved.state.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(Some(saved))
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
