//! Whether a method's directions are distinct: from the same starting codes, each
//! direction walks T steps, and the K×K matrix of cosines between the directions' mean
//! displacements E[z_T − z_0] shows directions that collapsed onto a shared axis (|cos|
//! near 1: the same or the opposite way). The mean path length Σ‖z_{t+1} − z_t‖ and the
//! mean displacement ‖z_T − z_0‖ per direction show walks of unequal length (which VP at a
//! fixed T compares unfairly) and how straight they are (length / displacement ≥ 1).

use crate::limits::{self, MAX_PAIRS, MAX_STEPS};
use crate::methods::{PathSpec, Traversal, check_finite_walk};
use crate::models::{LatentPrior, sample_latents};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Settings of one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct DiversityConfig {
    /// Starting codes, the same for every direction.
    pub codes: usize,
    /// Steps T.
    pub steps: usize,
    /// Seed of the starting codes.
    pub seed: u64,
    /// Multiplies every step (1: the method's own).
    pub scale: f64,
}

impl Default for DiversityConfig {
    fn default() -> Self {
        Self {
            codes: 64,
            steps: 10,
            seed: 0,
            scale: 1.0,
        }
    }
}

/// The outcome, one entry per direction (and a K×K matrix).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diversity {
    /// cos(m_k, m_j) for the mean displacements m_k = E[z_T − z_0] (0 where one is 0).
    pub cosines: Vec<Vec<f64>>,
    /// The largest |cos| off the diagonal: 1 when two directions collapsed onto one axis.
    pub max_abs_cosine: f64,
    /// E‖z_T − z_0‖.
    pub displacement: Vec<f64>,
    /// E Σ_t ‖z_{t+1} − z_t‖.
    pub path_length: Vec<f64>,
    /// path_length / displacement (1 for a straight walk).
    pub length_over_displacement: Vec<f64>,
}

/// Row norms of an (n, d) tensor, as f64.
fn row_norms(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?
        .sqr()?
        .sum(1)?
        .sqrt()?
        .to_vec1::<f64>()?)
}

/// Measures `method` from `cfg.codes` codes of `prior`.
pub fn diversity(
    method: &dyn Traversal,
    prior: LatentPrior,
    cfg: &DiversityConfig,
    device: &Device,
) -> Result<Diversity> {
    let k_total = method.directions();
    if k_total < 2 {
        return Err(Error::config(format!(
            "diversity compares directions with each other; this method has {k_total}"
        )));
    }
    diversity_any_k(method, prior, cfg, device)
}

/// [`diversity`] for any number of directions (one: a 1×1 matrix).
fn diversity_any_k(
    method: &dyn Traversal,
    prior: LatentPrior,
    cfg: &DiversityConfig,
    device: &Device,
) -> Result<Diversity> {
    let k_total = method.directions();
    if cfg.codes == 0 || cfg.steps == 0 {
        return Err(Error::config(
            "diversity needs at least one starting code and one step",
        ));
    }
    limits::check_count("--codes", cfg.codes, MAX_PAIRS)?;
    limits::check_count("--steps", cfg.steps, MAX_STEPS)?;
    let d = method.latent_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let z0 = sample_latents(prior, cfg.codes, d, &mut rng, device)?;
    let mut means = Vec::with_capacity(k_total);
    let (mut displacement, mut path_length) = (Vec::new(), Vec::new());
    for k in 0..k_total {
        let spec = PathSpec {
            scale: cfg.scale,
            ..PathSpec::single(k, cfg.steps)
        };
        spec.validate(k_total)?;
        let walk = method.walk(&z0, &spec)?;
        check_finite_walk(&walk)?;
        let (Some(first), Some(last)) = (walk.first(), walk.last()) else {
            return Err(Error::config("a walk without points"));
        };
        let delta = (last.to_dtype(DType::F64)? - first.to_dtype(DType::F64)?)?;
        means.push(delta.mean(0)?.to_vec1::<f64>()?);
        let norms = row_norms(&delta)?;
        displacement.push(norms.iter().sum::<f64>() / norms.len() as f64);
        let mut length = 0.0;
        for pair in walk.windows(2) {
            let step = (pair[1].to_dtype(DType::F64)? - pair[0].to_dtype(DType::F64)?)?;
            let norms = row_norms(&step)?;
            length += norms.iter().sum::<f64>() / norms.len() as f64;
        }
        path_length.push(length);
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut cosines = vec![vec![0.0; k_total]; k_total];
    let mut max_abs_cosine: f64 = 0.0;
    for (i, a) in means.iter().enumerate() {
        for (j, b) in means.iter().enumerate() {
            let den = norm(a) * norm(b);
            let c = if den > 0.0 {
                a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / den
            } else {
                0.0
            };
            cosines[i][j] = c;
            if i != j {
                max_abs_cosine = max_abs_cosine.max(c.abs());
            }
        }
    }
    let length_over_displacement = path_length
        .iter()
        .zip(&displacement)
        .map(|(l, d)| if *d > 0.0 { l / d } else { f64::INFINITY })
        .collect();
    Ok(Diversity {
        cosines,
        max_abs_cosine,
        displacement,
        path_length,
        length_over_displacement,
    })
}

/// The step scale at which the method's mean displacement E‖z_T − z_0‖ (over its
/// directions and `cfg.codes` codes) is `target`, and the displacement reached: a fixed
/// point of s ← s·target/d(s) from s = 1, exact in one update for straight constant-length
/// walks, within 0.1% or 20 updates otherwise. So that methods whose walks have different
/// lengths are compared at the same length (a VP score at a fixed T rewards longer walks).
pub fn scale_for_length(
    method: &dyn Traversal,
    prior: LatentPrior,
    target: f64,
    cfg: &DiversityConfig,
    device: &Device,
) -> Result<(f64, f64)> {
    if !(target.is_finite() && target > 0.0) {
        return Err(Error::config(format!(
            "the path length to match must be positive, not {target}"
        )));
    }
    let mean = |scale: f64| -> Result<f64> {
        let d = displacements(
            method,
            prior,
            &DiversityConfig {
                scale,
                ..cfg.clone()
            },
            device,
        )?;
        Ok(d.iter().sum::<f64>() / d.len() as f64)
    };
    let mut scale = 1.0;
    let mut reached = mean(scale)?;
    for _ in 0..20 {
        if reached <= 0.0 {
            return Err(Error::config(
                "the method's walks do not move: no step scale matches a path length",
            ));
        }
        if (reached - target).abs() <= 1e-3 * target {
            break;
        }
        scale *= target / reached;
        limits::check_magnitude(
            "the step scale that matches the length",
            scale,
            limits::MAX_STEP_SCALE,
        )?;
        reached = mean(scale)?;
    }
    Ok((scale, reached))
}

/// E‖z_T − z_0‖ per direction.
fn displacements(
    method: &dyn Traversal,
    prior: LatentPrior,
    cfg: &DiversityConfig,
    device: &Device,
) -> Result<Vec<f64>> {
    Ok(diversity_any_k(method, prior, cfg, device)?.displacement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{Plan, TraversalPath};

    /// Constant directions (rows of `dirs`), one step each of the given length; direction
    /// 3 turns half-way (a bent walk).
    struct Fixed {
        dirs: Vec<Vec<f32>>,
    }

    impl Traversal for Fixed {
        fn method(&self) -> String {
            "fixed".into()
        }
        fn latent_dim(&self) -> usize {
            self.dirs[0].len()
        }
        fn directions(&self) -> usize {
            self.dirs.len()
        }
        fn direction_name(&self, k: usize) -> String {
            format!("{k}")
        }
        fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
            let Plan::Single(k) = spec.plan else {
                return Err(Error::config("single directions only"));
            };
            let (n, d) = z0.dims2()?;
            let mut z = vec![z0.clone()];
            for t in 0..spec.steps {
                let mut dir = self.dirs[k].clone();
                if k == 3 && t >= spec.steps / 2 {
                    dir = self.dirs[1].clone();
                }
                let step = (Tensor::new(dir.as_slice(), z0.device())?
                    .reshape((1, d))?
                    .broadcast_as((n, d))?
                    * spec.scale)?;
                let next = (z[t].clone() + step)?;
                z.push(next);
            }
            // No per-step records: the measurement reads only the points.
            Ok(TraversalPath {
                z,
                records: Vec::new(),
            })
        }
    }

    #[test]
    fn cosines_lengths_and_bends_match_hand_computed_values() -> Result<()> {
        // 0 = +e0, 1 = +e1, 2 = −2·e0 (collapsed onto 0, the other way), 3 = e2 for 2
        // steps then e1 for 2 (length 4, displacement √8).
        let m = Fixed {
            dirs: vec![
                vec![1., 0., 0.],
                vec![0., 1., 0.],
                vec![-2., 0., 0.],
                vec![0., 0., 1.],
            ],
        };
        let cfg = DiversityConfig {
            codes: 5,
            steps: 4,
            seed: 3,
            scale: 1.0,
        };
        let r = diversity(&m, LatentPrior::StandardNormal, &cfg, &Device::Cpu)?;
        // The walks are in f32.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(close(r.cosines[0][2], -1.0) && close(r.cosines[2][0], -1.0));
        assert!(close(r.cosines[0][1], 0.0) && close(r.cosines[0][0], 1.0));
        let half = 0.5f64.sqrt();
        assert!(close(r.cosines[1][3], half), "{:?}", r.cosines);
        assert!(close(r.max_abs_cosine, 1.0));
        assert!(close(r.displacement[0], 4.0) && close(r.displacement[2], 8.0));
        assert!(close(r.path_length[2], 8.0) && close(r.path_length[3], 4.0));
        assert!(close(r.displacement[3], 8f64.sqrt()));
        assert!(close(r.length_over_displacement[0], 1.0));
        assert!(close(r.length_over_displacement[3], 4.0 / 8f64.sqrt()));
        Ok(())
    }

    #[test]
    fn the_matching_scale_of_straight_walks_is_exact() -> Result<()> {
        // Directions of length 1 and 2, T = 4: mean displacement 6 at scale 1; matching 3
        // takes scale 0.5, reached in one update.
        let m = Fixed {
            dirs: vec![vec![1., 0.], vec![0., 2.]],
        };
        let cfg = DiversityConfig {
            codes: 3,
            steps: 4,
            seed: 0,
            scale: 1.0,
        };
        let (scale, reached) =
            scale_for_length(&m, LatentPrior::StandardNormal, 3.0, &cfg, &Device::Cpu)?;
        assert!(
            (scale - 0.5).abs() < 1e-6 && (reached - 3.0).abs() < 1e-5,
            "{scale} {reached}"
        );
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(
                scale_for_length(&m, LatentPrior::StandardNormal, bad, &cfg, &Device::Cpu).is_err()
            );
        }
        Ok(())
    }

    #[test]
    fn one_direction_or_no_codes_are_errors() {
        let one = Fixed {
            dirs: vec![vec![1.0, 0.0]],
        };
        let e = diversity(
            &one,
            LatentPrior::StandardNormal,
            &DiversityConfig::default(),
            &Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("has 1"), "{e}");
        let two = Fixed {
            dirs: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        };
        let cfg = DiversityConfig {
            codes: 0,
            ..DiversityConfig::default()
        };
        let e = diversity(&two, LatentPrior::StandardNormal, &cfg, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one starting code"), "{e}");
    }
}
