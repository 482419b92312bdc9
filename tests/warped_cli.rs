//! WarpedSpace from the command line: `train-warped` trains, checkpoints and resumes; the
//! set is opened by the method registry for `traverse`, `export-gif` and `eval`; bad
//! settings and damaged sets are refused with clear errors.

mod common;
use common::{fails, ok, s};
use std::path::{Path, PathBuf};

fn own_model(tmp: &Path) -> PathBuf {
    common::generator_copy(tmp)
}

fn train(model: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train-warped",
        "--generator",
        s(model),
        "--k",
        "3",
        "--dipoles",
        "2",
        "--batch-size",
        "4",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn warped_paths_train_resume_and_are_walked_exported_and_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let set = model.join("warped");
    let out = train(&model, &["--iters", "4", "--checkpoint-every", "2"]);
    assert!(out.contains("trained 4 iterations"), "{out}");
    assert!(out.contains("l_shift") && !out.contains("cos_0_1"), "{out}");
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
    assert_eq!(manifest["model"], "warped");
    assert_eq!(manifest["architecture"]["dipoles"], 2);
    assert_eq!(manifest["generator"], "..");
    assert!(manifest["metrics"]["max_cos"].is_number(), "{manifest}");
    // Resume: the same settings with more iterations go on from the checkpoint.
    let out = train(&model, &["--iters", "6", "--checkpoint-every", "2"]);
    assert!(out.contains("trained 6 iterations"), "{out}");
    let log = std::fs::read_to_string(set.join("loss.csv")).unwrap();
    assert!(log.lines().count() >= 2, "{log}");
    // Other settings do not resume into it.
    let e = fails(&[
        "train-warped",
        "--generator",
        s(&model),
        "--k",
        "4",
        "--iters",
        "8",
    ]);
    assert!(e.contains("other settings"), "{e}");

    // Through the registry: every step has the set's length 0.3 and records f.
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
        "4",
        "--out",
        s(&tmp.path().join("walk.png")),
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["method"], "warped");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for p in steps {
        assert!((p["step_norm"].as_f64().unwrap() - 0.3).abs() < 1e-5, "{p}");
        assert!(p["u"].is_number() && p["grad_norm"].is_number(), "{p}");
    }
    let gif = tmp.path().join("walk.gif");
    ok(&[
        "export-gif",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--k",
        "2",
        "--steps",
        "3",
        "--preserve-density",
        "--out",
        s(&gif),
    ]);
    assert!(std::fs::metadata(&gif).unwrap().len() > 0);
    let line = ok(&[
        "eval",
        "diversity",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--codes",
        "8",
        "--steps",
        "3",
    ]);
    let d: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(d["path_length"].as_array().unwrap().len(), 3, "{d}");
    // Renamed (as the app's "Edit names" does), the walk names its path.
    let names: Vec<String> = ["floor", "wall", "object"].map(String::from).to_vec();
    latentflow::store::rename_directions(&set, &names).unwrap();
    assert!(latentflow::store::rename_directions(&set, &names[..2]).is_err());
    ok(&[
        "traverse",
        "--model",
        s(&model),
        "--potentials",
        s(&set),
        "--k",
        "2",
        "--steps",
        "1",
        "--out",
        s(&tmp.path().join("named.png")),
        "--json",
        s(&tmp.path().join("named.json")),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("named.json")).unwrap())
            .unwrap();
    assert_eq!(doc["directions"][0], "object");
    // It is the model's only method here, so every command's default.
    let out = common::latentflow(&[
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("warped"));
}

#[test]
fn bad_settings_and_damaged_sets_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let model = own_model(tmp.path());
    let g = s(&model);
    let run = |extra: &[&str]| {
        let mut args = vec!["train-warped", "--generator", g, "--iters", "2"];
        args.extend_from_slice(extra);
        fails(&args)
    };
    assert!(run(&["--k", "1"]).contains("at least 2"));
    assert!(run(&["--dipoles", "0"]).contains("--dipoles"));
    assert!(run(&["--min-shift", "3", "--max-shift", "1"]).contains("above --max-shift"));
    assert!(run(&["--step", "nan"]).contains("--step"));
    assert!(run(&["--lr=-1"]).contains("--lr must be positive"));
    assert!(run(&["--batch-size", "100000"]).contains("limit"));
    // The generator's own folder is never trained into.
    let e = run(&["--out", g]);
    assert!(e.contains("holds a generator model"), "{e}");
    // A user's folder is never written into.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let e = run(&["--out", s(&mine)]);
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );

    // A trained set, then damaged copies of it.
    train(&model, &["--iters", "2"]);
    let set = model.join("warped");
    let walk = |dir: &Path| {
        fails(&[
            "traverse",
            "--model",
            g,
            "--potentials",
            s(dir),
            "--k",
            "0",
            "--steps",
            "2",
            "--out",
            s(&tmp.path().join("x.png")),
        ])
    };
    let manifest = std::fs::read_to_string(set.join("manifest.json")).unwrap();
    let edit = |name: &str, from: &str, to: &str| -> PathBuf {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(set.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
        assert!(manifest.contains(from), "{from}");
        std::fs::write(dir.join("manifest.json"), manifest.replacen(from, to, 1)).unwrap();
        dir
    };
    let e = walk(&edit("latent", "\"latent\": 4", "\"latent\": 5"));
    assert!(e.contains("5-dimensional"), "{e}");
    let e = walk(&edit("dipoles", "\"dipoles\": 2", "\"dipoles\": 3"));
    assert!(e.contains("warp.vectors"), "{e}");
    let e = walk(&edit("step", "\"step\": 0.3", "\"step\": -0.3"));
    assert!(e.contains("positive"), "{e}");
    let e = walk(&edit("k", "\"k\": 3", "\"k\": 0"));
    assert!(e.contains("K ≥ 1"), "{e}");
    let e = fails(&[
        "traverse",
        "--model",
        g,
        "--potentials",
        s(&set),
        "--k",
        "3",
        "--steps",
        "2",
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains("out of range"), "{e}");
}
