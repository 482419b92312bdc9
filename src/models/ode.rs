//! NeuralODE editing's vector fields (Khrulkov et al., "Latent Transformations via
//! NeuralODEs for GAN-based Image Editing", ICCV 2021): one field per edited attribute k,
//! dz/dt = f_k(z)/‖f_k(z)‖, with f_k an MLP (depth 1–3 hidden layers of LeakyReLU(0.2)) or
//! a constant vector (depth 0: the linear variant, straight lines). The field is normalised,
//! so time is path length: integrating for time τ moves the code a distance τ.
//!
//! Integration is the classical fourth-order Runge–Kutta method with a fixed number of
//! steps ([`rk4`], tested against a closed-form solution and its order of convergence);
//! built from tensor operations, so training backpropagates through every stage.

use crate::nn::{Layer, Linear, Params};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The slope of the fields' leaky ReLUs (the paper's).
pub const LEAKY_SLOPE: f64 = 0.2;

/// The architecture of a NeuralODE set (a manifest's `architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OdeConfig {
    /// Fields K (one per edited attribute).
    pub k: usize,
    /// Latent size d.
    pub latent: usize,
    /// Hidden layers of each field's MLP (0: a constant field, the linear variant).
    pub depth: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Time (= path length) one traversal step integrates.
    pub step: f64,
    /// RK4 steps per unit of time.
    pub substeps: usize,
    /// Display names (empty: "field k"); a trained set names each field after its attribute.
    #[serde(default)]
    pub names: Vec<String>,
}

impl OdeConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.latent == 0 {
            return Err(Error::config(
                "a NeuralODE set needs K ≥ 1 fields and a latent size ≥ 1",
            ));
        }
        if self.depth > 3 {
            return Err(Error::config(format!(
                "a field has 0 to 3 hidden layers, not {}",
                self.depth
            )));
        }
        if self.depth > 0 && self.hidden == 0 {
            return Err(Error::config("the hidden width must be positive"));
        }
        if self.substeps == 0 {
            return Err(Error::config("at least one RK4 step per unit of time"));
        }
        crate::limits::check_count("the number of fields K", self.k, crate::limits::MAX_K)?;
        crate::limits::check_count("the latent size", self.latent, crate::limits::MAX_LATENT)?;
        crate::limits::check_count("the hidden width", self.hidden, crate::limits::MAX_WIDTH)?;
        crate::limits::check_count("the RK4 steps per unit", self.substeps, 1000)?;
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(Error::config(format!(
                "the step length must be positive and finite, not {}",
                self.step
            )));
        }
        crate::limits::check_magnitude("the step length", self.step, 1000.0)?;
        if !self.names.is_empty() && self.names.len() != self.k {
            return Err(Error::config(format!(
                "{} names for {} fields",
                self.names.len(),
                self.k
            )));
        }
        Ok(())
    }

    /// Display name of field `k`.
    pub fn name(&self, k: usize) -> String {
        self.names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("field {k}"))
    }

    /// RK4 steps that integrate time `time`: `substeps` per unit, at least one.
    pub fn rk4_steps(&self, time: f64) -> usize {
        ((time.abs() * self.substeps as f64).ceil() as usize).max(1)
    }
}

/// One field: a constant vector or an MLP.
#[derive(Debug, Clone)]
enum Field {
    Constant(Tensor),
    Mlp(Vec<Linear>),
}

/// The K fields. Tensors: `ode.{k}.constant` (d) for depth 0, else `ode.{k}.l{i}.weight`
/// and `.bias` for the hidden layers i = 0..depth and `ode.{k}.out`.
#[derive(Debug, Clone)]
pub struct VectorFields {
    config: OdeConfig,
    fields: Vec<Field>,
}

impl VectorFields {
    /// Creates (or loads, from a store holding a checkpoint) the fields `cfg` describes,
    /// with PyTorch's default initialisation (constants from N(0, I)).
    pub fn new(p: &Params, cfg: &OdeConfig) -> Result<Self> {
        cfg.validate()?;
        let p = p.pp("ode");
        let mut fields = Vec::with_capacity(cfg.k);
        for k in 0..cfg.k {
            let p = p.pp(k.to_string());
            fields.push(if cfg.depth == 0 {
                Field::Constant(p.normal("constant", cfg.latent, 0.0, 1.0)?)
            } else {
                let mut layers = Vec::with_capacity(cfg.depth + 1);
                let mut width = cfg.latent;
                for i in 0..cfg.depth {
                    layers.push(Linear::new(&p.pp(format!("l{i}")), width, cfg.hidden)?);
                    width = cfg.hidden;
                }
                layers.push(Linear::new(&p.pp("out"), width, cfg.latent)?);
                Field::Mlp(layers)
            });
        }
        Ok(Self {
            config: cfg.clone(),
            fields,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &OdeConfig {
        &self.config
    }

    /// The parameters' dtype.
    pub fn dtype(&self) -> DType {
        match &self.fields[0] {
            Field::Constant(c) => c.dtype(),
            Field::Mlp(layers) => layers[0].weight().dtype(),
        }
    }

    /// f_k(z) (unnormalised) at the codes `z` (B, d).
    pub fn field(&self, z: &Tensor, k: usize) -> Result<Tensor> {
        let Some(field) = self.fields.get(k) else {
            return Err(Error::config(format!(
                "field {k} is out of range: there are {}",
                self.fields.len()
            )));
        };
        let z = z.to_dtype(self.dtype())?;
        Ok(match field {
            Field::Constant(c) => z.zeros_like()?.broadcast_add(c)?,
            Field::Mlp(layers) => {
                let mut h = z;
                for (i, layer) in layers.iter().enumerate() {
                    h = layer.forward(&h)?;
                    if i + 1 < layers.len() {
                        h = crate::nn::pointwise::leaky_relu(&h, LEAKY_SLOPE)?;
                    }
                }
                h
            }
        })
    }

    /// dz/dt = Σ_k w_k f_k(z)/‖f_k(z)‖ for the (k, w) pairs `active` (a vanished field
    /// contributes 0, not NaN).
    pub fn velocity(&self, z: &Tensor, active: &[(usize, f64)]) -> Result<Tensor> {
        let mut v = z.to_dtype(self.dtype())?.zeros_like()?;
        for &(k, w) in active {
            let f = self.field(z, k)?;
            let norm = f.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-20, f64::MAX)?;
            v = (v + (f.broadcast_div(&norm)? * w)?)?;
        }
        Ok(v)
    }

    /// z(τ) from z(0) = `z` along the fields `active` for time `time` (negative:
    /// backwards), by RK4 with the configuration's steps per unit of time.
    pub fn integrate(&self, z: &Tensor, active: &[(usize, f64)], time: f64) -> Result<Tensor> {
        let steps = self.config.rk4_steps(time);
        rk4(&z.to_dtype(self.dtype())?, time, steps, &|z: &Tensor| {
            self.velocity(z, active)
        })
    }
}

/// The classical fourth-order Runge–Kutta method for the autonomous ODE dz/dt = f(z):
/// `steps` steps of h = time/steps from `z`.
pub fn rk4(
    z: &Tensor,
    time: f64,
    steps: usize,
    f: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if steps == 0 {
        return Err(Error::config("RK4 needs at least one step"));
    }
    let h = time / steps as f64;
    let mut z = z.clone();
    for _ in 0..steps {
        let k1 = f(&z)?;
        let k2 = f(&(&z + (&k1 * (h / 2.0))?)?)?;
        let k3 = f(&(&z + (&k2 * (h / 2.0))?)?)?;
        let k4 = f(&(&z + (&k3 * h)?)?)?;
        let sum = (((k1 + (k2 * 2.0)?)? + (k3 * 2.0)?)? + k4)?;
        z = (z + (sum * (h / 6.0))?)?;
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn fields(depth: usize, seed: u64) -> (Params, VectorFields) {
        let p = Params::new(seed, &Device::Cpu)
            .with_dtype(DType::F64)
            .unwrap();
        let cfg = OdeConfig {
            k: 2,
            latent: 3,
            depth,
            hidden: 8,
            step: 0.5,
            substeps: 4,
            names: Vec::new(),
        };
        let f = VectorFields::new(&p, &cfg).unwrap();
        (p, f)
    }

    #[test]
    fn rk4_matches_a_rotation_in_closed_form_with_fourth_order_error() {
        // dz/dt = A z with A the rotation generator: z(t) = (cos t, sin t) from (1, 0).
        let a = Tensor::new(&[[0.0f64, 1.0], [-1.0, 0.0]], &Device::Cpu).unwrap();
        let f = |z: &Tensor| -> Result<Tensor> { Ok(z.matmul(&a)?) };
        let z0 = Tensor::new(&[[1.0f64, 0.0]], &Device::Cpu).unwrap();
        let error = |steps: usize| -> f64 {
            let z: Vec<f64> = rk4(&z0, 2.0, steps, &f)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            ((z[0] - 2f64.cos()).powi(2) + (z[1] - 2f64.sin()).powi(2)).sqrt()
        };
        assert!(error(100) < 1e-8, "{}", error(100));
        // Halving h divides the error by about 2⁴.
        let ratio = error(10) / error(20);
        assert!((ratio - 16.0).abs() < 1.5, "{ratio}");
        assert!(rk4(&z0, 1.0, 0, &f).is_err());
    }

    #[test]
    fn a_constant_field_moves_in_a_straight_line_by_the_time() {
        let (_, f) = fields(0, 1);
        let z0 = crate::nn::fd::randn64(&[2, 3], 4).unwrap();
        let z = f.integrate(&z0, &[(1, 1.0)], 1.7).unwrap();
        let c = f.field(&z0, 1).unwrap();
        let unit = c
            .broadcast_div(&c.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap())
            .unwrap();
        let want = (&z0 + (unit * 1.7).unwrap()).unwrap();
        let d = (z - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        // Backwards undoes forwards.
        let back = f.integrate(
            &f.integrate(&z0, &[(0, 1.0)], 0.8).unwrap(),
            &[(0, 1.0)],
            -0.8,
        );
        let d = (back.unwrap() - &z0)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
    }

    #[test]
    fn an_mlp_field_moves_at_unit_speed_so_time_is_path_length() {
        let (_, f) = fields(2, 2);
        let z0 = crate::nn::fd::randn64(&[3, 3], 5).unwrap();
        let v = f.velocity(&z0, &[(0, 1.0)]).unwrap();
        let n: Vec<f64> = v
            .sqr()
            .unwrap()
            .sum(1)
            .unwrap()
            .sqrt()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(n.iter().all(|x| (x - 1.0).abs() < 1e-12), "{n:?}");
        // Many small steps: the path's length is the time (the chords of 50 steps fall
        // short of the arc by O(h²)).
        let mut z = z0.clone();
        let mut length = vec![0.0; 3];
        for _ in 0..50 {
            let next = f.integrate(&z, &[(0, 1.0)], 0.02).unwrap();
            let d: Vec<f64> = (&next - &z)
                .unwrap()
                .sqr()
                .unwrap()
                .sum(1)
                .unwrap()
                .sqrt()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (l, x) in length.iter_mut().zip(d) {
                *l += x;
            }
            z = next;
        }
        assert!(
            length.iter().all(|l| *l <= 1.0 + 1e-9 && *l > 1.0 - 1e-4),
            "{length:?}"
        );
        assert!(f.field(&z0, 2).is_err());
    }

    #[test]
    fn gradients_through_the_integration_match_finite_differences() {
        let (p, f) = fields(1, 3);
        let z0 = crate::nn::fd::randn64(&[2, 3], 6).unwrap();
        let target = Tensor::new(&[0.4f64, -0.3, 0.9], &Device::Cpu).unwrap();
        let loss = |f: &VectorFields| -> Tensor {
            f.integrate(&z0, &[(1, 1.0)], 0.9)
                .unwrap()
                .broadcast_mul(&target)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(&f).backward().unwrap();
        let h = 1e-6;
        let mut checked = 0;
        for (name, var) in p.trainable_vars().unwrap() {
            if !name.starts_with("ode.1.") {
                continue;
            }
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for (i, gi) in g.iter().enumerate().take(3) {
                let bump = |delta: f64| -> f64 {
                    let mut v = base.clone();
                    v[i] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    let out = loss(&f).to_scalar::<f64>().unwrap();
                    var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    out
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (fd - gi).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{name}[{i}]: {fd} vs {gi}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 9, "{checked}");
    }

    #[test]
    fn bad_architectures_are_refused() {
        let (_, f) = fields(1, 1);
        let base = f.config().clone();
        for bad in [
            OdeConfig {
                depth: 4,
                ..base.clone()
            },
            OdeConfig {
                substeps: 0,
                ..base.clone()
            },
            OdeConfig {
                step: f64::NAN,
                ..base.clone()
            },
            OdeConfig {
                names: vec!["a".into()],
                ..base.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(base.rk4_steps(0.5), 2);
        assert_eq!(base.rk4_steps(0.01), 1);
    }
}
