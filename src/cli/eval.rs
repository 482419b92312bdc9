//! `latentflow eval vp`, `eval diversity` and `eval factors`.

use super::potentials::resolve_potentials;
use super::{EvalDiversityArgs, EvalFactorsArgs, EvalVpArgs};
use crate::eval::vp::vp_score;
use crate::methods::Traversal;
use crate::session::device;
use crate::store::load_generator;
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Prints the VP score (mean and per seed) as one JSON line.
pub fn vp(args: EvalVpArgs) -> Result<()> {
    args.vp.check()?;
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let flow = crate::methods::open(&pot_dir, &g, &dev)?;
    let matched = matched_scale(&g, flow.as_ref(), args.match_length, args.vp.steps, &dev)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut scores = Vec::new();
    for &seed in &args.vp.seeds {
        let cfg = args
            .vp
            .config(seed, matched.map_or(1.0, |(scale, _)| scale));
        bar.set_message(format!("seed {seed}"));
        let r = vp_score(&g.model, flow.as_ref(), &cfg, &dev, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        scores.push(r.accuracy);
    }
    bar.finish_and_clear();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    let line = serde_json::json!({
        "model": args.source.model.display().to_string(),
        "potentials": pot_dir.display().to_string(),
        "method": flow.method(),
        "k": flow.directions(),
        "pairs": args.vp.pairs,
        "steps": args.vp.steps,
        "seeds": args.vp.seeds,
        "vp": scores,
        "vp_mean": mean,
        "vp_std": std,
        "chance": 1.0 / flow.directions() as f64,
        "step_scale": matched.map_or(1.0, |(scale, _)| scale),
        "mean_displacement": matched.map(|(_, reached)| reached),
    });
    println!("{line}");
    Ok(())
}

/// Prints the diversity of a set of directions as one JSON line, and a table of it on
/// stderr: the K×K cosines between mean displacements, the largest off the diagonal, the
/// mean displacement, path length and straightness per direction, and the wave speeds
/// |c_k| of a PDE set.
pub fn diversity(args: EvalDiversityArgs) -> Result<()> {
    use crate::eval::diversity::{DiversityConfig, diversity};
    use crate::models::Generator;
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let flow = crate::methods::open(&pot_dir, &g, &dev)?;
    // The wave speeds |c_k| of a PDE set (other methods have none).
    let speeds: Option<Vec<f64>> = match flow.potentials() {
        Some(p) if p.config().kind == crate::models::potential::PotentialKind::Pde => Some(
            p.speeds()?
                .to_dtype(candle_core::DType::F64)?
                .abs()?
                .to_vec1::<f64>()?,
        ),
        _ => None,
    };
    let cfg = DiversityConfig {
        codes: args.codes,
        steps: args.steps,
        seed: args.seed,
        scale: 1.0,
    };
    let r = diversity(flow.as_ref(), g.model.prior(), &cfg, &dev)?;
    eprintln!(
        "{} ({}, K = {}): largest |cos| between mean displacements {:.3}",
        pot_dir.display(),
        flow.method(),
        flow.directions(),
        r.max_abs_cosine
    );
    eprintln!("  k  displacement  path length  length/displacement  cosines with 0..K");
    for k in 0..flow.directions() {
        let row: Vec<String> = r.cosines[k].iter().map(|c| format!("{c:+.2}")).collect();
        eprintln!(
            "{k:3}  {:12.3}  {:11.3}  {:19.3}  {}",
            r.displacement[k],
            r.path_length[k],
            r.length_over_displacement[k],
            row.join(" ")
        );
    }
    let mut line = serde_json::to_value(&r)?;
    if let Some(m) = line.as_object_mut() {
        m.insert(
            "model".into(),
            args.source.model.display().to_string().into(),
        );
        m.insert("potentials".into(), pot_dir.display().to_string().into());
        m.insert("method".into(), flow.method().into());
        m.insert("k".into(), flow.directions().into());
        m.insert("codes".into(), args.codes.into());
        m.insert("steps".into(), args.steps.into());
        m.insert("seed".into(), args.seed.into());
        m.insert("wave_speeds".into(), serde_json::to_value(speeds)?);
    }
    println!("{line}");
    Ok(())
}

/// The step scale that gives the mean path length `target` (256 codes, seed 0) and the
/// length reached, when a length is asked for.
fn matched_scale(
    g: &crate::store::LoadedGenerator,
    flow: &dyn Traversal,
    target: Option<f64>,
    steps: usize,
    dev: &candle_core::Device,
) -> Result<Option<(f64, f64)>> {
    use crate::eval::diversity::{DiversityConfig, scale_for_length};
    use crate::models::Generator;
    let Some(target) = target else {
        return Ok(None);
    };
    let cfg = DiversityConfig {
        codes: 256,
        steps,
        ..DiversityConfig::default()
    };
    Ok(Some(scale_for_length(
        flow,
        g.model.prior(),
        target,
        &cfg,
        dev,
    )?))
}

/// Prints the factor score as one JSON line, and the K × F matrix of factor changes on
/// stderr.
pub fn factors(args: EvalFactorsArgs) -> Result<()> {
    use crate::eval::factors::{FactorScoreConfig, factor_score};
    use crate::train::factors::load_factor_regressor;
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let flow = crate::methods::open(&pot_dir, &g, &dev)?;
    let dataset = g.manifest.dataset.clone();
    let reg_dir = match (&args.regressor, &dataset) {
        (Some(dir), _) => dir.clone(),
        (None, Some(name)) => {
            crate::train::factors::default_regressor_dir(&args.source.model, name)
        }
        (None, None) => bail!(
            "{} does not say which dataset it was trained on; pass --regressor",
            args.source.model.display()
        ),
    };
    if !reg_dir.is_dir() {
        bail!(
            "no factor regressor in {}: train one with `latentflow train-factors --dataset {} \
             --out {}` or pass --regressor",
            reg_dir.display(),
            dataset.as_deref().unwrap_or("DATASET"),
            reg_dir.display()
        );
    }
    let reg = load_factor_regressor(&reg_dir, &dev)?;
    if let (Some(a), Some(b)) = (&reg.dataset, &dataset)
        && a != b
    {
        bail!(
            "the factor regressor in {} reads the factors of {a}, but the generator was trained \
             on {b}",
            reg_dir.display()
        );
    }
    let matched = matched_scale(&g, flow.as_ref(), args.match_length, args.steps, &dev)?;
    let cfg = FactorScoreConfig {
        codes: args.codes,
        steps: args.steps,
        scale: matched.map_or(1.0, |(scale, _)| scale),
        seed: args.seed,
    };
    let r = factor_score(&g.model, flow.as_ref(), &reg.model, &cfg, &dev)?;
    eprintln!(
        "{} ({}, K = {}): mean share of change on the main factor {:.3}, {} distinct main factors",
        pot_dir.display(),
        flow.method(),
        flow.directions(),
        r.mean_share,
        r.distinct_main_factors
    );
    let names: Vec<String> = r.factors.iter().map(|f| format!("{f:>11}")).collect();
    eprintln!("  k  main         share  {}", names.join(" "));
    for k in 0..flow.directions() {
        let row: Vec<String> = r.changes[k].iter().map(|c| format!("{c:11.3}")).collect();
        eprintln!(
            "{k:3}  {:<11}  {:5.3}  {}",
            r.main_factor[k],
            r.share[k],
            row.join(" ")
        );
    }
    let mut line = serde_json::to_value(&r)?;
    if let Some(m) = line.as_object_mut() {
        m.insert(
            "model".into(),
            args.source.model.display().to_string().into(),
        );
        m.insert("potentials".into(), pot_dir.display().to_string().into());
        m.insert("regressor".into(), reg_dir.display().to_string().into());
        m.insert("method".into(), flow.method().into());
        m.insert("k".into(), flow.directions().into());
        m.insert("codes".into(), args.codes.into());
        m.insert("steps".into(), args.steps.into());
        m.insert("seed".into(), args.seed.into());
        m.insert("step_scale".into(), matched.map_or(1.0, |(s, _)| s).into());
        m.insert("mean_displacement".into(), matched.map(|(_, d)| d).into());
    }
    println!("{line}");
    Ok(())
}

/// Scores every method of a generator by one protocol and prints the summary table.
pub fn compare(args: super::EvalCompareArgs) -> Result<()> {
    use crate::eval::compare::{Row, csv, markdown, summarise};
    use crate::eval::control::cd_curves;
    use crate::eval::diversity::{DiversityConfig, diversity};
    use crate::eval::factors::{FactorScoreConfig, factor_score};
    use crate::files::output::{FileKind, check_file, text_mark};
    use crate::models::Generator;
    use crate::train::factors::load_factor_regressor;
    args.vp.check()?;
    if args.cd_lengths.is_empty()
        || args.cd_lengths.iter().any(|l| !(l.is_finite() && *l > 0.0))
        || args.cd_lengths.windows(2).any(|w| w[1] <= w[0])
    {
        bail!("--cd-lengths takes increasing positive path lengths, such as 0.5,1,2,4");
    }
    crate::limits::check_count("--cd-lengths", args.cd_lengths.len(), 64)?;
    for (flag, path) in [("--csv", &args.csv), ("--markdown", &args.markdown)] {
        if let Some(p) = path {
            check_file(p, FileKind::Text, args.force)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
    }
    let dev = device()?;
    let g = load_generator(&args.model, &dev)?;
    let dirs = match (&args.train, args.methods.is_empty()) {
        (Some(_), false) => bail!("--train makes the folders to compare: leave out --methods"),
        (Some(work), true) => super::protocol::train_all(&args, work, &g, &dev)?,
        (None, true) => crate::store::find_methods(&args.model),
        (None, false) => args.methods.clone(),
    };
    if dirs.is_empty() {
        bail!(
            "{} has no methods to compare: train potentials (`latentflow train-potentials`) or \
             fit directions (`latentflow fit-directions`) first, or pass --methods",
            args.model.display()
        );
    }
    // Every method is opened before any is scored: a broken folder fails at once.
    let flows = dirs
        .iter()
        .map(|d| {
            crate::methods::open(d, &g, &dev).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let regressor = match (&args.regressor, &g.manifest.dataset) {
        (Some(dir), _) => Some(load_factor_regressor(dir, &dev)?),
        (None, Some(name)) => {
            let dir = crate::train::factors::default_regressor_dir(&args.model, name);
            if dir.is_dir() {
                Some(load_factor_regressor(&dir, &dev)?)
            } else {
                eprintln!(
                    "no factor regressor in {}: the factor columns stay empty (`latentflow \
                     train-factors --dataset {name} --out {}` trains one)",
                    dir.display(),
                    dir.display()
                );
                None
            }
        }
        (None, None) => None,
    };
    let mut rows = Vec::new();
    for (dir, flow) in dirs.iter().zip(&flows) {
        let flow = flow.as_ref();
        eprintln!("{} ({}): scoring…", dir.display(), flow.method());
        let div = diversity(
            flow,
            g.model.prior(),
            &DiversityConfig {
                steps: args.vp.steps,
                ..DiversityConfig::default()
            },
            &dev,
        )?;
        let vp_scale = matched_scale(&g, flow, Some(args.vp_length), args.vp.steps, &dev)?
            .map_or(1.0, |(s, _)| s);
        let vp = if args.skip_vp {
            None
        } else {
            let mut vps = Vec::new();
            for &seed in &args.vp.seeds {
                let cfg = args.vp.config(seed, vp_scale);
                vps.push(vp_score(&g.model, flow, &cfg, &dev, &mut |_, _| {})?.accuracy);
            }
            Some(vps.iter().sum::<f64>() / vps.len() as f64)
        };
        let scale_at = |length: f64| -> Result<f64> {
            Ok(matched_scale(&g, flow, Some(length), args.vp.steps, &dev)?.map_or(1.0, |(s, _)| s))
        };
        let (share, distinct, control, cd_auc) = match &regressor {
            Some(reg) => {
                let cfg = FactorScoreConfig {
                    codes: args.codes,
                    steps: args.vp.steps,
                    scale: scale_at(args.factor_length)?,
                    seed: 0,
                };
                let r = factor_score(&g.model, flow, &reg.model, &cfg, &dev)?;
                let scales = args
                    .cd_lengths
                    .iter()
                    .map(|&l| scale_at(l))
                    .collect::<Result<Vec<_>>>()?;
                let cd = cd_curves(
                    &g.model,
                    flow,
                    &reg.model,
                    &args.cd_lengths,
                    &scales,
                    args.vp.steps,
                    args.codes,
                    &dev,
                )?;
                (
                    Some(r.mean_share),
                    Some(r.distinct_main_factors),
                    Some(cd.control),
                    Some(cd.auc),
                )
            }
            None => (None, None, None, None),
        };
        let row = Row {
            method: flow.method(),
            dir: dir.display().to_string(),
            k: flow.directions(),
            vp,
            max_cos: div.max_abs_cosine,
            share,
            distinct,
            control,
            cd_auc,
            step_scale: vp_scale,
        };
        eprintln!(
            "  VP {}, max|cos| {:.3}{}{}",
            row.vp.map_or("–".to_string(), |v| format!("{v:.4}")),
            row.max_cos,
            row.share
                .map_or(String::new(), |s| format!(", factor share {s:.3}")),
            match (row.control, row.cd_auc) {
                (Some(c), Some(a)) => format!(", control {c:.3}, C/D AUC {a:.3}"),
                _ => String::new(),
            }
        );
        rows.push(row);
    }
    let table = markdown(&summarise(&rows));
    print!("{table}");
    if let Some(p) = &args.markdown {
        let text = format!(
            "{}\n{table}\n{} on {}: VP at mean path length {}, {} pairs, classifier seeds {:?}; \
             factor score at length {}; C/D curves at lengths {:?}.\n",
            text_mark(true),
            crate::cli::command_line(),
            args.model.display(),
            args.vp_length,
            args.vp.pairs,
            args.vp.seeds,
            args.factor_length,
            args.cd_lengths
        );
        crate::files::atomic::write(p, text.as_bytes())?;
    }
    if let Some(p) = &args.csv {
        let text = format!("{}\n{}", text_mark(false), csv(&rows));
        crate::files::atomic::write(p, text.as_bytes())?;
    }
    Ok(())
}

/// Prints the round-trip errors with and without density preservation per step scale:
/// a table on stderr, one JSON line on stdout.
pub fn quality(args: super::EvalQualityArgs) -> Result<()> {
    use crate::eval::quality::{QualityConfig, density_quality};
    for s in &args.scales {
        crate::limits::check_magnitude("a step scale", *s, crate::limits::MAX_STEP_SCALE)?;
    }
    crate::limits::check_count("--steps", args.steps, crate::limits::MAX_STEPS)?;
    let dev = device()?;
    let g = load_generator(&args.source.model, &dev)?;
    let pot_dir = resolve_potentials(&args.source.model, args.source.potentials.clone())?;
    let flow = crate::methods::open(&pot_dir, &g, &dev)?;
    let cfg = QualityConfig {
        scales: args.scales.clone(),
        steps: args.steps,
        codes: args.codes,
        seed: args.seed,
    };
    let rows = density_quality(&g.model, flow.as_ref(), &cfg, &dev)?;
    eprintln!(
        "{} ({}): round-trip error of G(z_T) (mean squared, per value), {} codes × {} directions, T = {}",
        pot_dir.display(),
        flow.method(),
        args.codes,
        flow.directions(),
        args.steps
    );
    eprintln!("  scale  plain walk  density-preserving  ‖z_T‖/‖z_0‖ (plain)");
    for r in &rows {
        eprintln!(
            "{:7.2}  {:10.5}  {:18.5}  {:20.2}",
            r.scale, r.error_plain, r.error_preserving, r.norm_ratio_plain
        );
    }
    let line = serde_json::json!({
        "model": args.source.model.display().to_string(),
        "potentials": pot_dir.display().to_string(),
        "method": flow.method(),
        "steps": args.steps,
        "codes": args.codes,
        "seed": args.seed,
        "rows": rows,
    });
    println!("{line}");
    Ok(())
}
