//! Editing your own image from the command line: `encode` an image (any size) to a latent
//! code, `traverse --z` and `export-gif --z` from it, GAN inversion, and bad input.

mod common;

use common::{fails, latentflow, ok, s};

#[test]
fn an_image_is_encoded_walked_and_exported_from_its_code() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model();
    // A project-made picture of another size (a 3 × 1 grid of dataset images, 200 × 66).
    let image = tmp.path().join("three.png");
    ok(&[
        "dataset",
        "preview",
        "--dataset",
        "scenes",
        "--n",
        "3",
        "--cols",
        "3",
        "--out",
        s(&image),
    ]);
    let z = tmp.path().join("z.json");
    let pair = tmp.path().join("pair.png");
    let out = ok(&[
        "encode",
        "--model",
        s(model),
        "--image",
        s(&image),
        "--out",
        s(&z),
        "--reconstruction",
        s(&pair),
    ]);
    assert!(out.contains("reconstruction mean squared error"), "{out}");
    let code: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&z).unwrap()).unwrap();
    assert_eq!(code["latent"].as_array().map(Vec::len), Some(4));
    assert!(code["reconstruction_mse"].as_f64().unwrap().is_finite());
    // The input beside its reconstruction: two 64 × 64 tiles.
    let pic = image::open(&pair).unwrap();
    assert_eq!((pic.width(), pic.height()), (2 * 64 + 2, 64));

    // traverse --z starts from the code (its first point is the code itself).
    let strip = tmp.path().join("strip.png");
    let json = tmp.path().join("walk.json");
    ok(&[
        "traverse",
        "--model",
        s(model),
        "--z",
        s(&z),
        "--k",
        "1",
        "--steps",
        "2",
        "--out",
        s(&strip),
        "--json",
        s(&json),
    ]);
    let walk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let first: Vec<f64> = walk["steps"][0]["z"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want: Vec<f64> = code["latent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (a, b) in first.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{first:?} vs {want:?}");
    }
    // export-gif --z differs from the seed's GIF.
    let gif_z = tmp.path().join("z.gif");
    let gif_seed = tmp.path().join("seed.gif");
    for (out, extra) in [(&gif_z, Some(&z)), (&gif_seed, None)] {
        let mut args = vec![
            "export-gif",
            "--model",
            s(model),
            "--k",
            "1",
            "--steps",
            "2",
            "--out",
            s(out),
        ];
        if let Some(z) = extra {
            args.extend(["--z", s(z)]);
        }
        ok(&args);
    }
    assert_ne!(
        std::fs::read(&gif_z).unwrap(),
        std::fs::read(&gif_seed).unwrap()
    );

    // Bad input: not an image, a code of another model, a broken code file.
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let e = fails(&[
        "encode",
        "--model",
        s(model),
        "--image",
        s(&text),
        "--out",
        s(&tmp.path().join("x.json")),
    ]);
    assert!(e.contains("cannot decode image"), "{e}");
    assert!(!tmp.path().join("x.json").exists());
    let other = tmp.path().join("other.json");
    let mut doc = code.clone();
    doc["generator_digest"] = "0000".into();
    std::fs::write(&other, doc.to_string()).unwrap();
    let e = fails(&[
        "traverse",
        "--model",
        s(model),
        "--z",
        s(&other),
        "--out",
        s(&strip),
        "--force",
    ]);
    assert!(e.contains("other weights"), "{e}");
    let short = tmp.path().join("short.json");
    let mut doc = code.clone();
    doc["latent"] = serde_json::json!([0.0, 1.0]);
    std::fs::write(&short, doc.to_string()).unwrap();
    let e = fails(&[
        "export-gif",
        "--model",
        s(model),
        "--z",
        s(&short),
        "--out",
        s(&tmp.path().join("y.gif")),
    ]);
    assert!(e.contains("2 values") && e.contains("4 dimensions"), "{e}");
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"latent\": [1, 2").unwrap();
    let e = fails(&[
        "traverse",
        "--model",
        s(model),
        "--z",
        s(&broken),
        "--out",
        s(&strip),
        "--force",
    ]);
    assert!(e.contains("not a latentflow latent code"), "{e}");
    // A value beyond f32 (read as infinity) and a code file too large to be one.
    let huge = tmp.path().join("huge.json");
    let mut doc = code.clone();
    doc["latent"] = serde_json::json!([1e40, 0.0, 0.0, 0.0]);
    std::fs::write(&huge, doc.to_string()).unwrap();
    let e = fails(&[
        "traverse",
        "--model",
        s(model),
        "--z",
        s(&huge),
        "--out",
        s(&strip),
        "--force",
    ]);
    assert!(e.contains("not finite"), "{e}");
    let big = tmp.path().join("big.json");
    std::fs::write(&big, vec![b' '; 2 << 20]).unwrap();
    let e = fails(&[
        "traverse",
        "--model",
        s(model),
        "--z",
        s(&big),
        "--out",
        s(&strip),
        "--force",
    ]);
    assert!(
        e.contains("latent code file") && e.contains("above the limit"),
        "{e}"
    );
    // An existing output is not replaced without --force, and only latentflow's own.
    let e = fails(&[
        "encode",
        "--model",
        s(model),
        "--image",
        s(&image),
        "--out",
        s(&text),
    ]);
    assert!(e.contains("exists"), "{e}");
}

#[test]
fn a_gan_is_inverted_by_optimisation_and_the_fit_improves() {
    let tmp = tempfile::tempdir().unwrap();
    let gan = tmp.path().join("gan");
    common::tiny_gan(&gan);
    // The target is the GAN's own image of a code, so a perfect fit exists.
    let grid = tmp.path().join("g.png");
    ok(&[
        "sample",
        "--model",
        s(&gan),
        "--n",
        "1",
        "--seed",
        "5",
        "--out",
        s(&grid),
    ]);
    let z = tmp.path().join("z.json");
    let out = latentflow(&[
        "encode",
        "--model",
        s(&gan),
        "--image",
        s(&grid),
        "--out",
        s(&z),
        "--steps",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let losses: Vec<f64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split("loss ").nth(1)?.trim().parse().ok())
        .collect();
    assert_eq!(losses.len(), 10, "progress every 6 steps");
    assert!(
        losses[9] < losses[0],
        "the inversion lowers the loss: {losses:?}"
    );
}
