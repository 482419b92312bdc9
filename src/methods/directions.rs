//! Fixed latent directions (SeFa, GANSpace): z_{t+1} = z_t ± Σ_k w_k n_k, where n_k is
//! direction k scaled to the set's step length. The records carry only what every method
//! has (t and the step length).

use super::{PathSpec, Traversal, TraversalPath};
use crate::Result;
use crate::store::directions::{DirectionsConfig, LoadedDirections};
use candle_core::Tensor;

/// A [`Traversal`] along fixed directions.
#[derive(Debug, Clone)]
pub struct Directions {
    config: DirectionsConfig,
    /// (K, d) step vectors.
    steps: Tensor,
}

impl Directions {
    /// The directions of a loaded set.
    pub fn new(set: LoadedDirections) -> Self {
        Self {
            config: set.config,
            steps: set.directions,
        }
    }

    /// Directions from (K, d) step vectors (their lengths are the steps).
    pub fn from_steps(config: DirectionsConfig, steps: Tensor) -> Self {
        Self { config, steps }
    }
}

impl Traversal for Directions {
    fn method(&self) -> String {
        self.config.method.clone()
    }

    fn latent_dim(&self) -> usize {
        self.config.latent
    }

    fn directions(&self) -> usize {
        self.config.k
    }

    fn direction_name(&self, k: usize) -> String {
        self.config.name(k)
    }

    fn walk(&self, z0: &Tensor, spec: &PathSpec) -> Result<Vec<Tensor>> {
        let steps = self.steps.to_device(z0.device())?.to_dtype(z0.dtype())?;
        super::walk_with(z0, spec, self.directions(), |_, z, active, sign| {
            let mut velocity = z.zeros_like()?;
            for &(k, w) in active {
                velocity = velocity.broadcast_add(&(steps.get(k)? * w)?)?;
            }
            Ok((z + (velocity * sign)?)?)
        })
    }

    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
        let z = self.walk(z0, spec)?;
        let records = super::base_records(&z, spec)?;
        Ok(TraversalPath { z, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::Plan;
    use candle_core::Device;

    fn set() -> Directions {
        let config = DirectionsConfig {
            method: "sefa".into(),
            latent: 3,
            k: 2,
            step: 0.5,
            names: Vec::new(),
        };
        let steps = Tensor::new(&[[0.5f32, 0., 0.], [0., 0.3, 0.4]], &Device::Cpu).unwrap();
        Directions::from_steps(config, steps)
    }

    #[test]
    fn walks_add_the_weighted_steps_and_record_their_lengths() {
        let d = set();
        let z0 = Tensor::new(&[[1f32, 1., 1.], [0., 0., 0.]], &Device::Cpu).unwrap();
        let mut spec = PathSpec::single(1, 2);
        let p = d.path(&z0, &spec).unwrap();
        let end: Vec<f32> = p.z[2].flatten_all().unwrap().to_vec1().unwrap();
        let want = [1.0f32, 1.6, 1.8, 0.0, 0.6, 0.8];
        assert!(
            end.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{end:?}"
        );
        assert!(
            p.records
                .iter()
                .all(|r| (r.step_norm[0] - 0.5).abs() < 1e-6)
        );
        assert!(p.records[0].series.is_empty());
        // Superposed, backwards and scaled: z − 2 (1·n_0 − 0.5·n_1).
        spec.plan = Plan::Superpose(vec![(0, 1.0), (1, -0.5)]);
        spec.negative = true;
        spec.scale = 2.0;
        spec.steps = 1;
        let p = d.path(&z0, &spec).unwrap();
        let end: Vec<Vec<f32>> = p.z[1].to_vec2().unwrap();
        let want = [0.0f32, 1.3, 1.4];
        for (a, b) in end[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{end:?}");
        }
        assert_eq!(d.direction_name(1), "direction 1");
        assert_eq!(d.method(), "sefa");
    }

    #[test]
    fn out_of_range_directions_are_refused() {
        let z0 = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let e = set().path(&z0, &PathSpec::single(2, 1)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
