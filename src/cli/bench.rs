//! `latentflow bench`: speed figures as one JSON line.

use super::BenchGeneratorArgs;
use crate::bench::decode_ms;
use crate::session::device;
use crate::store::{default_model_dir, load_generator};
use crate::train::generator::{measure_compute_throughput, measure_train_throughput};
use anyhow::{Context, Result};

/// Prints `{"decode_ms_b1", "decode_ms_b32", "train_img_per_s",
/// "train_compute_img_per_s", ...}` for a model: training with data (batches of 64
/// rendered images) and without (one fixed batch of 32, what a PyTorch script of the same
/// network measures).
pub fn generator(args: BenchGeneratorArgs) -> Result<()> {
    let dev = device()?;
    let dir = args.model.unwrap_or_else(default_model_dir);
    let t = std::time::Instant::now();
    let g = load_generator(&dir, &dev)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let reps = args.reps.max(1);
    let b1 = decode_ms(&g.model, 1, reps, &dev)?;
    let b32 = decode_ms(&g.model, 32, reps.div_ceil(5), &dev)?;
    let dataset = g
        .manifest
        .dataset
        .clone()
        .context("the manifest names no dataset")?;
    let train = measure_train_throughput(&g.config, &dataset, 64, 5, &dev)?;
    let compute = measure_compute_throughput(&g.config, 32, 10, &dev)?;
    let line = serde_json::json!({
        "model": dir.display().to_string(),
        "device": format!("{dev:?}"),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_ms": load_ms,
        "decode_ms_b1": b1,
        "decode_ms_b32": b32,
        "train_img_per_s": train,
        "train_compute_img_per_s": compute,
    });
    println!("{line}");
    Ok(())
}

/// Prints `{"derivs_ms", "train_iter_ms", "frame_ms", ...}`.
pub fn potentials(args: super::BenchPotentialsArgs) -> Result<()> {
    use crate::methods::PotentialFlow;
    use crate::models::potential::{PotentialConfig, PotentialKind, Potentials};
    let dev = device()?;
    let reps = args.reps.max(10);
    let figures = crate::bench::potential_bench(reps, &dev)?;
    let dir = args.model.unwrap_or_else(default_model_dir);
    let model = crate::session::load_model(&dir, &dev)?;
    let g = &model.generator;
    // The shipped PDE potentials when there are some (load_model lists them first); fresh
    // ones of the default size otherwise (the time does not depend on the trained values).
    let fresh;
    let (flow, source): (&dyn crate::methods::Traversal, String) = match model.methods.first() {
        Some((info, flow)) => (flow.as_ref(), info.dir.display().to_string()),
        None => {
            fresh = PotentialFlow::new(Potentials::new(
                &crate::nn::Params::new(0, &dev),
                &PotentialConfig::new(PotentialKind::Pde, 8, g.config.latent),
            )?);
            (&fresh, "fresh".to_string())
        }
    };
    let frame = crate::bench::frame_ms(&g.model, flow, 10, reps, &dev)?;
    let mut line = serde_json::to_value(&figures)?;
    if let Some(m) = line.as_object_mut() {
        m.insert("frame_ms".into(), frame.into());
        m.insert(
            "laplacian_speedup".into(),
            (figures.laplacian_backward_ms / figures.laplacian_forward_ms).into(),
        );
        m.insert("model".into(), dir.display().to_string().into());
        m.insert("potentials".into(), source.into());
        m.insert(
            "threads".into(),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .into(),
        );
    }
    println!("{line}");
    Ok(())
}

/// Prints `{"slider_to_frame_ms_p50", "slider_to_frame_ms_p95", "ui_frame_ms_p50", ...}`:
/// the real app in a headless egui context, a slider moved once per measurement, timed
/// from the request being sent to the frame's textures being updated.
pub fn app(args: super::BenchAppArgs) -> Result<()> {
    use crate::app::App;
    use std::time::{Duration, Instant};
    let dir = args.model.unwrap_or_else(default_model_dir);
    let ctx = eframe::egui::Context::default();
    let mut app = App::new(&ctx, dir.clone());
    let run = |app: &mut App| {
        let t = Instant::now();
        let input = eframe::egui::RawInput {
            screen_rect: Some(eframe::egui::Rect::from_min_size(
                eframe::egui::Pos2::ZERO,
                eframe::egui::vec2(1280.0, 860.0),
            )),
            ..Default::default()
        };
        let out = ctx.run_ui(input, |ui| app.frame_ui(ui));
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        t.elapsed().as_secs_f64() * 1e3
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.methods.is_empty() || app.frame.is_none() {
        if Instant::now() > deadline {
            anyhow::bail!("{}: no frame within 60 s: {}", dir.display(), app.status);
        }
        run(&mut app);
        std::thread::sleep(Duration::from_millis(2));
    }
    // The background load: the training panel's job on the same model.
    let scratch = std::env::temp_dir().join(format!("latentflow-bench-app-{}", std::process::id()));
    if args.while_training {
        let mut cfg = crate::train::potentials::PotentialTrainConfig::new(
            dir.clone(),
            scratch.join("potentials"),
        );
        cfg.k = 6;
        cfg.iters = 1_000_000;
        cfg.log_every = 5;
        cfg.checkpoint_every = 1_000_000;
        app.send_command(crate::worker::Command::Train(Box::new(
            crate::train::TrainJob::Potentials(cfg),
        )));
        while app.training_history_len() == 0 {
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the background training did not start: {}",
                    app.training_message()
                );
            }
            run(&mut app);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut latencies = Vec::new();
    let mut ui_ms = Vec::new();
    for i in 0..args.reps.max(10) {
        let before = app.frame.as_ref().map_or(0, |f| f.generation);
        app.state.sliders[0] = (i % 20) as f64 * 0.5 - 5.0 + 0.25;
        let t = Instant::now();
        ui_ms.push(run(&mut app));
        while app.frame.as_ref().map_or(0, |f| f.generation) == before {
            if t.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("no frame within 10 s: {}", app.status);
            }
            std::thread::sleep(Duration::from_micros(200));
            ui_ms.push(run(&mut app));
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let trained = app.training_history_len();
    if args.while_training {
        app.send_command(crate::worker::Command::CancelTraining);
        let t = Instant::now();
        // Wait for the job to stop before its folder is removed.
        while app.training_running() && t.elapsed() < Duration::from_secs(30) {
            run(&mut app);
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let pct = |xs: &mut Vec<f64>, p: f64| {
        xs.sort_by(|a, b| a.total_cmp(b));
        xs[((xs.len() - 1) as f64 * p).round() as usize]
    };
    let line = serde_json::json!({
        "model": dir.display().to_string(),
        "slider_to_frame_ms_p50": pct(&mut latencies, 0.5),
        "slider_to_frame_ms_p95": pct(&mut latencies, 0.95),
        "ui_frame_ms_p50": pct(&mut ui_ms, 0.5),
        "ui_frame_ms_p95": pct(&mut ui_ms, 0.95),
        "while_training": args.while_training,
        "training_points_logged": trained,
        "note": "UI frame time: egui layout and tessellation on the CPU, without GPU painting",
    });
    println!("{line}");
    Ok(())
}

/// The figures `bench compare` puts side by side, in the keys both sides print.
const COMPARED: [(&str, bool); 3] = [
    ("decode_ms_b1", true),
    ("decode_ms_b32", true),
    ("train_img_per_s", false),
];

/// The figure `bench compare --potentials` adds.
const COMPARED_POTENTIALS: (&str, bool) = ("train_iter_ms", true);

/// Runs a PyTorch script and reads the JSON line it prints last.
fn run_script(
    python: &std::path::Path,
    script: &std::path::Path,
    args: &[String],
) -> Result<serde_json::Value> {
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "cannot run {}; pass --python with PyTorch installed",
                python.display()
            )
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "the PyTorch script {} failed (is torch installed for {}?): {}",
            script.display(),
            python.display(),
            err.lines().last().unwrap_or("no message")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(line)
        .with_context(|| format!("{} printed no JSON line: {line}", script.display()))
}

/// Prints latentflow's and PyTorch's figures for one VAE architecture and their ratios,
/// a table on stderr and one JSON line on stdout. Every ratio is latentflow's time over
/// PyTorch's (for throughput, PyTorch's images per second over latentflow's): below 1,
/// latentflow is faster.
pub fn compare(args: super::BenchCompareArgs) -> Result<()> {
    use crate::limits;
    use crate::models::GeneratorKind;
    limits::check_count("--rounds", args.rounds, 100)?;
    limits::check_count("--reps", args.reps, 10_000)?;
    let dev = device()?;
    let dir = args.model.unwrap_or_else(default_model_dir);
    let g = load_generator(&dir, &dev)?;
    let c = g.config.clone();
    if c.kind != GeneratorKind::Vae {
        anyhow::bail!(
            "bench compare runs the VAE architecture; {} holds a {:?}",
            dir.display(),
            c.kind
        );
    }
    let script = args.script.unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pytorch/generator.py")
    });
    if !script.is_file() {
        anyhow::bail!("{} is not there; pass --script", script.display());
    }
    let potentials_script = args.potentials_script.clone().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pytorch/potentials.py")
    });
    if args.potentials && !potentials_script.is_file() {
        anyhow::bail!(
            "--potentials needs {}, which is not there; pass --potentials-script",
            potentials_script.display()
        );
    }
    // Fail at once, not after the first round, when the interpreter cannot be started.
    std::process::Command::new(&args.python)
        .args(["-c", ""])
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| {
            format!(
                "cannot run {}; pass --python with PyTorch installed",
                args.python.display()
            )
        })?;
    let threads = candle_core::utils::get_num_threads();
    let reps = args.reps.max(3);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..args.rounds.max(1) {
        eprintln!("round {}/{}: latentflow", round + 1, args.rounds.max(1));
        let mut mine = serde_json::json!({
            "decode_ms_b1": decode_ms(&g.model, 1, reps, &dev)?,
            "decode_ms_b32": decode_ms(&g.model, 32, reps.div_ceil(5), &dev)?,
            "train_img_per_s": measure_compute_throughput(&c, 32, reps.div_ceil(3), &dev)?,
        });
        let iter_reps = reps.div_ceil(10).max(3);
        if args.potentials {
            mine[COMPARED_POTENTIALS.0] = crate::bench::train_iter_ms(iter_reps, &dev)?.into();
        }
        ours.push(mine);
        eprintln!("round {}/{}: PyTorch", round + 1, args.rounds.max(1));
        let common = [
            "--reps".to_string(),
            reps.to_string(),
            "--threads".to_string(),
            threads.to_string(),
        ];
        let mut generator_args: Vec<String> = [
            "--latent",
            &c.latent.to_string(),
            "--base",
            &c.base.to_string(),
            "--channels",
            &c.channels.to_string(),
            "--size",
            &c.image_size.to_string(),
            "--batch",
            "32",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        generator_args.extend(common.iter().cloned());
        let mut theirs_now = run_script(&args.python, &script, &generator_args)?;
        if args.potentials {
            let iter_args = [
                "--reps".to_string(),
                iter_reps.to_string(),
                "--threads".to_string(),
                threads.to_string(),
            ];
            let pot = run_script(&args.python, &potentials_script, &iter_args)?;
            theirs_now[COMPARED_POTENTIALS.0] = pot[COMPARED_POTENTIALS.0].clone();
        }
        theirs.push(theirs_now);
    }
    let median_of = |runs: &[serde_json::Value], key: &str| -> Result<f64> {
        let mut xs = runs
            .iter()
            .map(|r| r[key].as_f64().context(format!("no {key} in {r}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::bench::median(&mut xs))
    };
    let mut lf = serde_json::Map::new();
    let mut pt = serde_json::Map::new();
    let mut ratio = serde_json::Map::new();
    eprintln!(
        "{:<18} {:>12} {:>12} {:>8}",
        "figure", "latentflow", "PyTorch", "ratio"
    );
    let extra = args.potentials.then_some(COMPARED_POTENTIALS);
    for (key, is_time) in COMPARED.into_iter().chain(extra) {
        let (a, b) = (median_of(&ours, key)?, median_of(&theirs, key)?);
        let r = if is_time { a / b } else { b / a };
        eprintln!("{key:<18} {a:>12.3} {b:>12.3} {r:>8.2}");
        lf.insert(key.into(), a.into());
        pt.insert(key.into(), b.into());
        ratio.insert(key.into(), r.into());
    }
    let framework = theirs
        .first()
        .and_then(|t| t["framework"].as_str())
        .unwrap_or("pytorch")
        .to_string();
    let line = serde_json::json!({
        "model": dir.display().to_string(),
        "threads": threads,
        "rounds": args.rounds.max(1),
        "latentflow": lf,
        "pytorch": pt,
        "pytorch_version": framework,
        "ratio_latentflow_over_pytorch": ratio,
    });
    println!("{line}");
    Ok(())
}
