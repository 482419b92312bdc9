//! The training panel: method and hyperparameters, start / cancel, progress with
//! iterations per second and ETA, and live loss curves per term.

use crate::methods::closed_form::{DirectionMethod, FitConfig};
use crate::train::Progress;
use crate::train::TrainJob;
use crate::train::flow_vae::{FlowVaeTrainConfig, defaults as ffvae_defaults};
use crate::train::ode::{OdeTrainConfig, defaults as ode_defaults};
use crate::train::potentials::{
    LossWeights, PotentialTrainConfig, cosine_matrix, defaults, is_diagnostic,
};
use crate::train::warped::{WarpedTrainConfig, defaults as warped_defaults};
use crate::worker::{Command, TrainingEnd};
use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use std::path::Path;
use std::time::Instant;

/// The methods the panel trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainMethod {
    /// Wave-equation potentials.
    Pde,
    /// The linear baseline.
    Linear,
    /// WarpedSpace's RBF paths.
    Warped,
    /// NeuralODE editing's fields, one per factor.
    Ode,
    /// A flow-factorized VAE fine-tuned from the loaded VAE (a new model).
    FlowVae,
}

impl TrainMethod {
    /// The learning rate of a new run of this method.
    fn default_lr(self) -> f64 {
        match self {
            TrainMethod::Pde | TrainMethod::Linear => defaults::LR,
            TrainMethod::Warped => warped_defaults::LR,
            TrainMethod::Ode => ode_defaults::LR,
            TrainMethod::FlowVae => ffvae_defaults::LR,
        }
    }

    /// The steps T of a new run of this method.
    fn default_steps(self) -> usize {
        match self {
            TrainMethod::FlowVae => ffvae_defaults::STEPS,
            _ => defaults::STEPS,
        }
    }

    /// The folder a new set of this method goes to unless the user names another.
    fn default_folder(self) -> &'static str {
        match self {
            TrainMethod::Pde | TrainMethod::Linear => "potentials-new",
            TrainMethod::Warped => "warped-new",
            TrainMethod::Ode => "ode-new",
            TrainMethod::FlowVae => "ffvae-new",
        }
    }
}

/// State of the training panel.
pub struct TrainingPanel {
    method: TrainMethod,
    /// WarpedSpace: dipoles per path and the shift penalty's weight.
    dipoles: usize,
    w_shift: f64,
    /// NeuralODE: hidden layers per field and the keep term's weight.
    depth: usize,
    w_keep: f64,
    /// Flow-factorized VAE: infer each sequence's transformation (weak supervision).
    weak: bool,
    /// Flow-factorized VAE: keep the loaded VAE frozen (train only the potentials).
    freeze_vae: bool,
    /// DP-LaSE: channel subspaces (0: none) and the one the edit is confined to.
    subspaces: usize,
    subspace: usize,
    k: usize,
    steps: usize,
    iters: u64,
    batch: usize,
    lr: f64,
    weights: LossWeights,
    log_jacobian: bool,
    folder: String,
    /// Save inside the model folder instead of the user's data folder.
    in_model_folder: bool,
    running: bool,
    paused: bool,
    started: Option<Instant>,
    first_iteration: u64,
    /// (iteration, total) of the newest report.
    pub position: (u64, u64),
    /// Per logged iteration: (iteration, named values).
    pub history: Vec<(u64, Vec<(String, f64)>)>,
    message: String,
    /// How the last job ended ("finished", "cancelled", "failed"), while none runs.
    ended: Option<&'static str>,
}

impl Default for TrainingPanel {
    fn default() -> Self {
        Self {
            method: TrainMethod::Pde,
            dipoles: warped_defaults::DIPOLES,
            w_shift: warped_defaults::W_SHIFT,
            depth: ode_defaults::DEPTH,
            w_keep: ode_defaults::W_KEEP,
            weak: false,
            freeze_vae: true,
            subspaces: 0,
            subspace: 0,
            k: defaults::PANEL_K,
            steps: defaults::STEPS,
            iters: defaults::PANEL_ITERS,
            batch: defaults::PANEL_BATCH_SIZE,
            lr: defaults::LR,
            weights: LossWeights::default(),
            log_jacobian: true,
            folder: "potentials-new".into(),
            in_model_folder: false,
            running: false,
            paused: false,
            started: None,
            first_iteration: 0,
            position: (0, 0),
            history: Vec::new(),
            message: String::new(),
            ended: None,
        }
    }
}

impl TrainingPanel {
    /// Records a progress report.
    pub fn on_progress(&mut self, p: Progress) {
        match p {
            Progress::Started { iteration, total } => {
                self.running = true;
                self.started = Some(Instant::now());
                self.first_iteration = iteration;
                self.position = (iteration, total);
            }
            Progress::Iteration {
                iteration,
                total,
                losses,
                ..
            } => {
                self.position = (iteration, total);
                self.history.push((iteration, losses));
            }
            Progress::Checkpoint { iteration } => {
                self.message = format!("checkpoint at iteration {iteration}");
            }
        }
    }

    /// The folder new sets of the model in `dir` go to: the user's data folder for it, or
    /// the model folder when asked (`None`: no data folder is known).
    fn destination(&self, dir: &Path) -> Option<std::path::PathBuf> {
        if self.in_model_folder {
            Some(dir.to_path_buf())
        } else {
            crate::store::user::user_sets_dir(dir)
        }
    }

    /// A closed-form fit finished into `dir`.
    pub fn on_fitted(&mut self, dir: &Path) {
        self.message = format!("saved {}", dir.display());
    }

    /// Sets the run's iterations and batch, as the panel's fields do.
    pub fn set_run(&mut self, iters: u64, batch: usize) {
        self.iters = iters;
        self.batch = batch;
    }

    /// Saves new sets inside the model folder (true) or the user's data folder (false).
    pub fn set_in_model_folder(&mut self, inside: bool) {
        self.in_model_folder = inside;
    }

    /// DP-LaSE's channel subspaces (0: none) and the one its edit is confined to.
    pub fn set_subspaces(&mut self, subspaces: usize, subspace: usize) {
        self.subspaces = subspaces.min(16);
        self.subspace = subspace.min(self.subspaces.saturating_sub(1));
    }

    /// Whether a job runs.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How the job stands, in words.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The job ended; returns the status line, or the error to show (a cancel is not
    /// one).
    pub fn on_done(&mut self, end: TrainingEnd) -> Result<String, String> {
        self.running = false;
        self.paused = false;
        match end {
            TrainingEnd::Saved(dir) => {
                self.ended = Some("finished");
                self.message = format!("saved {}", dir.display());
                Ok(format!("training finished; saved in {}", dir.display()))
            }
            TrainingEnd::Cancelled(what) => {
                self.ended = Some("cancelled");
                self.message = what.clone();
                Ok(what)
            }
            TrainingEnd::Failed(e) => {
                self.ended = Some("failed");
                self.message = e.clone();
                Err(e)
            }
        }
    }

    /// The progress bar's text: iterations, rate and ETA while a job runs; how it ended
    /// (no ETA) once it stopped.
    pub fn progress_text(&self) -> String {
        let (it, total) = self.position;
        if total == 0 {
            return String::new();
        }
        if !self.running {
            return format!("{it}/{total}  {}", self.ended.unwrap_or("stopped"));
        }
        if self.paused {
            return format!("{it}/{total}  paused");
        }
        let rate = self.started.map_or(0.0, |s| {
            (it - self.first_iteration.min(it)) as f64 / s.elapsed().as_secs_f64().max(1e-9)
        });
        if rate > 0.0 {
            let eta = (total - it) as f64 / rate;
            format!("{it}/{total}  {rate:.1} it/s  ETA {eta:.0} s")
        } else {
            format!("{it}/{total}")
        }
    }

    /// Draws the panel; returns a command for the worker when a button was pressed.
    pub fn ui(&mut self, ui: &mut egui::Ui, model_dir: Option<&Path>) -> Option<Command> {
        let mut command = None;
        ui.heading("Train a method");
        ui.add_enabled_ui(!self.running, |ui| {
            ui.horizontal(|ui| {
                let before = self.method;
                ui.radio_value(&mut self.method, TrainMethod::Pde, "PDE")
                    .on_hover_text("Wave-equation potentials (the paper's method)");
                ui.radio_value(&mut self.method, TrainMethod::Linear, "Linear")
                    .on_hover_text("Constant directions (the baseline)");
                ui.radio_value(&mut self.method, TrainMethod::Warped, "WarpedSpace")
                    .on_hover_text(
                        "Curved paths: each the normalised gradient of a sum of RBFs, trained \
                         with a reconstructor that tells the paths and the shifts apart",
                    );
                // Settings still at the old method's defaults follow the new method.
                ui.radio_value(&mut self.method, TrainMethod::Ode, "NeuralODE")
                    .on_hover_text(
                        "One vector field per factor of the dataset, integrated by RK4, \
                         trained with the factor regressor beside the model to change its \
                         factor and keep the others",
                    );
                ui.radio_value(&mut self.method, TrainMethod::FlowVae, "Flow-factorized VAE")
                    .on_hover_text(
                        "Fine-tune the loaded VAE on sequences of its dataset's factor sweeps \
                         with one Hamilton-Jacobi potential per factor (a new model, opened \
                         when it is done)",
                    );
                if self.method != before && self.steps == before.default_steps() {
                    self.steps = self.method.default_steps();
                }
                if self.method != before && self.folder.trim() == before.default_folder() {
                    self.folder = self.method.default_folder().into();
                }
                if self.method != before && self.lr == before.default_lr() {
                    self.lr = self.method.default_lr();
                }
            });
            ui.horizontal(|ui| {
                if self.method == TrainMethod::FlowVae {
                    ui.label("one potential per factor");
                    ui.checkbox(&mut self.weak, "weak supervision").on_hover_text(
                        "Infer each sequence's transformation with a classifier \
                         (straight-through Gumbel-softmax) instead of giving it",
                    );
                } else if self.method == TrainMethod::Ode {
                    ui.label("one field per factor");
                    ui.label("depth");
                    ui.add(egui::DragValue::new(&mut self.depth).range(0..=3))
                        .on_hover_text(
                            "Hidden layers of each field's MLP (0: constant fields, the \
                             linear variant)",
                        );
                } else {
                    ui.label("K");
                    ui.add(egui::DragValue::new(&mut self.k).range(1..=32))
                        .on_hover_text("Number of potentials (paths)");
                }
                if self.method == TrainMethod::Warped {
                    ui.label("dipoles");
                    ui.add(egui::DragValue::new(&mut self.dipoles).range(1..=64))
                        .on_hover_text("Antipodal pairs of support vectors per path");
                } else if self.method != TrainMethod::Ode {
                    ui.label("T");
                    ui.add(egui::DragValue::new(&mut self.steps).range(1..=50))
                        .on_hover_text("Steps per traversal");
                }
            });
            ui.horizontal(|ui| {
                ui.label("iterations");
                ui.add(egui::DragValue::new(&mut self.iters).range(1..=1_000_000))
                    .on_hover_text("Total iterations");
                ui.label("batch");
                ui.add(egui::DragValue::new(&mut self.batch).range(1..=256))
                    .on_hover_text("Latent codes per batch");
                ui.label("lr");
                ui.add(
                    egui::DragValue::new(&mut self.lr)
                        .speed(1e-4)
                        .range(1e-6..=1e-1),
                )
                .on_hover_text("Adam learning rate");
            });
            if self.method == TrainMethod::FlowVae {
                ui.checkbox(&mut self.freeze_vae, "keep the VAE frozen").on_hover_text(
                    "Train only the potentials, their force networks, the prior's diffusion \
                     and (weak) the classifier on the loaded VAE, as the shipped model was; \
                     unticked, the VAE is fine-tuned too, at 0.3 x lr (in short runs this \
                     blurs its decoder: see docs/methods.md). The batch counts sequences of \
                     T + 1 frames.",
                );
            } else if self.method == TrainMethod::Ode {
                ui.horizontal(|ui| {
                    ui.label("w_keep");
                    ui.add(
                        egui::DragValue::new(&mut self.w_keep)
                            .speed(0.01)
                            .range(0.0..=100.0),
                    )
                    .on_hover_text("Weight of the term that keeps the other factors");
                });
            } else if self.method == TrainMethod::Warped {
                ui.horizontal(|ui| {
                    ui.label("w_shift");
                    ui.add(
                        egui::DragValue::new(&mut self.w_shift)
                            .speed(0.01)
                            .range(0.0..=100.0),
                    )
                    .on_hover_text("Weight of the shift penalty |predicted shift - shift|");
                });
            } else {
            ui.horizontal(|ui| {
                let w = &mut self.weights;
                for (name, v, tip) in [
                    (
                        "w_u",
                        &mut w.u,
                        "Weight of the initial condition |grad u(z0, 0)|^2",
                    ),
                    ("w_f", &mut w.f, "Weight of the wave-equation residual"),
                    ("w_J", &mut w.j, "Weight of -|J_G grad u|^2 (or its log)"),
                    ("w_k", &mut w.k, "Weight of the classifier loss"),
                    (
                        "w_d",
                        &mut w.d,
                        "Weight of the diversity term: mean cos^2 between the potentials' mean steps",
                    ),
                ] {
                    ui.label(name);
                    ui.add(egui::DragValue::new(v).speed(0.01).range(0.0..=100.0))
                        .on_hover_text(tip);
                }
            });
            ui.checkbox(&mut self.log_jacobian, "log L_J")
                .on_hover_text("L_J = -log |J_G grad u|^2 instead of -|J_G grad u|^2 (keeps the gradients from collapsing)");
            }
            ui.horizontal(|ui| {
                ui.label("folder");
                ui.text_edit_singleline(&mut self.folder)
                    .on_hover_text("Name of the folder the potentials are saved in");
                ui.checkbox(&mut self.in_model_folder, "in the model folder")
                    .on_hover_text(
                        "Save inside the model folder itself (by default new sets go to your \
                         data folder, listed with the model's own, and shipped models stay \
                         as they are)",
                    );
            });
            if let Some(dir) = model_dir {
                let (label, hover) = match self.destination(dir) {
                    Some(parent) if self.in_model_folder => (
                        "saved in the model folder",
                        parent.join(self.folder.trim()).display().to_string(),
                    ),
                    Some(parent) => (
                        "saved in your data folder (listed with the model's sets)",
                        parent.join(self.folder.trim()).display().to_string(),
                    ),
                    None => ("no data folder is known", String::new()),
                };
                ui.weak(label).on_hover_text(hover);
            }
        });
        ui.horizontal(|ui| {
            if self.running {
                let label = if self.paused { "Resume" } else { "Pause" };
                if ui
                    .button(label)
                    .on_hover_text("Pause or resume the training job")
                    .clicked()
                {
                    self.paused = !self.paused;
                    command = Some(Command::PauseTraining(self.paused));
                }
                if ui
                    .button("Cancel")
                    .on_hover_text("Stop; the last checkpoint is kept")
                    .clicked()
                {
                    self.paused = false;
                    command = Some(Command::CancelTraining);
                }
            } else if ui
                .add_enabled(model_dir.is_some(), egui::Button::new("Start training"))
                .on_hover_text("Train in the background; the viewer stays responsive")
                .clicked()
                && let Some(dir) = model_dir
            {
                let name = self.folder.trim().to_string();
                let parent = self.destination(dir);
                if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                    self.message = "the folder must be a plain name".into();
                } else if self.method == TrainMethod::Warped && self.k < 2 {
                    self.message = "WarpedSpace needs K of at least 2 paths".into();
                } else if let Some(parent) = parent {
                    let job = self.job(dir, parent.join(&name));
                    self.history.clear();
                    self.running = true;
                    self.ended = None;
                    self.message = "starting…".into();
                    command = Some(Command::Train(Box::new(job)));
                } else {
                    self.message = "no data folder is known (HOME and LATENTFLOW_DATA_DIR are \
                                    not set): tick \"in the model folder\""
                        .into();
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("No training:");
            for method in [
                DirectionMethod::Sefa,
                DirectionMethod::Ganspace,
                DirectionMethod::DpLase,
            ] {
                let (label, hover) = match method {
                    DirectionMethod::Sefa => (
                        "Fit SeFa",
                        "K directions in closed form: the eigenvectors of the generator's \
                         first layer (well under a second); saved as directions-sefa where \
                         trained sets go",
                    ),
                    DirectionMethod::DpLase => (
                        "Fit DP-LaSE",
                        "K directions learned to change the first layer's activations most, \
                         decorrelated and orthonormal (a few seconds of Adam); saved as \
                         directions-dplase where trained sets go",
                    ),
                    DirectionMethod::Ganspace => (
                        "Fit GANSpace",
                        "K directions in closed form: principal components of the first \
                         layer's activations over 5,000 prior codes; saved as \
                         directions-ganspace where trained sets go",
                    ),
                };
                if ui
                    .add_enabled(model_dir.is_some(), egui::Button::new(label))
                    .on_hover_text(hover)
                    .clicked()
                    && let Some(dir) = model_dir
                {
                    match self.destination(dir) {
                        Some(parent) => {
                            let mut cfg = FitConfig::new(method, self.k);
                            let mut folder = format!("directions-{}", method.name());
                            if method == DirectionMethod::DpLase && self.subspaces > 0 {
                                cfg.subspaces = self.subspaces;
                                cfg.subspace = self.subspace;
                                folder = format!(
                                    "{folder}-subspace-{}-of-{}",
                                    self.subspace, self.subspaces
                                );
                            }
                            let out = parent.join(folder);
                            self.message = format!("fitting {}…", method.name());
                            command = Some(Command::FitDirections(cfg, out));
                        }
                        None => {
                            self.message = "no data folder is known (HOME and \
                                            LATENTFLOW_DATA_DIR are not set): tick \"in the \
                                            model folder\""
                                .into();
                        }
                    }
                }
            }
        });
        if ui
            .add_enabled(model_dir.is_some(), egui::Button::new("Fit data density"))
            .on_hover_text(
                "DP-LaSE's density model of the data's codes (a VAE's encoded dataset images; \
                 about 30 s): walks with \"Keep density\" + \"of the data\" then keep it; saved \
                 as density where trained sets go",
            )
            .clicked()
            && let Some(dir) = model_dir
        {
            match self.destination(dir) {
                Some(parent) => {
                    self.message = "fitting the data's density…".into();
                    command = Some(Command::FitDensity(
                        crate::train::density::DensityFitConfig::default(),
                        parent.join("density"),
                    ));
                }
                None => {
                    self.message = "no data folder is known (HOME and LATENTFLOW_DATA_DIR are \
                                    not set): tick \"in the model folder\""
                        .into();
                }
            }
        }
        ui.horizontal(|ui| {
            ui.label("DP-LaSE subspaces");
            ui.add(egui::DragValue::new(&mut self.subspaces).range(0..=16))
                .on_hover_text(
                    "Group the first layer's channels into this many subspaces (self-expression \
                     and spectral clustering) and confine DP-LaSE's edit to one; 0: no \
                     refinement",
                );
            ui.add_enabled_ui(self.subspaces > 0, |ui| {
                ui.label("edit in");
                let last = self.subspaces.saturating_sub(1);
                self.subspace = self.subspace.min(last);
                ui.add(egui::DragValue::new(&mut self.subspace).range(0..=last))
                    .on_hover_text("The subspace DP-LaSE's directions may change");
            });
        });
        let (it, total) = self.position;
        if total > 0 {
            let frac = it as f32 / total as f32;
            ui.add(egui::ProgressBar::new(frac).text(self.progress_text()));
        }
        if !self.message.is_empty() {
            ui.label(&self.message);
        }
        if !self.history.is_empty() {
            let names: Vec<&str> = self.history[0]
                .1
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !["wave_speed", "gamma", "time"].contains(n) && !is_diagnostic(n))
                .collect();
            Plot::new("loss-plot")
                .height(150.0)
                .legend(Legend::default())
                .allow_scroll(false)
                .show(ui, |plot| {
                    for name in &names {
                        let points: PlotPoints = self
                            .history
                            .iter()
                            .filter_map(|(it, v)| {
                                v.iter()
                                    .find(|(n, _)| n == name)
                                    .map(|(_, x)| [*it as f64, *x])
                            })
                            .collect();
                        plot.line(Line::new(name.to_string(), points));
                    }
                });
        }
        if let Some(m) = self.cosines() {
            let max = m
                .iter()
                .enumerate()
                .flat_map(|(i, row)| row.iter().enumerate().filter(move |(j, _)| *j != i))
                .map(|(_, c)| c.abs())
                .fold(0.0, f64::max);
            ui.label(format!(
                "Cosines between the potentials' mean displacements (largest |cos| {max:.2})"
            ))
            .on_hover_text(
                "Off-diagonal cells near ±1 (deep red or blue) mean two potentials \
                     move along one axis: the set has collapsed",
            );
            cosine_heat_map(ui, &m);
        }
        command
    }

    /// The job the panel's settings describe, training on the model in `dir` into `out`.
    fn job(&self, dir: &Path, out: std::path::PathBuf) -> TrainJob {
        let command = format!("latentflow app (training panel), out {}", out.display());
        if self.method == TrainMethod::FlowVae {
            // The dataset and the VAE are the loaded model's (the worker sets `init`).
            let mut cfg = FlowVaeTrainConfig::new("", out);
            cfg.init = Some(dir.to_path_buf());
            cfg.supervision = if self.weak {
                crate::models::flow_vae::Supervision::Weak
            } else {
                crate::models::flow_vae::Supervision::Full
            };
            cfg.steps = self.steps;
            cfg.iters = self.iters;
            cfg.batch_size = self.batch;
            cfg.lr = self.lr;
            cfg.vae_lr = if self.freeze_vae { 0.0 } else { 0.3 * self.lr };
            cfg.checkpoint_every = defaults::PANEL_CHECKPOINT_EVERY;
            cfg.log_every = defaults::PANEL_LOG_EVERY;
            cfg.command = command;
            return TrainJob::FlowVae(cfg);
        }
        if self.method == TrainMethod::Ode {
            let mut cfg = OdeTrainConfig::new(dir.to_path_buf(), out);
            cfg.depth = self.depth;
            cfg.iters = self.iters;
            cfg.batch_size = self.batch;
            cfg.lr = self.lr;
            cfg.w_keep = self.w_keep;
            cfg.checkpoint_every = defaults::PANEL_CHECKPOINT_EVERY;
            cfg.log_every = defaults::PANEL_LOG_EVERY;
            cfg.command = command;
            return TrainJob::Ode(cfg);
        }
        if self.method == TrainMethod::Warped {
            let mut cfg = WarpedTrainConfig::new(dir.to_path_buf(), out);
            cfg.k = self.k;
            cfg.dipoles = self.dipoles;
            cfg.iters = self.iters;
            cfg.batch_size = self.batch;
            cfg.lr = self.lr;
            cfg.w_shift = self.w_shift;
            cfg.checkpoint_every = defaults::PANEL_CHECKPOINT_EVERY;
            cfg.log_every = defaults::PANEL_LOG_EVERY;
            cfg.command = command;
            return TrainJob::Warped(cfg);
        }
        let mut cfg = PotentialTrainConfig::new(dir.to_path_buf(), out);
        cfg.kind = if self.method == TrainMethod::Linear {
            crate::models::potential::PotentialKind::Linear
        } else {
            crate::models::potential::PotentialKind::Pde
        };
        cfg.k = self.k;
        cfg.steps = self.steps;
        cfg.iters = self.iters;
        cfg.batch_size = self.batch;
        cfg.lr = self.lr;
        cfg.weights = self.weights;
        cfg.log_jacobian = self.log_jacobian;
        cfg.checkpoint_every = defaults::PANEL_CHECKPOINT_EVERY;
        cfg.log_every = defaults::PANEL_LOG_EVERY;
        cfg.command = command;
        TrainJob::Potentials(cfg)
    }

    /// The newest K×K cosine matrix in the history (see
    /// [`crate::train::potentials::cosine_matrix`]).
    pub fn cosines(&self) -> Option<Vec<Vec<f64>>> {
        self.history
            .iter()
            .rev()
            .find_map(|(_, v)| cosine_matrix(v))
    }
}

/// The colour of a cosine: white at 0, red towards +1, blue towards −1.
pub fn cosine_colour(c: f64) -> egui::Color32 {
    let a = c.abs().clamp(0.0, 1.0) as f32;
    let fade = |full: u8| (255.0 + (f32::from(full) - 255.0) * a).round() as u8;
    if c >= 0.0 {
        egui::Color32::from_rgb(fade(200), fade(30), fade(40))
    } else {
        egui::Color32::from_rgb(fade(30), fade(80), fade(200))
    }
}

/// A small heat map of a K×K cosine matrix, the value in each cell on hover.
fn cosine_heat_map(ui: &mut egui::Ui, m: &[Vec<f64>]) {
    let k = m.len();
    let cell = (160.0 / k.max(1) as f32).clamp(8.0, 24.0);
    let label = 14.0;
    let side = label + cell * k as f32;
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let font = egui::FontId::monospace(10.0);
    let text = ui.visuals().text_color();
    for (i, row) in m.iter().enumerate() {
        let at = rect.min + egui::vec2(label + cell * (i as f32 + 0.5), label * 0.5);
        painter.text(at, egui::Align2::CENTER_CENTER, i, font.clone(), text);
        let at = rect.min + egui::vec2(label * 0.5, label + cell * (i as f32 + 0.5));
        painter.text(at, egui::Align2::CENTER_CENTER, i, font.clone(), text);
        for (j, c) in row.iter().enumerate() {
            let min = rect.min + egui::vec2(label + cell * j as f32, label + cell * i as f32);
            let r = egui::Rect::from_min_size(min, egui::vec2(cell, cell)).shrink(0.5);
            painter.rect_filled(r, 0.0, cosine_colour(*c));
        }
    }
    if let Some(pos) = response.hover_pos() {
        let (x, y) = ((pos - rect.min - egui::vec2(label, label)) / cell).into();
        if x >= 0.0 && y >= 0.0 && (x as usize) < k && (y as usize) < k {
            let (i, j) = (y as usize, x as usize);
            response.on_hover_text(format!("cos(m_{i}, m_{j}) = {:+.2}", m[i][j]));
        }
    }
}
