//! The real app, driven headlessly through egui_kittest and rendered by wgpu (llvmpipe on
//! machines without a GPU): frames arrive, sliders move the image, switching and the
//! method's sliders are there, the training panel gains loss points and cancels, and a
//! corrupt model folder shows an error while the previous model keeps working.

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use latentflow::app::App;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn model() -> &'static Path {
    common::tiny_model()
}

fn harness(dir: &Path) -> Harness<'static, App> {
    let app = App::new(&egui::Context::default(), dir.to_path_buf());
    Harness::builder()
        .with_size(egui::vec2(1280.0, 860.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut App| app.frame_ui(ui), app)
}

/// Steps the UI until `done` holds (the worker answers asynchronously).
fn step_until(h: &mut Harness<'_, App>, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} {:?} (training: {})",
            h.state().status,
            h.state().notices.items(),
            h.state().training_message()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

fn generation(app: &App) -> u64 {
    app.frame.as_ref().map_or(0, |f| f.generation)
}

fn max_diff(a: &latentflow::data::Image, b: &latentflow::data::Image) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn sliders_superpose_switch_and_snapshot() {
    let mut h = harness(model());
    step_until(&mut h, "the first frame", |a| {
        a.frame.is_some() && !a.methods.is_empty()
    });
    // One labelled slider per potential, plus the switching control.
    for k in 0..3 {
        let label = format!("{k}: potential {k}");
        assert!(h.query_all_by_label(&label).next().is_some(), "{label}");
    }
    h.get_by_label("Switch");
    let still = h.state().frame.clone().unwrap();

    h.state_mut().state.sliders[1] = 2.5;
    let g = generation(h.state());
    step_until(&mut h, "a moved frame", |a| generation(a) > g);
    let moved = h.state().frame.clone().unwrap();
    assert!(
        max_diff(&moved.current, &still.current) > 0.0,
        "the slider moved the image"
    );
    assert_eq!(moved.strip.len(), 4);
    // The plot's points sit at their own times: the shortened last step ends at t = 2.5.
    let times: Vec<f64> = moved.records.iter().map(|r| r.t).collect();
    assert_eq!(times, [0.0, 1.0, 2.0, 2.5]);

    h.state_mut().state.sliders[2] = -1.5;
    let g = generation(h.state());
    step_until(&mut h, "a superposed frame", |a| generation(a) > g);
    let both = h.state().frame.clone().unwrap();
    assert!(
        max_diff(&both.current, &moved.current) > 0.0,
        "two sliders superpose"
    );

    h.get_by_label("Switch").click_accesskit();
    let g = generation(h.state());
    step_until(&mut h, "a switched frame", |a| generation(a) > g);
    assert!(h.state().state.switch_on);
    let switched = h.state().frame.clone().unwrap();
    assert!(
        max_diff(&switched.current, &both.current) > 0.0,
        "switching changes the path"
    );

    // Reset through the UI brings back the start image.
    h.get_by_label("Reset").click_accesskit();
    let g = generation(h.state());
    step_until(&mut h, "the reset frame", |a| generation(a) > g);
    assert!(h.state().state.sliders.iter().all(|t| *t == 0.0));
    assert!(max_diff(&h.state().frame.as_ref().unwrap().current, &still.current) < 1e-5);

    h.state_mut().state.sliders[0] = 3.0;
    let g = generation(h.state());
    step_until(&mut h, "the snapshot frame", |a| generation(a) > g);
    // The landscape: evaluated by the WGSL shader (llvmpipe here) and drawn with the path.
    h.get_by_label("Show landscape").click_accesskit();
    step_until(&mut h, "the landscape", |a| a.landscape.frame.is_some());
    let f = h.state().landscape.frame.as_ref().unwrap();
    assert_eq!(f.values.len(), f.n * f.n);
    assert_eq!(f.path.len(), 4);
    // The status bar shows timings, which differ between runs: allow those pixels.
    let opts = SnapshotOptions::default().max_failed_pixels(4000);
    h.snapshot_options("main_window", &opts);

    // ←/→ step one unit of time without playing: the slider at 3 shows t = 2, held.
    h.key_press(egui::Key::ArrowLeft);
    let g = generation(h.state());
    step_until(&mut h, "the stepped frame", |a| generation(a) > g);
    assert!(!h.state().playback.playing);
    let times: Vec<f64> = h
        .state()
        .frame
        .as_ref()
        .unwrap()
        .records
        .iter()
        .map(|r| r.t)
        .collect();
    assert_eq!(times, [0.0, 1.0, 2.0]);
    // Space plays, and space again pauses on the frame it reached.
    h.key_press(egui::Key::Space);
    h.step();
    assert!(h.state().playback.playing);
    h.key_press(egui::Key::Space);
    h.step();
    let held = h.state().playback;
    assert!(!held.playing && held.phase.is_some());
    for _ in 0..3 {
        h.step();
    }
    assert_eq!(h.state().playback, held);
}

/// The app on `dir`, ready for the training panel: new sets go into the model folder
/// (by default they go to the user's data folder; tests keep their own), and the first
/// frame is in — it adds a line to the side panel, which would renumber the widgets after
/// it between a query and a click.
fn panel_harness(dir: &Path) -> Harness<'static, App> {
    let mut h = harness(dir);
    h.state_mut().train_in_model_folder(true);
    step_until(&mut h, "the model and its first frame", |a| {
        a.model_dir.is_some() && a.frame.is_some()
    });
    h
}

#[test]
fn training_panel_gains_points_and_cancels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    let mut h = panel_harness(&dir);
    h.get_by_label("Start training").click_accesskit();
    step_until(&mut h, "loss points", |a| a.training_history_len() >= 2);
    // The diversity heat map: a K×K symmetric matrix of cosines with a unit diagonal.
    let m = h.state().training_cosines().expect("cosines are logged");
    assert_eq!(m.len(), 6, "the panel trains K = 6 potentials");
    for (i, row) in m.iter().enumerate() {
        assert_eq!(row[i], 1.0);
        for (j, c) in row.iter().enumerate() {
            assert!(
                c.abs() <= 1.0 + 1e-9 && (c - m[j][i]).abs() < 1e-12,
                "{m:?}"
            );
        }
    }
    assert!(m.iter().flatten().any(|c| c.abs() < 1.0), "{m:?}");
    h.get_by_label_contains("mean displacements");
    // Pause: no new points arrive while paused; resume continues.
    h.get_by_label("Pause").click_accesskit();
    h.step();
    std::thread::sleep(Duration::from_millis(300));
    h.step();
    let paused_at = h.state().training_history_len();
    std::thread::sleep(Duration::from_millis(500));
    h.step();
    assert_eq!(
        h.state().training_history_len(),
        paused_at,
        "no progress while paused"
    );
    h.get_by_label("Resume").click_accesskit();
    step_until(&mut h, "progress after resuming", |a| {
        a.training_history_len() > paused_at
    });
    h.get_by_label("Cancel").click_accesskit();
    // A cancel is said in the status line, not as an error, and the bar shows no ETA.
    step_until(&mut h, "the cancel", |a| a.status.contains("cancelled"));
    assert!(!h.state().notices.contains("cancelled"));
    let bar = h.state().training_progress_text();
    assert!(bar.ends_with("cancelled") && !bar.contains("ETA"), "{bar}");
    // The checkpoint becomes a method with sliders.
    step_until(&mut h, "the new potentials", |a| !a.methods.is_empty());
    assert!(h.state().methods[0].dir.ends_with("potentials-new"));
}

#[test]
fn the_training_panel_trains_warpedspace_paths_that_become_sliders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    let mut h = panel_harness(&dir);
    h.get_by_label("WarpedSpace").click_accesskit();
    h.step();
    // WarpedSpace's own settings replace the PDE weights.
    h.get_by_label("dipoles");
    assert!(h.query_by_label("w_f").is_none());
    h.get_by_label("Start training").click_accesskit();
    step_until(&mut h, "loss points", |a| a.training_history_len() >= 2);
    let m = h.state().training_cosines().expect("cosines are logged");
    assert_eq!(m.len(), 6, "the panel trains K = 6 paths");
    h.get_by_label("Cancel").click_accesskit();
    step_until(&mut h, "the cancel", |a| a.status.contains("cancelled"));
    step_until(&mut h, "the new paths", |a| {
        a.methods.iter().any(|m| m.method == "warped")
    });
    let warped = h.state().methods[0].clone();
    assert!(warped.dir.ends_with("warped-new"), "{:?}", warped.dir);
    assert_eq!(warped.names[0], "path 0");
    assert!(!warped.has_potentials);
    // Its sliders move the picture.
    h.state_mut().state.sliders[0] = 2.0;
    // The frame of this walk (a frame of the reloaded model at z_0 may come first).
    step_until(&mut h, "a frame along path 0", |a| {
        a.frame.as_ref().is_some_and(|f| f.records.len() == 3)
    });
    let frame = h.state().frame.as_ref().unwrap();
    assert!(frame.records[2].get("u").is_some());
}

#[test]
fn the_training_panel_trains_neuralode_fields_named_after_the_factors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    // A tiny factor regressor beside the model, said to read two factors well (a
    // two-iteration regressor reads none: the panel edits the well-read ones).
    let regressor = tmp.path().join("scenes-factors");
    common::ok(&[
        "train-factors",
        "--dataset",
        "scenes",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--out",
        common::s(&regressor),
    ]);
    let path = regressor.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (name, acc) in m["metrics"].as_object_mut().unwrap() {
        *acc = serde_json::json!(if ["acc_wall_hue", "acc_scale"].contains(&name.as_str()) {
            1.0
        } else {
            0.1
        });
    }
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let mut h = panel_harness(&dir);
    h.get_by_label("NeuralODE").click_accesskit();
    h.step();
    h.get_by_label("depth");
    h.get_by_label("Start training").click_accesskit();
    step_until(&mut h, "loss points", |a| a.training_history_len() >= 2);
    h.get_by_label("Cancel").click_accesskit();
    step_until(&mut h, "the cancel", |a| a.status.contains("cancelled"));
    step_until(&mut h, "the new fields", |a| {
        a.methods.iter().any(|m| m.method == "ode")
    });
    let ode = h.state().methods[0].clone();
    assert!(ode.dir.ends_with("ode-new"), "{:?}", ode.dir);
    assert_eq!(ode.names, vec!["wall_hue".to_string(), "scale".to_string()]);
    h.state_mut().state.sliders[1] = -1.5;
    step_until(&mut h, "a frame along the scale field", |a| {
        a.frame.as_ref().is_some_and(|f| f.records.len() == 3)
    });
    let frame = h.state().frame.as_ref().unwrap();
    assert!(frame.records[1].get("ode_speed").is_some());
}

#[test]
fn keep_density_of_the_data_walks_under_the_fitted_density_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    for args in [
        vec![
            "fit-directions",
            "--method",
            "sefa",
            "--k",
            "2",
            "--generator",
        ],
        vec![
            "fit-density",
            "--samples",
            "32",
            "--iters",
            "5",
            "--correction-iters",
            "2",
            "--model",
        ],
    ] {
        let mut args = args;
        args.push(common::s(&dir));
        common::ok(&args);
    }
    let mut h = harness(&dir);
    step_until(&mut h, "the model", |a| a.has_density && a.frame.is_some());
    h.get_by_label("of the data");
    // The panel refits it (into the model folder here) and the model reloads with it.
    h.state_mut().train_in_model_folder(true);
    h.get_by_label("Fit data density").click_accesskit();
    step_until(&mut h, "the refit", |a| {
        a.status.contains("density of the data fitted")
    });
    let manifest = std::fs::read_to_string(dir.join("density/manifest.json")).unwrap();
    assert!(manifest.contains("training panel"), "{manifest}");
    h.state_mut().state.preserve_density = true;
    h.state_mut().state.data_density = true;
    h.state_mut().state.sliders[1] = 2.0;
    step_until(&mut h, "a frame under the data's density", |a| {
        a.frame.as_ref().is_some_and(|f| f.records.len() == 3)
    });
    let frame = h.state().frame.as_ref().unwrap();
    let logp = frame.records[2].get("log_density").unwrap()[0];
    assert!(logp.is_finite());
    assert!(!h.state().notices.contains("no density model"));
}

#[test]
fn the_training_panel_fits_closed_form_directions_that_appear_as_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    let mut h = panel_harness(&dir);
    h.get_by_label("Fit SeFa").click_accesskit();
    step_until(&mut h, "the SeFa set", |a| {
        a.methods.iter().any(|m| m.method == "sefa")
    });
    let sefa = h
        .state()
        .methods
        .iter()
        .find(|m| m.method == "sefa")
        .unwrap()
        .clone();
    assert!(sefa.dir.ends_with("directions-sefa"));
    // The panel's K is 6; the latent space has 4 dimensions, so 4 directions.
    assert_eq!(sefa.names.len(), 4);
    assert!(dir.join("directions-sefa/strips.png").is_file());
    // DP-LaSE confined to a channel subspace gets a folder of its own.
    h.state_mut().dplase_subspaces(2, 1);
    h.step();
    h.get_by_label("Fit DP-LaSE").click_accesskit();
    step_until(&mut h, "the confined DP-LaSE set", |a| {
        a.methods
            .iter()
            .any(|m| m.dir.ends_with("directions-dplase-subspace-1-of-2"))
    });
    // A second fit into the same folder is refused, and the set is kept.
    h.get_by_label("Fit SeFa").click_accesskit();
    step_until(&mut h, "the refusal", |a| {
        a.notices.contains("already holds")
    });
    assert!(dir.join("directions-sefa/manifest.json").is_file());
}

#[test]
fn a_corrupt_model_shows_an_error_and_the_old_one_keeps_working() {
    let mut h = harness(model());
    step_until(&mut h, "the first frame", |a| a.frame.is_some());
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(model().join("manifest.json"), bad.join("manifest.json")).unwrap();
    std::fs::write(bad.join("model.safetensors"), b"not safetensors").unwrap();
    h.state_mut().open_model(bad);
    step_until(&mut h, "the error", |a| {
        a.notices.contains("model.safetensors")
    });
    h.get_by_label_contains("model.safetensors");
    h.state_mut().state.sliders[0] = 1.0;
    let g = generation(h.state());
    step_until(&mut h, "a frame from the old model", |a| generation(a) > g);
    assert_eq!(h.state().model_dir.as_deref(), Some(model()));
}

#[test]
fn a_partly_broken_model_loads_what_it_can_and_says_what_it_could_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    std::fs::create_dir(dir.join("potentials-pde")).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        let from = model().join("potentials-pde").join(f);
        std::fs::copy(from, dir.join("potentials-pde").join(f)).unwrap();
    }
    let weights = dir.join("potentials-pde/model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let mut h = harness(&dir);
    // The generator works (a frame of z_0), the broken set is named in an error, and the
    // sliders' panel says why there are none instead of "no potentials yet".
    step_until(&mut h, "the generator's frame", |a| a.frame.is_some());
    assert!(
        h.state()
            .notices
            .contains("could not load the potentials in")
    );
    assert!(h.state().methods.is_empty());
    h.get_by_label_contains("None of this model's 1 potential sets could be loaded");

    // A folder that is not a model: the viewer says no model is loaded, not "waiting".
    let mut h = harness(&tmp.path().join("nothing"));
    step_until(&mut h, "the load error", |a| !a.is_loading());
    h.get_by_label_contains("No model is loaded: open one");
}

#[test]
fn a_direction_set_gets_sliders_and_a_step_plot_but_no_landscape() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    common::ok(&[
        "fit-directions",
        "--generator",
        common::s(&dir),
        "--method",
        "sefa",
        "--k",
        "2",
    ]);
    let mut h = harness(&dir);
    step_until(&mut h, "the first frame", |a| {
        a.frame.is_some() && !a.methods.is_empty()
    });
    assert_eq!(h.state().methods[0].method, "sefa");
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "0: direction 0");
    h.get_by_label_contains("sefa has no potential u(z, t) to draw");
    let still = h.state().frame.clone().unwrap();
    h.state_mut().state.sliders[1] = 2.0;
    step_until(&mut h, "a frame along direction 1", |a| {
        a.frame
            .as_ref()
            .is_some_and(|f| f.records.len() == 3 && f.generation > still.generation)
    });
    let f = h.state().frame.clone().unwrap();
    assert!(
        max_diff(&f.current, &still.current) > 1e-4,
        "{}",
        max_diff(&f.current, &still.current)
    );
    // The plot's series: the step length, 0.3 per step.
    assert!(
        f.records
            .iter()
            .all(|r| (r.step_norm[0] - 0.3).abs() < 1e-5 && r.series.is_empty())
    );
    h.get_by_label("|step|");
}

#[test]
fn without_a_system_dialog_the_builtin_browser_exports_restores_and_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(model());
    h.state_mut().use_builtin_file_dialogs();
    step_until(&mut h, "the first frame", |a| a.frame.is_some());
    h.state_mut().state.sliders[0] = 2.0;
    let g = generation(h.state());
    step_until(&mut h, "a moved frame", |a| generation(a) > g);

    // Export: the button opens latentflow's browser; a path is typed; Save exports.
    h.query_all_by_label("Export GIF…")
        .next()
        .unwrap()
        .click_accesskit();
    h.step();
    let gif = tmp.path().join("mine.gif");
    h.state_mut()
        .file_browser_mut()
        .expect("the browser is open")
        .path = gif.display().to_string();
    h.step();
    h.get_by_label("Save").click_accesskit();
    step_until(&mut h, "the export", |a| a.status.contains("exported"));
    assert!(gif.is_file());
    assert!(
        h.state_mut().file_browser_mut().is_none(),
        "the browser closed"
    );

    // Restore: Open model… takes the exported GIF and brings its sliders back.
    h.state_mut().state.sliders[0] = 0.0;
    h.get_by_label("Open model…").click_accesskit();
    h.step();
    h.state_mut().file_browser_mut().unwrap().path = gif.display().to_string();
    h.step();
    h.get_by_label("Open").click_accesskit();
    step_until(&mut h, "the restore", |a| a.status.contains("restored"));
    assert_eq!(h.state().state.sliders[0], 2.0);

    // Open: a model folder; Cancel closes without doing anything.
    h.get_by_label("Open model…").click_accesskit();
    h.step();
    h.get_by_label("Cancel").click_accesskit();
    h.step();
    assert!(h.state_mut().file_browser_mut().is_none());
    h.get_by_label("Open model…").click_accesskit();
    h.step();
    h.state_mut().file_browser_mut().unwrap().path = model().display().to_string();
    h.step();
    h.get_by_label("Open").click_accesskit();
    step_until(&mut h, "the model", |a| {
        a.status.starts_with("loaded") && !a.is_loading()
    });
}

#[test]
fn your_own_image_is_encoded_walked_saved_and_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(model());
    h.state_mut().use_builtin_file_dialogs();
    step_until(&mut h, "the first frame", |a| a.frame.is_some());
    let seed_start = h.state().frame.clone().unwrap().start;
    // Open image… → the browser → the shipped example image → encoded in the background.
    h.get_by_label("Open image…").click_accesskit();
    h.step();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/examples/scenes-room.png");
    h.state_mut().file_browser_mut().unwrap().path = example.display().to_string();
    h.step();
    h.get_by_label("Open").click_accesskit();
    step_until(&mut h, "the encoded image", |a| a.edited.is_some());
    let z = h
        .state()
        .state
        .start
        .clone()
        .expect("the code is the start");
    assert_eq!(z.len(), 4);
    h.get_by_label("your image");
    h.get_by_label("its reconstruction G(z0)");
    // Frames start from the code: z_0's image changes, and the sliders walk from it.
    step_until(&mut h, "a frame from the code", |a| {
        a.frame
            .as_ref()
            .is_some_and(|f| max_diff(&f.start, &seed_start) > 0.0)
    });
    h.state_mut().state.sliders[1] = 2.0;
    let g = generation(h.state());
    step_until(&mut h, "a walk from the code", |a| generation(a) > g);
    let f = h.state().frame.clone().unwrap();
    assert!(max_diff(&f.current, &f.start) > 0.0);
    // Save z… writes the code; a new seed forgets the image.
    h.get_by_label("Save z…").click_accesskit();
    h.step();
    let saved = tmp.path().join("z.json");
    h.state_mut().file_browser_mut().unwrap().path = saved.display().to_string();
    h.step();
    h.get_by_label("Save").click_accesskit();
    step_until(&mut h, "the saved code", |a| {
        a.status.contains("saved the starting code")
    });
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(doc["latent"].as_array().map(Vec::len), Some(4));
    // A bookmark keeps the code under a name.
    h.state_mut().bookmark_name = "room".into();
    h.step();
    h.get_by_label("Bookmark").click_accesskit();
    h.step();
    assert_eq!(h.state().model_bookmarks().len(), 1);
    h.get_by_label("Next >").click_accesskit();
    h.step();
    assert!(h.state().state.start.is_none() && h.state().edited.is_none());
    h.get_by_label("room").click_accesskit();
    h.step();
    assert_eq!(h.state().state.start.as_ref(), Some(&z));
    h.get_by_label("×").click_accesskit();
    h.step();
    assert!(h.state().model_bookmarks().is_empty());
    h.get_by_label("Next >").click_accesskit();
    h.step();
    assert!(h.state().state.start.is_none());
    // Reopening the saved code brings it back (no original, the reconstruction only).
    h.state_mut().open_file(&saved);
    step_until(&mut h, "the reopened code", |a| a.state.start.is_some());
    let back = h.state().state.start.clone().unwrap();
    for (a, b) in back.iter().zip(&z) {
        assert!((a - b).abs() < 1e-6);
    }
    assert!(h.state().edited.as_ref().unwrap().original.is_none());
}

/// One frame as the window runs it: the app's input hook sees the raw events first.
fn step_as_window(h: &mut Harness<'_, App>) {
    let mut raw = std::mem::take(h.input_mut());
    h.state_mut().hold_events_after_release(&mut raw);
    *h.input_mut() = raw;
    h.step();
}

#[test]
fn a_slider_released_in_a_slow_frame_keeps_the_value_where_it_was_released() {
    let mut h = harness(model());
    step_until(&mut h, "the first frame", |a| {
        a.frame.is_some() && !a.methods.is_empty()
    });
    let rail = h
        .get_by_role_and_label(egui::accesskit::Role::Slider, "0: potential 0")
        .rect();
    let y = rail.center().y;
    let at = |f: f32| rail.left() + f * rail.width();
    let button = |x: f32, pressed: bool| egui::Event::PointerButton {
        pos: egui::pos2(x, y),
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::default(),
    };
    let events = |h: &mut Harness<'_, App>, events: Vec<egui::Event>| {
        h.input_mut().events.extend(events);
        step_as_window(h);
    };
    events(
        &mut h,
        vec![egui::Event::PointerMoved(egui::pos2(at(0.5), y))],
    );
    events(&mut h, vec![button(at(0.5), true)]);
    events(
        &mut h,
        vec![egui::Event::PointerMoved(egui::pos2(at(0.7), y))],
    );
    let dragged = h.state().state.sliders[0];
    assert!(dragged > 1.0, "the drag moved the slider: {dragged}");
    // One slow frame collects the last move, the release and the pointer's way on to the
    // left edge of the window: the slider keeps the value at the release, not -T.
    events(
        &mut h,
        vec![
            egui::Event::PointerMoved(egui::pos2(at(0.8), y)),
            button(at(0.8), false),
            egui::Event::PointerMoved(egui::pos2(at(0.4), y)),
            egui::Event::PointerMoved(egui::pos2(2.0, y + 300.0)),
        ],
    );
    let released = h.state().state.sliders[0];
    assert!(released > dragged, "{released} after {dragged}");
    // The held motion arrives in the next frames and no longer moves the slider.
    for _ in 0..3 {
        step_as_window(&mut h);
    }
    assert_eq!(h.state().state.sliders[0], released);
}

#[test]
fn a_dead_worker_is_reported_and_replaced() {
    let mut h = harness(model());
    step_until(&mut h, "the first frame", |a| a.frame.is_some());
    // The worker thread ends (as after a panic): the app must say so and start a new one
    // on the last model.
    h.state()
        .send_command(latentflow::worker::Command::Shutdown);
    step_until(&mut h, "the restart message", |a| {
        a.notices.contains("restarted")
    });
    step_until(&mut h, "the model reloaded", |a| !a.methods.is_empty());
    h.state_mut().state.sliders[1] = 1.0;
    let g = generation(h.state());
    step_until(&mut h, "a frame from the new worker", |a| generation(a) > g);
}

#[test]
fn errors_stay_until_dismissed() {
    let mut h = harness(model());
    step_until(&mut h, "the first frame", |a| a.frame.is_some());
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.gif");
    std::fs::write(&garbage, b"GIF89a but not really").unwrap();
    let plain = tmp.path().join("plain.png");
    image::RgbImage::new(4, 4).save(&plain).unwrap();
    h.state_mut().restore_from(&garbage);
    h.state_mut().restore_from(&plain);
    h.state_mut().restore_from(&tmp.path().join("missing.png"));
    // A later event (the model loading again) must not hide them.
    h.state_mut().open_model(model().to_path_buf());
    step_until(&mut h, "the reload", |a| a.status.starts_with("loaded"));
    for _ in 0..5 {
        h.step();
    }
    let notices = h.state().notices.items().to_vec();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(h.state().notices.contains("garbage.gif"));
    assert!(h.state().notices.contains("holds no latentflow state"));
    assert!(h.state().notices.contains("missing.png"));
    h.get_by_label_contains("missing.png");
    h.get_all_by_label("Dismiss")
        .next()
        .unwrap()
        .click_accesskit();
    h.step();
    h.step();
    assert_eq!(h.state().notices.items().len(), 2);
    h.get_by_label("Dismiss all").click_accesskit();
    h.step();
    h.step();
    assert!(h.state().notices.items().is_empty());
}

#[test]
fn the_panel_trains_a_flow_factorized_vae_and_opens_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::generator_copy(tmp.path());
    let mut h = panel_harness(&dir);
    h.get_by_label("Flow-factorized VAE").click_accesskit();
    h.step();
    h.get_by_label("weak supervision");
    h.get_by_label("keep the VAE frozen");
    h.state_mut().training_run(2, 2);
    h.get_by_label("Start training").click_accesskit();
    // The new model opens when it is done, its potentials named after the factors.
    step_until(&mut h, "the new model", |a| {
        a.model_dir
            .as_ref()
            .is_some_and(|d| d.ends_with("ffvae-new"))
            && a.methods.first().is_some_and(|m| m.method == "ffvae")
    });
    let m = h.state().methods[0].clone();
    assert_eq!(m.names.len(), 5);
    assert_eq!(m.names[0], "floor_hue");
    h.state_mut().state.sliders[0] = 2.0;
    step_until(&mut h, "a frame along floor_hue", |a| {
        a.frame.as_ref().is_some_and(|f| f.records.len() == 3)
    });
    let frame = h.state().frame.as_ref().unwrap();
    assert!(frame.records[2].get("flow_log_density").is_some());
}
