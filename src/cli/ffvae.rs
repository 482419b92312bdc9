//! `latentflow train-ffvae`: the flow-factorized VAE, the VAE with wave potentials and the
//! naive baseline on transformation sequences.

use super::command_line;
use super::train::with_progress;
use crate::models::flow_vae::{Supervision, Variant};
use crate::session::device;
use crate::train::flow_vae::{FlowVaeTrainConfig, defaults as F, train_flow_vae};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `train-ffvae`.
#[derive(Debug, Args)]
pub struct TrainFfvaeArgs {
    /// sprites, scenes, folder:DIR or mnist:FILE.
    #[arg(long)]
    pub dataset: String,
    /// The transformations, comma-separated: `factors` (every ordered or cyclic factor),
    /// `images` (zoom, rotation, hue), or names (scale, rotate, hue, a factor's name).
    #[arg(long, value_delimiter = ',', default_value = "factors")]
    pub transforms: Vec<String>,
    /// flow (the flow-factorized VAE), wave (VAE + wave potentials, the first paper's
    /// §4.3) or naive (the plain ELBO on the same frames).
    #[arg(long, default_value = "flow")]
    pub variant: Variant,
    /// full (the transformation of each sequence is given) or weak (inferred by a
    /// classifier over the sequence, straight-through Gumbel-softmax).
    #[arg(long, default_value = "full")]
    pub supervision: Supervision,
    /// Number of potentials K: 0 for one per transformation (with full supervision it
    /// must be that number).
    #[arg(long, default_value_t = 0)]
    pub k: usize,
    /// Steps T per sequence (T + 1 frames); a factor needs T + 1 values.
    #[arg(long, default_value_t = F::STEPS)]
    pub steps: usize,
    /// Total iterations.
    #[arg(long, default_value_t = F::ITERS)]
    pub iters: u64,
    /// Sequences per batch.
    #[arg(long, default_value_t = F::BATCH_SIZE)]
    pub batch_size: usize,
    /// Adam learning rate of the potentials, force networks, diffusion and classifier.
    #[arg(long, default_value_t = F::LR)]
    pub lr: f64,
    /// Adam learning rate of the VAE (0: keep the --init VAE frozen and learn only the
    /// potentials, the force networks, D_k and the classifier).
    #[arg(long, default_value_t = F::VAE_LR)]
    pub vae_lr: f64,
    /// Weight of the PINN terms.
    #[arg(long, default_value_t = F::W_PINN)]
    pub w_pinn: f64,
    /// Hidden width of the potentials and force networks.
    #[arg(long, default_value_t = F::HIDDEN)]
    pub hidden: usize,
    /// Latent size of a VAE trained from scratch (--init sets it otherwise).
    #[arg(long, default_value_t = F::LATENT)]
    pub latent: usize,
    /// A trained VAE folder to start from (fine-tuning; otherwise from scratch).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = F::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Start over even if the output folder holds a run or a trained model.
    #[arg(long)]
    pub restart: bool,
}

/// The settings the flags describe (the command line left empty).
pub fn config_from_args(args: &TrainFfvaeArgs) -> FlowVaeTrainConfig {
    let mut cfg = FlowVaeTrainConfig::new(&args.dataset, args.out.clone());
    cfg.transforms = args
        .transforms
        .iter()
        .map(|t| t.trim().to_string())
        .collect();
    cfg.variant = args.variant;
    cfg.supervision = args.supervision;
    cfg.k = args.k;
    cfg.steps = args.steps;
    cfg.iters = args.iters;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.vae_lr = args.vae_lr;
    cfg.w_pinn = args.w_pinn;
    cfg.hidden = args.hidden;
    cfg.latent = args.latent;
    cfg.init = args.init.clone();
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.restart = args.restart;
    cfg
}

/// Trains, with a progress bar, and prints the final values.
pub fn train_ffvae(args: TrainFfvaeArgs) -> Result<()> {
    let mut cfg = config_from_args(&args);
    cfg.command = command_line();
    let summary = with_progress(cfg.iters, "seq/s", |cancel, report| {
        train_flow_vae(&cfg, &device()?, cancel, report).map_err(Into::into)
    })?;
    let values: Vec<String> = summary
        .metrics
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    let weak = summary
        .k_accuracy
        .map(|a| format!("; held-out k-accuracy {a:.3}"))
        .unwrap_or_default();
    println!(
        "trained {} iterations ({:.0} s in total); final: {}{weak}; wrote {}",
        summary.iterations,
        summary.elapsed_s,
        values.join(", "),
        cfg.out.display()
    );
    Ok(())
}

/// The held-out sequences both `eval equivariance` and `eval loglik` draw.
#[derive(Debug, Args)]
pub struct SequenceArgs {
    /// The model folder (a VAE trained by train-ffvae, or any VAE with --transforms).
    #[arg(long)]
    pub model: PathBuf,
    /// The transformations (default: the ones the model was trained on).
    #[arg(long, value_delimiter = ',')]
    pub transforms: Vec<String>,
    /// The dataset (default: the model's).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Steps T per sequence (default: the model's training setting).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Held-out sequences per transformation.
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Random seed choosing the sequences.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `eval equivariance`.
#[derive(Debug, Args)]
pub struct EvalEquivarianceArgs {
    #[command(flatten)]
    pub sequences: SequenceArgs,
    /// The potential set (default: the model's own potentials-ffvae or potentials-wave;
    /// none for a naive VAE, whose codes then stay at z_0).
    #[arg(long)]
    pub potentials: Option<PathBuf>,
}

/// Arguments of `eval loglik`.
#[derive(Debug, Args)]
pub struct EvalLoglikArgs {
    #[command(flatten)]
    pub sequences: SequenceArgs,
    /// Importance samples S of the IWAE bound.
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
}

/// What `eval` needs of a model trained (or not) by train-ffvae.
struct Sequences {
    generator: crate::store::LoadedGenerator,
    ds: Box<dyn crate::data::Dataset>,
    transforms: Vec<crate::data::sequence::Transform>,
    names: Vec<String>,
    steps: usize,
}

fn sequences_of(args: &SequenceArgs) -> Result<Sequences> {
    use crate::train::sequences::{resolve_transforms, transform_names};
    let (model, dataset, transforms, steps) =
        (&args.model, &args.dataset, &args.transforms, args.steps);
    let generator = crate::store::load_generator(model, &device()?)?;
    let settings = generator
        .manifest
        .training
        .as_ref()
        .map(|t| t.settings.clone())
        .unwrap_or_default();
    let dataset = match dataset
        .clone()
        .or_else(|| generator.manifest.dataset.clone())
    {
        Some(d) => d,
        None => anyhow::bail!("{} names no dataset; pass --dataset", model.display()),
    };
    let ds = crate::data::open(&dataset, crate::data::IMAGE_SIZE)?;
    let trained: Vec<String> = settings
        .get("transform_labels")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let names = if transforms.is_empty() {
        if trained.is_empty() {
            anyhow::bail!(
                "{} was not trained on transformation sequences; pass --transforms",
                model.display()
            );
        }
        trained
    } else {
        transforms.to_vec()
    };
    let steps = steps
        .or_else(|| {
            settings
                .get("steps")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
        })
        .unwrap_or(F::STEPS);
    let transforms = resolve_transforms(ds.as_ref(), &names, steps + 1)?;
    let names = transform_names(ds.as_ref(), &transforms);
    Ok(Sequences {
        generator,
        ds,
        transforms,
        names,
        steps,
    })
}

fn vae_of(s: &Sequences) -> Result<&crate::models::Vae> {
    match &s.generator.model {
        crate::models::GeneratorModel::Vae(v) => Ok(v),
        _ => anyhow::bail!(
            "{} holds a GAN; these metrics need a VAE (an encoder)",
            s.generator.dir.display()
        ),
    }
}

/// `eval equivariance`: E_k per transformation, one table and one JSON line.
pub fn eval_equivariance(args: EvalEquivarianceArgs) -> Result<()> {
    use crate::methods::potential_flow::PotentialFlow;
    let s = sequences_of(&args.sequences)?;
    let vae = vae_of(&s)?;
    let set = args.potentials.clone().or_else(|| {
        ["potentials-ffvae", "potentials-wave"]
            .iter()
            .map(|f| args.sequences.model.join(f))
            .find(|p| p.join(crate::store::MANIFEST_FILE).exists())
    });
    let dev = device()?;
    let loaded = set
        .as_ref()
        .map(|dir| crate::store::load_potentials(dir, &s.generator, &dev))
        .transpose()?;
    let flow = loaded
        .as_ref()
        .map(|l| PotentialFlow::new(l.potentials.clone()));
    let map: Vec<usize> = match &loaded {
        Some(l) => {
            let cfg = l.potentials.config();
            let have: Vec<String> = (0..cfg.k).map(|k| cfg.name(k)).collect();
            s.names
                .iter()
                .map(|n| {
                    have.iter().position(|h| h == n).ok_or_else(|| {
                        anyhow::anyhow!(
                            "the potentials in {} (K = {}: {}) have none named {n}; \
                             each transformation needs the potential named after it",
                            l.dir.display(),
                            cfg.k,
                            have.join(", ")
                        )
                    })
                })
                .collect::<Result<_>>()?
        }
        None => Vec::new(),
    };
    let eq = crate::eval::equivariance::equivariance_errors(
        vae,
        flow.as_ref()
            .map(|f| (f as &dyn crate::methods::Traversal, map.as_slice())),
        s.ds.as_ref(),
        &s.transforms,
        s.steps,
        args.sequences.n,
        args.sequences.seed,
        &dev,
    )?;
    match &loaded {
        Some(l) => println!("potentials: {}", l.dir.display()),
        None => println!("no potentials: z_t = z_0 for every t (the naive baseline)"),
    }
    let (mut json, mut floors) = (serde_json::Map::new(), serde_json::Map::new());
    println!("{:<14} {:>10} {:>10}", "", "E_k", "floor");
    for ((name, e), f) in s.names.iter().zip(&eq.error).zip(&eq.floor) {
        println!("{name:<14} {e:>10.1} {f:>10.1}");
        json.insert(name.clone(), (*e).into());
        floors.insert(name.clone(), (*f).into());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (m, mf) = (mean(&eq.error), mean(&eq.floor));
    println!("{:<14} {m:>10.1} {mf:>10.1}", "mean");
    println!(
        "{}",
        serde_json::json!({"equivariance": json, "mean": m, "floor": floors, "floor_mean": mf,
            "steps": s.steps, "n": args.sequences.n})
    );
    Ok(())
}

/// `eval loglik`: the IWAE bound on held-out original and transformed frames.
pub fn eval_loglik(args: EvalLoglikArgs) -> Result<()> {
    let s = sequences_of(&args.sequences)?;
    let vae = vae_of(&s)?;
    let (orig, trans) = crate::eval::equivariance::log_likelihoods(
        vae,
        s.ds.as_ref(),
        &s.transforms,
        s.steps,
        args.sequences.n,
        args.samples,
        args.sequences.seed,
        &device()?,
    )?;
    println!(
        "log p(x) (IWAE, S = {}): original {orig:.1}, transformed {trans:.1}",
        args.samples
    );
    println!(
        "{}",
        serde_json::json!({"loglik_original": orig, "loglik_transformed": trans,
            "samples": args.samples, "n": args.sequences.n})
    );
    Ok(())
}

/// Arguments of `bench ffvae`.
#[derive(Debug, Args)]
pub struct BenchFfvaeArgs {
    /// Sequences per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Steps T per sequence.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Number of potentials K.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// flow, wave or naive.
    #[arg(long, default_value = "flow")]
    pub variant: Variant,
    /// full or weak.
    #[arg(long, default_value = "full")]
    pub supervision: Supervision,
    /// Learning rate of the VAE (0: frozen, as the shipped comparison trains).
    #[arg(long, default_value_t = F::VAE_LR)]
    pub vae_lr: f64,
    /// Timed iterations (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
}

/// Prints `{"train_iter_ms", ...}` for one training iteration.
pub fn bench(args: BenchFfvaeArgs) -> Result<()> {
    let dev = device()?;
    let ms = crate::train::flow_vae::measure_iteration_ms(
        args.variant,
        args.supervision,
        args.vae_lr,
        args.batch,
        args.steps,
        args.k,
        args.reps,
        &dev,
    )?;
    println!(
        "{}",
        serde_json::json!({
            "train_iter_ms": ms,
            "variant": format!("{:?}", args.variant).to_lowercase(),
            "supervision": format!("{:?}", args.supervision).to_lowercase(),
            "vae": if args.vae_lr > 0.0 { "trained" } else { "frozen" },
            "batch": args.batch,
            "steps": args.steps,
            "k": args.k,
            "image": "64x64x3",
            "device": format!("{dev:?}"),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    );
    Ok(())
}
