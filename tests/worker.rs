//! The worker end to end, as the app drives it: render requests and stale frames, sliders
//! that superpose, switching, a training job with progress and cancel, GIF export with the
//! embedded state, and a corrupt model that leaves the previous one working.

use latentflow::data::Image;
use latentflow::session::state::read_embedded_state;
use latentflow::session::{Frame, GifOptions, RenderRequest, Switch};
use latentflow::train::potentials::PotentialTrainConfig;
use latentflow::worker::{Command, Event, TrainingEnd, Worker};
mod common;
use common::s;
use common::wait_for;

use std::path::Path;
use std::time::{Duration, Instant};

fn model() -> &'static Path {
    common::tiny_model()
}

fn loaded_worker(dir: &Path) -> Worker {
    let w = Worker::spawn(|| {});
    w.send(Command::LoadModel(dir.to_path_buf()));
    let methods = wait_for(&w, |e| match e {
        Event::ModelLoaded { methods, .. } => Some(methods),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].names.len(), 3);
    w
}

fn request(generation: u64, sliders: &[f64]) -> RenderRequest {
    RenderRequest {
        generation,
        seed: 5,
        method: 0,
        sliders: sliders.to_vec(),
        switch: None,
        batch: 0,
        step_scale: 1.0,
        start: None,
        preserve_density: false,
        data_density: false,
    }
}

fn render(w: &Worker, req: RenderRequest) -> Frame {
    let generation = req.generation;
    w.send(Command::Render(req));
    wait_for(w, |e| match e {
        Event::Frame(f) if f.generation == generation => Some(*f),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    })
}

fn differ(a: &Image, b: &Image) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn sliders_move_superpose_and_switch() {
    let w = loaded_worker(model());
    let still = render(&w, request(1, &[0.0, 0.0, 0.0]));
    assert!(still.records.is_empty());
    assert_eq!(still.strip.len(), 1);
    let one = render(&w, request(2, &[0.0, 3.0, 0.0]));
    assert_eq!(one.strip.len(), 4);
    assert_eq!(one.records.len(), 4);
    assert!(
        differ(&one.current, &still.current) > 0.0,
        "a slider moves the image"
    );
    assert!(differ(&one.start, &still.current) < 1e-5, "z_0 stays");
    let two = render(&w, request(3, &[-2.5, 3.0, 0.0]));
    assert!(
        differ(&two.current, &one.current) > 0.0,
        "a second slider superposes"
    );
    let mut sw = request(4, &[0.0, 0.0, 0.0]);
    sw.switch = Some(Switch {
        k: 1,
        then: 2,
        at: 1,
        steps: 3,
    });
    let switched = render(&w, sw);
    assert!(
        differ(&switched.current, &one.current) > 0.0,
        "switching changes the path"
    );
    let mut batch = request(5, &[0.0, 3.0, 0.0]);
    batch.batch = 3;
    assert_eq!(render(&w, batch).batch.len(), 3);
}

#[test]
fn newest_request_wins() {
    let w = loaded_worker(model());
    for g in 1..=20 {
        w.send(Command::Render(request(g, &[0.0, g as f64 / 10.0, 0.0])));
    }
    let mut newest = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while newest < 20 && Instant::now() < deadline {
        if let Some(Event::Frame(f)) = w.recv_timeout(Duration::from_millis(100)) {
            assert!(f.generation > newest, "frames arrive in order");
            newest = f.generation;
        }
    }
    assert_eq!(newest, 20);
}

#[test]
fn corrupt_model_is_reported_and_the_previous_one_keeps_working() {
    let w = loaded_worker(model());
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(model().join("manifest.json"), bad.join("manifest.json")).unwrap();
    std::fs::write(bad.join("model.safetensors"), b"garbage").unwrap();
    w.send(Command::LoadModel(bad));
    let msg = wait_for(&w, |e| match e {
        Event::LoadFailed { error, .. } => Some(error),
        Event::ModelLoaded { .. } => panic!("a corrupt model loaded"),
        _ => None,
    });
    assert!(msg.contains("model.safetensors"), "{msg}");
    let f = render(&w, request(7, &[1.0, 0.0, 0.0]));
    assert_eq!(f.strip.len(), 2);
}

#[test]
fn a_truncated_potential_set_leaves_the_generator_and_the_other_sets_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(model().join(f), dir.join(f)).unwrap();
    }
    for set in ["potentials-a", "potentials-b"] {
        std::fs::create_dir(dir.join(set)).unwrap();
        for f in ["manifest.json", "model.safetensors"] {
            std::fs::copy(
                model().join("potentials-pde").join(f),
                dir.join(set).join(f),
            )
            .unwrap();
        }
    }
    let weights = dir.join("potentials-a/model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let w = Worker::spawn(|| {});
    w.send(Command::LoadModel(dir.clone()));
    let (methods, unusable) = wait_for(&w, |e| match e {
        Event::ModelLoaded {
            methods, unusable, ..
        } => Some((methods, unusable)),
        Event::LoadFailed { error, .. } => panic!("the whole model failed: {error}"),
        _ => None,
    });
    assert_eq!(methods.len(), 1);
    assert!(methods[0].dir.ends_with("potentials-b"));
    assert_eq!(unusable.len(), 1);
    assert!(unusable[0].0.ends_with("potentials-a"));
    assert!(
        unusable[0].1.contains("model.safetensors"),
        "{}",
        unusable[0].1
    );
    let f = render(&w, request(3, &[1.0, 0.0, 0.0]));
    assert_eq!(f.strip.len(), 2);
}

#[test]
fn gif_export_has_every_frame_and_the_state() {
    let w = loaded_worker(model());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("walk.gif");
    let opts = GifOptions {
        out: out.clone(),
        fps: 10,
        ping_pong: true,
        scale: 2,
        seeds: 4,
        state_json: format!(
            r#"{{"model":"{}","state":{}}}"#,
            s(model()),
            serde_json::to_string(&latentflow::app::AppState {
                seed: 5,
                ..Default::default()
            })
            .unwrap()
        ),
    };
    w.send(Command::ExportGif(request(1, &[0.0, 0.0, 3.0]), opts));
    let done = wait_for(&w, |e| match e {
        Event::ExportDone(r) => Some(r),
        _ => None,
    });
    assert_eq!(done.as_deref().ok(), Some(out.as_path()));
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
    let frames = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    // 4 path points, ping-pong back over the 2 inner ones.
    assert_eq!(frames.len(), 6);
    let side = 2 * (2 * 64 + 2);
    assert_eq!(frames[0].buffer().dimensions(), (side, side));
    let saved = read_embedded_state(&out).unwrap().unwrap();
    assert_eq!(saved.state.seed, 5);
}

#[test]
fn training_reports_progress_and_cancels_keeping_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(model().join(f), dir.join(f)).unwrap();
    }
    let w = Worker::spawn(|| {});
    w.send(Command::LoadModel(dir.clone()));
    wait_for(&w, |e| matches!(e, Event::ModelLoaded { .. }).then_some(()));
    let mut cfg = PotentialTrainConfig::new(dir.clone(), dir.join("potentials-ui"));
    cfg.k = 2;
    cfg.steps = 2;
    cfg.iters = 100_000;
    cfg.batch_size = 2;
    cfg.hidden = 8;
    cfg.time_dim = 4;
    cfg.log_every = 1;
    cfg.checkpoint_every = 2;
    w.send(Command::Train(Box::new(
        latentflow::train::TrainJob::Potentials(cfg),
    )));
    let mut logged = 0;
    wait_for(&w, |e| match e {
        Event::Training(latentflow::train::Progress::Iteration { losses, .. }) => {
            assert!(losses.iter().any(|(n, _)| n == "l_k"));
            logged += 1;
            (logged >= 3).then_some(())
        }
        Event::TrainingDone(r) => panic!("ended early: {r:?}"),
        _ => None,
    });
    // The viewer stays responsive while training runs.
    w.send(Command::Render(request(1, &[0.0, 0.0, 0.0])));
    w.send(Command::CancelTraining);
    let done = wait_for(&w, |e| match e {
        Event::TrainingDone(r) => Some(r),
        _ => None,
    });
    let TrainingEnd::Cancelled(msg) = done else {
        panic!("not a cancel: {done:?}")
    };
    assert!(msg.contains("checkpoint") && msg.contains("kept"), "{msg}");
    assert!(
        dir.join("potentials-ui/manifest.json").is_file(),
        "checkpoint kept"
    );
    // The new potentials are loaded as sliders.
    let methods = wait_for(&w, |e| match e {
        Event::ModelLoaded { methods, .. } => Some(methods),
        _ => None,
    });
    assert!(methods.iter().any(|m| m.dir.ends_with("potentials-ui")));
}

#[test]
fn renamed_directions_are_saved_and_reloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let pots = dir.join("potentials-pde");
    std::fs::create_dir_all(&pots).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(model().join(f), dir.join(f)).unwrap();
        std::fs::copy(model().join("potentials-pde").join(f), pots.join(f)).unwrap();
    }
    let w = loaded_worker(&dir);
    let names: Vec<String> = ["wall hue", "floor hue", "object hue"]
        .map(String::from)
        .to_vec();
    w.send(Command::RenameDirections {
        dir: pots.clone(),
        names: names[..2].to_vec(),
    });
    let e = wait_for(&w, |e| match e {
        Event::Error(m) => Some(m),
        _ => None,
    });
    assert!(e.contains("one non-empty name per direction"), "{e}");
    w.send(Command::RenameDirections {
        dir: pots.clone(),
        names: names.clone(),
    });
    // The worker confirms the save, then reloads the model with the new names.
    let saved = wait_for(&w, |e| match e {
        Event::Renamed(d) => Some(d),
        Event::ModelLoaded { .. } => panic!("reloaded before confirming"),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(saved, pots);
    let methods = wait_for(&w, |e| match e {
        Event::ModelLoaded { methods, .. } => Some(methods),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(methods[0].names, names);
    let text = std::fs::read_to_string(pots.join("manifest.json")).unwrap();
    assert!(text.contains("object hue"));
}

#[test]
fn landscape_has_the_grid_and_the_projected_path() {
    use latentflow::session::LandscapeRequest;
    let w = loaded_worker(model());
    let mut req = LandscapeRequest {
        render: request(9, &[0.0, 2.0, 0.0]),
        k: 1,
        second: None,
        extent: 2.0,
        n: 24,
    };
    w.send(Command::Landscape(req.clone()));
    let f = wait_for(&w, |e| match e {
        Event::Landscape(f) => Some(*f),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(f.values.len(), 24 * 24);
    assert!(f.values.iter().all(|v| v.is_finite()));
    assert_eq!(f.path.len(), 3);
    // The slice is centred on the end of the path.
    let (a, b) = f.path[2];
    assert!(a.abs() < 1e-4 && b.abs() < 1e-4, "{a} {b}");
    // A chosen second axis gives another slice.
    req.second = Some(2);
    req.render.generation = 10;
    w.send(Command::Landscape(req));
    let g = wait_for(&w, |e| match e {
        Event::Landscape(f) => Some(*f),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_ne!(g.values, f.values);
}

#[test]
fn a_gan_is_inverted_in_the_background_with_progress_and_can_be_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let gan = tmp.path().join("gan");
    common::tiny_gan(&gan);
    let image = tmp.path().join("g.png");
    common::ok(&[
        "sample",
        "--model",
        s(&gan),
        "--n",
        "1",
        "--seed",
        "5",
        "--out",
        s(&image),
    ]);
    let w = Worker::spawn(|| {});
    w.send(Command::LoadModel(gan.clone()));
    wait_for(&w, |e| match e {
        Event::ModelLoaded { .. } => Some(()),
        Event::Error(e) | Event::LoadFailed { error: e, .. } => panic!("{e}"),
        _ => None,
    });
    // The inversion reports its progress and ends with the code and its reconstruction.
    w.send(Command::Encode(image.clone()));
    let mut progress = Vec::new();
    let encoded = wait_for(&w, |e| match e {
        Event::EncodeProgress(f) => {
            progress.push(f);
            None
        }
        Event::Encoded(e) => Some(*e),
        Event::EncodeFailed(e) | Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert!(progress.len() > 10, "{} progress events", progress.len());
    assert!(progress.windows(2).all(|p| p[0] <= p[1]), "{progress:?}");
    assert_eq!(progress.last().copied(), Some(1.0));
    assert_eq!(encoded.latent.len(), 4);
    assert!(encoded.mse.is_some_and(f64::is_finite));
    assert!(encoded.original.is_some());
    // Cancelled during its first step (the token the worker's Cancel sets), the inversion
    // stops there with `Cancelled`, which the worker reports as "encoding … cancelled".
    let model = latentflow::session::load_model(&gan, &candle_core::Device::Cpu).unwrap();
    let token = latentflow::train::CancelToken::new();
    let mut steps = 0;
    let result = latentflow::session::encode_file(
        &model,
        &image,
        &candle_core::Device::Cpu,
        &token,
        &mut |_| {
            steps += 1;
            token.cancel();
        },
    );
    assert!(
        matches!(result, Err(latentflow::Error::Cancelled)),
        "{:?}",
        result.err()
    );
    assert_eq!(steps, 1);
}
