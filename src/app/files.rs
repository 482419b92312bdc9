//! Choosing files and folders: the system dialog (rfd: an XDG desktop portal, or zenity, on
//! Linux) when it works, and latentflow's own in-app browser when it does not — no portal
//! and no zenity, a dialog that closed before anyone could have answered it, or
//! `LATENTFLOW_FILE_DIALOG=builtin`. Without this, a machine with neither would open,
//! save and export nothing and say nothing.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a file is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A model folder to open, or a PNG/GIF with an embedded state to restore.
    Open,
    /// Where to save the strip as PNG.
    SavePng,
    /// Where to export the traversal as GIF.
    ExportGif,
    /// Your own image to edit (PNG/JPEG) or a saved latent code (JSON).
    Image,
    /// Where to save the current starting code as JSON.
    SaveCode,
}

impl Purpose {
    fn title(self) -> &'static str {
        match self {
            Purpose::Open => "Open a model folder, or a PNG/GIF to restore",
            Purpose::SavePng => "Save the strip as PNG",
            Purpose::ExportGif => "Export the traversal as GIF",
            Purpose::Image => "Open your image (PNG/JPEG) or a latent code (JSON)",
            Purpose::SaveCode => "Save the starting code as JSON",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Purpose::Open | Purpose::Image => "Open",
            Purpose::SavePng | Purpose::ExportGif | Purpose::SaveCode => "Save",
        }
    }

    /// The file extensions listed besides folders.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Purpose::Open => &["png", "gif"],
            Purpose::SavePng => &["png"],
            Purpose::ExportGif => &["gif"],
            Purpose::Image => &["png", "jpg", "jpeg", "json"],
            Purpose::SaveCode => &["json"],
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            Purpose::Open | Purpose::Image => "",
            Purpose::SavePng => "strip.png",
            Purpose::ExportGif => "walk.gif",
            Purpose::SaveCode => "z.json",
        }
    }
}

/// A system dialog that returns with nothing sooner than this did not open (nobody can
/// cancel a dialog that fast).
const TOO_FAST: Duration = Duration::from_millis(300);

/// Whether a system dialog can be expected to open: anywhere but Linux, or on Linux with a
/// D-Bus session (for the portal) or zenity. `LATENTFLOW_FILE_DIALOG=builtin` (or `system`)
/// decides instead.
pub fn system_dialogs_expected() -> bool {
    match std::env::var("LATENTFLOW_FILE_DIALOG").as_deref() {
        Ok("builtin") => return false,
        Ok("system") => return true,
        _ => {}
    }
    if !cfg!(target_os = "linux") {
        return true;
    }
    let dbus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    let zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("zenity").is_file()));
    dbus || zenity
}

/// The result of asking the system dialog.
pub enum SystemAnswer {
    /// The user chose this path.
    Chosen(PathBuf),
    /// The user closed the dialog.
    Cancelled,
    /// The dialog did not open.
    Failed,
}

/// Asks the system dialog (blocking while it is open, as native dialogs are modal).
pub fn ask_system(purpose: Purpose) -> SystemAnswer {
    let started = Instant::now();
    let dialog = rfd::FileDialog::new();
    let chosen = match purpose {
        Purpose::Open => dialog.pick_folder(),
        Purpose::SavePng => dialog
            .add_filter("PNG", &["png"])
            .set_file_name(purpose.default_name())
            .save_file(),
        Purpose::ExportGif => dialog
            .add_filter("GIF", &["gif"])
            .set_file_name(purpose.default_name())
            .save_file(),
        Purpose::Image => dialog
            .add_filter("images and codes", &["png", "jpg", "jpeg", "json"])
            .pick_file(),
        Purpose::SaveCode => dialog
            .add_filter("JSON", &["json"])
            .set_file_name(purpose.default_name())
            .save_file(),
    };
    match chosen {
        Some(p) => SystemAnswer::Chosen(p),
        None if started.elapsed() < TOO_FAST => SystemAnswer::Failed,
        None => SystemAnswer::Cancelled,
    }
}

/// One row of the browser's listing.
struct Entry {
    name: String,
    is_dir: bool,
    /// A folder with a manifest.json: a model (or a potential set).
    is_model: bool,
}

/// latentflow's own file browser: a path field, the folder's sub-folders and matching
/// files, Up, and the action button.
pub struct FileBrowser {
    purpose: Purpose,
    /// The path being chosen (a folder or a file), editable.
    pub path: String,
    listed: Option<PathBuf>,
    entries: Vec<Entry>,
    problem: Option<String>,
}

/// What the browser's window answered this frame.
pub enum BrowserAnswer {
    /// Still open.
    Open,
    /// Closed with this path.
    Chosen(PathBuf),
    /// Closed without a choice.
    Cancelled,
}

impl FileBrowser {
    /// A browser for `purpose`, starting in `start` (a folder).
    pub fn new(purpose: Purpose, start: &Path) -> Self {
        let path = match purpose {
            Purpose::Open | Purpose::Image => start.to_path_buf(),
            _ => start.join(purpose.default_name()),
        };
        Self {
            purpose,
            path: path.display().to_string(),
            listed: None,
            entries: Vec::new(),
            problem: None,
        }
    }

    /// What it is for.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The folder whose contents are listed: the path itself when it is a folder, else its
    /// parent.
    fn folder(&self) -> PathBuf {
        let p = PathBuf::from(self.path.trim());
        if p.is_dir() {
            p
        } else {
            p.parent().map(Path::to_path_buf).unwrap_or_default()
        }
    }

    fn refresh(&mut self) {
        let folder = self.folder();
        if self.listed.as_ref() == Some(&folder) {
            return;
        }
        self.entries.clear();
        self.problem = None;
        match std::fs::read_dir(&folder) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let path = e.path();
                    let is_dir = path.is_dir();
                    let ext_ok = path.extension().is_some_and(|x| {
                        let x = x.to_string_lossy().to_ascii_lowercase();
                        self.purpose.extensions().contains(&x.as_str())
                    });
                    if is_dir || ext_ok {
                        let is_model = is_dir && path.join("manifest.json").is_file();
                        self.entries.push(Entry {
                            name,
                            is_dir,
                            is_model,
                        });
                    }
                }
                self.entries
                    .sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
            }
            Err(e) => self.problem = Some(format!("cannot list {}: {e}", folder.display())),
        }
        self.listed = Some(folder);
    }

    /// The file name of a save path (kept when moving between folders).
    fn file_name(&self) -> String {
        let p = PathBuf::from(self.path.trim());
        if p.is_dir() {
            self.purpose.default_name().to_string()
        } else {
            p.file_name().map_or_else(
                || self.purpose.default_name().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        }
    }

    /// Moves to a folder (keeping the file name of a save).
    fn enter(&mut self, folder: &Path) {
        self.path = match self.purpose {
            Purpose::Open | Purpose::Image => folder.display().to_string(),
            _ => folder.join(self.file_name()).display().to_string(),
        };
    }

    /// Draws the window.
    pub fn ui(&mut self, ctx: &egui::Context) -> BrowserAnswer {
        self.refresh();
        let mut answer = BrowserAnswer::Open;
        let mut open = true;
        egui::Window::new(self.purpose.title())
            .open(&mut open)
            .collapsible(false)
            .default_width(460.0)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    if ui.button("Up").on_hover_text("The parent folder").clicked() {
                        let up = self.folder().parent().map(Path::to_path_buf);
                        if let Some(up) = up {
                            self.enter(&up);
                        }
                    }
                    ui.add(
                        egui::TextEdit::singleline(&mut self.path)
                            .desired_width(f32::INFINITY)
                            .hint_text("a path"),
                    )
                    .on_hover_text("Type or paste a path, or pick below");
                });
                if let Some(p) = &self.problem {
                    ui.colored_label(ui.visuals().error_fg_color, p);
                }
                let mut clicked: Option<(PathBuf, bool)> = None;
                let folder = self.listed.clone().unwrap_or_default();
                egui::ScrollArea::vertical()
                    .max_height(260.0)
                    .show(ui, |ui| {
                        for e in &self.entries {
                            let label = if e.is_model {
                                format!("{}/  (model)", e.name)
                            } else if e.is_dir {
                                format!("{}/", e.name)
                            } else {
                                e.name.clone()
                            };
                            if ui.selectable_label(false, label).clicked() {
                                clicked = Some((folder.join(&e.name), e.is_dir));
                            }
                        }
                        if self.entries.is_empty() && self.problem.is_none() {
                            ui.weak("(no folders or matching files here)");
                        }
                    });
                if let Some((p, is_dir)) = clicked {
                    if is_dir {
                        self.enter(&p);
                    } else {
                        self.path = p.display().to_string();
                    }
                }
                ui.separator();
                ui.horizontal(|ui| {
                    let path = PathBuf::from(self.path.trim());
                    let usable = !self.path.trim().is_empty()
                        && match self.purpose {
                            Purpose::Open => path.exists(),
                            Purpose::Image => path.is_file(),
                            _ => path.parent().is_some_and(Path::is_dir) && !path.is_dir(),
                        };
                    if ui
                        .add_enabled(usable, egui::Button::new(self.purpose.button()))
                        .clicked()
                    {
                        answer = BrowserAnswer::Chosen(path);
                    }
                    if ui.button("Cancel").clicked() {
                        answer = BrowserAnswer::Cancelled;
                    }
                });
            });
        if !open {
            answer = BrowserAnswer::Cancelled;
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_keeps_its_file_name_across_folders_and_lists_matching_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::create_dir(tmp.path().join("model")).unwrap();
        std::fs::write(tmp.path().join("model/manifest.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("a.gif"), b"").unwrap();
        std::fs::write(tmp.path().join("b.txt"), b"").unwrap();
        let mut b = FileBrowser::new(Purpose::ExportGif, tmp.path());
        assert!(b.path.ends_with("walk.gif"));
        b.refresh();
        let names: Vec<(&str, bool)> = b
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_model))
            .collect();
        assert_eq!(names, [("model", true), ("sub", false), ("a.gif", false)]);
        b.enter(&tmp.path().join("sub"));
        assert_eq!(
            PathBuf::from(&b.path),
            tmp.path().join("sub").join("walk.gif")
        );
        let mut o = FileBrowser::new(Purpose::Open, tmp.path());
        o.enter(&tmp.path().join("model"));
        assert_eq!(PathBuf::from(&o.path), tmp.path().join("model"));
    }
}
