//! The command line end to end: a tiny model trained, sampled and benchmarked, and every
//! kind of bad input answered with a one-line error, a non-zero exit code and nothing
//! overwritten.

use latentflow::store::tensors::{load_safetensors, save_safetensors};
mod common;

use common::{fails, latentflow, ok, s};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A tiny sprites VAE trained once for all tests (4 iterations, base width 8).
fn tiny_model() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, model) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let model = tmp.path().join("tiny");
        ok(&[
            "train-generator",
            "--dataset",
            "sprites",
            "--latent",
            "4",
            "--base",
            "8",
            "--iters",
            "4",
            "--batch-size",
            "4",
            "--checkpoint-every",
            "2",
            "--seed",
            "3",
            "--out",
            s(&model),
        ]);
        (tmp, model)
    });
    model
}

/// A copy of the tiny model that a test may damage.
fn copy_model(to: &Path) -> PathBuf {
    let dir = to.join("copy");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.safetensors", "manifest.json"] {
        std::fs::copy(tiny_model().join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn training_writes_model_grid_and_log_and_sample_is_deterministic() {
    let model = tiny_model();
    for f in [
        "model.safetensors",
        "manifest.json",
        "samples.png",
        "reconstructions.png",
        "loss.csv",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let log = std::fs::read_to_string(model.join("loss.csv")).unwrap();
    assert!(
        log.lines().next().unwrap_or("").contains("iteration"),
        "{log}"
    );
    let manifest = std::fs::read_to_string(model.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("train-generator"),
        "command recorded: {manifest}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.png"), tmp.path().join("b.png"));
    for out in [&a, &b] {
        ok(&[
            "sample",
            "--model",
            s(model),
            "--n",
            "4",
            "--seed",
            "1",
            "--out",
            s(out),
        ]);
    }
    let (ia, ib) = (image::open(&a).unwrap(), image::open(&b).unwrap());
    assert_eq!(ia.as_bytes(), ib.as_bytes(), "same seed, same picture");
    assert_eq!((ia.width(), ia.height()), (2 * 64 + 2, 2 * 64 + 2));
}

#[test]
fn a_finished_model_is_not_overwritten_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let args = |iters: &'static str| {
        vec![
            "train-generator".to_string(),
            "--dataset".into(),
            "sprites".into(),
            "--latent".into(),
            "3".into(),
            "--base".into(),
            "8".into(),
            "--iters".into(),
            iters.into(),
            "--batch-size".into(),
            "2".into(),
            "--out".into(),
            s(&dir).into(),
        ]
    };
    let run = |a: Vec<String>| latentflow(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(args("2")).status.success());
    // Continuing to more iterations resumes from the saved state.
    let more = run(args("3"));
    assert!(
        more.status.success(),
        "{}",
        String::from_utf8_lossy(&more.stderr)
    );
    assert!(String::from_utf8_lossy(&more.stderr).contains("resuming at iteration 2"));
    // Other settings are refused, and the model stays as it was.
    let before = std::fs::read(dir.join("model.safetensors")).unwrap();
    let mut other = args("3");
    other[4] = "5".into();
    let out = run(other);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other settings"));
    assert_eq!(
        before,
        std::fs::read(dir.join("model.safetensors")).unwrap()
    );
}

#[test]
fn unknown_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.png");
    let e = fails(&["dataset", "preview", "--dataset", "cifar", "--out", s(&out)]);
    assert!(e.contains("cifar"), "{e}");
    assert!(!out.exists());
}

#[test]
fn dataset_previews_and_sequences() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("seq.png");
    ok(&[
        "dataset",
        "preview",
        "--dataset",
        "scenes",
        "--sequence",
        "hue",
        "--n",
        "2",
        "--out",
        s(&out),
    ]);
    let img = image::open(&out).unwrap();
    assert_eq!(img.width(), 9 * 64 + 8 * 2);
    let e = fails(&[
        "dataset",
        "preview",
        "--dataset",
        "sprites",
        "--sequence",
        "shape",
        "--force",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("categorical"), "{e}");
}

#[test]
fn image_folder_empty_or_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.png");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = fails(&[
        "dataset",
        "preview",
        "--dataset",
        &format!("folder:{}", s(&empty)),
        "--out",
        s(&out),
    ]);
    assert!(e.contains("no PNG or JPEG images"), "{e}");
    std::fs::write(empty.join("broken.png"), b"not a png").unwrap();
    let e = fails(&[
        "dataset",
        "preview",
        "--dataset",
        &format!("folder:{}", s(&empty)),
        "--out",
        s(&out),
    ]);
    assert!(e.contains("broken.png"), "{e}");
    assert!(!out.exists());
}

#[test]
fn wrong_idx_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("images.idx");
    let mut bytes = vec![0u8, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2];
    bytes.extend([0u8; 4]);
    std::fs::write(&idx, bytes).unwrap();
    let e = fails(&[
        "dataset",
        "preview",
        "--dataset",
        &format!("mnist:{}", s(&idx)),
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains("magic"), "{e}");
}

#[test]
fn missing_truncated_and_corrupt_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("grid.png");
    let e = fails(&[
        "sample",
        "--model",
        s(&tmp.path().join("nowhere")),
        "--out",
        s(&out),
    ]);
    assert!(e.contains("nowhere"), "{e}");

    let dir = copy_model(tmp.path());
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&["sample", "--model", s(&dir), "--out", s(&out)]);
    assert!(e.contains("model.safetensors"), "{e}");

    std::fs::write(&weights, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    let e = fails(&["sample", "--model", s(&dir), "--out", s(&out)]);
    assert!(e.contains("model.safetensors"), "{e}");
    assert!(!out.exists(), "nothing written on error");
}

#[test]
fn manifest_that_does_not_match_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model(tmp.path());
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["architecture"]["latent"] = serde_json::json!(5);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let e = fails(&[
        "sample",
        "--model",
        s(&dir),
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains("shape"), "{e}");
}

#[test]
fn non_finite_weights_name_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model(tmp.path());
    let path = dir.join("model.safetensors");
    let mut tensors = load_safetensors(&path, &candle_core::Device::Cpu).unwrap();
    let name = "decoder.fc0.weight".to_string();
    let t = tensors
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}: {:?}", tensors.keys()));
    let mut values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    values[1] = f32::NAN;
    let bad = candle_core::Tensor::from_vec(values, t.shape(), t.device()).unwrap();
    tensors.insert(name.clone(), bad);
    // Saving refuses NaN too, so write the file with the raw safetensors crate.
    let views: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (
                n.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.dims().to_vec(),
            )
        })
        .collect();
    let data: Vec<(String, safetensors::tensor::TensorView)> = views
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(data, None).unwrap()).unwrap();
    let _ = save_safetensors; // the crate's own writer is tested in the store's unit tests
    let e = fails(&[
        "sample",
        "--model",
        s(&dir),
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains(&name) && e.contains("model.safetensors"), "{e}");
}

#[test]
fn output_that_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("grid.png");
    let e = fails(&["sample", "--model", s(tiny_model()), "--out", s(&out)]);
    assert!(e.contains("grid.png") || e.contains("file"), "{e}");
    let e = fails(&[
        "train-generator",
        "--dataset",
        "sprites",
        "--iters",
        "1",
        "--out",
        s(&file.join("m")),
    ]);
    assert!(e.contains("file"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn bench_prints_one_json_line() {
    let out = ok(&[
        "bench",
        "generator",
        "--model",
        s(tiny_model()),
        "--reps",
        "2",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["decode_ms_b1", "decode_ms_b32", "train_img_per_s"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {out}");
    }
    // The app's slider latency, with a training job running beside it (which writes only
    // to a temporary folder: the model folder gains nothing).
    let model = common::tiny_model();
    let before: Vec<_> = std::fs::read_dir(model).unwrap().collect();
    let out = ok(&[
        "bench",
        "app",
        "--model",
        s(model),
        "--reps",
        "10",
        "--while-training",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["while_training"], true);
    assert!(
        v["training_points_logged"].as_u64().is_some_and(|n| n >= 1),
        "{out}"
    );
    for key in ["slider_to_frame_ms_p50", "slider_to_frame_ms_p95"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {out}");
    }
    assert_eq!(std::fs::read_dir(model).unwrap().count(), before.len());
}

#[test]
fn pytorch_state_dicts_import_with_their_values() {
    // tests/fixtures/tiny-vae.pth was written by scripts/make_pth_fixture.py: torch.save's
    // zip layout, names with a "module." prefix and a num_batches_tracked counter; tensor
    // number i (in name order) holds 0.001·j − 0.05·i.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-vae.pth");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("imported");
    let args = |latent: &'static str, out: &Path| {
        vec![
            "import-pth".to_string(),
            "--pth".into(),
            s(&fixture).into(),
            "--kind".into(),
            "vae".into(),
            "--latent".into(),
            latent.into(),
            "--channels".into(),
            "1".into(),
            "--base".into(),
            "4".into(),
            "--out".into(),
            s(out).into(),
        ]
    };
    let run = |a: Vec<String>| latentflow(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let wrong = tmp.path().join("wrong");
    let bad = run(args("3", &wrong));
    assert!(!bad.status.success());
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        e.contains("does not match") && e.lines().count() == 1,
        "{e}"
    );
    assert!(!wrong.exists());

    assert!(run(args("2", &out)).status.success());
    let tensors =
        load_safetensors(&out.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(
        tensors
            .keys()
            .all(|n| !n.starts_with("module.") && !n.contains("num_batches"))
    );
    for (i, t) in tensors.values().enumerate() {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        for (j, x) in v.iter().take(3).enumerate() {
            let want = 0.001 * j as f64 - 0.05 * i as f64;
            assert!(
                (*x as f64 - want).abs() < 1e-6,
                "tensor {i}[{j}] = {x}, want {want}"
            );
        }
    }
    ok(&[
        "sample",
        "--model",
        s(&out),
        "--n",
        "2",
        "--out",
        s(&tmp.path().join("g.png")),
    ]);
}

#[test]
fn the_app_without_a_display_says_what_to_do() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latentflow"))
        .arg("app")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    for needle in [
        "error: no display found",
        "xvfb-run -a latentflow",
        "latentflow --help",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

#[test]
fn bench_compare_puts_the_reference_beside_latentflow_and_explains_a_missing_python() {
    let tmp = tempfile::tempdir().unwrap();
    // A stand-in for the PyTorch script: the same JSON keys, fixed figures.
    let script = tmp.path().join("reference.sh");
    std::fs::write(
        &script,
        "echo 'warming up'\necho '{\"framework\":\"stand-in\",\"decode_ms_b1\":2.0,\"decode_ms_b32\":20.0,\"train_img_per_s\":100.0}'\n",
    )
    .unwrap();
    let model = s(tiny_model());
    let out = ok(&[
        "bench",
        "compare",
        "--model",
        model,
        "--python",
        "sh",
        "--script",
        s(&script),
        "--rounds",
        "1",
        "--reps",
        "3",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["pytorch"]["decode_ms_b1"], 2.0);
    assert_eq!(v["pytorch_version"], "stand-in");
    let ours = v["latentflow"]["decode_ms_b1"].as_f64().unwrap();
    let ratio = v["ratio_latentflow_over_pytorch"]["decode_ms_b1"]
        .as_f64()
        .unwrap();
    assert!((ratio - ours / 2.0).abs() < 1e-9, "{v}");
    let ips = v["latentflow"]["train_img_per_s"].as_f64().unwrap();
    let r = v["ratio_latentflow_over_pytorch"]["train_img_per_s"]
        .as_f64()
        .unwrap();
    assert!((r - 100.0 / ips).abs() < 1e-9, "{v}");

    let e = fails(&[
        "bench",
        "compare",
        "--model",
        model,
        "--python",
        "/nonexistent/python",
        "--script",
        s(&script),
        "--rounds",
        "1",
        "--reps",
        "3",
    ]);
    assert!(e.contains("pass --python"), "{e}");
    let e = fails(&[
        "bench",
        "compare",
        "--model",
        model,
        "--script",
        s(&tmp.path().join("none.py")),
    ]);
    assert!(e.contains("none.py") && e.contains("--script"), "{e}");

    // With --potentials, one potential-training iteration on both sides as well.
    let iter_script = tmp.path().join("iteration.sh");
    std::fs::write(&iter_script, "echo '{\"train_iter_ms\":500.0}'\n").unwrap();
    let out = ok(&[
        "bench",
        "compare",
        "--model",
        model,
        "--python",
        "sh",
        "--script",
        s(&script),
        "--potentials",
        "--potentials-script",
        s(&iter_script),
        "--rounds",
        "1",
        "--reps",
        "3",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["pytorch"]["train_iter_ms"], 500.0);
    let ours = v["latentflow"]["train_iter_ms"].as_f64().unwrap();
    assert!(ours > 0.0, "{v}");
    let r = v["ratio_latentflow_over_pytorch"]["train_iter_ms"]
        .as_f64()
        .unwrap();
    assert!((r - ours / 500.0).abs() < 1e-9, "{v}");
    let e = fails(&[
        "bench",
        "compare",
        "--model",
        model,
        "--python",
        "sh",
        "--script",
        s(&script),
        "--potentials",
        "--potentials-script",
        s(&tmp.path().join("missing.py")),
    ]);
    assert!(
        e.contains("missing.py") && e.contains("--potentials-script"),
        "{e}"
    );
}
