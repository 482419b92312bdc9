//! The desktop app (eframe/egui). This first version shows samples of a model: a seed
//! field with previous/next/random, the number of samples, and "open model folder".
//! All model work happens on the [`crate::worker`] thread.

use crate::cli::AppArgs;
use crate::data::Image;
use crate::store::default_model_dir;
use crate::worker::{Command, Event, Worker};
use eframe::egui;
use std::path::PathBuf;

/// Opens the window and runs until it is closed.
pub fn run(args: AppArgs) -> anyhow::Result<()> {
    let dir = args.model.unwrap_or_else(default_model_dir);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("latentflow")
            .with_inner_size([960.0, 720.0]),
        ..Default::default()
    };
    eframe::run_native(
        "latentflow",
        options,
        Box::new(move |cc| {
            let mut app = App::new(&cc.egui_ctx, dir);
            app.screenshot = args.screenshot.map(|path| (path, 0));
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}

/// The app's state.
pub struct App {
    worker: Worker,
    model_dir: Option<PathBuf>,
    model_description: String,
    seed: u64,
    count: usize,
    generation: u64,
    shown_generation: u64,
    textures: Vec<egui::TextureHandle>,
    decode_ms: f64,
    status: String,
    /// Where to save a screenshot, and frames drawn since the images arrived.
    screenshot: Option<(PathBuf, u32)>,
    screenshot_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn to_color_image(img: &Image) -> egui::ColorImage {
    let rgb = img.to_rgb8();
    egui::ColorImage::from_rgb([img.width, img.height], rgb.as_raw())
}

impl App {
    /// A new app loading the model in `dir`.
    pub fn new(ctx: &egui::Context, dir: PathBuf) -> Self {
        let repaint = ctx.clone();
        let worker = Worker::spawn(move || repaint.request_repaint());
        worker.send(Command::LoadModel(dir));
        let mut app = Self {
            worker,
            model_dir: None,
            model_description: String::new(),
            seed: 0,
            count: 16,
            generation: 0,
            shown_generation: 0,
            textures: Vec::new(),
            decode_ms: 0.0,
            status: "loading the model…".into(),
            screenshot: None,
            screenshot_done: Default::default(),
        };
        app.request_samples();
        app
    }

    fn request_samples(&mut self) {
        self.generation += 1;
        self.worker.send(Command::Sample {
            generation: self.generation,
            seed: self.seed,
            n: self.count,
        });
    }

    fn handle_events(&mut self, ctx: &egui::Context) {
        for event in self.worker.events() {
            match event {
                Event::ModelLoaded { dir, description } => {
                    self.status = format!("loaded {}", dir.display());
                    self.model_dir = Some(dir);
                    self.model_description = description;
                    self.request_samples();
                }
                Event::Samples {
                    generation,
                    images,
                    decode_ms,
                } => {
                    if generation < self.shown_generation {
                        continue; // stale
                    }
                    self.shown_generation = generation;
                    self.decode_ms = decode_ms;
                    self.textures = images
                        .iter()
                        .enumerate()
                        .map(|(i, img)| {
                            ctx.load_texture(
                                format!("sample-{i}"),
                                to_color_image(img),
                                egui::TextureOptions::NEAREST,
                            )
                        })
                        .collect();
                }
                Event::Error(msg) => self.status = msg,
            }
        }
        if !self.worker.is_alive() {
            self.status = "the worker stopped unexpectedly".into();
        }
    }

    /// With `--screenshot`: a few frames after the images arrive, asks for a screenshot;
    /// the callback saves it and the next frame closes the window.
    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some((path, frames)) = &mut self.screenshot else {
            return;
        };
        ctx.request_repaint();
        if self.textures.is_empty() {
            return;
        }
        *frames += 1;
        if *frames == 3 {
            let path = path.clone();
            let done = self.screenshot_done.clone();
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let [w, h] = image.size;
                let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
                let saved = ::image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                    .ok_or_else(|| "bad screenshot size".to_string())
                    .and_then(|img| img.save(&path).map_err(|e| e.to_string()));
                match saved {
                    Ok(()) => eprintln!("wrote {}", path.display()),
                    Err(e) => eprintln!("error: cannot save {}: {e}", path.display()),
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                repaint.request_repaint();
            });
        }
        if self
            .screenshot_done
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let mut changed = false;
            ui.label("Seed");
            changed |= ui
                .add(egui::DragValue::new(&mut self.seed).speed(0.2))
                .on_hover_text("Seed of the latent codes")
                .changed();
            if ui.button("< Prev").on_hover_text("Previous seed").clicked() {
                self.seed = self.seed.saturating_sub(1);
                changed = true;
            }
            if ui.button("Next >").on_hover_text("Next seed").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
            if ui
                .button("Random")
                .on_hover_text("Draw a random seed")
                .clicked()
            {
                self.seed = rand::random::<u32>() as u64;
                changed = true;
            }
            ui.separator();
            ui.label("Samples");
            changed |= ui
                .add(egui::Slider::new(&mut self.count, 1..=64))
                .on_hover_text("Number of samples shown")
                .changed();
            ui.separator();
            if ui
                .button("Open model folder…")
                .on_hover_text("Load another model folder")
                .clicked()
                && let Some(dir) = rfd::FileDialog::new().pick_folder()
            {
                self.worker.send(Command::LoadModel(dir));
            }
            if changed {
                self.request_samples();
            }
        });
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.handle_events(&ctx);
        self.screenshot_step(&ctx);
        egui::Panel::top("controls").show(ui, |ui| {
            ui.add_space(4.0);
            self.controls(ui);
            ui.add_space(4.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(&self.status);
                ui.separator();
                ui.label(&self.model_description);
                ui.separator();
                ui.label(format!("decode {:.1} ms", self.decode_ms));
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if self.textures.is_empty() {
                ui.centered_and_justified(|ui| ui.label("no samples yet"));
                return;
            }
            let cols = (self.textures.len() as f32).sqrt().ceil() as usize;
            let avail = ui.available_size();
            let side = ((avail.x.min(avail.y) / cols as f32) - 4.0).max(16.0);
            egui::Grid::new("samples")
                .spacing([4.0, 4.0])
                .show(ui, |ui| {
                    for (i, tex) in self.textures.iter().enumerate() {
                        ui.image((tex.id(), egui::vec2(side, side)));
                        if (i + 1) % cols == 0 {
                            ui.end_row();
                        }
                    }
                });
        });
    }
}
