//! Potentials from the command line: training, traversal strips and JSON, switching and
//! superposition, the VP score, and bad input.

mod common;

use common::{fails, ok, s};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A tiny generator with tiny PDE potentials inside (trained once for all tests).
fn model() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        ok(&[
            "train-generator",
            "--dataset",
            "sprites",
            "--latent",
            "4",
            "--base",
            "8",
            "--iters",
            "2",
            "--batch-size",
            "4",
            "--out",
            s(&dir),
        ]);
        ok(&[
            "train-potentials",
            "--generator",
            s(&dir),
            "--k",
            "3",
            "--steps",
            "3",
            "--iters",
            "4",
            "--batch-size",
            "4",
            "--hidden",
            "8",
            "--time-dim",
            "4",
            "--negative",
            "--checkpoint-every",
            "2",
        ]);
        (tmp, dir)
    });
    dir
}

#[test]
fn training_writes_potentials_strips_and_log() {
    let p = model().join("potentials-pde");
    for f in [
        "model.safetensors",
        "manifest.json",
        "strips.png",
        "loss.csv",
    ] {
        assert!(p.join(f).is_file(), "{f}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["model"], "potentials");
    assert_eq!(m["generator"], "..");
    assert_eq!(m["architecture"]["k"], 3);
    let strips = image::open(p.join("strips.png")).unwrap();
    assert_eq!(
        (strips.width(), strips.height()),
        (4 * 64 + 3 * 2, 3 * 64 + 2 * 2)
    );
    // The log carries the collapse diagnostic: the largest |cos| between the potentials'
    // mean displacements, in [0, 1] on every row.
    let log = std::fs::read_to_string(p.join("loss.csv")).unwrap();
    let mut lines = log.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "max_cos").unwrap();
    let mut rows = 0;
    for line in lines {
        let v: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert!((0.0..=1.0 + 1e-9).contains(&v), "{line}");
        rows += 1;
    }
    assert!(rows > 0);
}

#[test]
fn traverse_writes_a_strip_and_per_step_values() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, json) = (tmp.path().join("s.png"), tmp.path().join("s.json"));
    ok(&[
        "traverse",
        "--model",
        s(model()),
        "--k",
        "2",
        "--steps",
        "5",
        "--seed",
        "7",
        "--out",
        s(&png),
        "--json",
        s(&json),
    ]);
    assert_eq!(image::open(&png).unwrap().width(), 6 * 64 + 5 * 2);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    for (i, st) in steps.iter().enumerate() {
        assert_eq!(st["t"].as_f64(), Some(i as f64));
        assert_eq!(st["z"].as_array().map(Vec::len), Some(4));
        for key in [
            "u",
            "grad_norm",
            "du_dt",
            "d2u_dt2",
            "laplacian",
            "residual",
        ] {
            assert!(st[key].as_f64().is_some_and(f64::is_finite), "{key}");
        }
    }
    // Same seed, same walk; negative and switching and superposition walk elsewhere.
    let z_end = |extra: &[&str]| {
        let mut args = vec![
            "traverse",
            "--model",
            s(model()),
            "--k",
            "2",
            "--steps",
            "5",
            "--seed",
            "7",
            "--out",
            s(&png),
            "--json",
            s(&json),
            "--force",
        ];
        args.extend_from_slice(extra);
        ok(&args);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        v["steps"][5]["z"].clone()
    };
    let base = z_end(&[]);
    assert_eq!(base, z_end(&[]));
    assert_ne!(base, z_end(&["--negative"]));
    assert_ne!(base, z_end(&["--switch-to", "0", "--switch-at", "2"]));
    assert_ne!(base, z_end(&["--superpose", "2:1.0,1:0.5"]));
    assert_eq!(base, z_end(&["--superpose", "2:1.0"]));
}

#[test]
fn bad_traversal_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("x.png");
    let m = s(model());
    let e = fails(&["traverse", "--model", m, "--k", "3", "--out", s(&png)]);
    assert!(e.contains("out of range"), "{e}");
    let e = fails(&["traverse", "--model", m, "--steps", "0", "--out", s(&png)]);
    assert!(e.contains("at least 1"), "{e}");
    let e = fails(&[
        "traverse",
        "--model",
        m,
        "--superpose",
        "0:1,x",
        "--out",
        s(&png),
    ]);
    assert!(e.contains("cannot parse superposition"), "{e}");
    assert!(!png.exists());

    // Potentials on another latent size.
    let other = tmp.path().join("other");
    ok(&[
        "train-generator",
        "--dataset",
        "sprites",
        "--latent",
        "3",
        "--base",
        "8",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--out",
        s(&other),
    ]);
    let e = fails(&[
        "traverse",
        "--model",
        s(&other),
        "--potentials",
        s(&model().join("potentials-pde")),
        "--out",
        s(&png),
    ]);
    assert!(
        e.contains("4-dimensional") && e.contains("3-dimensional"),
        "{e}"
    );
    let e = fails(&["traverse", "--model", s(&other), "--out", s(&png)]);
    assert!(e.contains("holds no potentials"), "{e}");
}

#[test]
fn existing_potentials_are_not_overwritten() {
    let p = model().join("potentials-pde");
    let before = std::fs::read(p.join("model.safetensors")).unwrap();
    let e = fails(&[
        "train-potentials",
        "--generator",
        s(model()),
        "--k",
        "2",
        "--iters",
        "1",
    ]);
    assert!(
        e.contains("other settings") || e.contains("already holds"),
        "{e}"
    );
    assert_eq!(before, std::fs::read(p.join("model.safetensors")).unwrap());
}

#[test]
fn vp_score_is_a_json_line() {
    let out = ok(&[
        "eval",
        "vp",
        "--model",
        s(model()),
        "--pairs",
        "40",
        "--epochs",
        "1",
        "--steps",
        "3",
        "--seeds",
        "0,1",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["vp"].as_array().map(Vec::len), Some(2));
    let mean = v["vp_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean));
    assert_eq!(v["k"], 3);
}

#[test]
fn diversity_is_a_json_line_with_a_cosine_matrix() {
    let out = ok(&[
        "eval",
        "diversity",
        "--model",
        s(model()),
        "--codes",
        "8",
        "--steps",
        "3",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["k"], 3);
    let rows = v["cosines"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 3);
        assert!((row[i].as_f64().unwrap() - 1.0).abs() < 1e-9);
    }
    let max = v["max_abs_cosine"].as_f64().unwrap();
    assert!((0.0..=1.0 + 1e-9).contains(&max));
    assert_eq!(v["path_length"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["wave_speeds"].as_array().map(Vec::len), Some(3));
    let e = fails(&["eval", "diversity", "--model", s(model()), "--codes", "0"]);
    assert!(e.contains("at least one starting code"), "{e}");
}

#[test]
fn vp_at_a_matched_path_length_reports_the_scale() {
    let out = ok(&[
        "eval",
        "vp",
        "--model",
        s(model()),
        "--pairs",
        "40",
        "--epochs",
        "1",
        "--steps",
        "3",
        "--match-length",
        "1.5",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let reached = v["mean_displacement"].as_f64().unwrap();
    assert!((reached - 1.5).abs() < 0.01 * 1.5, "{v}");
    assert!(v["step_scale"].as_f64().unwrap() > 0.0);
    let e = fails(&["eval", "vp", "--model", s(model()), "--match-length=-2"]);
    assert!(e.contains("must be positive"), "{e}");
}

#[test]
fn evaluations_refuse_one_direction_too_few_pairs_and_another_latent_size() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    ok(&[
        "train-potentials",
        "--generator",
        s(model()),
        "--kind",
        "linear",
        "--k",
        "1",
        "--steps",
        "2",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--out",
        s(&one),
    ]);
    for what in ["vp", "diversity"] {
        let e = fails(&["eval", what, "--model", s(model()), "--potentials", s(&one)]);
        assert!(e.contains("1"), "{what}: {e}");
        assert!(
            e.contains("at least 2") || e.contains("with each other"),
            "{what}: {e}"
        );
    }
    let e = fails(&[
        "eval",
        "vp",
        "--model",
        s(model()),
        "--pairs",
        "4",
        "--steps",
        "3",
    ]);
    assert!(e.contains("too few") || e.contains("at least 20"), "{e}");
    // A generator with another latent size: the set is refused before any work.
    let other = tmp.path().join("g5");
    ok(&[
        "train-generator",
        "--dataset",
        "sprites",
        "--latent",
        "5",
        "--base",
        "8",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--out",
        s(&other),
    ]);
    let pde = model().join("potentials-pde");
    for what in ["vp", "diversity"] {
        let e = fails(&["eval", what, "--model", s(&other), "--potentials", s(&pde)]);
        assert!(
            e.contains("4-dimensional") && e.contains("5-dimensional"),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_factor_regressor_trains_and_scores_which_factors_directions_change() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("sprites-factors");
    let out = ok(&[
        "train-factors",
        "--dataset",
        "sprites",
        "--iters",
        "3",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "2",
        "--out",
        s(&reg),
    ]);
    assert!(out.contains("held-out accuracy per factor: shape"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reg.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["model"], "factor-regressor");
    assert!(manifest["metrics"]["acc_pos_x"].is_number());
    // Finished: not replaced without --restart.
    let e = fails(&[
        "train-factors",
        "--dataset",
        "sprites",
        "--iters",
        "3",
        "--out",
        s(&reg),
    ]);
    assert!(e.contains("--restart"), "{e}");

    let out = ok(&[
        "eval",
        "factors",
        "--model",
        s(model()),
        "--regressor",
        s(&reg),
        "--codes",
        "8",
        "--steps",
        "3",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["k"], 3);
    let factors: Vec<&str> = v["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(factors, ["shape", "scale", "orientation", "pos_x", "pos_y"]);
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    for row in changes {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 5);
        assert!(
            row.iter()
                .all(|c| (0.0..=1.0).contains(&c.as_f64().unwrap()))
        );
    }
    let share = v["mean_share"].as_f64().unwrap();
    assert!((0.2..=1.0).contains(&share), "{v}");

    // Bad input: no regressor beside the model, a dataset without factors, a regressor of
    // another dataset.
    let e = fails(&["eval", "factors", "--model", s(model())]);
    assert!(
        e.contains("no factor regressor") && e.contains("train-factors"),
        "{e}"
    );
    let pictures = tmp.path().join("pictures");
    std::fs::create_dir(&pictures).unwrap();
    std::fs::copy(model().join("samples.png"), pictures.join("a.png")).unwrap();
    let e = fails(&[
        "train-factors",
        "--dataset",
        &format!("folder:{}", pictures.display()),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("no known factors"), "{e}");
    assert!(!tmp.path().join("x").exists());
    let scenes_reg = tmp.path().join("scenes-factors");
    ok(&[
        "train-factors",
        "--dataset",
        "scenes",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--out",
        s(&scenes_reg),
    ]);
    let e = fails(&[
        "eval",
        "factors",
        "--model",
        s(model()),
        "--regressor",
        s(&scenes_reg),
    ]);
    assert!(e.contains("scenes") && e.contains("sprites"), "{e}");
}

#[test]
fn without_potentials_every_command_uses_the_pde_set_and_says_so() {
    // A model with a linear set whose name sorts first: the default is still the PDE set.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    ok(&[
        "train-generator",
        "--dataset",
        "sprites",
        "--latent",
        "4",
        "--base",
        "8",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--out",
        s(&dir),
    ]);
    for (kind, folder) in [("linear", "a-linear"), ("pde", "z-pde")] {
        ok(&[
            "train-potentials",
            "--generator",
            s(&dir),
            "--kind",
            kind,
            "--k",
            "2",
            "--steps",
            "3",
            "--iters",
            "2",
            "--batch-size",
            "4",
            "--hidden",
            "8",
            "--time-dim",
            "4",
            "--out",
            s(&dir.join(folder)),
        ]);
    }
    let out = common::latentflow(&[
        "eval",
        "diversity",
        "--model",
        s(&dir),
        "--codes",
        "4",
        "--steps",
        "2",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(v["potentials"].as_str().unwrap().ends_with("z-pde"), "{v}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("z-pde") && said.contains("default set"),
        "{said}"
    );
    // The GIF export and the traversal agree with it, and name it too.
    let gif = tmp.path().join("walk.gif");
    let out = common::latentflow(&[
        "export-gif",
        "--model",
        s(&dir),
        "--k",
        "1",
        "--steps",
        "2",
        "--out",
        s(&gif),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("z-pde"));
    let named = tmp.path().join("named.gif");
    ok(&[
        "export-gif",
        "--model",
        s(&dir),
        "--potentials",
        s(&dir.join("z-pde")),
        "--k",
        "1",
        "--steps",
        "2",
        "--out",
        s(&named),
    ]);
    assert_eq!(std::fs::read(&gif).unwrap(), std::fs::read(&named).unwrap());
}

#[test]
fn sets_in_the_users_data_folder_are_listed_with_the_models_own() {
    let data = tempfile::tempdir().unwrap();
    let user = latentflow::store::user::user_sets_dir_in(data.path(), model());
    let set = user.join("potentials-a-user");
    std::fs::create_dir_all(&set).unwrap();
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(model().join("potentials-pde").join(f), set.join(f)).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latentflow"))
        .args([
            "eval",
            "diversity",
            "--model",
            s(model()),
            "--codes",
            "4",
            "--steps",
            "2",
        ])
        .env("LATENTFLOW_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A PDE set named before the model's own "potentials-pde": it is the default.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("potentials-a-user"), "{said}");
}
