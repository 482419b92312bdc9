//! The desktop app (eframe/egui): a viewer of the current traversal, one slider per
//! potential, switching, live plots of u along the path, a training panel and GIF/PNG
//! export. All model work happens on the [`crate::worker`] thread; the UI builds a small
//! [`RenderRequest`] each frame and sends it only when it changed.

pub mod files;
mod input;
mod landscape;
mod notices;
mod plots;
pub mod state;
mod training;
mod viewer;

pub use state::AppState;

use crate::data::Image;
use crate::files::output::{FileKind, check_file};
use crate::session::{Frame, GifOptions, LandscapeRequest, MethodInfo, RenderRequest, Switch};
use crate::store::default_model_dir;
use crate::worker::{Command, Event, Worker};
use eframe::egui;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `app`.
#[derive(Debug, clap::Args, Default)]
pub struct AppArgs {
    /// Model folder to open (default: the shipped scenes VAE).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Save a PNG screenshot of the window once the first images are shown, then quit
    /// (for documentation and checks under xvfb).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Restore the state saved in a PNG or GIF exported by latentflow.
    #[arg(long)]
    pub restore: Option<PathBuf>,
    /// Open with the landscape of this potential shown.
    #[arg(long)]
    pub landscape: Option<usize>,
    /// Start from your own image (PNG/JPEG, encoded by the model) or a saved latent code
    /// (JSON).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// With --image: the potential set's sliders to set, as K:T,K:T (e.g. 2:6).
    #[arg(long)]
    pub sliders: Option<String>,
    /// Replace the --screenshot file if it exists (only a file latentflow wrote is ever
    /// replaced).
    #[arg(long)]
    pub force: bool,
}

/// Opens the window and runs until it is closed. Fails before opening it when there is no
/// display or a `--restore` file cannot be used (and, with `--screenshot`, when the model
/// cannot be loaded); with `--screenshot`, any error before the picture is saved closes the
/// window and is returned.
pub fn run(args: AppArgs) -> anyhow::Result<()> {
    let mut dir = args.model.clone().unwrap_or_else(default_model_dir);
    if let Some(path) = &args.restore {
        let Some(saved) = state::read_embedded_state(path)? else {
            anyhow::bail!("{} holds no latentflow state", path.display());
        };
        if args.model.is_none() {
            dir = saved.model;
        }
    }
    let sliders = match &args.sliders {
        Some(text) => parse_sliders(text)?,
        None => Vec::new(),
    };
    if let Some(path) = &args.image
        && !path.is_file()
    {
        anyhow::bail!("{} is not a file", path.display());
    }
    if let Some(path) = &args.screenshot {
        check_file(path, FileKind::Png, args.force)?;
        // A model that cannot be loaded would leave the window waiting for a frame.
        crate::session::load_model(&dir, &candle_core::Device::Cpu)?;
    }
    check_display()?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("latentflow")
            .with_inner_size([1280.0, 860.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let exit_error = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let app_exit_error = exit_error.clone();
    eframe::run_native(
        "latentflow",
        options,
        Box::new(move |cc| {
            let mut app = App::new(&cc.egui_ctx, dir);
            app.exit_error = app_exit_error;
            // The landscape shader runs on a wgpu device of the worker's own, not on
            // eframe's: sharing the window's queue made a slow dispatch (seconds on a
            // software adapter) hold up the window's frames.
            if let Some(storage) = cc.storage
                && let Some(saved) = eframe::get_value::<state::Persisted>(storage, eframe::APP_KEY)
            {
                app.restore_persisted(saved);
            }
            if let Some(k) = args.landscape {
                app.landscape.show = true;
                app.landscape.k = k;
            }
            if let Some(path) = &args.restore {
                app.restore_from(path);
            }
            if let Some(path) = &args.image {
                // The worker takes commands in order: the model loads first.
                app.status = format!("encoding {}…", path.display());
                app.encoding = Some(0.0);
                app.worker.send(Command::Encode(path.clone()));
            }
            app.pending_sliders = sliders;
            app.screenshot = args.screenshot.map(|path| (path, 0, Instant::now()));
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))?;
    let failure = exit_error.lock().ok().and_then(|mut e| e.take());
    match failure {
        Some(e) => Err(anyhow::anyhow!(e)),
        None => Ok(()),
    }
}

/// Parses `--sliders K:T,K:T` (slider k at time t).
fn parse_sliders(text: &str) -> anyhow::Result<Vec<(usize, f64)>> {
    text.split(',')
        .map(|part| {
            let (k, t) = part
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--sliders: '{part}' is not K:T (such as 2:6)"))?;
            let k: usize = k
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--sliders: '{k}' is not a potential index"))?;
            let t: f64 = t
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--sliders: '{t}' is not a time"))?;
            if !(t.is_finite() && state::MAX_T_RANGE.contains(&t.abs())) && t != 0.0 {
                anyhow::bail!(
                    "--sliders: a time must be within ±{}",
                    state::MAX_T_RANGE.end()
                );
            }
            Ok((k, t))
        })
        .collect()
}

/// The message for a machine without a display, in the user's words.
pub const NO_DISPLAY: &str = "no display found (DISPLAY and WAYLAND_DISPLAY are not set): the \
     app needs a window. Run it under a virtual display with `xvfb-run -a latentflow`, or use \
     the command line (`latentflow --help`: sample, traverse, export-gif, train-generator, \
     train-potentials, eval vp)";

/// Fails with [`NO_DISPLAY`] on Linux when neither X11 nor Wayland is reachable.
fn check_display() -> anyhow::Result<()> {
    if cfg!(target_os = "linux")
        && ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
            .iter()
            .all(|v| std::env::var_os(v).is_none_or(|s| s.is_empty()))
    {
        anyhow::bail!(NO_DISPLAY);
    }
    Ok(())
}

/// How long `--screenshot` waits for the first frame before it gives up.
const SCREENSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn to_color_image(img: &Image) -> egui::ColorImage {
    let rgb = img.to_rgb8();
    egui::ColorImage::from_rgb([img.width, img.height], rgb.as_raw())
}

/// Textures of the newest frame.
#[derive(Default)]
pub struct Shown {
    current: Option<egui::TextureHandle>,
    start: Option<egui::TextureHandle>,
    strip: Vec<egui::TextureHandle>,
    batch: Vec<egui::TextureHandle>,
}

/// The app.
pub struct App {
    worker: Worker,
    input_queue: input::EventQueue,
    /// The loaded model folder.
    pub model_dir: Option<PathBuf>,
    description: String,
    /// Potential sets of the loaded model.
    pub methods: Vec<MethodInfo>,
    /// What the user set (seed, sliders, switching, ...).
    pub state: AppState,
    generation: u64,
    last_request: Option<RenderRequest>,
    sent_at: Vec<(u64, Instant)>,
    /// The newest frame shown.
    pub frame: Option<Frame>,
    shown: Shown,
    /// Request → texture latency of the newest frame, ms.
    pub latency_ms: f64,
    /// Status line: what happened last (errors go to [`App::notices`]).
    pub status: String,
    /// A model the user asked for is loading (a reload after training is not announced).
    loading: bool,
    /// Errors shown until the user dismisses them.
    pub notices: notices::Notices,
    /// Play, pause and ←/→ stepping of the traversal.
    pub playback: state::Playback,
    training: training::TrainingPanel,
    export: viewer::ExportPanel,
    /// The landscape panel.
    pub landscape: landscape::LandscapePanel,
    last_landscape: Option<LandscapeRequest>,
    screenshot: Option<(PathBuf, u32, Instant)>,
    screenshot_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// With `--screenshot`: the error that ended the run, returned by [`run`].
    exit_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    worker_restarts: u32,
    /// Whether the system's file dialog is used (false: latentflow's own browser, after
    /// the system one failed to open or where none is expected).
    system_dialogs: bool,
    /// latentflow's own file browser, while open.
    browser: Option<files::FileBrowser>,
    /// The user's image beside its reconstruction, while its code is the start.
    pub edited: Option<Edited>,
    /// Progress of an encoding in the background (fraction done).
    pub encoding: Option<f32>,
    /// Named starting codes (of every model; the panel lists the open model's).
    pub bookmarks: Vec<state::Bookmark>,
    /// The name typed for the next bookmark.
    pub bookmark_name: String,
    /// How many of the model's potential sets could not be loaded.
    pub unusable_sets: usize,
    /// Whether the loaded model has a density model of its data's codes.
    pub has_density: bool,
    /// Slider times from `--sliders`, set once the model's sliders exist.
    pending_sliders: Vec<(usize, f64)>,
    /// Whether the slider names are being edited.
    pub editing_names: bool,
    /// The names being edited.
    pub name_edits: Vec<String>,
}

/// The user's image whose code is the starting code, as shown.
pub struct Edited {
    /// The file.
    pub path: PathBuf,
    /// The model's input (the image cropped and resized); none for a reopened code.
    pub original: Option<egui::TextureHandle>,
    /// G(z_0).
    pub reconstruction: egui::TextureHandle,
    /// Mean squared error of the reconstruction per value.
    pub mse: Option<f64>,
}

impl App {
    /// A new app loading the model in `dir`.
    pub fn new(ctx: &egui::Context, dir: PathBuf) -> Self {
        let worker = Self::spawn_worker(ctx);
        worker.send(Command::LoadModel(dir));
        Self {
            worker,
            input_queue: input::EventQueue::default(),
            model_dir: None,
            description: String::new(),
            methods: Vec::new(),
            state: AppState::default(),
            generation: 0,
            last_request: None,
            sent_at: Vec::new(),
            frame: None,
            shown: Shown::default(),
            latency_ms: 0.0,
            status: "loading the model…".into(),
            loading: true,
            notices: notices::Notices::default(),
            playback: state::Playback::default(),
            training: training::TrainingPanel::default(),
            export: viewer::ExportPanel::default(),
            landscape: landscape::LandscapePanel::default(),
            last_landscape: None,
            screenshot: None,
            screenshot_done: Default::default(),
            exit_error: Default::default(),
            worker_restarts: 0,
            system_dialogs: files::system_dialogs_expected(),
            browser: None,
            edited: None,
            encoding: None,
            bookmarks: Vec::new(),
            bookmark_name: String::new(),
            unusable_sets: 0,
            has_density: false,
            pending_sliders: Vec::new(),
            editing_names: false,
            name_edits: Vec::new(),
        }
    }

    fn spawn_worker(ctx: &egui::Context) -> Worker {
        let repaint = ctx.clone();
        Worker::spawn(move || repaint.request_repaint())
    }

    fn restore_persisted(&mut self, saved: state::Persisted) {
        self.bookmarks = saved
            .bookmarks
            .into_iter()
            .filter(state::Bookmark::is_valid)
            .take(state::MAX_BOOKMARKS)
            .collect();
        self.state.seed = saved.seed;
        if state::MAX_T_RANGE.contains(&saved.max_t) {
            self.state.max_t = saved.max_t;
        }
        self.state.batch_view = saved.batch_view;
        self.state.dark = saved.dark;
    }

    /// Loads another model folder.
    pub fn open_model(&mut self, dir: PathBuf) {
        self.status = format!("loading {}…", dir.display());
        self.loading = true;
        self.worker.send(Command::LoadModel(dir));
    }

    /// Shows an error until the user dismisses it (and ends a `--screenshot` run).
    fn error(&mut self, msg: String) {
        if self.screenshot.is_some()
            && let Ok(mut e) = self.exit_error.lock()
        {
            e.get_or_insert_with(|| msg.clone());
        }
        self.notices.push(msg);
    }

    /// The request the current state describes (generation not yet assigned).
    pub fn request(&self) -> RenderRequest {
        let scale = self.playback.scale();
        RenderRequest {
            generation: 0,
            seed: self.state.seed,
            method: self.state.method,
            sliders: self.state.sliders.iter().map(|t| t * scale).collect(),
            switch: self.state.switch_on.then_some(self.state.switch),
            batch: if self.state.batch_view {
                self.state.batch_n
            } else {
                0
            },
            step_scale: self.state.step_scale,
            start: self.state.start.clone(),
            preserve_density: self.state.preserve_density,
            data_density: self.state.data_density && self.has_density,
        }
    }

    /// Sends the current request if it differs from the last one sent.
    pub fn send_if_changed(&mut self) {
        if self.model_dir.is_none() {
            return;
        }
        let mut req = self.request();
        if self.last_request.as_ref() == Some(&req) {
            return;
        }
        self.last_request = Some(req.clone());
        self.generation += 1;
        req.generation = self.generation;
        self.sent_at.push((self.generation, Instant::now()));
        if self.sent_at.len() > 64 {
            self.sent_at.remove(0);
        }
        self.worker.send(Command::Render(req));
    }

    /// Asks for the landscape when it is shown and its inputs changed.
    fn send_landscape_if_changed(&mut self) {
        let has_potentials = self
            .methods
            .get(self.state.method)
            .is_some_and(|m| m.has_potentials);
        if !self.landscape.show || self.model_dir.is_none() || !has_potentials {
            return;
        }
        let mut render = self.request();
        render.batch = 0;
        let req = LandscapeRequest {
            render,
            k: self.landscape.k,
            second: self.landscape.second,
            extent: self.landscape.extent,
            n: self.landscape.n,
        };
        if self.last_landscape.as_ref() == Some(&req) {
            return;
        }
        self.last_landscape = Some(req.clone());
        self.worker.send(Command::Landscape(req));
    }

    fn texture(ctx: &egui::Context, name: &str, img: &Image) -> egui::TextureHandle {
        ctx.load_texture(name, to_color_image(img), egui::TextureOptions::NEAREST)
    }

    /// Handles the worker's events; returns whether a frame arrived.
    pub fn handle_events(&mut self, ctx: &egui::Context) -> bool {
        let mut got_frame = false;
        for event in self.worker.events() {
            match event {
                Event::ModelLoaded {
                    dir,
                    description,
                    methods,
                    unusable,
                    has_density,
                } => {
                    self.has_density = has_density;
                    for (set, why) in &unusable {
                        self.error(format!(
                            "could not load the potentials in {}: {why} (the generator and \
                             the other sets are loaded)",
                            set.display()
                        ));
                    }
                    self.unusable_sets = unusable.len();
                    // A reload after training keeps the status line: it says how the
                    // job ended.
                    if std::mem::take(&mut self.loading) {
                        self.status = format!("loaded {}", dir.display());
                    }
                    self.model_dir = Some(dir);
                    self.description = description;
                    if let Some(folder) = &self.state.method_folder
                        && let Some(i) = methods
                            .iter()
                            .position(|m| m.dir.file_name().is_some_and(|f| f == folder.as_str()))
                    {
                        self.state.method = i;
                    }
                    self.state.method = self.state.method.min(methods.len().saturating_sub(1));
                    let k = methods.get(self.state.method).map_or(0, |m| m.names.len());
                    self.state.sliders.resize(k, 0.0);
                    // With --image the sliders wait for the image's code (which resets them).
                    if self.encoding.is_none() {
                        self.apply_pending_sliders();
                    }
                    if let Some(m) = methods.get(self.state.method) {
                        self.state.clamp_switch(m.names.len());
                    }
                    self.methods = methods;
                    self.last_request = None;
                    self.last_landscape = None;
                }
                Event::Frame(frame) => {
                    if frame.generation < self.frame.as_ref().map_or(0, |f| f.generation) {
                        continue; // stale
                    }
                    self.shown.current = Some(Self::texture(ctx, "current", &frame.current));
                    self.shown.start = Some(Self::texture(ctx, "start", &frame.start));
                    self.shown.strip = frame
                        .strip
                        .iter()
                        .enumerate()
                        .map(|(i, im)| Self::texture(ctx, &format!("strip-{i}"), im))
                        .collect();
                    self.shown.batch = frame
                        .batch
                        .iter()
                        .enumerate()
                        .map(|(i, im)| Self::texture(ctx, &format!("batch-{i}"), im))
                        .collect();
                    if let Some((_, at)) = self.sent_at.iter().find(|(g, _)| *g == frame.generation)
                    {
                        self.latency_ms = at.elapsed().as_secs_f64() * 1e3;
                    }
                    self.frame = Some(*frame);
                    got_frame = true;
                }
                Event::Landscape(f) => self.landscape.set(ctx, *f),
                Event::Training(p) => self.training.on_progress(p),
                Event::TrainingDone(end) => match self.training.on_done(end) {
                    Ok(msg) => self.status = msg,
                    Err(msg) => self.error(msg),
                },
                Event::LoadFailed { dir, error } => {
                    self.loading = false;
                    self.status = match &self.model_dir {
                        Some(old) => format!(
                            "could not load {}; still showing {}",
                            dir.display(),
                            old.display()
                        ),
                        None => format!("could not load {}", dir.display()),
                    };
                    self.error(error);
                }
                Event::EncodeProgress(f) => self.encoding = Some(f),
                Event::Encoded(e) => {
                    self.encoding = None;
                    let e = *e;
                    self.status = match e.mse {
                        Some(m) => format!(
                            "editing {} (reconstruction error {m:.4} per value: compare the two \
                             pictures)",
                            e.path.display()
                        ),
                        None => format!("starting from the code in {}", e.path.display()),
                    };
                    self.edited = Some(Edited {
                        original: e
                            .original
                            .as_ref()
                            .map(|im| Self::texture(ctx, "edited-original", im)),
                        reconstruction: Self::texture(ctx, "edited-recon", &e.reconstruction),
                        path: e.path,
                        mse: e.mse,
                    });
                    self.state.start = Some(e.latent);
                    self.state.reset_sliders();
                    self.playback.stop();
                    self.apply_pending_sliders();
                }
                Event::EncodeFailed(msg) => {
                    self.encoding = None;
                    if msg.ends_with("cancelled") {
                        self.status = msg;
                    } else {
                        self.error(msg);
                    }
                }
                Event::CodeSaved(path) => {
                    self.status = format!("saved the starting code in {}", path.display())
                }
                Event::DensityFitted(dir, rescaled, corrected) => {
                    self.training.on_fitted(&dir);
                    self.status = format!(
                        "density of the data fitted into {} (held-out walks' log-density gap \
                         {rescaled:.3} rescaled, {corrected:.3} corrected): tick \"of the data\"",
                        dir.display()
                    );
                }
                Event::DirectionsFitted(dir) => {
                    self.training.on_fitted(&dir);
                    self.status = format!(
                        "directions fitted into {} (listed under Method)",
                        dir.display()
                    )
                }
                Event::Renamed(dir) => {
                    self.status = format!(
                        "saved the names in {}",
                        dir.join(crate::store::MANIFEST_FILE).display()
                    )
                }
                Event::ExportProgress(f) => self.export.progress = Some(f),
                Event::ExportDone(result) => {
                    self.export.progress = None;
                    match result {
                        Ok(path) => self.status = format!("exported {}", path.display()),
                        Err(e) => self.error(format!("export failed: {e}")),
                    }
                }
                Event::Error(msg) => self.error(msg),
            }
        }
        if !self.worker.is_alive() {
            // The worker died (a panic): say so and start a new one on the last model.
            self.worker_restarts += 1;
            self.error(format!(
                "the worker stopped unexpectedly; restarted it (restart {})",
                self.worker_restarts
            ));
            self.worker = Self::spawn_worker(ctx);
            if let Some(dir) = &self.model_dir {
                self.worker.send(Command::LoadModel(dir.clone()));
            }
            self.last_request = None;
        }
        got_frame
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let (space, left, right, r, save, export) = ctx.input(|i| {
            (
                i.key_pressed(egui::Key::Space),
                i.key_pressed(egui::Key::ArrowLeft),
                i.key_pressed(egui::Key::ArrowRight),
                i.key_pressed(egui::Key::R) && !i.modifiers.command,
                i.modifiers.command && i.key_pressed(egui::Key::S),
                i.modifiers.command && i.key_pressed(egui::Key::E),
            )
        });
        if space {
            self.playback.toggle();
        }
        if left || right {
            let longest = self
                .state
                .sliders
                .iter()
                .fold(0.0f64, |m, t| m.max(t.abs()));
            self.playback.step(if right { 1.0 } else { -1.0 }, longest);
        }
        if r {
            self.state.seed = rand::random::<u32>() as u64;
            self.forget_image();
        }
        if save {
            self.save_png_dialog();
        }
        if export {
            self.export_dialog();
        }
    }

    fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            if path.is_dir() {
                self.open_model(path);
                continue;
            }
            self.open_file(&path);
        }
    }

    /// Restores the state embedded in a PNG or GIF exported by latentflow.
    pub fn restore_from(&mut self, path: &std::path::Path) {
        match state::read_embedded_state(path) {
            Ok(Some(saved)) => {
                let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
                let same = self
                    .model_dir
                    .as_deref()
                    .is_some_and(|d| canon(d).is_some() && canon(d) == canon(&saved.model));
                if !same {
                    self.open_model(saved.model.clone());
                }
                self.status = format!("restored the state saved in {}", path.display());
                self.state = saved.state;
                self.last_request = None;
            }
            Ok(None) => self.error(format!("{} holds no latentflow state", path.display())),
            Err(e) => self.error(e.to_string()),
        }
    }

    fn saved_state_json(&self) -> String {
        let Some(model) = &self.model_dir else {
            return String::new();
        };
        let mut state = self.state.clone();
        state.method_folder = self
            .methods
            .get(state.method)
            .and_then(|m| m.dir.file_name().map(|f| f.to_string_lossy().into_owned()));
        let saved = state::Saved {
            model: std::fs::canonicalize(model).unwrap_or_else(|_| model.clone()),
            state,
        };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    fn save_png_dialog(&mut self) {
        if self.frame.is_none() {
            self.error("nothing to save yet".into());
            return;
        }
        self.choose(files::Purpose::SavePng);
    }

    /// Saves the strip of the newest frame as PNG (with the state embedded) to `path`,
    /// which may replace only a file that latentflow wrote.
    pub fn save_png(&mut self, path: PathBuf) {
        let Some(frame) = &self.frame else {
            self.error("nothing to save yet".into());
            return;
        };
        let checked = check_file(&path, FileKind::Png, true)
            .map(|()| state::save_png_with_state(&frame.strip, &path, &self.saved_state_json()));
        match checked.and_then(|r| r) {
            Ok(()) => self.status = format!("saved {}", path.display()),
            Err(e) => self.error(format!("could not save: {e}")),
        }
    }

    fn export_dialog(&mut self) {
        self.choose(files::Purpose::ExportGif);
    }

    /// Asks for a path: the system dialog, or latentflow's own browser where the system's
    /// does not open (said once, then the browser is used for the rest of the run).
    fn choose(&mut self, purpose: files::Purpose) {
        if self.system_dialogs {
            match files::ask_system(purpose) {
                files::SystemAnswer::Chosen(path) => self.chosen(purpose, path),
                files::SystemAnswer::Cancelled => {}
                files::SystemAnswer::Failed => {
                    self.system_dialogs = false;
                    self.error(
                        "the system file dialog did not open (no XDG desktop portal or zenity?); \
                         latentflow's own file browser is used instead"
                            .into(),
                    );
                    self.open_browser(purpose);
                }
            }
        } else {
            self.open_browser(purpose);
        }
    }

    fn open_browser(&mut self, purpose: files::Purpose) {
        let cwd = std::env::current_dir().unwrap_or_default();
        let start = match purpose {
            files::Purpose::Open => self
                .model_dir
                .as_deref()
                .and_then(|d| d.parent())
                .map_or(cwd, std::path::Path::to_path_buf),
            _ => cwd,
        };
        self.browser = Some(files::FileBrowser::new(purpose, &start));
    }

    /// Acts on a chosen path: opens a model folder or restores a PNG/GIF's state, saves
    /// the PNG, or starts the export.
    fn chosen(&mut self, purpose: files::Purpose, path: PathBuf) {
        match purpose {
            files::Purpose::Open if path.is_dir() => self.open_model(path),
            files::Purpose::Open | files::Purpose::Image => self.open_file(&path),
            files::Purpose::SavePng => self.save_png(path),
            files::Purpose::ExportGif => self.start_export(path),
            files::Purpose::SaveCode => self.save_code(path),
        }
    }

    /// Opens a file: a GIF, or a PNG with an embedded state, restores the state; any other
    /// image (PNG, JPEG) is encoded and becomes the starting code; a JSON latent code is
    /// reopened.
    pub fn open_file(&mut self, path: &std::path::Path) {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let has_state = match ext.as_str() {
            "gif" => true,
            "png" => matches!(state::read_embedded_state(path), Ok(Some(_))),
            _ => false,
        };
        if has_state {
            self.restore_from(path);
        } else {
            self.edit_image(path.to_path_buf());
        }
    }

    /// Encodes the user's image (or reopens a latent code) in the background; its code
    /// becomes the starting code when done.
    pub fn edit_image(&mut self, path: PathBuf) {
        if self.model_dir.is_none() {
            self.error("open a model first: its encoder finds the image's code".into());
            return;
        }
        self.status = format!("encoding {}…", path.display());
        self.encoding = Some(0.0);
        self.worker.send(Command::Encode(path));
    }

    /// Saves the current starting code (the user's, or the seed's) as JSON.
    pub fn save_code(&mut self, path: PathBuf) {
        let (latent, source) = match (&self.state.start, &self.edited) {
            (Some(z), Some(e)) => (z.clone(), e.path.display().to_string()),
            (Some(z), None) => (z.clone(), "a restored code".into()),
            (None, _) => {
                self.error(
                    "the starting code is the seed's (its number is enough to find it again); \
                     open an image or a code first"
                        .into(),
                );
                return;
            }
        };
        self.worker.send(Command::SaveCode {
            latent,
            source,
            path,
        });
    }

    /// Sets the slider times given with `--sliders` (once).
    fn apply_pending_sliders(&mut self) {
        let k = self.state.sliders.len();
        for (j, t) in std::mem::take(&mut self.pending_sliders) {
            match self.state.sliders.get_mut(j) {
                Some(slot) => *slot = t.clamp(-self.state.max_t, self.state.max_t),
                None => self.error(format!(
                    "--sliders: potential {j} does not exist (there are {k})"
                )),
            }
        }
    }

    /// The open model's folder, canonical (bookmarks are kept per model).
    fn canonical_model(&self) -> Option<PathBuf> {
        let dir = self.model_dir.as_ref()?;
        Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()))
    }

    /// Keeps the current starting code under `name` (replacing one of the same name).
    pub fn add_bookmark(&mut self, name: &str) {
        let name = name.trim();
        let Some(model) = self.canonical_model() else {
            self.error("open a model first".into());
            return;
        };
        if name.is_empty() {
            self.error("give the bookmark a name".into());
            return;
        }
        self.bookmarks
            .retain(|b| !(b.model == model && b.name == name));
        if self.bookmarks.len() >= state::MAX_BOOKMARKS {
            self.error(format!(
                "at most {} bookmarks are kept: delete some first",
                state::MAX_BOOKMARKS
            ));
            return;
        }
        self.bookmarks.push(state::Bookmark {
            name: name.to_string(),
            model,
            seed: self.state.seed,
            start: self.state.start.clone(),
        });
        self.status = format!("bookmarked the starting code as \"{name}\"");
    }

    /// The open model's bookmarks.
    pub fn model_bookmarks(&self) -> Vec<state::Bookmark> {
        let model = self.canonical_model();
        self.bookmarks
            .iter()
            .filter(|b| Some(&b.model) == model.as_ref())
            .cloned()
            .collect()
    }

    /// Starts from a bookmarked code.
    pub fn go_to_bookmark(&mut self, b: &state::Bookmark) {
        self.state.seed = b.seed;
        self.edited = None;
        self.state.start = b.start.clone();
        self.status = format!("starting from the bookmark \"{}\"", b.name);
    }

    /// Forgets a bookmark of the open model.
    pub fn delete_bookmark(&mut self, name: &str) {
        let model = self.canonical_model();
        self.bookmarks
            .retain(|b| !(Some(&b.model) == model.as_ref() && b.name == name));
    }

    /// Back to the seeds' random codes.
    pub fn forget_image(&mut self) {
        self.state.start = None;
        self.edited = None;
    }

    /// Uses latentflow's own file browser instead of the system dialog (for machines
    /// without one, and for tests).
    pub fn use_builtin_file_dialogs(&mut self) {
        self.system_dialogs = false;
    }

    /// The open file browser (for tests and scripting).
    pub fn file_browser_mut(&mut self) -> Option<&mut files::FileBrowser> {
        self.browser.as_mut()
    }

    fn browser_ui(&mut self, ctx: &egui::Context) {
        let Some(b) = &mut self.browser else {
            return;
        };
        let purpose = b.purpose();
        match b.ui(ctx) {
            files::BrowserAnswer::Open => {}
            files::BrowserAnswer::Cancelled => self.browser = None,
            files::BrowserAnswer::Chosen(path) => {
                self.browser = None;
                self.chosen(purpose, path);
            }
        }
    }

    /// Starts a GIF export of the current traversal to `out` (which may replace only a GIF
    /// that latentflow wrote).
    pub fn start_export(&mut self, out: PathBuf) {
        if let Err(e) = check_file(&out, FileKind::Gif, true) {
            self.error(format!("export failed: {e}"));
            return;
        }
        let opts = GifOptions {
            out,
            fps: self.export.fps,
            ping_pong: self.export.ping_pong,
            scale: self.export.scale,
            seeds: self.export.seeds,
            state_json: self.saved_state_json(),
        };
        self.export.progress = Some(0.0);
        self.worker.send(Command::ExportGif(self.request(), opts));
    }

    fn advance_animation(&mut self, ctx: &egui::Context) {
        if !self.playback.playing {
            return;
        }
        let dt = ctx.input(|i| i.stable_dt).min(0.1) as f64;
        self.playback.advance(dt, self.state.max_t);
        ctx.request_repaint();
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        let seed_before = self.state.seed;
        self.top_bar_buttons(ui);
        // A new seed means a new starting code: the user's image gives way.
        if self.state.seed != seed_before {
            self.forget_image();
        }
    }

    fn top_bar_buttons(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Seed");
            // A fixed width, so that a long seed does not move the buttons after it.
            ui.add_sized(
                egui::vec2(96.0, ui.spacing().interact_size.y),
                egui::DragValue::new(&mut self.state.seed).speed(0.2),
            )
            .on_hover_text("Seed of the starting code z0");
            if ui.button("< Prev").on_hover_text("Previous seed").clicked() {
                self.state.seed = self.state.seed.saturating_sub(1);
            }
            if ui.button("Next >").on_hover_text("Next seed").clicked() {
                self.state.seed = self.state.seed.wrapping_add(1);
            }
            if ui
                .button("Random z")
                .on_hover_text("A random starting code (R)")
                .clicked()
            {
                self.state.seed = rand::random::<u32>() as u64;
            }
            if ui
                .button("Reset")
                .on_hover_text("Set every slider to 0")
                .clicked()
            {
                self.state.reset_sliders();
                self.playback.stop();
            }
            ui.separator();
            let play = if self.playback.playing {
                "Pause"
            } else {
                "Play"
            };
            // A fixed width: the bar does not shift when the label changes.
            if ui
                .add_sized(
                    egui::vec2(48.0, ui.spacing().interact_size.y),
                    egui::Button::new(play),
                )
                .on_hover_text("Animate the traversal; Pause holds the frame (space, ←/→ step)")
                .clicked()
            {
                self.playback.toggle();
            }
            ui.separator();
            if ui
                .button("Open model…")
                .on_hover_text(
                    "Open another model folder, or a PNG/GIF exported by latentflow to restore \
                     it (or drop either on the window)",
                )
                .clicked()
            {
                self.choose(files::Purpose::Open);
            }
            if ui
                .button("Save PNG…")
                .on_hover_text("Save the strip as PNG (Ctrl+S)")
                .clicked()
            {
                self.save_png_dialog();
            }
            if ui
                .button("Export GIF…")
                .on_hover_text("Export the traversal as GIF (Ctrl+E)")
                .clicked()
            {
                self.export_dialog();
            }
            ui.separator();
            let theme = if self.state.dark { "Light" } else { "Dark" };
            if ui
                .button(theme)
                .on_hover_text("Switch the colour theme")
                .clicked()
            {
                self.state.dark = !self.state.dark;
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(&self.status);
            ui.separator();
            ui.label(&self.description);
            ui.separator();
            let ui_ms = ui.ctx().input(|i| i.unstable_dt) * 1e3;
            let render = self.frame.as_ref().map_or(0.0, |f| f.render_ms);
            ui.label(format!(
                "render {render:.1} ms · slider to frame {:.1} ms · UI frame {ui_ms:.1} ms",
                self.latency_ms
            ))
            .on_hover_text("Worker render time, request-to-texture latency, UI frame time");
        });
    }

    /// Ends this frame's input at its first pointer-button release and keeps the rest for
    /// the next frame (see [`input`]): a slider released in a slow frame keeps the value
    /// where it was released. The window calls it before every frame; returns true when
    /// events wait (ask for another frame).
    pub fn hold_events_after_release(&mut self, raw: &mut egui::RawInput) -> bool {
        self.input_queue.split_at_release(raw)
    }

    /// Draws the whole app into `ui` (one frame).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        ctx.set_visuals(if self.state.dark {
            egui::Visuals::dark()
        } else {
            egui::Visuals::light()
        });
        self.handle_events(&ctx);
        self.handle_keys(&ctx);
        self.handle_drops(&ctx);
        self.advance_animation(&ctx);
        egui::Panel::top("top").show(ui, |ui| {
            ui.add_space(4.0);
            self.top_bar(ui);
            ui.add_space(4.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if !self.notices.items().is_empty() {
            egui::Panel::bottom("notices").show(ui, |ui| self.notices.ui(ui));
        }
        egui::Panel::right("controls")
            .resizable(true)
            .default_size(430.0)
            .size_range(320.0..=640.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    viewer::sliders_ui(self, ui);
                    ui.separator();
                    plots::plot_ui(self, ui);
                    ui.separator();
                    let current = self.methods.get(self.state.method);
                    let k_total = current.map_or(0, |m| m.names.len());
                    if current.is_some_and(|m| m.has_potentials) && k_total > 0 {
                        self.landscape.ui(ui, k_total);
                        ui.separator();
                    } else if let Some(m) = current {
                        ui.heading("Landscape");
                        ui.label(format!(
                            "{} has no potential u(z, t) to draw: the landscape is drawn for \
                             potential flows (PDE, linear).",
                            m.method
                        ));
                        ui.separator();
                    }
                    let model_dir = self.model_dir.clone();
                    if let Some(cmd) = self.training.ui(ui, model_dir.as_deref()) {
                        self.worker.send(cmd);
                    }
                    ui.separator();
                    if viewer::export_ui(&mut self.export, ui) {
                        self.export_dialog();
                    }
                });
            });
        egui::CentralPanel::default().show(ui, |ui| viewer::viewer_ui(self, ui));
        self.browser_ui(&ctx);
        self.send_if_changed();
        self.send_landscape_if_changed();
        self.screenshot_step(&ctx);
    }

    /// With `--screenshot`: a few frames after the first traversal frame arrives, asks for
    /// a screenshot; the callback saves it and the next frame closes the window.
    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some((path, frames, started)) = &mut self.screenshot else {
            return;
        };
        ctx.request_repaint();
        let close = |ctx: &egui::Context| ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        if self.exit_error.lock().is_ok_and(|e| e.is_some()) {
            close(ctx);
            return;
        }
        // With --image, the picture waits for the encoded image's frame.
        if self.frame.is_none() || self.encoding.is_some() {
            if started.elapsed() > SCREENSHOT_TIMEOUT
                && let Ok(mut e) = self.exit_error.lock()
            {
                *e = Some(format!(
                    "no frame arrived within {} s; no screenshot was taken",
                    SCREENSHOT_TIMEOUT.as_secs()
                ));
            }
            return;
        }
        *frames += 1;
        if *frames == 5 {
            let path = path.clone();
            let done = self.screenshot_done.clone();
            let failed = self.exit_error.clone();
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let [w, h] = image.size;
                let rgb: Vec<u8> = image
                    .pixels
                    .iter()
                    .flat_map(|c| {
                        let [r, g, b, _] = c.to_array();
                        [r, g, b]
                    })
                    .collect();
                let saved = crate::files::png::encode_rgb8(w, h, &rgb, &[])
                    .and_then(|bytes| crate::files::atomic::write(&path, &bytes));
                match saved {
                    Ok(()) => eprintln!("wrote {}", path.display()),
                    Err(e) => {
                        if let Ok(mut f) = failed.lock() {
                            *f = Some(format!("cannot save the screenshot: {e}"));
                        }
                    }
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                repaint.request_repaint();
            });
        }
        if self
            .screenshot_done
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            close(ctx);
        }
    }

    /// Sends a command to the worker directly (scripting and tests).
    pub fn send_command(&self, cmd: Command) {
        self.worker.send(cmd);
    }

    /// Saves new names for the directions of the potential set in `dir`.
    pub fn rename(&mut self, dir: PathBuf, names: Vec<String>) {
        self.worker.send(Command::RenameDirections { dir, names });
    }

    /// Number of logged training iterations in the training panel's loss curves.
    pub fn training_history_len(&self) -> usize {
        self.training.history.len()
    }

    /// The newest K×K matrix of cosines between the potentials' mean displacements that
    /// the training panel draws as a heat map.
    pub fn training_cosines(&self) -> Option<Vec<Vec<f64>>> {
        self.training.cosines()
    }

    /// Whether a model the user asked for is still loading.
    pub fn is_loading(&self) -> bool {
        self.loading
    }

    /// Makes the training panel save new sets inside the model folder (true) or in the
    /// user's data folder (false, the default), as its checkbox does.
    pub fn train_in_model_folder(&mut self, inside: bool) {
        self.training.set_in_model_folder(inside);
    }

    /// Sets the training panel's iterations and batch size, as its fields do.
    pub fn training_run(&mut self, iters: u64, batch: usize) {
        self.training.set_run(iters, batch);
    }

    /// Sets the training panel's DP-LaSE channel subspaces (0: none) and the one the edit
    /// is confined to, as its two fields do.
    pub fn dplase_subspaces(&mut self, subspaces: usize, subspace: usize) {
        self.training.set_subspaces(subspaces, subspace);
    }

    /// Whether a training job runs.
    pub fn training_running(&self) -> bool {
        self.training.is_running()
    }

    /// The text of the training panel's progress bar (empty before the first job).
    pub fn training_progress_text(&self) -> String {
        self.training.progress_text()
    }

    /// The training panel's message line (how the job stands).
    pub fn training_message(&self) -> &str {
        self.training.message()
    }

    /// Sets the switching control (for tests and scripting).
    pub fn set_switch(&mut self, switch: Option<Switch>) {
        self.state.switch_on = switch.is_some();
        if let Some(s) = switch {
            self.state.switch = s;
        }
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn raw_input_hook(&mut self, ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if self.hold_events_after_release(raw_input) {
            ctx.request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let mut persisted = state::Persisted::from(&self.state);
        persisted.bookmarks = self.bookmarks.clone();
        eframe::set_value(storage, eframe::APP_KEY, &persisted);
    }
}
