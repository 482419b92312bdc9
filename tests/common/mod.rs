//! Helpers shared by the integration tests: running the binary, and a tiny model with
//! potentials built once per test binary.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Runs `latentflow` with `args`.
pub fn latentflow(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_latentflow"))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run latentflow: {e}"),
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = latentflow(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail with a one-line `error: ...` as the last line of stderr
/// (notes such as which potential set was chosen may come before it); returns that line.
pub fn fails(args: &[&str]) -> String {
    let out = latentflow(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let all = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let e = all.lines().last().unwrap_or_default().to_string();
    assert!(e.starts_with("error: "), "{args:?}: {all}");
    let notes = all.lines().rev().skip(1);
    assert!(
        notes
            .clone()
            .all(|l| l.starts_with("using the potentials in")),
        "{args:?}: {all}"
    );
    e
}

/// A path as &str.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Trains a tiny GAN (sprites, latent 4, base 8, 2 iterations) into `out`.
pub fn tiny_gan(out: &Path) {
    ok(&[
        "train-generator",
        "--dataset",
        "sprites",
        "--kind",
        "gan",
        "--latent",
        "4",
        "--base",
        "8",
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--out",
        s(out),
    ]);
}

/// A tiny scenes generator (latent 4, base 8) with 3 tiny PDE potentials in
/// `potentials-pde`, trained once per test binary.
pub fn tiny_model() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("m");
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
            "2",
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
            "3",
            "--batch-size",
            "3",
            "--hidden",
            "8",
            "--time-dim",
            "4",
            "--seed",
            "2",
        ]);
        (tmp, dir)
    });
    dir
}

/// A copy of the tiny model's generator alone (no potentials) in `parent/m`.
pub fn generator_copy(parent: &Path) -> PathBuf {
    let dir = parent.join("m");
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    for f in ["manifest.json", "model.safetensors"] {
        std::fs::copy(tiny_model().join(f), dir.join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

/// Waits up to two minutes for the worker event `pick` accepts.
pub fn wait_for<T>(
    w: &latentflow::worker::Worker,
    mut pick: impl FnMut(latentflow::worker::Event) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if let Some(e) = w.recv_timeout(std::time::Duration::from_millis(100))
            && let Some(t) = pick(e)
        {
            return t;
        }
    }
    panic!("timed out waiting for the worker");
}
