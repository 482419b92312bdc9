//! DP-LaSE's density model of the data's codes from the command line: `fit-density` fits
//! the marginals and the correction network beside a VAE; `traverse` and `export-gif` keep
//! that density with `--preserve-density --data-density`; bad requests are refused.

mod common;
use common::{fails, ok, s};

#[test]
fn the_data_density_is_fitted_and_walks_keep_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::generator_copy(tmp.path());
    let fit = [
        "fit-density",
        "--model",
        s(&model),
        "--samples",
        "64",
        "--iters",
        "20",
        "--correction-iters",
        "10",
        "--components",
        "3",
        "--hidden",
        "8",
    ];
    let out = ok(&fit);
    assert!(
        out.contains("log-density gap") && out.contains("corrected"),
        "{out}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("density/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["model"], "density");
    assert!(manifest["metrics"]["gap_corrected"].is_number());
    // A second fit needs --force; the density folder is not a method.
    assert!(fails(&fit).contains("--force"));
    // A walk keeping the data's density records log p under the fitted model.
    ok(&[
        "fit-directions",
        "--generator",
        s(&model),
        "--method",
        "sefa",
        "--k",
        "2",
    ]);
    let json = tmp.path().join("walk.json");
    let sefa = model.join("directions-sefa");
    let png = tmp.path().join("walk.png");
    let walk = |extra: &[&str]| {
        let mut args = vec![
            "traverse",
            "--model",
            s(&model),
            "--potentials",
            s(&sefa),
            "--k",
            "1",
            "--steps",
            "3",
            "--out",
            s(&png),
            "--json",
            s(&json),
            "--force",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = walk(&["--preserve-density", "--data-density"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let values: Vec<f64> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_density"].as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 4);
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    // Under the prior the same series is −½‖z‖² (other values).
    let args = walk(&["--preserve-density"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let prior: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_ne!(
        prior["steps"][0]["log_density"].as_f64().unwrap(),
        values[0]
    );
    let gif = tmp.path().join("walk.gif");
    ok(&[
        "export-gif",
        "--model",
        s(&model),
        "--potentials",
        s(&model.join("directions-sefa")),
        "--steps",
        "2",
        "--preserve-density",
        "--data-density",
        "--out",
        s(&gif),
    ]);
    assert!(gif.is_file());
    // --data-density alone says what it needs.
    let args = walk(&["--data-density"]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("pass both"), "{e}");
}

#[test]
fn without_a_fit_or_without_an_encoder_the_data_density_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::generator_copy(tmp.path());
    ok(&[
        "fit-directions",
        "--generator",
        s(&model),
        "--method",
        "sefa",
        "--k",
        "2",
    ]);
    let e = fails(&[
        "traverse",
        "--model",
        s(&model),
        "--k",
        "0",
        "--steps",
        "2",
        "--preserve-density",
        "--data-density",
        "--out",
        s(&tmp.path().join("x.png")),
    ]);
    assert!(e.contains("fit-density"), "{e}");
    let gan = tmp.path().join("gan");
    common::tiny_gan(&gan);
    let e = fails(&["fit-density", "--model", s(&gan), "--samples", "32"]);
    assert!(e.contains("GAN"), "{e}");
    let e = fails(&["fit-density", "--model", s(&model), "--samples", "3"]);
    assert!(e.contains("at least 16"), "{e}");
    let e = fails(&["fit-density", "--model", s(&model), "--components", "0"]);
    assert!(e.contains("at least 1"), "{e}");
}
