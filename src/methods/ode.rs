//! NeuralODE editing's traversal: each step integrates dz/dt = Σ_k w_k f_k/‖f_k‖ (see
//! [`crate::models::ode`]) for the set's step time by RK4, backwards for a negative walk.
//! The records carry the ODE's speed ‖dz/dt‖ at each point (series `ode_speed`: 1 along
//! one field, less where superposed fields disagree).

use super::{PathSpec, Series, Traversal, TraversalPath, series};
use crate::Result;
use crate::models::ode::VectorFields;
use candle_core::{DType, Tensor};

/// A [`Traversal`] by NeuralODE vector fields.
#[derive(Debug, Clone)]
pub struct OdeFlow {
    fields: VectorFields,
}

impl OdeFlow {
    /// Traversal by `fields`.
    pub fn new(fields: VectorFields) -> Self {
        Self { fields }
    }

    /// The vector fields.
    pub fn fields(&self) -> &VectorFields {
        &self.fields
    }
}

impl Traversal for OdeFlow {
    fn method(&self) -> String {
        if self.fields.config().depth == 0 {
            "ode-linear".into()
        } else {
            "ode".into()
        }
    }

    fn latent_dim(&self) -> usize {
        self.fields.config().latent
    }

    fn directions(&self) -> usize {
        self.fields.config().k
    }

    fn direction_name(&self, k: usize) -> String {
        self.fields.config().name(k)
    }

    fn walk(&self, z0: &Tensor, spec: &PathSpec) -> Result<Vec<Tensor>> {
        let time = self.fields.config().step;
        super::walk_with(z0, spec, self.directions(), |_, z, active, sign| {
            Ok(self
                .fields
                .integrate(z, active, time * sign)?
                .to_dtype(z.dtype())?)
        })
    }

    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
        let path = self.walk(z0, spec)?;
        let mut records = super::base_records(&path, spec)?;
        for (s, record) in records.iter_mut().enumerate() {
            // The last point is measured with the last step's weights.
            let weights = spec.plan.record_weights(s.min(spec.steps - 1));
            let v = self.fields.velocity(&path[s], &weights)?;
            record.series.push(Series {
                name: series::ODE_SPEED.into(),
                values: v.sqr()?.sum(1)?.sqrt()?.to_dtype(DType::F32)?.to_vec1()?,
            });
        }
        Ok(TraversalPath { z: path, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::Plan;
    use crate::models::ode::OdeConfig;
    use crate::nn::Params;
    use candle_core::Device;

    fn flow(depth: usize) -> OdeFlow {
        let p = Params::new(5, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let cfg = OdeConfig {
            k: 3,
            latent: 4,
            depth,
            hidden: 8,
            step: 0.25,
            substeps: 8,
            names: vec!["floor_hue".into(), "scale".into(), "wall_hue".into()],
        };
        OdeFlow::new(VectorFields::new(&p, &cfg).unwrap())
    }

    #[test]
    fn steps_integrate_the_step_time_and_record_the_speed() {
        let f = flow(2);
        let z0 = crate::nn::fd::randn64(&[2, 4], 7).unwrap();
        let p = f.path(&z0, &PathSpec::single(1, 3)).unwrap();
        assert_eq!(p.z.len(), 4);
        for (i, r) in p.records.iter().enumerate() {
            assert!(
                r.get(series::ODE_SPEED)
                    .unwrap()
                    .iter()
                    .all(|v| (v - 1.0).abs() < 1e-6)
            );
            // A curved path of time 0.25 has a chord at most 0.25.
            assert!(
                r.step_norm.iter().all(|n| *n <= 0.25 + 1e-6 && *n > 0.2),
                "{i} {r:?}"
            );
        }
        let one = f.fields().integrate(&z0, &[(1, 1.0)], 0.25).unwrap();
        let d = (&p.z[1] - one).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        assert_eq!(f.direction_name(0), "floor_hue");
        assert_eq!(f.method(), "ode");
        assert_eq!(flow(0).method(), "ode-linear");
    }

    #[test]
    fn backwards_superposed_and_density_preserving_walks() {
        let f = flow(1);
        let z0 = crate::nn::fd::randn64(&[2, 4], 8).unwrap();
        // Forwards then backwards returns (RK4 is accurate to far below the tolerance).
        let fwd = f.walk(&z0, &PathSpec::single(2, 2)).unwrap();
        let mut spec = PathSpec::single(2, 2);
        spec.negative = true;
        let back = f.walk(&fwd[2], &spec).unwrap();
        let d = (&back[2] - &z0).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-6);
        // Superposed: the speed is ‖û_0 + 0.5 û_2‖ ≤ 1.5.
        spec = PathSpec::single(0, 2);
        spec.plan = Plan::Superpose(vec![(0, 1.0), (2, 0.5)]);
        let p = f.path(&z0, &spec).unwrap();
        let speed = p.records[0].get(series::ODE_SPEED).unwrap();
        assert!(
            speed.iter().all(|v| *v <= 1.5 + 1e-6 && *v >= 0.5 - 1e-6),
            "{speed:?}"
        );
        spec = PathSpec::single(1, 4);
        spec.preserve_density = true;
        let p = f.path(&z0, &spec).unwrap();
        let n0: Vec<f64> = z0.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
        for z in &p.z {
            let n: Vec<f64> = z.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
            assert!(n.iter().zip(&n0).all(|(a, b)| (a - b).abs() < 1e-9));
        }
        assert!(f.walk(&z0, &PathSpec::single(3, 1)).is_err());
    }
}
