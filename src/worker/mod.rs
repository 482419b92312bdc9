//! The background worker: a thread that owns the compute device and the loaded model
//! (see [`crate::session`], which does the work), takes [`Command`]s from the UI and
//! answers with [`Event`]s, calling a notifier (the app passes `request_repaint`) after
//! each.
//!
//! Render requests are coalesced: of several pending ones only the newest is served, and
//! every frame carries its request's generation number so the UI can drop stale ones. Long
//! jobs (potential training, GIF export) run on job threads the worker owns; they are
//! named, refuse a duplicate, report progress and can be cancelled. The UI thread never
//! runs a network.

use crate::session::{
    Encoded, Frame, GifOptions, LandscapeFrame, LandscapeRequest, Loaded, MethodInfo,
    RenderRequest, describe, encode_file, export_gif, landscape, load_model, render,
};

use crate::train::{CancelToken, Progress, TrainJob};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::path::PathBuf;
use std::sync::Arc;

/// What the UI asks of the worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Load a model folder and the potential sets inside it (the previous model stays if
    /// this fails).
    LoadModel(PathBuf),
    /// Render the traversal the request describes.
    Render(RenderRequest),
    /// Start training a method (potentials, WarpedSpace) on the loaded generator.
    Train(Box<TrainJob>),
    /// Cancel the training job (it keeps its last checkpoint).
    CancelTraining,
    /// Pause (true) or resume (false) the training job.
    PauseTraining(bool),
    /// Rename the directions of a potential set (written to its manifest), then reload.
    RenameDirections {
        /// The potential set's folder.
        dir: PathBuf,
        /// One name per direction.
        names: Vec<String>,
    },
    /// Export the traversal of a request as an animated GIF.
    ExportGif(RenderRequest, GifOptions),
    /// Find the latent code of the user's image (PNG/JPEG: encoded, or for a GAN
    /// inverted, in the background with progress), or reopen a saved code (JSON).
    Encode(PathBuf),
    /// Stop a running encoding (GAN inversion).
    CancelEncode,
    /// Fit closed-form directions (SeFa, GANSpace) of the loaded generator into a folder,
    /// in the background; the model reloads with them when the folder is listed.
    FitDirections(crate::methods::closed_form::FitConfig, PathBuf),
    /// Fit DP-LaSE's density model of the loaded VAE's data codes into a folder, in the
    /// background; the model reloads with it when it is where the model looks.
    FitDensity(crate::train::density::DensityFitConfig, PathBuf),
    /// Save a latent code of the loaded generator as JSON.
    SaveCode {
        /// The code.
        latent: Vec<f32>,
        /// Where it came from, in words.
        source: String,
        /// The file.
        path: PathBuf,
    },
    /// Evaluate the potential landscape around the current traversal.
    Landscape(LandscapeRequest),
    /// Stop the thread.
    Shutdown,
}

/// How a training job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainingEnd {
    /// It ran to the end; the folder it wrote.
    Saved(PathBuf),
    /// The user cancelled it; what was kept, in words (not an error).
    Cancelled(String),
    /// It failed; why.
    Failed(String),
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A model (and its potential sets) was loaded.
    ModelLoaded {
        /// The folder.
        dir: PathBuf,
        /// One line about the generator.
        description: String,
        /// The potential sets found in the folder.
        methods: Vec<MethodInfo>,
        /// The sets that could not be loaded, and why.
        unusable: Vec<(PathBuf, String)>,
        /// Whether the model has a density model of its data's codes (for walks that keep
        /// it).
        has_density: bool,
    },
    /// A model folder could not be loaded (the previous model, if any, stays).
    LoadFailed {
        /// The folder.
        dir: PathBuf,
        /// Why, in one line.
        error: String,
    },
    /// A rendered traversal.
    Frame(Box<Frame>),
    /// An evaluated potential landscape.
    Landscape(Box<LandscapeFrame>),
    /// Progress of the training job.
    Training(Progress),
    /// The training job ended.
    TrainingDone(TrainingEnd),
    /// Progress of an encoding (fraction done).
    EncodeProgress(f32),
    /// An image was encoded (or a code reopened).
    Encoded(Box<Encoded>),
    /// An encoding failed or was cancelled (the message says which).
    EncodeFailed(String),
    /// A latent code was saved in this file.
    CodeSaved(PathBuf),
    /// A direction set was fitted into this folder.
    DirectionsFitted(PathBuf),
    /// A density model was fitted into this folder: the held-out walks' log-density gap
    /// without and with the correction.
    DensityFitted(PathBuf, f64, f64),
    /// New direction names were saved in the manifest of this potential set (the model
    /// reloads with them next).
    Renamed(PathBuf),
    /// Progress of the export job (fraction done).
    ExportProgress(f32),
    /// The export job ended.
    ExportDone(Result<PathBuf, String>),
    /// Something failed; the message is for the user.
    Error(String),
}

/// Handle to the worker thread.
pub struct Worker {
    tx: Sender<Command>,
    rx: Receiver<Event>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker; `notify` is called after every event.
    pub fn spawn(notify: impl Fn() + Send + Sync + 'static) -> Self {
        let (tx, cmd_rx) = unbounded();
        let (ev_tx, rx) = unbounded();
        let own_tx = tx.clone();
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(notify);
        let handle = std::thread::Builder::new()
            .name("latentflow-worker".into())
            .spawn(move || State::new(own_tx, ev_tx, notify).run(cmd_rx))
            .ok();
        Self { tx, rx, handle }
    }

    /// Sends a command (ignored if the worker has stopped).
    pub fn send(&self, cmd: Command) {
        let _ = self.tx.send(cmd);
    }

    /// Events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.rx.try_iter().collect()
    }

    /// Waits up to `timeout` for the next event (for tests and the CLI).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Whether the thread is still running.
    pub fn is_alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Drop for Worker {
    /// Stops the thread and waits for it (it finishes the command in hand first), so
    /// that what it owns — the wgpu device above all — is released before the process
    /// goes on to exit (a device torn down by the exit while its thread still ran it
    /// crashed the process).
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct State {
    device: candle_core::Device,
    model: Option<Arc<Loaded>>,
    own_tx: Sender<Command>,
    tx: Sender<Event>,
    notify: Arc<dyn Fn() + Send + Sync>,
    training: Option<(CancelToken, std::thread::JoinHandle<()>)>,
    export: Option<std::thread::JoinHandle<()>>,
    encode: Option<(CancelToken, std::thread::JoinHandle<()>)>,
    gpu: Option<crate::landscape::GpuLandscape>,
    gpu_tried: bool,
}

impl State {
    fn new(
        own_tx: Sender<Command>,
        tx: Sender<Event>,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            // The CLI's device (CUDA in a `cuda` build), the CPU if it cannot be opened.
            device: crate::session::device().unwrap_or(candle_core::Device::Cpu),
            model: None,
            own_tx,
            tx,
            notify,
            training: None,
            export: None,
            encode: None,
            gpu: None,
            gpu_tried: false,
        }
    }

    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
        (self.notify)();
    }

    fn run(mut self, rx: Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut pending = vec![first];
            pending.extend(rx.try_iter());
            let newest_render = pending
                .iter()
                .rposition(|c| matches!(c, Command::Render(_)));
            let newest_landscape = pending
                .iter()
                .rposition(|c| matches!(c, Command::Landscape(_)));
            for (i, cmd) in pending.into_iter().enumerate() {
                match cmd {
                    Command::Shutdown => {
                        if let Some((cancel, _)) = &self.training {
                            cancel.cancel();
                        }
                        return;
                    }
                    Command::LoadModel(dir) => self.load(dir),
                    Command::Render(req) if Some(i) == newest_render => self.render(&req),
                    Command::Render(_) => {} // superseded by a newer request
                    Command::Train(cfg) => self.start_training(*cfg),
                    Command::PauseTraining(paused) => match &self.training {
                        Some((token, _)) => token.set_paused(paused),
                        None => self.send(Event::Error("no training job is running".into())),
                    },
                    Command::CancelTraining => match &self.training {
                        Some((cancel, _)) => cancel.cancel(),
                        None => self.send(Event::Error("no training job is running".into())),
                    },
                    Command::ExportGif(req, opts) => self.start_export(req, opts),
                    Command::Encode(path) => self.start_encode(path),
                    Command::CancelEncode => {
                        if let Some((cancel, _)) = &self.encode {
                            cancel.cancel();
                        }
                    }
                    Command::FitDirections(cfg, out) => self.start_fit(cfg, out),
                    Command::FitDensity(cfg, out) => self.start_density_fit(cfg, out),
                    Command::SaveCode {
                        latent,
                        source,
                        path,
                    } => self.save_code(latent, source, path),
                    Command::Landscape(req) if Some(i) == newest_landscape => self.landscape(&req),
                    Command::Landscape(_) => {}
                    Command::RenameDirections { dir, names } => {
                        match crate::store::rename_directions(&dir, &names) {
                            Ok(()) => {
                                self.send(Event::Renamed(dir));
                                if let Some(model) = &self.model {
                                    let d = model.generator.dir.clone();
                                    self.load(d);
                                }
                            }
                            Err(e) => {
                                self.send(Event::Error(format!("could not save the names: {e}")))
                            }
                        }
                    }
                }
            }
        }
    }

    fn load(&mut self, dir: PathBuf) {
        match load_model(&dir, &self.device) {
            Ok(loaded) => {
                let methods = loaded.methods.iter().map(|(m, _)| m.clone()).collect();
                let description = describe(&loaded.generator, &self.device);
                let unusable = loaded.unusable.clone();
                let has_density = loaded.density.is_some();
                self.model = Some(Arc::new(loaded));
                self.send(Event::ModelLoaded {
                    dir,
                    description,
                    methods,
                    unusable,
                    has_density,
                });
            }
            Err(e) => self.send(Event::LoadFailed {
                error: format!("could not load {}: {e}", dir.display()),
                dir,
            }),
        }
    }

    fn render(&self, req: &RenderRequest) {
        let Some(model) = &self.model else {
            self.send(Event::Error("no model is loaded".into()));
            return;
        };
        match render(model, req, &self.device) {
            Ok(frame) => self.send(Event::Frame(Box::new(frame))),
            Err(e) => self.send(Event::Error(format!("render failed: {e}"))),
        }
    }

    fn landscape(&mut self, req: &LandscapeRequest) {
        let has_potentials = self
            .model
            .as_ref()
            .and_then(|m| m.methods.get(req.render.method))
            .is_some_and(|(info, _)| info.has_potentials);
        if !self.gpu_tried && has_potentials {
            // The worker's own headless device, tried once (sharing eframe's queue let a slow
            // dispatch hold up window frames).
            self.gpu_tried = true;
            self.gpu = crate::landscape::GpuLandscape::headless().ok();
        }
        let Some(model) = self.model.clone() else {
            self.send(Event::Error("no model is loaded".into()));
            return;
        };
        match landscape(&model, req, self.gpu.as_ref(), &self.device) {
            Ok(frame) => self.send(Event::Landscape(Box::new(frame))),
            Err(e) => self.send(Event::Error(format!("landscape failed: {e}"))),
        }
    }

    fn start_training(&mut self, mut job: TrainJob) {
        if self
            .training
            .as_ref()
            .is_some_and(|(_, h)| !h.is_finished())
        {
            self.send(Event::Error("a training job is already running".into()));
            return;
        }
        let Some(model) = &self.model else {
            self.send(Event::Error("load a model before training".into()));
            return;
        };
        job.set_generator(model.generator.dir.clone());
        let cancel = CancelToken::new();
        let (token, tx, notify, own_tx) = (
            cancel.clone(),
            self.tx.clone(),
            self.notify.clone(),
            self.own_tx.clone(),
        );
        let device = self.device.clone();
        let model_dir = model.generator.dir.clone();
        let handle = std::thread::Builder::new()
            .name("latentflow-training".into())
            .spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send(e);
                    notify();
                };
                let result = job.run(&device, &token, &mut |p| {
                    send(Event::Training(p));
                });
                let out = job.out().to_path_buf();
                let makes_model = job.makes_model();
                let kept = out.join(crate::store::MANIFEST_FILE).exists();
                let done = match result {
                    Ok(()) => TrainingEnd::Saved(out.clone()),
                    Err(crate::Error::Cancelled) if kept => TrainingEnd::Cancelled(format!(
                        "training cancelled; the last checkpoint in {} is kept",
                        out.display()
                    )),
                    Err(crate::Error::Cancelled) => TrainingEnd::Cancelled(
                        "training cancelled before its first checkpoint; nothing was saved".into(),
                    ),
                    Err(e) => TrainingEnd::Failed(e.to_string()),
                };
                let done_saved = matches!(done, TrainingEnd::Saved(_));
                let wrote = done_saved || kept;
                send(Event::TrainingDone(done));
                // A new model opens; new (or updated) potentials become sliders: reload
                // the model folder.
                if done_saved && makes_model {
                    let _ = own_tx.send(Command::LoadModel(out));
                } else if wrote && is_listed(&model_dir, &out) {
                    let _ = own_tx.send(Command::LoadModel(model_dir));
                }
            });
        match handle {
            Ok(h) => self.training = Some((cancel, h)),
            Err(e) => self.send(Event::Error(format!("cannot start the training job: {e}"))),
        }
    }

    fn start_encode(&mut self, path: PathBuf) {
        if self.encode.as_ref().is_some_and(|(_, h)| !h.is_finished()) {
            self.send(Event::Error("an image is already being encoded".into()));
            return;
        }
        let Some(model) = self.model.clone() else {
            self.send(Event::EncodeFailed("no model is loaded".into()));
            return;
        };
        let (tx, notify, device) = (self.tx.clone(), self.notify.clone(), self.device.clone());
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let handle = std::thread::Builder::new()
            .name("latentflow-encode".into())
            .spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send(e);
                    notify();
                };
                let result = encode_file(&model, &path, &device, &token, &mut |f| {
                    send(Event::EncodeProgress(f));
                });
                send(match result {
                    Ok(e) => Event::Encoded(Box::new(e)),
                    Err(crate::Error::Cancelled) => {
                        Event::EncodeFailed(format!("encoding {} cancelled", path.display()))
                    }
                    Err(e) => {
                        Event::EncodeFailed(format!("could not encode {}: {e}", path.display()))
                    }
                });
            });
        match handle {
            Ok(h) => self.encode = Some((cancel, h)),
            Err(e) => self.send(Event::EncodeFailed(format!(
                "cannot start the encoding: {e}"
            ))),
        }
    }

    fn start_fit(&mut self, mut cfg: crate::methods::closed_form::FitConfig, out: PathBuf) {
        let Some(model) = self.model.clone() else {
            self.send(Event::Error("no model is loaded".into()));
            return;
        };
        // The panel's K is the potentials'; closed form finds at most one per dimension.
        cfg.k = cfg.k.min(model.generator.config.latent);
        let (tx, notify, device) = (self.tx.clone(), self.notify.clone(), self.device.clone());
        let own_tx = self.own_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("latentflow-fit".into())
            .spawn(move || {
                let command = format!(
                    "latentflow app (training panel): {} --k {}, out {}",
                    cfg.method.name(),
                    cfg.k,
                    out.display()
                );
                let g = &model.generator;
                let event = match crate::methods::closed_form::fit_and_save(
                    g, &cfg, &out, &command, false, &device,
                ) {
                    Ok(_) => {
                        if is_listed(&g.dir, &out) {
                            let _ = own_tx.send(Command::LoadModel(g.dir.clone()));
                        }
                        Event::DirectionsFitted(out)
                    }
                    Err(e) => Event::Error(format!("could not fit the directions: {e}")),
                };
                let _ = tx.send(event);
                notify();
            });
        if let Err(e) = spawned {
            self.send(Event::Error(format!("cannot start the fit: {e}")));
        }
    }

    fn start_density_fit(&mut self, cfg: crate::train::density::DensityFitConfig, out: PathBuf) {
        let Some(model) = self.model.clone() else {
            self.send(Event::Error("load a model before fitting".into()));
            return;
        };
        let (tx, notify, device) = (self.tx.clone(), self.notify.clone(), self.device.clone());
        let own_tx = self.own_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("latentflow-density".into())
            .spawn(move || {
                let command = format!(
                    "latentflow app (training panel): density, out {}",
                    out.display()
                );
                let g = &model.generator;
                let event = match crate::train::density::fit_and_save(
                    g,
                    &cfg,
                    &out,
                    &command,
                    true,
                    &device,
                    &mut |_, _, _, _| {},
                ) {
                    Ok(s) => {
                        let _ = own_tx.send(Command::LoadModel(g.dir.clone()));
                        Event::DensityFitted(out, s.gap_rescaled, s.gap_corrected)
                    }
                    Err(e) => Event::Error(format!("could not fit the density model: {e}")),
                };
                let _ = tx.send(event);
                notify();
            });
        if let Err(e) = spawned {
            self.send(Event::Error(format!("cannot start the fit: {e}")));
        }
    }

    fn save_code(&mut self, latent: Vec<f32>, source: String, path: PathBuf) {
        let Some(model) = &self.model else {
            self.send(Event::Error("no model is loaded".into()));
            return;
        };
        let code = crate::edit::LatentCode::new(&model.generator, latent, source);
        let saved =
            crate::files::output::check_file(&path, crate::files::output::FileKind::Json, true)
                .and_then(|()| code.save(&path));
        match saved {
            Ok(()) => self.send(Event::CodeSaved(path)),
            Err(e) => self.send(Event::Error(format!("could not save the code: {e}"))),
        }
    }

    fn start_export(&mut self, req: RenderRequest, opts: GifOptions) {
        if self.export.as_ref().is_some_and(|h| !h.is_finished()) {
            self.send(Event::Error("an export is already running".into()));
            return;
        }
        let Some(model) = self.model.clone() else {
            self.send(Event::Error("no model is loaded".into()));
            return;
        };
        let (tx, notify, device) = (self.tx.clone(), self.notify.clone(), self.device.clone());
        let handle = std::thread::Builder::new()
            .name("latentflow-export".into())
            .spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send(e);
                    notify();
                };
                let result = export_gif(&model, &req, &opts, &device, &mut |f| {
                    send(Event::ExportProgress(f));
                });
                send(Event::ExportDone(
                    result.map(|()| opts.out.clone()).map_err(|e| e.to_string()),
                ));
            });
        match handle {
            Ok(h) => self.export = Some(h),
            Err(e) => self.send(Event::Error(format!("cannot start the export: {e}"))),
        }
    }
}

/// Whether a method folder written to `out` is one the model's listing shows (inside the
/// model folder or the user's folder of sets for it), so the model reloads with it.
fn is_listed(model_dir: &std::path::Path, out: &std::path::Path) -> bool {
    let user = crate::store::user::user_sets_dir(model_dir);
    out.parent() == Some(model_dir) || (user.is_some() && out.parent() == user.as_deref())
}
