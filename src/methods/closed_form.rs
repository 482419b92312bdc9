//! Directions found in closed form from a generator's weights, without training:
//!
//! - **SeFa** (Shen & Zhou 2021): the first layer maps z to A z + b; the directions n that
//!   change its output most, max ‖A n‖² subject to ‖n‖ = 1, are the top eigenvectors of
//!   AᵀA. As in the reference code, each output unit's weight row is normalised to unit
//!   length first, so that no unit dominates by its scale alone.
//! - **GANSpace** (Härkönen et al. 2020): the principal components of the first layer's
//!   *activations* (after its non-linearity, and its batch norm for a GAN) over codes drawn
//!   from the prior, carried back to latent directions by linear regression of z on each
//!   component's coordinate (u_k = Zᵀx_k / xₖᵀx_k: the coordinates are uncorrelated, so
//!   the regression on all of them separates into one per component).
//!
//! The numerical work is small (d ≤ a few hundred, K ≤ a few dozen) and done in f64:
//! a cyclic Jacobi eigen-solver for SeFa's d × d matrix and block power iteration for
//! GANSpace's top components (the m × m covariance of a GAN's first feature map can be
//! 8,192 wide; only Yᵀ(Y V) products are formed).

use super::first_layer::fix_sign;
pub use super::first_layer::{FirstLayer, symmetric_eigen};
use crate::models::sample_latents;
use crate::store::LoadedGenerator;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Orthonormalises the columns of `v` (m × k, column-major: one Vec per column) in place
/// by modified Gram–Schmidt.
fn orthonormalise(v: &mut [Vec<f64>]) {
    for j in 0..v.len() {
        for i in 0..j {
            let (head, tail) = v.split_at_mut(j);
            let r = dot(&head[i], &tail[0]);
            tail[0]
                .iter_mut()
                .zip(&head[i])
                .for_each(|(x, y)| *x -= r * y);
        }
        let norm = dot(&v[j], &v[j]).sqrt();
        if norm > 0.0 {
            v[j].iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// The top `k` principal axes (unit vectors, by descending variance) and their variances
/// of the rows of `y` (n × m, centred here), by block power iteration on YᵀY.
pub fn principal_axes(y: &Tensor, k: usize, iters: usize) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let (n, m) = y.dims2()?;
    if k == 0 || k > m.min(n) {
        return Err(Error::config(format!(
            "cannot find {k} principal axes of {n} samples of size {m}"
        )));
    }
    let y = y.to_dtype(DType::F64)?;
    let y = y.broadcast_sub(&y.mean_keepdim(0)?)?;
    let dev = y.device().clone();
    // A deterministic start that is not orthogonal to any axis in practice.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let start = sample_latents(
        crate::models::LatentPrior::StandardNormal,
        k,
        m,
        &mut rng,
        &dev,
    )?;
    let mut v: Vec<Vec<f64>> = start.to_dtype(DType::F64)?.to_vec2()?;
    orthonormalise(&mut v);
    let to_tensor = |v: &[Vec<f64>]| -> Result<Tensor> {
        let flat: Vec<f64> = v.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(flat, (k, m), &dev)?.t()?)
    };
    for _ in 0..iters {
        // V ← orth(Yᵀ (Y V))
        let yv = y.matmul(&to_tensor(&v)?)?;
        v = y.t()?.matmul(&yv)?.t()?.to_vec2()?;
        orthonormalise(&mut v);
    }
    // Rayleigh–Ritz: rotate the block to the eigenvectors of Vᵀ YᵀY V, so that the axes
    // come out sorted and not mixed within the block.
    let yv = y.matmul(&to_tensor(&v)?)?;
    let small: Vec<f64> = yv.t()?.matmul(&yv)?.flatten_all()?.to_vec1()?;
    let (values, rot) = symmetric_eigen(&small, k)?;
    let axes = rot
        .iter()
        .map(|r| {
            let mut a = vec![0.0; m];
            for (j, w) in r.iter().enumerate() {
                a.iter_mut().zip(&v[j]).for_each(|(x, y)| *x += w * y);
            }
            fix_sign(&mut a);
            a
        })
        .collect();
    let variances = values
        .into_iter()
        .map(|l| l / (n.max(2) - 1) as f64)
        .collect();
    Ok((variances, axes))
}

/// SeFa's top `k` directions of the first layer's weight `a` (m × d): the eigenvectors
/// of AᵀA after each row of A is scaled to unit length, with their eigenvalues.
pub fn sefa(a: &Tensor, k: usize) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let (_, d) = a.dims2()?;
    if k == 0 || k > d {
        return Err(Error::config(format!(
            "SeFa finds between 1 and {d} directions in a {d}-dimensional latent space, not {k}"
        )));
    }
    let a = a.to_dtype(DType::F64)?;
    let norms = a.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    let a = a.broadcast_div(&norms)?;
    let ata: Vec<f64> = a.t()?.matmul(&a)?.flatten_all()?.to_vec1()?;
    let (values, vectors) = symmetric_eigen(&ata, d)?;
    Ok((
        values.into_iter().take(k).collect(),
        vectors.into_iter().take(k).collect(),
    ))
}

/// GANSpace's top `k` directions from codes `z` (n, d) and their first-layer activations
/// `features` (n, m): the principal axes of the activations carried back by regressing z
/// on each axis's coordinate; returned with the share of the activations' variance each
/// axis explains.
pub fn ganspace(z: &Tensor, features: &Tensor, k: usize) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let (n, d) = z.dims2()?;
    let (_, m) = features.dims2()?;
    if k == 0 || k > d.min(m) {
        return Err(Error::config(format!(
            "GANSpace finds between 1 and {} directions here, not {k}",
            d.min(m)
        )));
    }
    if n < 2 * k.max(d) {
        return Err(Error::config(format!(
            "GANSpace needs at least {} sampled codes for {k} directions in {d} dimensions, not {n}",
            2 * k.max(d)
        )));
    }
    let (variances, axes) = principal_axes(features, k, 60)?;
    let f = features.to_dtype(DType::F64)?;
    let f = f.broadcast_sub(&f.mean_keepdim(0)?)?;
    let total: f64 = f.sqr()?.sum_all()?.to_scalar::<f64>()? / (n - 1) as f64;
    let z = z.to_dtype(DType::F64)?;
    let z = z.broadcast_sub(&z.mean_keepdim(0)?)?;
    let mut directions = Vec::with_capacity(k);
    for axis in &axes {
        let a = Tensor::from_vec(axis.clone(), (m, 1), features.device())?;
        let x = f.matmul(&a)?; // (n, 1) coordinates
        let xx = x.sqr()?.sum_all()?.to_scalar::<f64>()?;
        if xx <= 0.0 {
            return Err(Error::config("a principal component has no variance"));
        }
        let mut u: Vec<f64> = (z.t()?.matmul(&x)? / xx)?.flatten_all()?.to_vec1()?;
        let norm = dot(&u, &u).sqrt();
        u.iter_mut().for_each(|v| *v /= norm.max(f64::MIN_POSITIVE));
        directions.push(u);
    }
    let shares = variances
        .into_iter()
        .map(|v| v / total.max(f64::MIN_POSITIVE))
        .collect();
    Ok((shares, directions))
}

/// Samples `samples` codes from the generator's prior (seeded) and runs [`ganspace`] on
/// its first layer's activations.
pub fn ganspace_of(
    g: &LoadedGenerator,
    k: usize,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let layer = FirstLayer::of(g, device)?;
    let (m, _) = layer.weight.dims2()?;
    // The activations, their centred copy and the products: three n × m f64 arrays.
    crate::limits::check_memory(
        &format!("GANSpace with {samples} samples of {m} activations"),
        (samples as u64).saturating_mul(m as u64).saturating_mul(24),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = sample_latents(g.config.prior, samples, g.config.latent, &mut rng, device)?;
    let features = layer.features(&z)?;
    ganspace(&z, &features, k)
}

/// Defaults of a fit, for `fit-directions` and the app's panel: the step length (the
/// prior has unit variance per dimension: 10 steps of 0.3 move 3 standard deviations)...
pub const DEFAULT_STEP: f64 = 0.3;
/// ...GANSpace's sampled codes...
pub const DEFAULT_SAMPLES: usize = 5000;
/// ...and the seed of its codes and of `strips.png`'s code...
pub const DEFAULT_SEED: u64 = 1;
/// ...and DP-LaSE's Adam iterations.
pub const DEFAULT_ITERS: usize = 300;

/// Which method finds the directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectionMethod {
    /// Eigenvectors of the first layer's weight (closed form).
    Sefa,
    /// Principal components of the first layer's activations (closed form).
    Ganspace,
    /// Directions learned to change the first layer's activations most, decorrelated and
    /// orthonormal ([`crate::methods::dplase`]; a few seconds of Adam).
    DpLase,
}

impl std::str::FromStr for DirectionMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sefa" => Ok(Self::Sefa),
            "ganspace" => Ok(Self::Ganspace),
            "dplase" => Ok(Self::DpLase),
            other => Err(Error::config(format!(
                "unknown direction method '{other}' (sefa, ganspace or dplase)"
            ))),
        }
    }
}

impl DirectionMethod {
    /// Its name in manifests and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sefa => "sefa",
            Self::Ganspace => "ganspace",
            Self::DpLase => "dplase",
        }
    }

    /// What ranks its directions: SeFa's eigenvalues, GANSpace's shares of variance.
    pub fn score_name(self) -> &'static str {
        match self {
            Self::Sefa => "eigenvalue",
            Self::Ganspace => "variance_share",
            Self::DpLase => "feature_change",
        }
    }
}

/// A closed-form fit's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Which method.
    pub method: DirectionMethod,
    /// Number of directions K.
    pub k: usize,
    /// Length of one step along each direction.
    pub step: f64,
    /// GANSpace: codes sampled from the prior.
    pub samples: usize,
    /// GANSpace: seed of the sampled codes; DP-LaSE: of its start and batches.
    pub seed: u64,
    /// DP-LaSE: Adam iterations.
    pub iters: usize,
    /// DP-LaSE: group the first layer's channels into this many subspaces (0: no
    /// refinement) and confine the edit to [`FitConfig::subspace`].
    pub subspaces: usize,
    /// DP-LaSE: the subspace the edit is confined to (with `subspaces` > 0).
    pub subspace: usize,
}

impl FitConfig {
    /// The defaults for `method` with K directions (no subspace refinement).
    pub fn new(method: DirectionMethod, k: usize) -> Self {
        Self {
            method,
            k,
            step: DEFAULT_STEP,
            samples: DEFAULT_SAMPLES,
            seed: DEFAULT_SEED,
            iters: DEFAULT_ITERS,
            subspaces: 0,
            subspace: 0,
        }
    }
}

/// The directions (unit vectors, K × d) and, per direction, what ranks it: SeFa's
/// eigenvalue, GANSpace's share of the activations' variance.
pub fn fit(
    g: &LoadedGenerator,
    cfg: &FitConfig,
    device: &Device,
) -> Result<(Vec<Vec<f32>>, Vec<f64>)> {
    crate::limits::check_count("the number of directions", cfg.k, g.config.latent)?;
    crate::limits::check_count(
        "--samples",
        cfg.samples,
        crate::limits::MAX_CLOSED_FORM_SAMPLES,
    )?;
    if !(cfg.step.is_finite() && cfg.step > 0.0) {
        return Err(Error::config(format!(
            "the step length must be positive and finite, not {}",
            cfg.step
        )));
    }
    crate::limits::check_magnitude("the step length", cfg.step, crate::limits::MAX_STEP_SCALE)?;
    let (scores, dirs) = match cfg.method {
        DirectionMethod::Sefa => sefa(&FirstLayer::of(g, device)?.weight, cfg.k)?,
        DirectionMethod::Ganspace => ganspace_of(g, cfg.k, cfg.samples, cfg.seed, device)?,
        DirectionMethod::DpLase => {
            let layer = FirstLayer::of(g, device)?;
            let mask = if cfg.subspaces > 0 {
                if cfg.subspace >= cfg.subspaces {
                    return Err(Error::config(format!(
                        "subspace {} does not exist: there are {} (0..{})",
                        cfg.subspace,
                        cfg.subspaces,
                        cfg.subspaces - 1
                    )));
                }
                let channels = layer.channels()?;
                crate::limits::check_count(
                    "the first layer's channels for --subspaces",
                    channels,
                    1024,
                )?;
                if cfg.subspaces > channels {
                    return Err(Error::config(format!(
                        "cannot make {} groups of {channels} channels",
                        cfg.subspaces
                    )));
                }
                let labels = crate::methods::subspace::channel_groups(
                    &layer,
                    g.config.prior,
                    g.config.latent,
                    cfg.subspaces,
                    cfg.samples.min(2000),
                    cfg.seed,
                    device,
                )?;
                Some(crate::methods::subspace::group_mask(
                    &labels,
                    cfg.subspace,
                    layer.weight.dim(0)?,
                    device,
                )?)
            } else {
                None
            };
            crate::methods::dplase::train(
                &layer,
                g.config.prior,
                g.config.latent,
                &crate::methods::dplase::DpLaseConfig {
                    k: cfg.k,
                    seed: cfg.seed,
                    iters: cfg.iters,
                    ..Default::default()
                },
                mask.as_ref(),
                device,
                &mut |_, _, _| {},
            )?
        }
    };
    let dirs = dirs
        .into_iter()
        .map(|d| d.into_iter().map(|x| x as f32).collect())
        .collect();
    Ok((dirs, scores))
}

/// Fits a direction set and writes it into `out` (with `strips.png`: one walk of 10 steps
/// per direction from the code of `cfg.seed`), for `fit-directions` and the app. An
/// existing `out` must be a direction set and is replaced only with `replace`; anything
/// else there is never touched. Returns what ranks each direction (see [`fit`]).
pub fn fit_and_save(
    g: &LoadedGenerator,
    cfg: &FitConfig,
    out: &std::path::Path,
    command: &str,
    replace: bool,
    device: &Device,
) -> Result<Vec<f64>> {
    use crate::methods::PathSpec;
    use crate::store::directions::{DirectionsConfig, MODEL, save_directions};
    if out.exists() {
        let is_set = crate::store::generator::read_manifest(out).is_ok_and(|m| m.model == MODEL);
        if !is_set {
            return Err(Error::config(format!(
                "{} exists and is not a direction set; choose another folder (latentflow never \
                 replaces what it did not write)",
                out.display()
            )));
        }
        if !replace {
            return Err(Error::config(format!(
                "{} already holds a direction set; choose another folder or remove it \
                 (`fit-directions --force` replaces it)",
                out.display()
            )));
        }
    }
    crate::files::atomic::check_writable(out)?;
    let (dirs, scores) = fit(g, cfg, device)?;
    let config = DirectionsConfig {
        method: cfg.method.name().into(),
        latent: g.config.latent,
        k: cfg.k,
        step: cfg.step,
        names: Vec::new(),
    };
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("method".into(), cfg.method.name().into());
    settings.insert("k".into(), cfg.k.into());
    settings.insert("step".into(), cfg.step.into());
    settings.insert("seed".into(), cfg.seed.into());
    match cfg.method {
        DirectionMethod::Ganspace => {
            settings.insert("samples".into(), cfg.samples.into());
        }
        DirectionMethod::DpLase => {
            settings.insert("iters".into(), cfg.iters.into());
            if cfg.subspaces > 0 {
                settings.insert("subspaces".into(), cfg.subspaces.into());
                settings.insert("subspace".into(), cfg.subspace.into());
            }
        }
        DirectionMethod::Sefa => {}
    }
    settings.insert(cfg.method.score_name().into(), serde_json::json!(scores));
    save_directions(out, &config, &dirs, g, command, settings)?;
    let flow = crate::methods::open(out, g, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let z0 = sample_latents(g.config.prior, 1, g.config.latent, &mut rng, device)?;
    let steps = 10;
    let mut frames = Vec::new();
    for k in 0..flow.directions() {
        let path = flow.path(&z0, &PathSpec::single(k, steps))?;
        let z = Tensor::cat(&path.z, 0)?;
        frames.extend(crate::models::images::decode_images(&g.model, &z)?);
    }
    crate::data::image::grid(&frames, steps + 1, 2)?.save_png(&out.join("strips.png"))?;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n codes of N(0, I) in d dimensions, f64, seeded.
    fn gaussian(n: usize, d: usize, seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        sample_latents(
            crate::models::LatentPrior::StandardNormal,
            n,
            d,
            &mut rng,
            &Device::Cpu,
        )
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
    }

    #[test]
    fn jacobi_finds_a_known_eigensystem() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1 with (1, 1)/√2 and (1, −1)/√2.
        let (l, v) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!(close(&l, &[3.0, 1.0], 1e-12), "{l:?}");
        let r = 0.5f64.sqrt();
        assert!(close(&v[0], &[r, r], 1e-12), "{v:?}");
        assert!(
            close(&v[1], &[r, -r], 1e-12) || close(&v[1], &[-r, r], 1e-12),
            "{v:?}"
        );
    }

    #[test]
    fn jacobi_eigenvectors_satisfy_av_equals_lambda_v_and_are_orthonormal() {
        let n = 7;
        let b: Vec<Vec<f64>> = gaussian(n, n, 3).to_vec2().unwrap();
        let a: Vec<f64> = (0..n)
            .flat_map(|i| {
                let b = &b;
                (0..n).map(move |j| b[i][j] + b[j][i])
            })
            .collect();
        let (l, v) = symmetric_eigen(&a, n).unwrap();
        assert!(l.windows(2).all(|w| w[0] >= w[1]), "{l:?}");
        for (lambda, vec) in l.iter().zip(&v) {
            let av: Vec<f64> = (0..n).map(|i| dot(&a[i * n..(i + 1) * n], vec)).collect();
            let lv: Vec<f64> = vec.iter().map(|x| lambda * x).collect();
            assert!(close(&av, &lv, 1e-9), "{av:?} vs {lv:?}");
        }
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot(&v[i], &v[j]) - want).abs() < 1e-10);
            }
        }
        assert!(symmetric_eigen(&[1.0, f64::NAN, 0.0, 1.0], 2).is_err());
        assert!(symmetric_eigen(&[1.0, 2.0], 2).is_err());
    }

    #[test]
    fn sefa_finds_the_eigenvectors_of_the_row_normalised_weight() {
        // Rows of A, normalised: (1, 0, 0) ×2 and (0, 0.6, 0.8): AᵀA after normalisation
        // = diag(2, 0, 0) + (0, .6, .8)(0, .6, .8)ᵀ; eigenvectors e_0 (2) and
        // (0, .6, .8) (1).
        let a = Tensor::new(
            &[[5.0f64, 0., 0.], [0.5, 0., 0.], [0., 3., 4.]],
            &Device::Cpu,
        )
        .unwrap();
        let (l, v) = sefa(&a, 2).unwrap();
        assert!(close(&l, &[2.0, 1.0], 1e-12), "{l:?}");
        assert!(close(&v[0], &[1.0, 0.0, 0.0], 1e-12), "{v:?}");
        assert!(close(&v[1], &[0.0, 0.6, 0.8], 1e-12), "{v:?}");
        assert!(sefa(&a, 4).is_err());
        assert!(sefa(&a, 0).is_err());
    }

    #[test]
    fn principal_axes_of_an_anisotropic_cloud_are_its_axes_with_their_variances() {
        // Gaussian codes scaled by (3, 1, 2) along three orthonormal axes of R^4.
        let n = 20_000;
        let g = gaussian(n, 3, 7);
        let s = 0.5;
        let basis = Tensor::new(
            &[
                [3.0 * s, 3.0 * s, 3.0 * s, 3.0 * s],
                [s, -s, s, -s],
                [2.0 * s, 2.0 * s, -2.0 * s, -2.0 * s],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let y = g.matmul(&basis).unwrap();
        let (var, axes) = principal_axes(&y, 2, 60).unwrap();
        assert!(
            (var[0] - 9.0).abs() < 0.3 && (var[1] - 4.0).abs() < 0.15,
            "{var:?}"
        );
        assert!(close(&axes[0], &[0.5, 0.5, 0.5, 0.5], 0.01), "{axes:?}");
        // All four entries tie in size: the sign is the sampling noise's.
        let flipped: Vec<f64> = axes[1].iter().map(|x| -x).collect();
        let want = [0.5, 0.5, -0.5, -0.5];
        assert!(
            close(&axes[1], &want, 0.01) || close(&flipped, &want, 0.01),
            "{axes:?}"
        );
    }

    #[test]
    fn ganspace_carries_the_components_back_to_the_latent_axes_they_come_from() {
        // Features = ReLU-free linear map that stretches z_1 most, then z_0: the first
        // direction is ±e_1, the second ±e_0 (signs fixed to +).
        // Sampling noise (the codes' sample correlations, ~1/√n) tilts the answer by a few
        // hundredths.
        let n = 20_000;
        let z = gaussian(n, 3, 11);
        let w = Tensor::new(
            &[
                [2.0f64, 0., 0., 0., 0.],
                [0., 0., 5., 0., 0.],
                [0., 0., 0., 0.5, 0.],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let features = z.matmul(&w).unwrap();
        let (share, dirs) = ganspace(&z, &features, 2).unwrap();
        assert!(close(&dirs[0], &[0.0, 1.0, 0.0], 0.05), "{dirs:?}");
        assert!(close(&dirs[1], &[1.0, 0.0, 0.0], 0.05), "{dirs:?}");
        // Variance shares 25 : 4 : 0.25 of 29.25.
        assert!((share[0] - 25.0 / 29.25).abs() < 0.02, "{share:?}");
        assert!(
            ganspace(
                &z.narrow(0, 0, 4).unwrap(),
                &features.narrow(0, 0, 4).unwrap(),
                2
            )
            .is_err()
        );
    }
}
