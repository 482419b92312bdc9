//! NeuralODE editing from the command line: `train-ode` trains one field per factor with
//! the factor regressor beside the model, checkpoints and resumes; the set is opened by the
//! method registry for `traverse` and `export-gif`; bad settings are refused clearly.

mod common;
use common::{fails, ok, s};
use std::path::{Path, PathBuf};

/// A copy of the tiny generator with a tiny scenes factor regressor beside it (as
/// `scenes-factors`, where `train-ode` looks by default).
fn model_with_regressor(tmp: &Path) -> PathBuf {
    let model = common::generator_copy(tmp);
    ok(&[
        "train-factors",
        "--dataset",
        "scenes",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--out",
        s(&tmp.join("scenes-factors")),
    ]);
    model
}

fn train(model: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train-ode",
        "--generator",
        s(model),
        "--factors",
        "floor_hue,scale",
        "--depth",
        "1",
        "--hidden",
        "8",
        "--batch-size",
        "4",
        "--seed",
        "2",
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn ode_fields_train_resume_and_are_walked_and_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_with_regressor(tmp.path());
    let set = model.join("ode");
    let out = train(&model, &["--iters", "4", "--checkpoint-every", "2"]);
    assert!(
        out.contains("trained 4 iterations") && out.contains("(floor_hue, scale)"),
        "{out}"
    );
    assert!(out.contains("l_target") && out.contains("l_keep"), "{out}");
    for f in [
        "manifest.json",
        "model.safetensors",
        "strips.png",
        "loss.csv",
    ] {
        assert!(set.join(f).is_file(), "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(set.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["model"], "ode");
    assert_eq!(manifest["architecture"]["names"][1], "scale");
    assert_eq!(manifest["architecture"]["depth"], 1);
    let out = train(&model, &["--iters", "6", "--checkpoint-every", "2"]);
    assert!(out.contains("trained 6 iterations"), "{out}");

    // Through the registry: named sliders, unit speed, chords no longer than the step.
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
        "3",
        "--out",
        s(&tmp.path().join("walk.png")),
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["method"], "ode");
    assert_eq!(doc["directions"][0], "scale");
    for p in doc["steps"].as_array().unwrap() {
        assert!((p["ode_speed"].as_f64().unwrap() - 1.0).abs() < 1e-4, "{p}");
        assert!(p["step_norm"].as_f64().unwrap() <= 0.3 + 1e-5, "{p}");
    }
    let gif = tmp.path().join("walk.gif");
    ok(&[
        "export-gif",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--k",
        "0",
        "--steps",
        "3",
        "--out",
        s(&gif),
    ]);
    ok(&[
        "traverse",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--superpose",
        "0:1,1:0.5",
        "--steps",
        "3",
        "--out",
        s(&tmp.path().join("both.png")),
    ]);
    assert!(std::fs::metadata(&gif).unwrap().len() > 0);

    // The linear variant: constant fields, straight steps of exactly the step length.
    let out = ok(&[
        "train-ode",
        "--generator",
        s(&model),
        "--factors",
        "floor_hue,scale",
        "--depth",
        "0",
        "--iters",
        "2",
        "--batch-size",
        "4",
    ]);
    assert!(out.contains("ode-linear"), "{out}");
    ok(&[
        "traverse",
        "--model",
        s(&model),
        "--potentials",
        s(&model.join("ode-linear")),
        "--k",
        "0",
        "--steps",
        "2",
        "--out",
        s(&tmp.path().join("lin.png")),
        "--json",
        s(&tmp.path().join("lin.json")),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("lin.json")).unwrap())
            .unwrap();
    assert_eq!(doc["method"], "ode-linear");
    for p in doc["steps"].as_array().unwrap() {
        assert!((p["step_norm"].as_f64().unwrap() - 0.3).abs() < 1e-5, "{p}");
    }
}

#[test]
fn bad_settings_and_a_missing_regressor_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let bare = common::generator_copy(tmp.path());
    let e = fails(&["train-ode", "--generator", s(&bare), "--iters", "2"]);
    assert!(
        e.contains("needs a factor regressor") && e.contains("train-factors"),
        "{e}"
    );
    let other = tempfile::tempdir().unwrap();
    let model = model_with_regressor(other.path());
    let g = s(&model);
    let run = |extra: &[&str]| {
        let mut args = vec!["train-ode", "--generator", g, "--iters", "2"];
        args.extend_from_slice(extra);
        fails(&args)
    };
    assert!(run(&["--depth", "4"]).contains("--depth"));
    assert!(run(&["--factors", "shape"]).contains("no order"));
    assert!(run(&["--factors", "colour"]).contains("knows no factor 'colour'"));
    assert!(run(&["--factors", "scale,scale"]).contains("named twice"));
    assert!(run(&["--min-time", "3", "--max-time", "1"]).contains("above --max-time"));
    assert!(run(&["--max-time", "1000", "--substeps", "1000"]).contains("limit"));
    assert!(run(&["--rate", "nan"]).contains("--rate"));
    // A two-iteration regressor reads nothing well: the default choice says so.
    let e = run(&[]);
    assert!(e.contains("well enough") && e.contains("--factors"), "{e}");
    // A regressor of another dataset's images.
    ok(&[
        "train-factors",
        "--dataset",
        "sprites",
        "--iters",
        "1",
        "--batch-size",
        "4",
        "--out",
        s(&other.path().join("sprites-factors")),
    ]);
    let e = run(&[
        "--regressor",
        s(&other.path().join("sprites-factors")),
        "--factors",
        "scale",
    ]);
    assert!(e.contains("1-channel"), "{e}");
}
