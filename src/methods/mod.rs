//! Traversal methods behind one [`Traversal`] trait: given latent codes z_0, a plan (which
//! direction, switching, superposition) and a step count, produce the path z_0..z_T and
//! what each step measured. The app, the CLI and the evaluation all go through it.

pub mod closed_form;
pub mod directions;
pub mod dplase;
pub mod first_layer;
pub mod ode;
pub mod potential_flow;
pub mod subspace;
pub mod warped;

pub use directions::Directions;
pub use ode::OdeFlow;
pub use potential_flow::PotentialFlow;
pub use warped::WarpedFlow;

use crate::limits::{self, MAX_STEP_SCALE, MAX_STEPS};
use crate::{Error, Result};
use candle_core::Tensor;
use serde::Serialize;

/// Which directions move the code at each step.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Direction `k` at every step.
    Single(usize),
    /// Direction `k` for the first `at` steps, then `then`.
    Switch {
        /// First direction.
        k: usize,
        /// Second direction.
        then: usize,
        /// Steps taken with the first.
        at: usize,
    },
    /// z_{t+1} = z_t + Σ_k w_k ∇u^k(z_t, t), any weights.
    Superpose(Vec<(usize, f64)>),
    /// Explicit weights per step (step i uses entry i; the last entry repeats).
    Schedule(Vec<Vec<(usize, f64)>>),
}

impl Plan {
    /// The (direction, weight) pairs active at step `step`.
    pub fn active(&self, step: usize) -> Vec<(usize, f64)> {
        match self {
            Plan::Single(k) => vec![(*k, 1.0)],
            Plan::Switch { k, then, at } => vec![(if step < *at { *k } else { *then }, 1.0)],
            Plan::Superpose(w) => w.clone(),
            Plan::Schedule(s) => s.get(step).or(s.last()).cloned().unwrap_or_default(),
        }
    }

    /// The time of each of the T + 1 points of a `steps`-step walk: t_0 = 0, and each step
    /// advances it by its length: 1, or in a schedule the largest fraction active in that
    /// step (a slider at 2.3 ends at t = 2.3, not 3).
    pub fn point_times(&self, steps: usize) -> Vec<f64> {
        let mut times = vec![0.0];
        for step in 0..steps {
            let length = match self {
                Plan::Schedule(_) => self
                    .active(step)
                    .iter()
                    .fold(0.0f64, |m, (_, w)| m.max(w.abs())),
                _ => 1.0,
            };
            times.push(times[step] + length);
        }
        times
    }

    /// The (direction, weight) pairs whose values a record of step `step` sums: the
    /// weights of [`Plan::active`], except that a schedule's shortened step still follows
    /// the whole potential (weight ±1): its fraction is how far the step goes, not how much
    /// of u^k there is (a linear potential's ‖∇u‖ stays constant along a fractional walk).
    pub fn record_weights(&self, step: usize) -> Vec<(usize, f64)> {
        let active = self.active(step);
        match self {
            Plan::Schedule(_) => active.into_iter().map(|(k, w)| (k, w.signum())).collect(),
            _ => active,
        }
    }

    /// The app's sliders: potential k runs for |t_k| steps (fractional: the last step is
    /// shortened), forwards for t_k > 0 and backwards for t_k < 0, all at once (several
    /// non-zero sliders superpose). Returns the plan and its step count (0 when every
    /// slider is at 0).
    pub fn from_sliders(times: &[f64]) -> (Plan, usize) {
        let longest = times.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        let steps = longest.ceil() as usize;
        let schedule = (0..steps)
            .map(|i| {
                times
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &t)| {
                        let w = (t.abs() - i as f64).clamp(0.0, 1.0);
                        (w > 0.0).then(|| (k, w * t.signum()))
                    })
                    .collect()
            })
            .collect();
        (Plan::Schedule(schedule), steps)
    }

    /// Every direction the plan uses.
    pub fn directions(&self) -> Vec<usize> {
        match self {
            Plan::Single(k) => vec![*k],
            Plan::Switch { k, then, .. } => vec![*k, *then],
            Plan::Superpose(w) => w.iter().map(|(k, _)| *k).collect(),
            Plan::Schedule(s) => {
                let mut ks: Vec<usize> = s.iter().flatten().map(|(k, _)| *k).collect();
                ks.sort_unstable();
                ks.dedup();
                ks
            }
        }
    }

    /// Parses a superposition `K:W,K:W,...` (e.g. `0:1.0,2:0.5`).
    pub fn parse_superposition(s: &str) -> Result<Plan> {
        let bad = |why: &str| {
            Error::config(format!(
                "cannot parse superposition '{s}': {why} (expected K:W,K:W,... such as 0:1.0,2:0.5)"
            ))
        };
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim) {
            let (k, w) = part
                .split_once(':')
                .ok_or_else(|| bad(&format!("'{part}' has no ':'")))?;
            let k: usize = k
                .trim()
                .parse()
                .map_err(|_| bad(&format!("'{k}' is not an index")))?;
            let w: f64 = w
                .trim()
                .parse()
                .map_err(|_| bad(&format!("'{w}' is not a number")))?;
            if !w.is_finite() {
                return Err(bad("weights must be finite"));
            }
            if weights.iter().any(|(j, _)| *j == k) {
                return Err(bad(&format!("potential {k} appears twice")));
            }
            weights.push((k, w));
        }
        if weights.is_empty() {
            return Err(bad("no terms"));
        }
        Ok(Plan::Superpose(weights))
    }
}

/// A traversal request.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSpec {
    /// Which directions.
    pub plan: Plan,
    /// Number of steps T (the path has T + 1 points).
    pub steps: usize,
    /// Move against the flow: z_{t+1} = z_t − ∇u.
    pub negative: bool,
    /// Multiplies every step (1 = the learned step).
    pub scale: f64,
    /// Density-preserving walk: after every step the code is rescaled to the norm of z_0,
    /// so that its log-density under the N(0, I) prior, −½‖z‖² + const, stays that of z_0
    /// (see [`keep_norms`]); the records then carry the `log_density` series.
    pub preserve_density: bool,
    /// With `preserve_density`: keep the log-density under this model of the data's codes
    /// instead of the prior's (Gaussianised rescale and correction, see
    /// [`crate::models::density`]).
    pub density: Option<SharedDensity>,
}

/// A density model shared by the requests that use it (equal when it is the same model).
#[derive(Debug, Clone)]
pub struct SharedDensity(pub std::sync::Arc<crate::models::density::DataDensity>);

impl PartialEq for SharedDensity {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PathSpec {
    /// `steps` forward steps along direction `k`.
    pub fn single(k: usize, steps: usize) -> Self {
        Self {
            plan: Plan::Single(k),
            steps,
            negative: false,
            scale: 1.0,
            preserve_density: false,
            density: None,
        }
    }

    /// Checks the request against a method with `directions` directions.
    pub fn validate(&self, directions: usize) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::config("the number of steps must be at least 1"));
        }
        limits::check_count("the number of steps", self.steps, MAX_STEPS)?;
        limits::check_magnitude("the step scale", self.scale, MAX_STEP_SCALE)?;
        if let Plan::Superpose(weights) = &self.plan {
            for (_, w) in weights {
                limits::check_magnitude("a superposition weight", *w, MAX_STEP_SCALE)?;
            }
        }
        if let Some(k) = self
            .plan
            .directions()
            .into_iter()
            .find(|&k| k >= directions)
        {
            return Err(Error::config(format!(
                "potential {k} is out of range: there are {directions} (0..{})",
                directions.saturating_sub(1)
            )));
        }
        if let Plan::Switch { at, .. } = self.plan
            && at > self.steps
        {
            return Err(Error::config(format!(
                "cannot switch at step {at} of a {}-step path",
                self.steps
            )));
        }
        Ok(())
    }
}

/// Names of the method-specific series a [`StepRecord`] may carry.
pub mod series {
    /// u(z_t, t) (potential flows; for a superposition the weighted sum U = Σ_k w_k u^k;
    /// WarpedSpace: its warping function f).
    pub const U: &str = "u";
    /// ‖∇_z u‖.
    pub const GRAD_NORM: &str = "grad_norm";
    /// ∂u/∂t.
    pub const DU_DT: &str = "du_dt";
    /// ∂²u/∂t².
    pub const D2U_DT2: &str = "d2u_dt2";
    /// Δ_z u.
    pub const LAPLACIAN: &str = "laplacian";
    /// Residual of the potentials' equation: the wave equation's ∂²_t u − c² Δ_z u, or the
    /// Hamilton–Jacobi ∂_t u + ½‖∇u‖² − f.
    pub const RESIDUAL: &str = "residual";
    /// ‖dz/dt‖ of a NeuralODE walk at z_t.
    pub const ODE_SPEED: &str = "ode_speed";
    /// log N(z_t; 0, I) up to its constant: −½‖z_t‖² (density-preserving walks); under a
    /// data density model, its log p(z_t).
    pub const LOG_DENSITY: &str = "log_density";
    /// log q(z_t) − log q(z_0) of the density a Hamilton–Jacobi flow carries (the
    /// flow-factorized VAE's posterior along the path).
    pub const FLOW_LOG_DENSITY: &str = "flow_log_density";
}

/// One named series of a path's records: one value per sample of the batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Its name (see [`series`]).
    pub name: String,
    /// One value per sample.
    pub values: Vec<f32>,
}

/// What one point of a path measured, per sample of the batch: what every method has
/// (the time and the step's length) and the series only some methods have (potentials:
/// u, ‖∇u‖, ∂_t u, ∂²_t u, Δu and the wave residual), which the plots and the traversal
/// JSON show when present.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// Time t of this point: the step index, fractional at the end of a shortened last
    /// step (see [`Plan::point_times`]).
    pub t: f64,
    /// ‖z_{t+1} − z_t‖: the length of the step from this point (the last point repeats
    /// the last step's, as its series are measured with the last step's directions).
    pub step_norm: Vec<f32>,
    /// The method's own series, in the same order in every record of a path.
    pub series: Vec<Series>,
}

impl StepRecord {
    /// The values of series `name`, if this method records it.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.series
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.values.as_slice())
    }

    /// The same record for the first `n` samples only.
    pub fn first(&self, n: usize) -> Self {
        let head = |v: &[f32]| v[..n.min(v.len())].to_vec();
        Self {
            t: self.t,
            step_norm: head(&self.step_norm),
            series: self
                .series
                .iter()
                .map(|s| Series {
                    name: s.name.clone(),
                    values: head(&s.values),
                })
                .collect(),
        }
    }
}

/// ‖z_{i+1} − z_i‖ per point of a path of (B, d) tensors (the last point repeats the last
/// step's length; a path of one point has steps of length 0), as [`StepRecord::step_norm`].
pub fn step_norms(path: &[Tensor]) -> Result<Vec<Vec<f32>>> {
    let mut norms = Vec::with_capacity(path.len());
    for pair in path.windows(2) {
        let d = (&pair[1] - &pair[0])?;
        norms.push(
            d.sqr()?
                .sum(1)?
                .sqrt()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?,
        );
    }
    let last = match (norms.last(), path.first()) {
        (Some(n), _) => n.clone(),
        (None, Some(z)) => vec![0.0; z.dim(0)?],
        (None, None) => return Ok(norms),
    };
    norms.push(last);
    Ok(norms)
}

/// A path z_0..z_T for a batch of starting codes.
#[derive(Debug, Clone)]
pub struct TraversalPath {
    /// T + 1 tensors of shape (B, d).
    pub z: Vec<Tensor>,
    /// One record per point (T + 1).
    pub records: Vec<StepRecord>,
}

/// Rows of `z` (B, d) rescaled to the lengths `norms` (B, 1): the density-preserving
/// projection for the N(0, I) prior, whose log-density −½‖z‖² + const depends on ‖z‖
/// alone. A row of length 0 stays 0.
pub fn keep_norms(z: &Tensor, norms: &Tensor) -> Result<Tensor> {
    let now = z.sqr()?.sum_keepdim(1)?.sqrt()?;
    let ratio = norms.broadcast_div(&now.clamp(1e-12, f64::MAX)?)?;
    Ok(z.broadcast_mul(&ratio)?)
}

/// Row lengths ‖z‖ of a (B, d) tensor, as (B, 1).
pub fn row_norms(z: &Tensor) -> Result<Tensor> {
    Ok(z.sqr()?.sum_keepdim(1)?.sqrt()?)
}

/// The records every method has for a path: t and the step lengths, and for a
/// density-preserving walk the log-density series (methods add their own series).
pub fn base_records(path: &[Tensor], spec: &PathSpec) -> Result<Vec<StepRecord>> {
    let times = spec.plan.point_times(spec.steps);
    let norms = step_norms(path)?;
    path.iter()
        .zip(times)
        .zip(norms)
        .map(|((z, t), step_norm)| {
            let mut series = Vec::new();
            if spec.preserve_density {
                let values = match &spec.density {
                    Some(d) => d.0.log_density(z)?,
                    None => (z.sqr()?.sum(1)? * -0.5)?,
                }
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?;
                series.push(Series {
                    name: series::LOG_DENSITY.into(),
                    values,
                });
            }
            Ok(StepRecord {
                t,
                step_norm,
                series,
            })
        })
        .collect()
}

/// The walk loop every method shares: checks `spec` against `directions` directions, then
/// takes `spec.steps` steps, each `step(i, z, active, sign)` → the next point, where
/// `active` are step i's (direction, weight) pairs and `sign` is ±`spec.scale` (negative
/// walks go against the method); rescales every point to ‖z_0‖ for a density-preserving
/// walk, and fails when the walk diverged.
pub fn walk_with(
    z0: &Tensor,
    spec: &PathSpec,
    directions: usize,
    mut step: impl FnMut(usize, &Tensor, &[(usize, f64)], f64) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    spec.validate(directions)?;
    let sign = if spec.negative {
        -spec.scale
    } else {
        spec.scale
    };
    let norms = row_norms(z0)?;
    // Under a data density: the start's Gaussianised norm and log-density.
    let data = match (&spec.density, spec.preserve_density) {
        (Some(d), true) => Some((&d.0, d.0.gaussian_norms(z0)?, d.0.log_density(z0)?)),
        _ => None,
    };
    let mut z = z0.clone();
    let mut path = vec![z.clone()];
    for i in 0..spec.steps {
        let active = spec.plan.active(i);
        if active.is_empty() {
            return Err(Error::config("a plan needs at least one direction"));
        }
        z = step(i, &z, &active, sign)?;
        if let Some((density, u0, target)) = &data {
            z = density.keep(&z, u0, target)?;
        } else if spec.preserve_density {
            z = keep_norms(&z, &norms)?;
        }
        path.push(z.clone());
    }
    check_finite_walk(&path)?;
    Ok(path)
}

/// Fails when a point of a walk is not finite: a step scale or weight so large that the
/// code left every region the generator knows (and overflowed). A NaN or Inf propagates
/// along the walk, so checking the last point checks them all.
pub fn check_finite_walk(path: &[Tensor]) -> Result<()> {
    let Some(last) = path.last() else {
        return Ok(());
    };
    let norm = last
        .to_dtype(candle_core::DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?;
    if !norm.is_finite() {
        return Err(Error::config(format!(
            "the walk diverged: after {} steps the latent code is not finite (NaN or Inf); \
             lower the step scale or the weights",
            path.len() - 1
        )));
    }
    Ok(())
}

/// A traversal method.
pub trait Traversal: Send + Sync {
    /// Short name, e.g. "pde" or "linear".
    fn method(&self) -> String;
    /// Latent size it acts on.
    fn latent_dim(&self) -> usize;
    /// Number of directions K.
    fn directions(&self) -> usize;
    /// Display name of direction `k`.
    fn direction_name(&self, k: usize) -> String;
    /// The path from `z0` (B, d).
    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath>;
    /// Only the points z_0..z_T, without the per-step records (what a renderer that
    /// draws no plots needs).
    fn walk(&self, z0: &Tensor, spec: &PathSpec) -> Result<Vec<Tensor>> {
        Ok(self.path(z0, spec)?.z)
    }
    /// The scalar potentials u^k behind the walk, for the methods that have them (the
    /// landscape and the wave speeds need them).
    fn potentials(&self) -> Option<&crate::models::potential::Potentials> {
        None
    }
}

/// Opens the traversal method stored in `dir` for `generator`, chosen by its manifest's
/// model: a potential set (`potentials`: PDE or linear), a direction set (`directions`:
/// SeFa, GANSpace, DP-LaSE), a WarpedSpace set (`warped`) or a NeuralODE set (`ode`). Every consumer (app, worker, CLI, evaluation, export) opens methods
/// only through here.
pub fn open(
    dir: &std::path::Path,
    generator: &crate::store::LoadedGenerator,
    device: &candle_core::Device,
) -> Result<Box<dyn Traversal>> {
    let manifest = crate::store::generator::read_manifest(dir)?;
    Ok(match manifest.model.as_str() {
        "potentials" => Box::new(PotentialFlow::new(
            crate::store::load_potentials(dir, generator, device)?.potentials,
        )),
        crate::store::directions::MODEL => Box::new(Directions::new(
            crate::store::load_directions(dir, generator, device)?,
        )),
        crate::store::warped::MODEL => Box::new(WarpedFlow::new(
            crate::store::load_warped(dir, generator, device)?.warps,
        )),
        crate::store::ode::MODEL => Box::new(OdeFlow::new(
            crate::store::load_ode(dir, generator, device)?.fields,
        )),
        other => {
            return Err(Error::checkpoint(
                dir.join(crate::store::MANIFEST_FILE),
                format!(
                    "holds a '{other}' model, which is not a traversal method (one of {})",
                    crate::store::methods::METHOD_MODELS.join(", ")
                ),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superposition_strings() {
        assert_eq!(
            Plan::parse_superposition("0:1.0, 2:0.5").unwrap(),
            Plan::Superpose(vec![(0, 1.0), (2, 0.5)])
        );
        for bad in ["", "0", "a:1", "0:x", "0:1,0:2", "1:inf"] {
            let e = Plan::parse_superposition(bad).unwrap_err().to_string();
            assert!(e.contains("cannot parse superposition"), "{bad}: {e}");
        }
    }

    #[test]
    fn switching_changes_direction_at_the_given_step() {
        let p = Plan::Switch {
            k: 1,
            then: 3,
            at: 2,
        };
        assert_eq!(p.active(0), vec![(1, 1.0)]);
        assert_eq!(p.active(1), vec![(1, 1.0)]);
        assert_eq!(p.active(2), vec![(3, 1.0)]);
    }

    #[test]
    fn sliders_become_a_schedule() {
        let (plan, steps) = Plan::from_sliders(&[0.0, 2.5, -1.0]);
        assert_eq!(steps, 3);
        assert_eq!(plan.active(0), vec![(1, 1.0), (2, -1.0)]);
        assert_eq!(plan.active(1), vec![(1, 1.0)]);
        assert_eq!(plan.active(2), vec![(1, 0.5)]);
        assert_eq!(plan.directions(), vec![1, 2]);
        assert_eq!(Plan::from_sliders(&[0.0, 0.0]).1, 0);
    }

    #[test]
    fn step_norms_are_the_lengths_of_the_steps_and_the_last_point_repeats_the_last() {
        let dev = candle_core::Device::Cpu;
        let z = |v: [f32; 4]| Tensor::new(&v, &dev).unwrap().reshape((2, 2)).unwrap();
        let path = [
            z([0., 0., 1., 1.]),
            z([3., 4., 1., 1.]),
            z([3., 5., 1., 3.]),
        ];
        let n = step_norms(&path).unwrap();
        assert_eq!(n, vec![vec![5.0, 0.0], vec![1.0, 2.0], vec![1.0, 2.0]]);
        assert_eq!(step_norms(&path[..1]).unwrap(), vec![vec![0.0, 0.0]]);
        assert!(step_norms(&[]).unwrap().is_empty());
    }

    #[test]
    fn records_are_cut_to_their_first_samples_and_find_series_by_name() {
        let r = StepRecord {
            t: 1.5,
            step_norm: vec![1.0, 2.0, 3.0],
            series: vec![Series {
                name: series::U.into(),
                values: vec![4.0, 5.0, 6.0],
            }],
        };
        let one = r.first(1);
        assert_eq!(one.step_norm, vec![1.0]);
        assert_eq!(one.get(series::U), Some(&[4.0][..]));
        assert_eq!(one.get(series::RESIDUAL), None);
        assert_eq!(one.t, 1.5);
    }

    #[test]
    fn bad_requests() {
        let mut s = PathSpec::single(4, 0);
        assert!(
            s.validate(5)
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        s.steps = 3;
        assert!(
            s.validate(4)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(s.validate(5).is_ok());
    }
}
