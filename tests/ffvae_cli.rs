//! `train-ffvae` end to end on the tiny scenes VAE: the flow-factorized VAE (supervised and
//! weak), the wave variant and the naive baseline; what they write; `eval equivariance`,
//! `eval loglik` and `traverse` on the result; and the bad inputs (T too large for a factor,
//! K not matching the transformations or a run's checkpoint, NaN during training).

mod common;
use common::{fails, ok, s, tiny_model};
use std::path::Path;

/// A tiny run's arguments on the tiny scenes VAE (2 iterations of 3 sequences of 3 steps),
/// then `extra`.
fn tiny<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train-ffvae",
        "--dataset",
        "scenes",
        "--init",
        s(tiny_model()),
        "--steps",
        "3",
        "--iters",
        "2",
        "--batch-size",
        "3",
        "--hidden",
        "8",
        "--checkpoint-every",
        "1",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

fn train(out: &Path, extra: &[&str]) -> String {
    ok(&tiny(out, extra))
}

fn manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn the_flow_factorized_vae_trains_and_is_measured_and_walked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ff");
    let said = train(&out, &["--k", "5"]);
    assert!(said.contains("trained 2 iterations"), "{said}");
    // A VAE any command opens, and its named Hamilton–Jacobi potentials.
    assert_eq!(manifest(&out)["model"], "generator");
    let set = out.join("potentials-ffvae");
    let m = manifest(&set);
    assert_eq!(m["architecture"]["kind"], "hj");
    assert_eq!(
        m["architecture"]["names"],
        serde_json::json!([
            "floor_hue",
            "wall_hue",
            "object_hue",
            "scale",
            "orientation"
        ])
    );
    assert_eq!(m["generator"], "..");
    for f in ["sequences.png", "loss.csv"] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert!(set.join("strips.png").exists());

    let eq = ok(&["eval", "equivariance", "--model", s(&out), "--n", "2"]);
    assert!(
        eq.contains("potentials-ffvae") && eq.contains("orientation"),
        "{eq}"
    );
    let json: serde_json::Value = serde_json::from_str(eq.lines().last().unwrap()).unwrap();
    let e = json["equivariance"]["floor_hue"].as_f64().unwrap();
    let floor = json["floor"]["floor_hue"].as_f64().unwrap();
    assert!(e > 0.0 && floor > 0.0, "{json}");
    let ll = ok(&[
        "eval",
        "loglik",
        "--model",
        s(&out),
        "--n",
        "2",
        "--samples",
        "3",
    ]);
    let json: serde_json::Value = serde_json::from_str(ll.lines().last().unwrap()).unwrap();
    assert!(json["loglik_original"].as_f64().unwrap() < 0.0, "{json}");
    assert!(json["loglik_transformed"].as_f64().unwrap() < 0.0, "{json}");

    // The registry opens the set for a walk: its own method, named, with its log-density.
    let walk = tmp.path().join("walk.json");
    ok(&[
        "traverse",
        "--model",
        s(&out),
        "--k",
        "3",
        "--steps",
        "3",
        "--out",
        s(&tmp.path().join("walk.png")),
        "--json",
        s(&walk),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&walk).unwrap()).unwrap();
    assert_eq!(doc["method"], "ffvae");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(
        steps[0]["flow_log_density"].as_f64(),
        Some(0.0),
        "{}",
        steps[0]
    );
    assert!(steps[3]["flow_log_density"].is_number(), "{}", steps[3]);

    // A transformation without a potential of its name is refused by name.
    let e = fails(&[
        "eval",
        "equivariance",
        "--model",
        s(&out),
        "--transforms",
        "rotate",
        "--n",
        "1",
    ]);
    assert!(
        e.contains("none named rotate") && e.contains("K = 5"),
        "{e}"
    );
    // A naive VAE is measured with z_t = z_0.
    let base = ok(&[
        "eval",
        "equivariance",
        "--model",
        s(tiny_model()),
        "--transforms",
        "factors",
        "--steps",
        "3",
        "--n",
        "1",
    ]);
    assert!(base.contains("naive baseline"), "{base}");
}

#[test]
fn weak_wave_and_naive_variants_train() {
    let tmp = tempfile::tempdir().unwrap();
    let weak = tmp.path().join("weak");
    let said = train(&weak, &["--k", "3", "--supervision", "weak"]);
    assert!(said.contains("held-out k-accuracy"), "{said}");
    let m = manifest(&weak.join("potentials-ffvae"));
    assert!(m["metrics"]["k_accuracy"].as_f64().is_some(), "{m}");
    assert_eq!(m["architecture"]["names"].as_array().unwrap().len(), 3);

    let wave = tmp.path().join("wave");
    train(&wave, &["--k", "5", "--variant", "wave"]);
    let m = manifest(&wave.join("potentials-wave"));
    assert_eq!(m["architecture"]["kind"], "pde");
    assert!(m["metrics"]["l_z"].as_f64().is_some(), "{m}");

    let naive = tmp.path().join("naive");
    train(&naive, &["--variant", "naive"]);
    assert!(!naive.join("potentials-ffvae").exists());
    assert!(!naive.join("potentials-wave").exists());
    let e = fails(&[
        "train-ffvae",
        "--dataset",
        "scenes",
        "--variant",
        "wave",
        "--supervision",
        "weak",
        "--k",
        "5",
        "--steps",
        "3",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("--supervision full"), "{e}");
}

#[test]
fn bad_inputs_are_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ff");
    // T larger than a factor provides (scenes' scale has 8 values).
    let e = fails(&[
        "train-ffvae",
        "--dataset",
        "scenes",
        "--steps",
        "8",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("scale") && e.contains("at most 7 steps, not 8"),
        "{e}"
    );
    // K not matching the transformations.
    let e = fails(&[
        "train-ffvae",
        "--dataset",
        "scenes",
        "--k",
        "4",
        "--steps",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("--k 4 does not match the 5 transformations"),
        "{e}"
    );
    assert!(!out.exists());
    // K not matching the run in the folder.
    train(&out, &["--k", "5"]);
    let e = fails(&tiny(
        &out,
        &[
            "--transforms",
            "floor_hue,wall_hue,object_hue,scale",
            "--k",
            "4",
        ],
    ));
    assert!(e.contains("K = 5 potentials, not --k 4"), "{e}");
    // NaN: training stops, names the iteration and the term, and keeps the checkpoint.
    let nan = tmp.path().join("nan");
    let e = fails(&tiny(&nan, &["--vae-lr", "1e30"]));
    assert!(
        e.contains("training stopped at iteration") && e.contains("loss term"),
        "{e}"
    );
    assert!(e.contains("last good checkpoint"), "{e}");
    assert!(nan.join("manifest.json").exists());
}

#[test]
fn image_transformations_of_any_dataset_train_from_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sprites");
    let said = ok(&[
        "train-ffvae",
        "--dataset",
        "sprites",
        "--transforms",
        "images",
        "--latent",
        "4",
        "--steps",
        "2",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--hidden",
        "8",
        "--out",
        s(&out),
    ]);
    assert!(said.contains("trained 1 iterations"), "{said}");
    let m = manifest(&out.join("potentials-ffvae"));
    // sprites are greyscale: zoom and rotation, no hue; one potential each (no --k).
    assert_eq!(
        m["architecture"]["names"],
        serde_json::json!(["scale", "rotate"])
    );
    assert_eq!(manifest(&out)["architecture"]["latent"], 4);
}
