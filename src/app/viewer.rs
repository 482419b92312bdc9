//! The viewer (current image, z_0, the strip, the batch view), the traversal sliders with
//! the switching control and method picker, and the export settings.

use super::{App, state};
use eframe::egui;

/// Export settings and the running export's progress.
pub struct ExportPanel {
    /// Frames per second.
    pub fps: u32,
    /// Forwards then backwards.
    pub ping_pong: bool,
    /// Upscaling.
    pub scale: usize,
    /// Seeds side by side.
    pub seeds: usize,
    /// Progress of a running export.
    pub progress: Option<f32>,
}

impl Default for ExportPanel {
    fn default() -> Self {
        Self {
            fps: 12,
            ping_pong: true,
            scale: 4,
            seeds: 1,
            progress: None,
        }
    }
}

/// The export settings; returns true when "Export GIF…" was clicked.
pub fn export_ui(p: &mut ExportPanel, ui: &mut egui::Ui) -> bool {
    ui.heading("Export");
    ui.horizontal(|ui| {
        ui.label("fps");
        ui.add(egui::DragValue::new(&mut p.fps).range(1..=50))
            .on_hover_text("Frames per second of the GIF");
        ui.label("scale");
        ui.add(egui::DragValue::new(&mut p.scale).range(1..=8))
            .on_hover_text("Nearest-neighbour upscaling");
        ui.label("seeds");
        ui.add(egui::DragValue::new(&mut p.seeds).range(1..=16))
            .on_hover_text("Grid of this many starting codes (seed, seed + 1, ...)");
        ui.checkbox(&mut p.ping_pong, "ping-pong")
            .on_hover_text("Play forwards then backwards");
    });
    let mut clicked = false;
    ui.horizontal(|ui| match p.progress {
        Some(f) => {
            ui.add(egui::ProgressBar::new(f).show_percentage());
        }
        None => {
            clicked = ui
                .button("Export GIF…")
                .on_hover_text("Export the current traversal (Ctrl+E)")
                .clicked();
        }
    });
    clicked
}

/// One slider per potential, the method picker, switching and the batch view.
pub fn sliders_ui(app: &mut App, ui: &mut egui::Ui) {
    ui.heading("Traversal");
    if app.methods.is_empty() {
        if app.model_dir.is_none() {
            ui.label("No model is loaded.");
        } else if app.unusable_sets > 0 {
            ui.label(format!(
                "None of this model's {} potential sets could be loaded (the errors below say \
                 why): train new ones below, or open another model.",
                app.unusable_sets
            ));
        } else {
            ui.label("This model has no potentials yet: train some below.");
        }
        return;
    }
    let current = app.state.method.min(app.methods.len() - 1);
    let label = |i: usize| {
        let m = &app.methods[i];
        let folder = m
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{} ({folder})", m.method)
    };
    let mut chosen = current;
    egui::ComboBox::from_label("Method")
        .selected_text(label(current))
        .show_ui(ui, |ui| {
            for i in 0..app.methods.len() {
                ui.selectable_value(&mut chosen, i, label(i));
            }
        })
        .response
        .on_hover_text("Which set of potentials moves the code");
    if chosen != app.state.method {
        app.state.method = chosen;
        app.state.method_folder = app.methods[chosen]
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        app.state.sliders = vec![0.0; app.methods[chosen].names.len()];
        app.state.clamp_switch(app.methods[chosen].names.len());
    }
    let names = app.methods[app.state.method].names.clone();
    app.state.sliders.resize(names.len(), 0.0);
    ui.horizontal(|ui| {
        ui.label("Range T");
        ui.add(egui::DragValue::new(&mut app.state.max_t).range(state::MAX_T_RANGE))
            .on_hover_text("Sliders run from -T to T steps");
        ui.label("Step scale");
        ui.add(
            egui::DragValue::new(&mut app.state.step_scale)
                .speed(0.01)
                .range(state::STEP_SCALE_RANGE),
        )
        .on_hover_text("Multiplies every step");
    });
    let t = app.state.max_t;
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.editing_names, "Edit names")
            .on_hover_text("Rename the potentials (saved in the checkpoint's manifest)");
        if app.editing_names
            && ui
                .button("Save names")
                .on_hover_text("Write the names to the potential set's manifest")
                .clicked()
        {
            let dir = app.methods[app.state.method].dir.clone();
            let names = app.name_edits.clone();
            app.rename(dir, names);
            app.editing_names = false;
        }
    });
    if app.editing_names {
        app.name_edits.resize(names.len(), String::new());
        for (k, edit) in app.name_edits.iter_mut().enumerate() {
            if edit.is_empty() {
                *edit = names[k].clone();
            }
            ui.horizontal(|ui| {
                ui.label(format!("{k}:"));
                ui.text_edit_singleline(edit)
                    .on_hover_text(format!("Name of potential {k}"));
            });
        }
    } else {
        app.name_edits.clear();
    }
    ui.add_enabled_ui(!app.state.switch_on, |ui| {
        for (k, name) in names.iter().enumerate() {
            let slider = egui::Slider::new(&mut app.state.sliders[k], -t..=t)
                .text(format!("{k}: {name}"))
                .step_by(0.05);
            let r = ui.add(slider);
            if r.changed() {
                app.playback.slider_moved();
            }
            // No tooltip while dragging: it would cover the sliders below.
            if !r.dragged() {
                r.on_hover_text(format!(
                    "Time along potential {k} ({name}); negative moves against the flow; several non-zero sliders superpose"
                ));
            }
        }
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.state.switch_on, "Switch")
            .on_hover_text("Potential k for the first s steps, then potential j");
        let last = names.len().saturating_sub(1);
        let s = &mut app.state.switch;
        ui.label("k");
        ui.add(egui::DragValue::new(&mut s.k).range(0..=last))
            .on_hover_text("First potential");
        ui.label("then j");
        ui.add(egui::DragValue::new(&mut s.then).range(0..=last))
            .on_hover_text("Second potential");
        ui.label("at s");
        ui.add(egui::DragValue::new(&mut s.at).range(0..=state::MAX_SWITCH_STEPS))
            .on_hover_text("Steps with k");
        ui.label("of");
        ui.add(egui::DragValue::new(&mut s.steps).range(1..=state::MAX_SWITCH_STEPS))
            .on_hover_text("Steps in all");
        s.at = s.at.min(s.steps);
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.state.batch_view, "Batch view")
            .on_hover_text("Move several starting codes by the same traversal");
        ui.add(egui::DragValue::new(&mut app.state.batch_n).range(state::BATCH_RANGE))
            .on_hover_text("Extra starting codes");
        ui.checkbox(&mut app.state.preserve_density, "Keep density")
            .on_hover_text(
                "Density-preserving walk: after every step the code is rescaled to the length \
                 of z_0, so it keeps z_0's log-density under the N(0, I) prior (long walks stay \
                 where the generator was trained)",
            );
        let has_density = app.has_density;
        ui.add_enabled_ui(app.state.preserve_density && has_density, |ui| {
            ui.checkbox(&mut app.state.data_density, "of the data")
                .on_hover_text(if has_density {
                    "Keep the log-density under the model's fitted density of its data's codes \
                     (DP-LaSE's CDF model and correction network) instead of the prior's"
                } else {
                    "This model has no density model of its data: `latentflow fit-density \
                     --model DIR` fits one"
                });
        });
    });
}

/// The current image (zoomable), z_0 beside it, the strip and the batch view.
pub fn viewer_ui(app: &mut App, ui: &mut egui::Ui) {
    let Some(current) = app.shown.current.clone() else {
        let what = if app.model_dir.is_some() {
            "waiting for the first frame…"
        } else if app.is_loading() {
            "loading the model…"
        } else {
            "No model is loaded: open one with \"Open model…\" or drop a model folder here \
             (the errors below say what went wrong)."
        };
        ui.centered_and_justified(|ui| ui.label(what));
        return;
    };
    image_ui(app, ui);
    ui.horizontal(|ui| {
        ui.label("Zoom");
        ui.add(egui::Slider::new(&mut app.state.zoom, state::ZOOM_RANGE))
            .on_hover_text("Size of the current image");
    });
    let side = 64.0 * app.state.zoom;
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("current");
            ui.image((current.id(), egui::vec2(side, side)));
        });
        if let Some(start) = &app.shown.start {
            ui.vertical(|ui| {
                ui.label("start z0");
                ui.image((start.id(), egui::vec2(side / 2.0, side / 2.0)));
            });
        }
    });
    if app.shown.strip.len() > 1 {
        ui.label("path");
        egui::ScrollArea::horizontal()
            .id_salt("strip")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for tex in &app.shown.strip {
                        ui.image((tex.id(), egui::vec2(72.0, 72.0)));
                    }
                });
            });
    }
    if !app.shown.batch.is_empty() {
        ui.label("batch view (seed + 1, seed + 2, ...)");
        ui.horizontal_wrapped(|ui| {
            for tex in &app.shown.batch {
                ui.image((tex.id(), egui::vec2(96.0, 96.0)));
            }
        });
    }
}

/// Editing the user's own image: open one (or a saved code), the encoding's progress, the
/// image beside its reconstruction, saving the code, and back to the seeds' codes.
fn image_ui(app: &mut App, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if ui
            .add_enabled(app.encoding.is_none(), egui::Button::new("Open image…"))
            .on_hover_text(
                "Edit your own image (PNG/JPEG, any size: centre-cropped and resized), or \
                 reopen a latent code (JSON); dropping the file on the window does the same",
            )
            .clicked()
        {
            app.choose(super::files::Purpose::Image);
        }
        if let Some(f) = app.encoding {
            ui.add(
                egui::ProgressBar::new(f)
                    .desired_width(160.0)
                    .text(format!("encoding {:.0}%", 100.0 * f)),
            );
            if ui
                .button("Cancel")
                .on_hover_text("Stop the encoding")
                .clicked()
            {
                app.send_command(crate::worker::Command::CancelEncode);
            }
        }
        if app.state.start.is_some() {
            if ui
                .button("Save z…")
                .on_hover_text("Save the starting code as JSON (for `traverse --z`)")
                .clicked()
            {
                app.choose(super::files::Purpose::SaveCode);
            }
            if ui
                .button("Back to random codes")
                .on_hover_text("Start from the seed's code again")
                .clicked()
            {
                app.forget_image();
            }
        }
    });
    bookmarks_ui(app, ui);
    if app.state.start.is_none() {
        return;
    }
    let side = 96.0;
    ui.horizontal(|ui| match &app.edited {
        Some(e) => {
            if let Some(o) = &e.original {
                ui.vertical(|ui| {
                    ui.label("your image");
                    ui.image((o.id(), egui::vec2(side, side)));
                });
            }
            ui.vertical(|ui| {
                ui.label("its reconstruction G(z0)");
                ui.image((e.reconstruction.id(), egui::vec2(side, side)));
            });
            if let Some(m) = e.mse {
                ui.label(format!(
                    "error {m:.4} per value\n(the walks start from the reconstruction)"
                ));
            }
        }
        None => {
            ui.label("starting from a restored latent code");
        }
    });
}

/// Named starting codes of the open model: keep the current one, go back to one, forget one.
fn bookmarks_ui(app: &mut App, ui: &mut egui::Ui) {
    let marks = app.model_bookmarks();
    ui.horizontal_wrapped(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut app.bookmark_name)
                .desired_width(120.0)
                .hint_text("bookmark name"),
        )
        .on_hover_text("A name for the current starting code");
        if ui
            .add_enabled(
                !app.bookmark_name.trim().is_empty(),
                egui::Button::new("Bookmark"),
            )
            .on_hover_text("Keep the current starting code (seed or your image) under this name; bookmarks are kept between runs")
            .clicked()
        {
            let name = std::mem::take(&mut app.bookmark_name);
            app.add_bookmark(&name);
        }
        for b in &marks {
            if ui
                .button(&b.name)
                .on_hover_text(match &b.start {
                    Some(_) => "Start from this bookmarked code".to_string(),
                    None => format!("Start from seed {}", b.seed),
                })
                .clicked()
            {
                app.go_to_bookmark(b);
            }
            if ui
                .small_button("×")
                .on_hover_text(format!("Forget the bookmark \"{}\"", b.name))
                .clicked()
            {
                app.delete_bookmark(&b.name);
            }
        }
    });
}
