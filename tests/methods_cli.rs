//! Closed-form directions from the command line: `fit-directions` (SeFa, GANSpace) on a
//! VAE and a GAN, the sets opened by the method registry for `traverse`, `eval` and the
//! worker, and every bad input refused with a clear error.

mod common;
use common::wait_for;
use common::{fails, latentflow, ok, s};
use latentflow::session::RenderRequest;
use latentflow::worker::{Command, Event, Worker};
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, dest).unwrap();
        }
    }
}

/// A copy of the tiny model (with its PDE set) in its own folder: tests here add method
/// folders to it.
fn own_model(tmp: &Path) -> PathBuf {
    let dir = tmp.join("m");
    copy_dir(common::tiny_model(), &dir);
    dir
}

fn fit(model: &Path, method: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "fit-directions",
        "--generator",
        s(model),
        "--method",
        method,
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn sefa_and_ganspace_directions_are_fitted_walked_and_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let out = fit(&model, "sefa", &["--k", "3"]);
    assert!(out.contains("3 directions by sefa (eigenvalue"), "{out}");
    let out = fit(&model, "ganspace", &["--k", "2", "--samples", "500"]);
    assert!(
        out.contains("2 directions by ganspace (variance_share"),
        "{out}"
    );
    let out = fit(&model, "dplase", &["--k", "2", "--iters", "30"]);
    assert!(
        out.contains("2 directions by dplase (feature_change"),
        "{out}"
    );
    for m in ["sefa", "ganspace", "dplase"] {
        assert!(model.join(format!("directions-{m}/strips.png")).is_file());
    }
    // DP-LaSE's settings are recorded; its directions are (nearly) orthogonal.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("directions-dplase/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["training"]["settings"]["iters"], 30);
    assert_eq!(manifest["architecture"]["method"], "dplase");
    // Through the registry: traverse with the set, JSON with the step lengths only.
    let json = tmp.path().join("walk.json");
    ok(&[
        "traverse",
        "--model",
        s(&model),
        "--potentials",
        s(&model.join("directions-sefa")),
        "--k",
        "2",
        "--steps",
        "4",
        "--out",
        s(&tmp.path().join("walk.png")),
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["method"], "sefa");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for p in steps {
        // The default step length is 0.3.
        assert!((p["step_norm"].as_f64().unwrap() - 0.3).abs() < 1e-5, "{p}");
        assert!(p.get("u").is_none(), "{p}");
    }
    // Eval: SeFa's directions are orthonormal, so their displacements do not share an axis.
    let line = ok(&[
        "eval",
        "diversity",
        "--model",
        s(&model),
        "--potentials",
        s(&model.join("directions-sefa")),
        "--codes",
        "8",
        "--steps",
        "3",
    ]);
    let d: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert!(d["max_abs_cosine"].as_f64().unwrap() < 1e-4, "{d}");
    assert!(d["wave_speeds"].is_null());
    // The default method is still the PDE set.
    let out = latentflow(&[
        "traverse",
        "--model",
        s(&model),
        "--k",
        "0",
        "--steps",
        "2",
        "--out",
        s(&tmp.path().join("default.png")),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("potentials-pde"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_gan_first_layer_is_read_from_its_transposed_convolution_and_batch_norm() {
    let tmp = tempfile::tempdir().unwrap();
    let gan = tmp.path().join("gan");
    common::tiny_gan(&gan);
    for method in ["sefa", "ganspace"] {
        let out = fit(&gan, method, &["--k", "4", "--samples", "400"]);
        assert!(out.contains(&format!("4 directions by {method}")), "{out}");
    }
}

#[test]
fn bad_fits_and_bad_sets_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let g = s(&model);
    let e = fails(&["fit-directions", "--generator", g, "--method", "pca"]);
    assert!(e.contains("unknown direction method 'pca'"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "5",
    ]);
    assert!(e.contains("the number of directions"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "0",
    ]);
    assert!(e.contains("between 1 and 4"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "2",
        "--step=-1",
    ]);
    assert!(e.contains("positive"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "ganspace",
        "--k",
        "2",
        "--samples",
        "3",
    ]);
    assert!(e.contains("at least"), "{e}");
    // A folder that is not a direction set is never written into; a set needs --force.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "2",
        "--out",
        s(&mine),
    ]);
    assert!(e.contains("not a direction set"), "{e}");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );
    fit(&model, "sefa", &["--k", "2"]);
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "2",
    ]);
    assert!(e.contains("--force"), "{e}");
    fit(&model, "sefa", &["--force", "--k", "2"]);
    // A set fitted on other weights is refused by the registry.
    let other = tmp.path().join("other");
    ok(&[
        "train-generator",
        "--dataset",
        "scenes",
        "--latent",
        "4",
        "--base",
        "8",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--seed",
        "9",
        "--out",
        s(&other),
    ]);
    let e = fails(&[
        "traverse",
        "--model",
        s(&other),
        "--potentials",
        s(&model.join("directions-sefa")),
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains("other weights"), "{e}");
    // A folder that is not a method at all.
    let e = fails(&[
        "traverse",
        "--model",
        g,
        "--potentials",
        g,
        "--out",
        s(&tmp.path().join("y.png")),
    ]);
    assert!(e.contains("not a traversal method"), "{e}");
    // A corrupt set: the tensor's shape disagrees with the manifest's K.
    let set = model.join("directions-sefa");
    let manifest = std::fs::read_to_string(set.join("manifest.json")).unwrap();
    std::fs::write(
        set.join("manifest.json"),
        manifest.replace("\"k\": 2", "\"k\": 3"),
    )
    .unwrap();
    let e = fails(&[
        "traverse",
        "--model",
        g,
        "--potentials",
        s(&set),
        "--out",
        s(&tmp.path().join("z.png")),
    ]);
    assert!(e.contains("shape"), "{e}");
}

#[test]
fn the_worker_lists_a_direction_set_after_the_pde_set_renders_it_and_has_no_landscape_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    fit(&model, "sefa", &["--k", "2"]);
    let w = Worker::spawn(|| {});
    w.send(Command::LoadModel(model.clone()));
    let methods = wait_for(&w, |e| match e {
        Event::ModelLoaded { methods, .. } => Some(methods),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    let kinds: Vec<(&str, bool)> = methods
        .iter()
        .map(|m| (m.method.as_str(), m.has_potentials))
        .collect();
    assert_eq!(kinds, [("pde", true), ("sefa", false)]);
    assert_eq!(methods[1].names, ["direction 0", "direction 1"]);
    let req = RenderRequest {
        generation: 1,
        seed: 3,
        method: 1,
        sliders: vec![2.5, 0.0],
        switch: None,
        batch: 0,
        step_scale: 1.0,
        start: None,
        preserve_density: false,
        data_density: false,
    };
    w.send(Command::Render(req.clone()));
    let frame = wait_for(&w, |e| match e {
        Event::Frame(f) if f.generation == 1 => Some(*f),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    let lengths: Vec<f32> = frame.records.iter().map(|r| r.step_norm[0]).collect();
    let want = [0.3, 0.3, 0.15, 0.15];
    assert!(
        lengths.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5),
        "{lengths:?}"
    );
    w.send(Command::Landscape(latentflow::session::LandscapeRequest {
        render: req,
        k: 0,
        second: None,
        extent: 1.0,
        n: 8,
    }));
    let e = wait_for(&w, |e| match e {
        Event::Error(e) => Some(e),
        Event::Landscape(_) => panic!("a landscape of fixed directions"),
        _ => None,
    });
    assert!(e.contains("needs potentials"), "{e}");
    // Renaming works for direction sets too.
    w.send(Command::RenameDirections {
        dir: methods[1].dir.clone(),
        names: vec!["floor".into(), "wall".into()],
    });
    let renamed = wait_for(&w, |e| match e {
        Event::ModelLoaded { methods, .. } => Some(methods),
        Event::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(renamed[1].names, ["floor", "wall"]);
}

#[test]
fn eval_compare_scores_every_method_by_one_protocol_and_writes_its_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    fit(&model, "sefa", &["--k", "3"]);
    let md = tmp.path().join("table.md");
    let csv = tmp.path().join("rows.csv");
    let quick = [
        "--pairs", "60", "--epochs", "1", "--codes", "8", "--steps", "3",
    ];
    let mut args = vec![
        "eval",
        "compare",
        "--model",
        s(&model),
        "--markdown",
        s(&md),
        "--csv",
        s(&csv),
    ];
    args.extend_from_slice(&quick);
    let table = ok(&args);
    // Every method of the model (PDE first, as the app lists them), no regressor here.
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[2].starts_with("| pde | 1 | "), "{table}");
    assert!(lines[3].starts_with("| sefa | 1 | "), "{table}");
    assert!(lines[3].ends_with("| – | – |"), "{table}");
    let written = std::fs::read_to_string(&md).unwrap();
    assert!(
        written.starts_with("<!-- written by latentflow -->\n| method |"),
        "{written}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 4, "{rows}");
    assert!(rows.lines().nth(1).unwrap().starts_with("method,dir,k,vp"));
    // Its own files are replaced only with --force; a file it did not write, never.
    let e = fails(&args);
    assert!(e.contains("exists; pass --force"), "{e}");
    args.push("--force");
    ok(&args);
    std::fs::write(&md, "my notes").unwrap();
    let e = fails(&args);
    assert!(e.contains("--markdown"), "{e}");
    assert_eq!(std::fs::read_to_string(&md).unwrap(), "my notes");
    // Two folders of one method are summarised as mean ± std.
    let again = tmp.path().join("sefa-again");
    fit(&model, "sefa", &["--k", "3", "--out", s(&again)]);
    let mut args = vec!["eval", "compare", "--model", s(&model), "--methods"];
    let both = format!("{},{}", s(&model.join("directions-sefa")), s(&again));
    args.push(&both);
    args.extend_from_slice(&quick);
    let table = ok(&args);
    assert!(table.contains("| sefa | 2 | "), "{table}");
    assert!(table.contains(" ± "), "{table}");
    // A model without methods, and a folder that is not one, are refused.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(model.join(f), bare.join(f)).unwrap();
    }
    let e = fails(&["eval", "compare", "--model", s(&bare)]);
    assert!(e.contains("no methods to compare"), "{e}");
    let e = fails(&[
        "eval",
        "compare",
        "--model",
        s(&model),
        "--methods",
        s(&bare),
    ]);
    assert!(e.contains("not a traversal method"), "{e}");
    // With a factor regressor: the factor score and the C/D curves fill their columns;
    // --skip-vp leaves the VP column empty.
    let reg = tmp.path().join("reg");
    ok(&[
        "train-factors",
        "--dataset",
        "scenes",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--out",
        s(&reg),
    ]);
    let mut args = vec![
        "eval",
        "compare",
        "--model",
        s(&model),
        "--methods",
        &both,
        "--regressor",
        s(&reg),
        "--skip-vp",
        "--cd-lengths",
        "0.5,1",
    ];
    args.extend_from_slice(&quick);
    let table = ok(&args);
    let row = table.lines().nth(2).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[3], "–", "{table}");
    assert!(
        cells[7].contains(" ± ") && cells[8].contains(" ± "),
        "{table}"
    );
    for bad in ["1,0.5", "0,1", "nan"] {
        let mut args = vec![
            "eval",
            "compare",
            "--model",
            s(&model),
            "--skip-vp",
            "--cd-lengths",
            bad,
        ];
        args.extend_from_slice(&quick);
        let e = fails(&args);
        assert!(e.contains("--cd-lengths"), "{bad}: {e}");
    }
}

#[test]
fn dplase_confined_to_a_channel_subspace_is_fitted_and_bad_subspaces_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let out = tmp.path().join("sub");
    let line = fit(
        &model,
        "dplase",
        &[
            "--k",
            "2",
            "--iters",
            "20",
            "--subspaces",
            "2",
            "--subspace",
            "1",
            "--samples",
            "200",
            "--out",
            s(&out),
        ],
    );
    assert!(line.contains("2 directions by dplase"), "{line}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["training"]["settings"]["subspaces"], 2);
    assert_eq!(manifest["training"]["settings"]["subspace"], 1);
    let g = s(&model);
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "dplase",
        "--k",
        "2",
        "--subspaces",
        "2",
        "--subspace",
        "2",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("subspace 2 does not exist"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "sefa",
        "--k",
        "2",
        "--subspaces",
        "2",
        "--out",
        s(&tmp.path().join("y")),
    ]);
    assert!(e.contains("DP-LaSE only"), "{e}");
    let e = fails(&[
        "fit-directions",
        "--generator",
        g,
        "--method",
        "dplase",
        "--k",
        "2",
        "--subspaces",
        "100000",
        "--out",
        s(&tmp.path().join("z")),
    ]);
    assert!(e.contains("groups"), "{e}");
}

#[test]
fn eval_compare_trains_every_method_with_one_budget_and_keeps_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let work = tmp.path().join("protocol");
    let args = [
        "eval",
        "compare",
        "--model",
        s(&model),
        "--train",
        s(&work),
        "--train-seeds",
        "1,2",
        "--train-iters",
        "2",
        "--train-batch",
        "4",
        "--k",
        "2",
        "--no-ode",
        "--skip-vp",
        "--codes",
        "8",
        "--steps",
        "3",
    ];
    let table = ok(&args);
    let rows: Vec<&str> = table.lines().skip(2).collect();
    let runs: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            let cells: Vec<&str> = r.split('|').map(str::trim).collect();
            (cells[1], cells[2])
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("pde", "2"),
            ("linear", "2"),
            ("sefa", "1"),
            ("ganspace", "2"),
            ("dplase", "2"),
            ("warped", "2")
        ],
        "{table}"
    );
    for run in [
        "m-pde-1",
        "m-linear-2",
        "m-sefa-1",
        "m-dplase-2",
        "m-warped-2",
    ] {
        assert!(work.join(run).join("manifest.json").is_file(), "{run}");
    }
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("m-warped-2/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["training"]["iterations"], 2);
    assert_eq!(manifest["training"]["seed"], 2);
    // Again: the finished runs are kept (the same weights), the same table.
    let before = std::fs::read(work.join("m-pde-2/model.safetensors")).unwrap();
    assert_eq!(ok(&args), table);
    assert_eq!(
        std::fs::read(work.join("m-pde-2/model.safetensors")).unwrap(),
        before
    );
    // NeuralODE needs a regressor; --methods and --train do not go together.
    let mut with_ode: Vec<&str> = args.iter().copied().filter(|a| *a != "--no-ode").collect();
    let e = fails(&with_ode);
    assert!(e.contains("--no-ode") && e.contains("train-factors"), "{e}");
    with_ode.extend(["--no-ode", "--methods", s(&model)]);
    let e = fails(&with_ode);
    assert!(e.contains("leave out --methods"), "{e}");
}

#[test]
fn density_preserving_walks_keep_the_norm_from_every_command_and_eval_quality_measures_them() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    fit(&model, "sefa", &["--k", "2", "--step", "1.0"]);
    let set = model.join("directions-sefa");
    // traverse --preserve-density: every point keeps ‖z_0‖ and records −½‖z‖².
    let json = tmp.path().join("walk.json");
    ok(&[
        "traverse",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--k",
        "1",
        "--steps",
        "5",
        "--preserve-density",
        "--out",
        s(&tmp.path().join("walk.png")),
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let norm = |p: &serde_json::Value| -> f64 {
        p["z"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap().powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let steps = doc["steps"].as_array().unwrap();
    let n0 = norm(&steps[0]);
    for p in steps {
        assert!((norm(p) - n0).abs() < 1e-4, "{} vs {n0}", norm(p));
        let log_density = p["log_density"].as_f64().unwrap();
        assert!((log_density + 0.5 * n0 * n0).abs() < 1e-3, "{p}");
    }
    // eval quality: one row per scale; the plain walk's norm grows with the scale.
    let line = ok(&[
        "eval",
        "quality",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--scales",
        "1,4",
        "--steps",
        "3",
        "--codes",
        "4",
    ]);
    let q: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let ratio = |r: &serde_json::Value| r["norm_ratio_plain"].as_f64().unwrap();
    assert!(
        ratio(&rows[1]) > ratio(&rows[0]) && ratio(&rows[0]) > 1.0,
        "{q}"
    );
    for r in rows {
        for key in ["error_plain", "error_preserving"] {
            let e = r[key].as_f64().unwrap();
            assert!(e.is_finite() && e >= 0.0, "{r}");
        }
    }
    let e = fails(&[
        "eval",
        "quality",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--scales",
        "inf",
    ]);
    assert!(e.contains("step scale"), "{e}");
}
