//! What the app keeps beyond the traversal: what persists between runs (eframe storage),
//! bookmarks, and playback. The traversal itself and its embedding in exported files are
//! the session's ([`crate::session::state`]), re-exported here for the app's panels.

pub use crate::session::state::{
    AppState, BATCH_RANGE, MAX_SWITCH_STEPS, MAX_T_RANGE, PNG_KEYWORD, STEP_SCALE_RANGE, Saved,
    ZOOM_RANGE, read_embedded_state, save_png_with_state,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Named starting codes kept between runs.
    #[serde(default)]
    pub bookmarks: Vec<Bookmark>,
}

impl From<&AppState> for Persisted {
    fn from(s: &AppState) -> Self {
        Self {
            seed: s.seed,
            max_t: s.max_t,
            batch_view: s.batch_view,
            dark: s.dark,
            bookmarks: Vec::new(),
        }
    }
}

/// The most bookmarks kept.
pub const MAX_BOOKMARKS: usize = 1000;

/// A named starting code of one model: the seed's code, or a code of its own (an encoded
/// image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    /// Its name.
    pub name: String,
    /// The model folder (canonical) it belongs to.
    pub model: PathBuf,
    /// The seed (the code when `start` is none).
    pub seed: u64,
    /// The code itself, when it is not the seed's.
    pub start: Option<Vec<f32>>,
}

impl Bookmark {
    /// Whether a bookmark read from storage is usable: a name, a bounded finite code.
    pub fn is_valid(&self) -> bool {
        !self.name.trim().is_empty()
            && self.name.len() <= 200
            && self.start.as_ref().is_none_or(|z| {
                z.len() <= crate::limits::MAX_LATENT && z.iter().all(|v| v.is_finite())
            })
    }
}

/// Playback of the traversal: the sliders' times scaled by a phase in [0, 1]. Play runs
/// the phase from 0 to 1 and over again; Pause holds the frame shown; ←/→ step one unit of
/// time along the longest slider without playing; Reset (or moving a slider while held)
/// shows the sliders' own values again.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Playback {
    /// Whether the phase advances by itself.
    pub playing: bool,
    /// The phase held or played (`None`: the sliders' own values).
    pub phase: Option<f64>,
}

impl Playback {
    /// Slider units per second while playing.
    const SPEED: f64 = 8.0;

    /// The factor on every slider time.
    pub fn scale(&self) -> f64 {
        self.phase.unwrap_or(1.0)
    }

    /// Play from the start (or from the held frame), or pause and hold the frame shown.
    pub fn toggle(&mut self) {
        if self.playing {
            self.playing = false;
        } else {
            self.playing = true;
            if self.phase.is_none_or(|p| p >= 1.0) {
                self.phase = Some(0.0);
            }
        }
    }

    /// One unit of time forwards (`+1`) or backwards (`-1`) along the longest slider
    /// (`longest` = its |t|), without playing.
    pub fn step(&mut self, direction: f64, longest: f64) {
        self.playing = false;
        let d = direction / longest.max(1.0);
        self.phase = Some((self.scale() + d).clamp(0.0, 1.0));
    }

    /// Advances a playing phase by `dt` seconds for sliders of range `max_t` (wrapping to
    /// the start after the end).
    pub fn advance(&mut self, dt: f64, max_t: f64) {
        if !self.playing {
            return;
        }
        let p = self.phase.unwrap_or(0.0) + dt * Self::SPEED / max_t.max(1.0);
        self.phase = Some(if p > 1.0 { 0.0 } else { p });
    }

    /// Back to the sliders' own values.
    pub fn stop(&mut self) {
        *self = Self::default();
    }

    /// A slider moved: a held frame gives way to the sliders' values (playing goes on).
    pub fn slider_moved(&mut self) {
        if !self.playing {
            self.phase = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmarks_from_storage_are_checked() {
        let ok = Bookmark {
            name: "room".into(),
            model: PathBuf::from("/m"),
            seed: 3,
            start: Some(vec![0.5, -1.0]),
        };
        assert!(ok.is_valid());
        let persisted = Persisted {
            seed: 0,
            max_t: 10.0,
            batch_view: false,
            dark: true,
            bookmarks: vec![ok.clone()],
        };
        let text = serde_json::to_string(&persisted).unwrap();
        let back: Persisted = serde_json::from_str(&text).unwrap();
        assert_eq!(back.bookmarks, std::slice::from_ref(&ok));
        // Storage written before bookmarks existed still reads.
        let old: Persisted =
            serde_json::from_str(r#"{"seed":1,"max_t":10.0,"batch_view":false,"dark":true}"#)
                .unwrap();
        assert!(old.bookmarks.is_empty());
        let mut bad = ok.clone();
        bad.name = "  ".into();
        assert!(!bad.is_valid());
        let mut bad = ok;
        bad.start = Some(vec![f32::NAN]);
        assert!(!bad.is_valid());
    }

    #[test]
    fn playback_pauses_where_it_is_and_steps_without_playing() {
        let mut p = Playback::default();
        assert_eq!(p.scale(), 1.0);
        // ←: one unit back along a slider at 4, held.
        p.step(-1.0, 4.0);
        assert!(!p.playing);
        assert_eq!(p.scale(), 0.75);
        p.step(1.0, 4.0);
        p.step(1.0, 4.0);
        assert_eq!(p.scale(), 1.0);
        // Play starts over from an ended phase; Pause keeps the frame.
        p.toggle();
        assert!(p.playing);
        assert_eq!(p.scale(), 0.0);
        p.advance(0.1, 8.0);
        assert!((p.scale() - 0.1).abs() < 1e-12);
        p.toggle();
        assert!(!p.playing);
        assert!((p.scale() - 0.1).abs() < 1e-12);
        p.advance(0.1, 8.0);
        assert!((p.scale() - 0.1).abs() < 1e-12, "a paused phase stays");
        // Playing again goes on from the held frame, and wraps after the end.
        p.toggle();
        p.advance(1.0, 8.0);
        assert_eq!(p.scale(), 0.0);
        // A slider moved while held shows the slider's value; Reset stops.
        p.toggle();
        p.step(-1.0, 2.0);
        p.slider_moved();
        assert_eq!(p.scale(), 1.0);
        p.toggle();
        p.stop();
        assert_eq!(p, Playback::default());
    }
}
