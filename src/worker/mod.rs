//! The background worker: a thread that owns the compute device and the models, takes
//! [`Command`]s from the UI and answers with [`Event`]s. Render requests are coalesced
//! (only the newest pending one is served) and tagged with a generation number so the UI
//! can drop stale results. The UI thread never runs a network.

use crate::data::Image;
use crate::models::{Generator, images::to_images, sample_latents};
use crate::store::{LoadedGenerator, load_generator};
use crossbeam_channel::{Receiver, Sender, unbounded};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// What the UI asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Load the model folder (the previous model stays if this fails).
    LoadModel(PathBuf),
    /// Decode `n` prior samples drawn with `seed`.
    Sample {
        generation: u64,
        seed: u64,
        n: usize,
    },
    /// Stop the thread.
    Shutdown,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A model was loaded.
    ModelLoaded { dir: PathBuf, description: String },
    /// Decoded samples for the request tagged `generation`.
    Samples {
        generation: u64,
        images: Vec<Image>,
        decode_ms: f64,
    },
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
    /// Starts the worker; `notify` is called after every event (the app passes
    /// `request_repaint`).
    pub fn spawn(notify: impl Fn() + Send + 'static) -> Self {
        let (tx, cmd_rx) = unbounded();
        let (ev_tx, rx) = unbounded();
        let handle = std::thread::Builder::new()
            .name("latentflow-worker".into())
            .spawn(move || run(cmd_rx, ev_tx, notify))
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

    /// Whether the thread is still running.
    pub fn is_alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

fn describe(g: &LoadedGenerator) -> String {
    let c = &g.config;
    let data = g.manifest.dataset.as_deref().unwrap_or("unknown data");
    format!(
        "{:?} on {data}, latent {}, {}×{}×{}",
        c.kind, c.latent, c.channels, c.image_size, c.image_size
    )
}

fn run(rx: Receiver<Command>, tx: Sender<Event>, notify: impl Fn()) {
    let device = candle_core::Device::Cpu;
    let mut model: Option<LoadedGenerator> = None;
    let send = |e: Event| {
        let _ = tx.send(e);
        notify();
    };
    while let Ok(first) = rx.recv() {
        // Coalesce: of several pending sample requests only the newest is served.
        let mut pending = vec![first];
        pending.extend(rx.try_iter());
        let newest_sample = pending
            .iter()
            .rposition(|c| matches!(c, Command::Sample { .. }));
        for (i, cmd) in pending.into_iter().enumerate() {
            match cmd {
                Command::Shutdown => return,
                Command::LoadModel(dir) => match load_generator(&dir, &device) {
                    Ok(g) => {
                        send(Event::ModelLoaded {
                            dir,
                            description: describe(&g),
                        });
                        model = Some(g);
                    }
                    Err(e) => send(Event::Error(format!("could not load the model: {e}"))),
                },
                Command::Sample {
                    generation,
                    seed,
                    n,
                } if Some(i) == newest_sample => {
                    let Some(g) = &model else {
                        send(Event::Error("no model is loaded".into()));
                        continue;
                    };
                    let t = Instant::now();
                    let result = (|| {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        let dim = g.model.latent_dim();
                        let z = sample_latents(g.model.prior(), n, dim, &mut rng, &device)?;
                        to_images(&g.model.decode(&z)?)
                    })();
                    match result {
                        Ok(images) => send(Event::Samples {
                            generation,
                            images,
                            decode_ms: t.elapsed().as_secs_f64() * 1e3,
                        }),
                        Err(e) => send(Event::Error(format!("decoding failed: {e}"))),
                    }
                }
                Command::Sample { .. } => {}
            }
        }
    }
}
