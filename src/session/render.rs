//! Rendering one traversal request: the path from z_0 (and from the batch view's extra
//! codes), decoded in one batch.

use super::Loaded;
use crate::data::Image;
use crate::limits::{self, MAX_SEEDS, MAX_STEP_SCALE, MAX_STEPS};
use crate::methods::{PathSpec, Plan, StepRecord};
use crate::models::{Generator, images::decode_images, sample_latents};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Potential `k` for the first `at` steps, then `then`, for `steps` steps in all.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Switch {
    /// First potential.
    pub k: usize,
    /// Second potential.
    pub then: usize,
    /// Steps with the first.
    pub at: usize,
    /// Steps in all.
    pub steps: usize,
}

/// What to render. Built by the UI each frame and sent only when it changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RenderRequest {
    /// Tag echoed in the frame.
    pub generation: u64,
    /// Seed of z_0 (the batch view uses seed + 1, seed + 2, ...).
    pub seed: u64,
    /// Index of the potential set (method) in the loaded model.
    pub method: usize,
    /// One time per potential of the method, t ∈ [−T, T]; several non-zero ones superpose.
    pub sliders: Vec<f64>,
    /// Switching instead of the sliders.
    pub switch: Option<Switch>,
    /// Extra starting codes moved by the same traversal (the batch view).
    pub batch: usize,
    /// Multiplies every step.
    pub step_scale: f64,
    /// The starting code z_0 itself (an encoded image, a reopened code) instead of the
    /// seed's; the batch view's extra codes still come from seed + 1, seed + 2, ...
    #[serde(default)]
    pub start: Option<Vec<f32>>,
    /// Density-preserving walk (every point keeps z_0's log-density under the prior).
    #[serde(default)]
    pub preserve_density: bool,
    /// With `preserve_density`: the log-density under the model's fitted density of the
    /// data's codes (its `density` folder) instead of the prior's.
    #[serde(default)]
    pub data_density: bool,
}

impl RenderRequest {
    /// Checks the request against the resource policy (finite slider times of at most
    /// [`MAX_STEPS`] steps, a bounded step scale and batch) and returns its plan and step
    /// count (0: no movement).
    pub fn validate(&self) -> Result<(Plan, usize)> {
        limits::check_count("the batch view's extra codes", self.batch, MAX_SEEDS)?;
        limits::check_magnitude("the step scale", self.step_scale, MAX_STEP_SCALE)?;
        match self.switch {
            Some(s) => {
                limits::check_count("the switching walk's steps", s.steps, MAX_STEPS)?;
                if s.at > s.steps {
                    return Err(Error::config(format!(
                        "cannot switch at step {} of a {}-step walk",
                        s.at, s.steps
                    )));
                }
            }
            None => {
                for &t in &self.sliders {
                    limits::check_magnitude("a slider time", t, MAX_STEPS as f64)?;
                }
            }
        }
        Ok(self.plan())
    }

    /// The plan and step count the request describes (step count 0: no movement). Call
    /// [`RenderRequest::validate`] first on a request from outside.
    fn plan(&self) -> (Plan, usize) {
        match self.switch {
            Some(s) => (
                Plan::Switch {
                    k: s.k,
                    then: s.then,
                    at: s.at,
                },
                s.steps,
            ),
            None => Plan::from_sliders(&self.sliders),
        }
    }
}

/// A rendered traversal.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The request's generation.
    pub generation: u64,
    /// G(z_T) for z_0 from `seed`.
    pub current: Image,
    /// G(z_0).
    pub start: Image,
    /// G(z_0), ..., G(z_T).
    pub strip: Vec<Image>,
    /// G(z_T) for the batch view's codes.
    pub batch: Vec<Image>,
    /// Per point of the path of z_0: t, u, ‖∇u‖, ∂_t u, ∂²_t u, Δu, residual (first
    /// sample only; empty when nothing moves).
    pub records: Vec<StepRecord>,
    /// Milliseconds the worker spent.
    pub render_ms: f64,
}

/// The starting codes of a request: seed, seed + 1, ..., one row each.
pub fn start_codes(g: &dyn Generator, seed: u64, count: usize, device: &Device) -> Result<Tensor> {
    let rows = (0..count as u64)
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(i));
            sample_latents(g.prior(), 1, g.latent_dim(), &mut rng, device)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 0)?)
}

/// The path (T + 1 tensors of (1 + batch, d)) and records of a request.
pub fn request_path(
    model: &Loaded,
    req: &RenderRequest,
    device: &Device,
) -> Result<(Vec<Tensor>, Vec<StepRecord>)> {
    let g = &model.generator.model;
    let (plan, steps) = req.validate()?;
    let z0 = match &req.start {
        None => start_codes(g, req.seed, 1 + req.batch, device)?,
        Some(code) => {
            let d = g.latent_dim();
            if code.len() != d || code.iter().any(|v| !v.is_finite()) {
                return Err(Error::config(format!(
                    "the starting code must hold {d} finite values (it has {})",
                    code.len()
                )));
            }
            let first = Tensor::from_vec(code.clone(), (1, d), device)?;
            if req.batch > 0 {
                let rest = start_codes(g, req.seed.wrapping_add(1), req.batch, device)?;
                Tensor::cat(&[first, rest], 0)?
            } else {
                first
            }
        }
    };
    if steps == 0 {
        return Ok((vec![z0], Vec::new()));
    }
    let Some((_, flow)) = model.methods.get(req.method) else {
        return Err(Error::config(format!(
            "method {} does not exist; this model has {} potential sets",
            req.method,
            model.methods.len()
        )));
    };
    if req.switch.is_none() && req.sliders.len() != flow.directions() {
        return Err(Error::config(format!(
            "{} sliders for {} potentials",
            req.sliders.len(),
            flow.directions()
        )));
    }
    let density = match (req.preserve_density && req.data_density, &model.density) {
        (false, _) => None,
        (true, Some(d)) => Some(d.clone()),
        (true, None) => {
            return Err(Error::config(
                "this model has no density model of its data: fit one with `latentflow \
                 fit-density --model DIR` (or keep the prior's density)",
            ));
        }
    };
    let spec = PathSpec {
        plan,
        steps,
        negative: false,
        scale: req.step_scale,
        preserve_density: req.preserve_density,
        density,
    };
    let path = flow.path(&z0, &spec)?;
    Ok((path.z, path.records))
}

/// Renders a request.
pub fn render(model: &Loaded, req: &RenderRequest, device: &Device) -> Result<Frame> {
    let t = Instant::now();
    let (path, records) = request_path(model, req, device)?;
    let g = &model.generator.model;
    let n = path.len();
    // One decode: every point of sample 0's path, then the end points of the batch view.
    let mut rows: Vec<Tensor> = path
        .iter()
        .map(|z| z.narrow(0, 0, 1))
        .collect::<candle_core::Result<_>>()?;
    let last = &path[n - 1];
    if req.batch > 0 {
        rows.push(last.narrow(0, 1, req.batch)?);
    }
    let images = decode_images(g, &Tensor::cat(&rows, 0)?)?;
    let strip = images[..n].to_vec();
    let records = records.into_iter().map(|r| r.first(1)).collect();
    Ok(Frame {
        generation: req.generation,
        current: strip[n - 1].clone(),
        start: strip[0].clone(),
        batch: images[n..].to_vec(),
        strip,
        records,
        render_ms: t.elapsed().as_secs_f64() * 1e3,
    })
}
