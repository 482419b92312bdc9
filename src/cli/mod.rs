//! The command line: clap definitions and one function per subcommand. Long work shows an
//! indicatif progress bar; every command that draws random numbers takes `--seed`.

mod bench;
mod dataset;
mod directions;
mod eval;
mod export;
mod ffvae;
mod import;
mod potentials;
mod protocol;
mod sample;
mod train;
mod warped;

pub use crate::app::AppArgs;
use crate::models::GeneratorKind;
use crate::train::factors::defaults as F;
use crate::train::generator::defaults as G;
use crate::train::ode::defaults as O;
use crate::train::potentials::defaults as D;
use crate::train::warped::defaults as W;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Explore the latent spaces of generative models with learned potential flows.
///
/// Run with no subcommand to open the desktop app on the shipped default model.
#[derive(Debug, Parser)]
#[command(name = "latentflow", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the desktop app (the default when no subcommand is given).
    App(AppArgs),
    /// Inspect the procedural datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Train a generator (VAE or GAN) on a dataset; resumes an interrupted run.
    TrainGenerator(TrainGeneratorArgs),
    /// Decode latent codes drawn from the prior into a PNG grid.
    Sample(SampleArgs),
    /// Convert a PyTorch state dict of a built-in architecture into a model folder.
    ImportPth(ImportPthArgs),
    /// Train potentials (PDE traversal or the linear baseline) on a frozen generator.
    TrainPotentials(TrainPotentialsArgs),
    /// Train WarpedSpace's curved paths (sums of RBFs whose normalised gradients are the
    /// steps) on a frozen generator; resumes an interrupted run.
    TrainWarped(TrainWarpedArgs),
    /// Train NeuralODE editing's vector fields (one per factor, integrated by RK4) on a
    /// frozen generator with the factor regressor as the attribute regressor.
    TrainOde(TrainOdeArgs),
    /// Train the flow-factorized VAE (Hamilton–Jacobi potentials learned with the VAE on
    /// transformation sequences, supervised or weakly supervised), the VAE with wave
    /// potentials, or the naive baseline; resumes an interrupted run.
    TrainFfvae(ffvae::TrainFfvaeArgs),
    /// Train a factor regressor (reads a procedural dataset's factors off an image) for
    /// `eval factors`.
    TrainFactors(TrainFactorsArgs),
    /// Find latent directions from the generator's first layer: in closed form (SeFa:
    /// eigenvectors of its weight; GANSpace: principal components of its activations) or
    /// learned in seconds (DP-LaSE: the largest decorrelated changes of its activations).
    FitDirections(FitDirectionsArgs),
    /// Fit DP-LaSE's density model of the data's codes (a VAE's posterior means of its
    /// dataset): per-dimension monotone CDFs and a correction network, for walks that keep
    /// the data's density (`--preserve-density --density DIR`, the app's "data" toggle).
    FitDensity(FitDensityArgs),
    /// Find the latent code of your own image (PNG/JPEG, any size) and save it as JSON,
    /// for `traverse --z` and `export-gif --z`.
    Encode(EncodeArgs),
    /// Walk a latent code along learned potentials; save the image strip (and values).
    Traverse(TraverseArgs),
    /// Export a traversal as an animated GIF (with the app state embedded).
    ExportGif(ExportGifArgs),
    /// Evaluate traversals.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Measure speed and print one JSON line.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Save a grid of dataset images as PNG.
    Preview(PreviewArgs),
}

/// Arguments of `dataset preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// sprites, scenes, folder:DIR or mnist:FILE.
    #[arg(long)]
    pub dataset: String,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Images per row.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Random seed choosing the images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Transformation sequences instead of single images: one row per sequence
    /// (scale, rotate, hue, or a factor name such as orientation).
    #[arg(long)]
    pub sequence: Option<String>,
    /// Frames per sequence (T + 1).
    #[arg(long, default_value_t = 9)]
    pub frames: usize,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists (only a file latentflow wrote is ever replaced).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `train-generator`.
#[derive(Debug, Args)]
pub struct TrainGeneratorArgs {
    /// sprites, scenes, folder:DIR or mnist:FILE.
    #[arg(long)]
    pub dataset: String,
    /// Architecture.
    #[arg(long, default_value = "vae", value_parser = parse_kind)]
    pub kind: GeneratorKind,
    /// Latent size.
    #[arg(long, default_value_t = G::LATENT)]
    pub latent: usize,
    /// Width of the first convolution (default: 32 for a VAE, 64 for a GAN).
    #[arg(long)]
    pub base: Option<usize>,
    /// Total iterations (an interrupted run continues up to this).
    #[arg(long, default_value_t = G::ITERS)]
    pub iters: u64,
    /// Images per batch.
    #[arg(long, default_value_t = G::BATCH_SIZE)]
    pub batch_size: usize,
    /// Learning rate (default: 1e-3 VAE, 2e-4 GAN).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight of the KL term (VAE).
    #[arg(long, default_value_t = G::BETA)]
    pub beta: f64,
    /// Iterations over which the KL weight rises from 0 to --beta (0: no warm-up).
    #[arg(long, default_value_t = G::KL_WARMUP)]
    pub kl_warmup: u64,
    /// Random seed.
    #[arg(long, default_value_t = G::SEED)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = G::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Start over, replacing a run or model in --out.
    #[arg(long)]
    pub restart: bool,
    /// Output model folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Images per row (default: √n rounded up).
    #[arg(long)]
    pub cols: Option<usize>,
    /// Random seed for the latent codes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Nearest-neighbour upscaling factor.
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists (only a file latentflow wrote is ever replaced).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `import-pth`.
#[derive(Debug, Args)]
pub struct ImportPthArgs {
    /// The PyTorch state dict (`torch.save(model.state_dict(), path)`).
    #[arg(long)]
    pub pth: PathBuf,
    /// Architecture.
    #[arg(long, value_parser = parse_kind)]
    pub kind: GeneratorKind,
    /// Latent size.
    #[arg(long)]
    pub latent: usize,
    /// Image channels (1 or 3).
    #[arg(long)]
    pub channels: usize,
    /// Width of the first convolution.
    #[arg(long)]
    pub base: usize,
    /// Image side.
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Output model folder (must not hold a model yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `train-potentials`.
#[derive(Debug, Args)]
pub struct TrainPotentialsArgs {
    /// The generator folder (kept frozen).
    #[arg(long)]
    pub generator: PathBuf,
    /// pde (the wave-equation potentials) or linear (the baseline).
    #[arg(long, default_value = "pde")]
    pub kind: String,
    /// Number of potentials K.
    #[arg(long, default_value_t = D::K)]
    pub k: usize,
    /// Steps T per traversal.
    #[arg(long, default_value_t = D::STEPS)]
    pub steps: usize,
    /// Total iterations (an interrupted run continues up to this).
    #[arg(long, default_value_t = D::ITERS)]
    pub iters: u64,
    /// Latent codes per batch.
    #[arg(long, default_value_t = D::BATCH_SIZE)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = D::LR)]
    pub lr: f64,
    /// Weight of the initial condition L_u.
    #[arg(long, default_value_t = D::W_U)]
    pub w_u: f64,
    /// Weight of the wave-equation residual L_f.
    #[arg(long, default_value_t = D::W_F)]
    pub w_f: f64,
    /// Weight of the Jacobian term L_J (default: 1 with --jacobian log, 0.02 with squared,
    /// whose norm over all pixels is large).
    #[arg(long)]
    pub w_j: Option<f64>,
    /// Weight of the classifier loss L_k.
    #[arg(long, default_value_t = D::W_K)]
    pub w_k: f64,
    /// Weight of the diversity term L_d (mean squared cosine between different
    /// potentials' mean steps; the same term for both kinds; 0 turns it off).
    #[arg(long, default_value_t = D::W_D)]
    pub w_d: f64,
    /// Also train negative traversals (z − ∇u), labelled like the positive ones.
    #[arg(long)]
    pub negative: bool,
    /// Groups per batch, each with its own potential (1 = one k per batch, as in the paper).
    #[arg(long, default_value_t = D::GROUPS)]
    pub groups: usize,
    /// The Jacobian term: log (−log ‖J ∇u‖², the default: it does not let the gradients
    /// collapse to zero) or squared (−‖J ∇u‖², the paper's).
    #[arg(long, default_value = "log", value_parser = ["log", "squared"])]
    pub jacobian: String,
    /// Same as --jacobian log (kept so recorded commands stay valid).
    #[arg(long, hide = true)]
    pub log_jacobian: bool,
    /// Where the Jacobian term is evaluated: next ((z_{t+1}, t+1), as the reference code)
    /// or current ((z_t, t), including t = 0, where the initial condition wants ∇u = 0).
    #[arg(long, default_value = "next", value_parser = ["current", "next"])]
    pub jacobian_at: String,
    /// Keep the gradient through the last S steps of the roll-out to z_t (0: none, only the
    /// step at z_t is trained by the PDE, Jacobian and classifier terms).
    #[arg(long, default_value_t = 0)]
    pub grad_steps: usize,
    /// Iterations at the start in which only the classifier learns.
    #[arg(long, default_value_t = 0)]
    pub classifier_warmup: u64,
    /// Where the diversity term L_d is measured: steps (the mean single step at the
    /// batch's points) or walks (the mean displacement of 8 codes walked T steps by every
    /// potential, as `eval diversity` measures; slower).
    #[arg(long, default_value = "steps", value_parser = ["steps", "walks"])]
    pub diversity_on: String,
    /// Hidden width of each potential.
    #[arg(long, default_value_t = D::HIDDEN)]
    pub hidden: usize,
    /// Size of the sinusoidal time embedding.
    #[arg(long, default_value_t = D::TIME_DIM)]
    pub time_dim: usize,
    /// Leave out the final tanh (unbounded potentials).
    #[arg(long)]
    pub no_final_tanh: bool,
    /// Step length of linear potentials.
    #[arg(long, default_value_t = D::LINEAR_STEP)]
    pub linear_step: f64,
    /// Keep the wave speeds above this floor (c_k = floor + softplus(ρ_k), the floor in
    /// [0, 1)), or `off`: free speeds, which drift towards 0.
    #[arg(long, default_value_t = D::WAVE_SPEED_FLOOR.to_string())]
    pub wave_speed_floor: String,
    /// Random seed.
    #[arg(long, default_value_t = D::SEED)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = D::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Start over, replacing a run or potentials in the output folder.
    #[arg(long)]
    pub restart: bool,
    /// Output folder (default: GENERATOR/potentials-KIND).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A generator folder and one of its potential sets, as `traverse`, `export-gif` and
/// `eval vp` take them.
#[derive(Debug, Args)]
pub struct PotentialSource {
    /// Generator folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Potential folder (default: the first inside the model folder).
    #[arg(long)]
    pub potentials: Option<PathBuf>,
}

/// Arguments of `traverse`.
#[derive(Debug, Args)]
pub struct TraverseArgs {
    /// The generator and its potentials.
    #[command(flatten)]
    pub source: PotentialSource,
    /// Which potential.
    #[arg(long, default_value_t = 0)]
    pub k: usize,
    /// Number of steps T.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Seed of the starting code z_0.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from this latent code (a JSON file from `encode`) instead of the seed's.
    #[arg(long)]
    pub z: Option<PathBuf>,
    /// Move against the flow (z − ∇u).
    #[arg(long)]
    pub negative: bool,
    /// Density-preserving walk: every point keeps z_0's log-density under the N(0, I)
    /// prior (the code is rescaled to ‖z_0‖ after each step).
    #[arg(long)]
    pub preserve_density: bool,
    /// With --preserve-density: keep the log-density under the model's fitted density of
    /// its data's codes (the `density` folder `fit-density` writes) instead of the prior's.
    #[arg(long)]
    pub data_density: bool,
    /// Switch to this potential at --switch-at.
    #[arg(long)]
    pub switch_to: Option<usize>,
    /// Step at which to switch (default: T/2).
    #[arg(long)]
    pub switch_at: Option<usize>,
    /// Superpose potentials with weights, e.g. 0:1.0,2:0.5 (replaces --k).
    #[arg(long)]
    pub superpose: Option<String>,
    /// Multiplies every step.
    #[arg(long, default_value_t = 1.0)]
    pub step_scale: f64,
    /// Nearest-neighbour upscaling of the strip.
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Output PNG strip.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write per-step values (t, z, u, grad_norm, du_dt, d2u_dt2, laplacian, residual).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace --out and --json if they exist (only files latentflow wrote are ever
    /// replaced).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The generator folder.
    #[arg(long)]
    pub model: PathBuf,
    /// The image (PNG, JPEG, ...; centre-cropped to a square and resized to the model's
    /// input).
    #[arg(long)]
    pub image: PathBuf,
    /// Output latent code (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Also save the model's input (the cropped, resized image) beside its reconstruction
    /// G(z), to judge the fit.
    #[arg(long)]
    pub reconstruction: Option<PathBuf>,
    /// GAN inversion: Adam steps (a VAE uses its encoder).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// GAN inversion: learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Replace --out and --reconstruction if they exist (only files latentflow wrote).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `export-gif`.
#[derive(Debug, Args)]
pub struct ExportGifArgs {
    /// The generator and its potentials.
    #[command(flatten)]
    pub source: PotentialSource,
    /// Which potential.
    #[arg(long, default_value_t = 0)]
    pub k: usize,
    /// Number of steps T (T + 1 frames, or 2T with --ping-pong).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Move against the flow.
    #[arg(long)]
    pub negative: bool,
    /// Density-preserving walk (see `traverse --preserve-density`).
    #[arg(long)]
    pub preserve_density: bool,
    /// With --preserve-density: keep the data's density (see `traverse --data-density`).
    #[arg(long)]
    pub data_density: bool,
    /// Seed of z_0 (a grid uses seed, seed + 1, ...).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from this latent code (a JSON file from `encode`) instead of the seed's (the
    /// other tiles of a grid use seed + 1, ...).
    #[arg(long)]
    pub z: Option<PathBuf>,
    /// Starting codes side by side.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 12)]
    pub fps: u32,
    /// Play forwards then backwards.
    #[arg(long)]
    pub ping_pong: bool,
    /// Nearest-neighbour upscaling.
    #[arg(long, default_value_t = 4)]
    pub scale: usize,
    /// Output GIF.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists (only a file latentflow wrote is ever replaced).
    #[arg(long)]
    pub force: bool,
}

/// `eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// VP score: accuracy of a small CNN telling which potential made (x_0, x_T).
    Vp(EvalVpArgs),
    /// What density-preserving walks do to image quality at large step sizes: a VAE's
    /// round-trip error of the end images, with and without.
    Quality(EvalQualityArgs),
    /// Every method of a generator scored by one protocol (VP at a matched path length,
    /// diversity, factor score); a table, and CSV/Markdown files.
    Compare(EvalCompareArgs),
    /// Whether the directions are distinct: cosines between their mean displacements,
    /// path lengths and straightness, wave speeds.
    Diversity(EvalDiversityArgs),
    /// Which ground-truth factors each direction changes (K × F matrix), read by a factor
    /// regressor; the share of change on each direction's main factor.
    Factors(EvalFactorsArgs),
    /// Equivariance error of a flow-factorized (or any) VAE per transformation: how far the
    /// decoded flow from x_0 is from the true sequence, Σ_t Σ_pixels |x_t − Decode(z_t)|.
    Equivariance(ffvae::EvalEquivarianceArgs),
    /// Log-likelihood of a VAE by importance sampling (IWAE bound) on held-out original and
    /// transformed frames.
    Loglik(ffvae::EvalLoglikArgs),
}

/// Arguments of `fit-directions`.
#[derive(Debug, Args)]
pub struct FitDirectionsArgs {
    /// The generator folder.
    #[arg(long)]
    pub generator: PathBuf,
    /// sefa, ganspace or dplase.
    #[arg(long)]
    pub method: String,
    /// Number of directions (at most the latent size).
    #[arg(long, default_value_t = 6)]
    pub k: usize,
    /// Length of one step along each direction, in latent units (the prior has unit
    /// variance per dimension: 10 steps of 0.3 move 3 standard deviations).
    #[arg(long, default_value_t = crate::methods::closed_form::DEFAULT_STEP)]
    pub step: f64,
    /// GANSpace: codes sampled from the prior (DP-LaSE with --subspaces: the codes that
    /// group the channels, at most 2,000 of them).
    #[arg(long, default_value_t = crate::methods::closed_form::DEFAULT_SAMPLES)]
    pub samples: usize,
    /// GANSpace: seed of the sampled codes; DP-LaSE: of its start and batches (and the
    /// code of `strips.png`).
    #[arg(long, default_value_t = crate::methods::closed_form::DEFAULT_SEED)]
    pub seed: u64,
    /// DP-LaSE: Adam iterations.
    #[arg(long, default_value_t = crate::methods::closed_form::DEFAULT_ITERS)]
    pub iters: usize,
    /// DP-LaSE: group the first layer's channels into this many subspaces (self-expressive
    /// coefficients, spectral clustering) and confine the edit to --subspace (0: none).
    #[arg(long, default_value_t = 0)]
    pub subspaces: usize,
    /// DP-LaSE with --subspaces: the subspace the edit is confined to.
    #[arg(long, default_value_t = 0)]
    pub subspace: usize,
    /// Output folder (default: GENERATOR/directions-METHOD).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a direction set already in the output folder.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `fit-density`.
#[derive(Debug, Args)]
pub struct FitDensityArgs {
    /// The generator folder (a VAE).
    #[arg(long)]
    pub model: PathBuf,
    /// Logistic components per dimension.
    #[arg(long, default_value_t = 8)]
    pub components: usize,
    /// Hidden width of the correction network.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Dataset images encoded.
    #[arg(long, default_value_t = 4096)]
    pub samples: usize,
    /// Adam iterations of the marginals.
    #[arg(long, default_value_t = 500)]
    pub iters: usize,
    /// Adam iterations of the correction network.
    #[arg(long, default_value_t = 1500)]
    pub correction_iters: usize,
    /// Seed of the images and the walks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (default: MODEL/density).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a density model already there.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `train-warped`.
#[derive(Debug, Args)]
pub struct TrainWarpedArgs {
    /// The generator folder (kept frozen).
    #[arg(long)]
    pub generator: PathBuf,
    /// Number of paths K (at least 2).
    #[arg(long, default_value_t = W::K)]
    pub k: usize,
    /// Dipoles (antipodal pairs of support vectors) per path.
    #[arg(long, default_value_t = W::DIPOLES)]
    pub dipoles: usize,
    /// Total iterations.
    #[arg(long, default_value_t = W::ITERS)]
    pub iters: u64,
    /// Latent codes per batch.
    #[arg(long, default_value_t = W::BATCH_SIZE)]
    pub batch_size: usize,
    /// Adam learning rate of the support vectors and γ.
    #[arg(long, default_value_t = W::LR)]
    pub lr: f64,
    /// Adam learning rate of the reconstructor.
    #[arg(long, default_value_t = W::RECONSTRUCTOR_LR)]
    pub reconstructor_lr: f64,
    /// Smallest training shift |ε| (latent units).
    #[arg(long, default_value_t = W::MIN_SHIFT)]
    pub min_shift: f64,
    /// Largest training shift |ε|.
    #[arg(long, default_value_t = W::MAX_SHIFT)]
    pub max_shift: f64,
    /// Weight λ of the shift penalty |ε̂ − ε|.
    #[arg(long, default_value_t = W::W_SHIFT)]
    pub w_shift: f64,
    /// Length of one traversal step of the trained set.
    #[arg(long, default_value_t = W::STEP)]
    pub step: f64,
    /// Random seed.
    #[arg(long, default_value_t = W::SEED)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = W::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Output folder (default: GENERATOR/warped).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over even if the output folder holds a run or a trained set.
    #[arg(long)]
    pub restart: bool,
}

/// Arguments of `train-ode`.
#[derive(Debug, Args)]
pub struct TrainOdeArgs {
    /// The generator folder (kept frozen).
    #[arg(long)]
    pub generator: PathBuf,
    /// The factor regressor (kept frozen; default: DATASET-factors beside the generator).
    #[arg(long)]
    pub regressor: Option<PathBuf>,
    /// The factors to edit, comma-separated, one field each (default: every ordered or
    /// cyclic factor the regressor reads with held-out accuracy ≥ 0.5).
    #[arg(long, value_delimiter = ',')]
    pub factors: Vec<String>,
    /// Hidden layers of each field: 1 to 3, or 0 for constant fields (the linear variant).
    #[arg(long, default_value_t = O::DEPTH)]
    pub depth: usize,
    /// Width of the hidden layers.
    #[arg(long, default_value_t = O::HIDDEN)]
    pub hidden: usize,
    /// Total iterations.
    #[arg(long, default_value_t = O::ITERS)]
    pub iters: u64,
    /// Latent codes per batch.
    #[arg(long, default_value_t = O::BATCH_SIZE)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = O::LR)]
    pub lr: f64,
    /// Shortest end time of a training integration (time = path length).
    #[arg(long, default_value_t = O::MIN_TIME)]
    pub min_time: f64,
    /// Longest end time.
    #[arg(long, default_value_t = O::MAX_TIME)]
    pub max_time: f64,
    /// Change of the edited factor per unit of time, as a fraction of its range.
    #[arg(long, default_value_t = O::RATE)]
    pub rate: f64,
    /// Weight of the term that keeps the other factors.
    #[arg(long, default_value_t = O::W_KEEP)]
    pub w_keep: f64,
    /// Fields per batch.
    #[arg(long, default_value_t = O::GROUPS)]
    pub groups: usize,
    /// RK4 steps per unit of time.
    #[arg(long, default_value_t = O::SUBSTEPS)]
    pub substeps: usize,
    /// Time one traversal step of the trained set integrates.
    #[arg(long, default_value_t = O::STEP)]
    pub step: f64,
    /// Random seed.
    #[arg(long, default_value_t = O::SEED)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = O::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Output folder (default: GENERATOR/ode, or GENERATOR/ode-linear with --depth 0).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over even if the output folder holds a run or a trained set.
    #[arg(long)]
    pub restart: bool,
}

/// Arguments of `train-factors`.
#[derive(Debug, Args)]
pub struct TrainFactorsArgs {
    /// The dataset: scenes or sprites (one with known factors).
    #[arg(long)]
    pub dataset: String,
    /// Total iterations (an interrupted run continues up to this).
    #[arg(long, default_value_t = F::ITERS)]
    pub iters: u64,
    /// Images per batch.
    #[arg(long, default_value_t = F::BATCH_SIZE)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = F::LR)]
    pub lr: f64,
    /// Random seed.
    #[arg(long, default_value_t = F::SEED)]
    pub seed: u64,
    /// Iterations between checkpoints.
    #[arg(long, default_value_t = F::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Start over, replacing a run or regressor in the output folder.
    #[arg(long)]
    pub restart: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `eval factors`.
#[derive(Debug, Args)]
pub struct EvalFactorsArgs {
    /// The generator and its potentials.
    #[command(flatten)]
    pub source: PotentialSource,
    /// The factor regressor folder (default: DATASET-factors beside the model folder,
    /// DATASET being the generator's).
    #[arg(long)]
    pub regressor: Option<PathBuf>,
    /// Starting codes z_0 (the same for every direction).
    #[arg(long, default_value_t = 256)]
    pub codes: usize,
    /// Steps T.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Seed of the starting codes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rescale every step so that the mean ‖z_T − z_0‖ is this (compares methods at one
    /// path length; default: each method's own steps).
    #[arg(long)]
    pub match_length: Option<f64>,
}

/// Arguments of `eval diversity`.
#[derive(Debug, Args)]
pub struct EvalDiversityArgs {
    /// The generator and its potentials.
    #[command(flatten)]
    pub source: PotentialSource,
    /// Starting codes z_0 (the same for every direction).
    #[arg(long, default_value_t = 64)]
    pub codes: usize,
    /// Steps T.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Seed of the starting codes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `eval vp`.
#[derive(Debug, Args)]
pub struct EvalVpArgs {
    /// The generator and its potentials.
    #[command(flatten)]
    pub source: PotentialSource,
    /// The VP score's settings.
    #[command(flatten)]
    pub vp: VpArgs,
    /// Rescale the steps so that the mean ‖z_T − z_0‖ is this length (compare methods at
    /// one path length; default: each method's own steps).
    #[arg(long)]
    pub match_length: Option<f64>,
}

/// The VP score's settings, shared by `eval vp` and `eval compare`.
#[derive(Debug, Args)]
pub struct VpArgs {
    /// Number of labelled pairs (10% train, 90% test).
    #[arg(long, default_value_t = 10000)]
    pub pairs: usize,
    /// Steps T from x_0 to x_T.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Training epochs of the CNN.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Random seeds of the CNN (the score is averaged over them).
    #[arg(long, default_value = "0", value_delimiter = ',')]
    pub seeds: Vec<u64>,
}

impl VpArgs {
    /// Checks the seeds (one at least, a bounded number).
    pub fn check(&self) -> crate::Result<()> {
        if self.seeds.is_empty() {
            return Err(crate::Error::config("--seeds needs at least one seed"));
        }
        crate::limits::check_count(
            "the number of --seeds",
            self.seeds.len(),
            crate::limits::MAX_EVAL_SEEDS,
        )
    }

    /// The VP settings for classifier seed `seed`, walks scaled by `scale`.
    pub fn config(&self, seed: u64, scale: f64) -> crate::eval::vp::VpConfig {
        crate::eval::vp::VpConfig {
            pairs: self.pairs,
            steps: self.steps,
            epochs: self.epochs,
            seed,
            scale,
            ..crate::eval::vp::VpConfig::default()
        }
    }
}

/// Arguments of `eval quality`.
#[derive(Debug, Args)]
pub struct EvalQualityArgs {
    /// The generator (a VAE) and the method.
    #[command(flatten)]
    pub source: PotentialSource,
    /// Step scales to measure.
    #[arg(long, default_value = "1,2,4,8", value_delimiter = ',')]
    pub scales: Vec<f64>,
    /// Steps T of every walk.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Starting codes (each walked along every direction).
    #[arg(long, default_value_t = 64)]
    pub codes: usize,
    /// Seed of the codes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `eval compare`.
#[derive(Debug, Args)]
pub struct EvalCompareArgs {
    /// The generator folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Method folders to compare (default: every method of the model, as the app lists
    /// them). Several folders of one method (its training seeds) are summarised as mean ±
    /// std.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<PathBuf>,
    /// The VP score's settings (and the steps of every walk).
    #[command(flatten)]
    pub vp: VpArgs,
    /// The mean ‖z_T − z_0‖ every method is rescaled to for the VP score.
    #[arg(long, default_value_t = 4.0)]
    pub vp_length: f64,
    /// The same for the factor score (a small edit: at length 4 every factor changes
    /// about as much as between two random images).
    #[arg(long, default_value_t = 1.0)]
    pub factor_length: f64,
    /// Starting codes of the factor score and the C/D curves.
    #[arg(long, default_value_t = 256)]
    pub codes: usize,
    /// The matched path lengths of the Control/Disentanglement curves (increasing; the
    /// control column is the longest one's).
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2,4")]
    pub cd_lengths: Vec<f64>,
    /// Leave the VP column out (its classifier is the slow part): the other columns only.
    #[arg(long)]
    pub skip_vp: bool,
    /// Make the runs first, into this folder: every trainable method (PDE, linear,
    /// WarpedSpace, NeuralODE) trained with one budget and the --train-seeds, SeFa fitted,
    /// GANSpace and DP-LaSE fitted with each seed; runs already there are kept (an
    /// interrupted one resumes). Then compare them (instead of --methods).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// With --train: the training seeds of every method.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub train_seeds: Vec<u64>,
    /// With --train: iterations of every trained method.
    #[arg(long, default_value_t = 1000)]
    pub train_iters: u64,
    /// With --train: codes per batch of every trained method.
    #[arg(long, default_value_t = 16)]
    pub train_batch: usize,
    /// With --train: directions K of every method (NeuralODE has one field per factor).
    #[arg(long, default_value_t = 6)]
    pub k: usize,
    /// With --train: leave NeuralODE out (it needs a factor regressor beside the model).
    #[arg(long)]
    pub no_ode: bool,
    /// Factor regressor (default: DATASET-factors beside the model folder; without one
    /// the factor columns stay empty).
    #[arg(long)]
    pub regressor: Option<PathBuf>,
    /// Write the per-folder rows as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the summary table as Markdown.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Replace --csv / --markdown files latentflow wrote before.
    #[arg(long)]
    pub force: bool,
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Decode latency (batch 1 and 32) and training throughput of a generator.
    Generator(BenchGeneratorArgs),
    /// Potential derivatives, a training iteration and a traversal frame.
    Potentials(BenchPotentialsArgs),
    /// Slider change to new frame in the app (headless egui context) and UI frame time.
    App(BenchAppArgs),
    /// latentflow and PyTorch side by side on the same VAE, same machine, one run: decode
    /// latency and training throughput, and their ratios.
    Compare(BenchCompareArgs),
    /// One training iteration of the flow-factorized VAE (and its variants) on random
    /// sequences of the scenes VAE's size.
    Ffvae(ffvae::BenchFfvaeArgs),
}

/// Arguments of `bench compare`.
#[derive(Debug, Args)]
pub struct BenchCompareArgs {
    /// Model folder whose architecture both sides run (default: the shipped scenes VAE;
    /// the weights do not matter).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Python interpreter with PyTorch installed.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// The PyTorch script (default: benches/pytorch/generator.py of the source tree).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Rounds, each latentflow then PyTorch; the median round of each is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Timed repetitions per figure and round.
    #[arg(long, default_value_t = 30)]
    pub reps: usize,
    /// Also compare one potential-training iteration (`train_iter_ms`, see `bench
    /// potentials`) against benches/pytorch/potentials.py; adds ~10 s per round.
    #[arg(long)]
    pub potentials: bool,
    /// The PyTorch script of `--potentials` (default: benches/pytorch/potentials.py of the
    /// source tree).
    #[arg(long, requires = "potentials")]
    pub potentials_script: Option<PathBuf>,
}

/// Arguments of `bench generator`.
#[derive(Debug, Args)]
pub struct BenchGeneratorArgs {
    /// Model folder (default: the shipped scenes VAE).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Timed repetitions per figure.
    #[arg(long, default_value_t = 50)]
    pub reps: usize,
}

/// Arguments of `bench app`.
#[derive(Debug, Args)]
pub struct BenchAppArgs {
    /// Model folder (default: the shipped scenes VAE).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Slider changes to time.
    #[arg(long, default_value_t = 60)]
    pub reps: usize,
    /// Time them while a potential training job (the panel's defaults) runs in the
    /// background, as a user would (its output goes to a temporary folder, removed after).
    #[arg(long)]
    pub while_training: bool,
}

/// Arguments of `bench potentials`.
#[derive(Debug, Args)]
pub struct BenchPotentialsArgs {
    /// Model folder for `frame_ms` (default: the shipped scenes VAE).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Timed repetitions per figure (at least 10).
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
}

fn parse_kind(s: &str) -> Result<GeneratorKind, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

/// The command line as typed, for manifests.
/// The program is recorded as `latentflow` whatever path it was started from.
pub fn command_line() -> String {
    std::iter::once("latentflow".to_string())
        .chain(std::env::args().skip(1))
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => crate::app::run(AppArgs::default()),
        Some(Command::App(args)) => crate::app::run(args),
        Some(Command::Dataset(DatasetCommand::Preview(args))) => dataset::preview(args),
        Some(Command::TrainGenerator(args)) => train::train_generator(args),
        Some(Command::Sample(args)) => sample::sample(args),
        Some(Command::ImportPth(args)) => import::import_pth(args),
        Some(Command::Bench(BenchCommand::Generator(args))) => bench::generator(args),
        Some(Command::Bench(BenchCommand::Potentials(args))) => bench::potentials(args),
        Some(Command::Bench(BenchCommand::App(args))) => bench::app(args),
        Some(Command::Bench(BenchCommand::Compare(args))) => bench::compare(args),
        Some(Command::Bench(BenchCommand::Ffvae(args))) => ffvae::bench(args),
        Some(Command::TrainPotentials(args)) => potentials::train_potentials(args),
        Some(Command::Encode(args)) => sample::encode(args),
        Some(Command::Traverse(args)) => potentials::traverse(args),
        Some(Command::ExportGif(args)) => export::export_gif_cmd(args),
        Some(Command::Eval(EvalCommand::Vp(args))) => eval::vp(args),
        Some(Command::Eval(EvalCommand::Diversity(args))) => eval::diversity(args),
        Some(Command::Eval(EvalCommand::Compare(args))) => eval::compare(args),
        Some(Command::Eval(EvalCommand::Quality(args))) => eval::quality(args),
        Some(Command::Eval(EvalCommand::Factors(args))) => eval::factors(args),
        Some(Command::Eval(EvalCommand::Equivariance(args))) => ffvae::eval_equivariance(args),
        Some(Command::Eval(EvalCommand::Loglik(args))) => ffvae::eval_loglik(args),
        Some(Command::TrainFactors(args)) => train::train_factors(args),
        Some(Command::TrainWarped(args)) => warped::train_warped(args),
        Some(Command::TrainOde(args)) => warped::train_ode(args),
        Some(Command::TrainFfvae(args)) => ffvae::train_ffvae(args),
        Some(Command::FitDirections(args)) => directions::fit_directions(args),
        Some(Command::FitDensity(args)) => directions::fit_density(args),
    }
}
