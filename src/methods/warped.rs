//! WarpedSpace traversal: z_{t+1} = z_t ± Σ_k w_k ε ∇f_k(z_t)/‖∇f_k(z_t)‖ (see
//! [`crate::models::warped`]): every step has length ε per unit weight and bends with the
//! warping function's field. The records carry f (series `u`: the warping function is the
//! path's potential) and ‖∇f‖ (series `grad_norm`) of the weighted sum.

use super::{PathSpec, Series, Traversal, TraversalPath, series};
use crate::Result;
use crate::models::warped::Warps;
use candle_core::{DType, Tensor};

/// A [`Traversal`] along WarpedSpace's curved paths.
#[derive(Debug, Clone)]
pub struct WarpedFlow {
    warps: Warps,
}

impl WarpedFlow {
    /// Traversal by `warps`.
    pub fn new(warps: Warps) -> Self {
        Self { warps }
    }

    /// The warping functions.
    pub fn warps(&self) -> &Warps {
        &self.warps
    }

    /// The weighted step Σ_k w_k ε ∇f_k/‖∇f_k‖ at `z` (B, d) for (k, w) pairs.
    fn velocity(&self, z: &Tensor, active: &[(usize, f64)]) -> Result<Tensor> {
        let unit = self
            .warps
            .unit_directions(&self.warps.eval(z)?.grad)?
            .to_dtype(z.dtype())?;
        let step = self.warps.config().step;
        let mut velocity = z.zeros_like()?;
        for &(k, w) in active {
            velocity = (velocity + (unit.narrow(1, k, 1)?.squeeze(1)? * (w * step))?)?;
        }
        Ok(velocity)
    }
}

impl Traversal for WarpedFlow {
    fn method(&self) -> String {
        "warped".into()
    }

    fn latent_dim(&self) -> usize {
        self.warps.config().latent
    }

    fn directions(&self) -> usize {
        self.warps.config().k
    }

    fn direction_name(&self, k: usize) -> String {
        self.warps.config().name(k)
    }

    fn walk(&self, z0: &Tensor, spec: &PathSpec) -> Result<Vec<Tensor>> {
        super::walk_with(z0, spec, self.directions(), |_, z, active, sign| {
            Ok((z + (self.velocity(z, active)? * sign)?)?)
        })
    }

    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
        let path = self.walk(z0, spec)?;
        let b = z0.dim(0)?;
        let ev = self.warps.eval(&Tensor::cat(&path, 0)?)?;
        let mut records = super::base_records(&path, spec)?;
        for (s, record) in records.iter_mut().enumerate() {
            // The last point is measured with the last step's weights.
            let weights = spec.plan.record_weights(s.min(spec.steps - 1));
            let rows = |t: &Tensor| t.narrow(0, s * b, b);
            let (mut f, mut g) = (None::<Tensor>, None::<Tensor>);
            for (k, w) in weights {
                let fk = (rows(&ev.value)?.narrow(1, k, 1)?.squeeze(1)? * w)?;
                let gk = (rows(&ev.grad)?.narrow(1, k, 1)?.squeeze(1)? * w)?;
                f = Some(match f {
                    Some(x) => (x + fk)?,
                    None => fk,
                });
                g = Some(match g {
                    Some(x) => (x + gk)?,
                    None => gk,
                });
            }
            let (Some(f), Some(g)) = (f, g) else {
                return Err(crate::Error::config("a plan needs at least one direction"));
            };
            let values = |t: Tensor| -> Result<Vec<f32>> { Ok(t.to_dtype(DType::F32)?.to_vec1()?) };
            record.series.push(Series {
                name: series::U.into(),
                values: values(f)?,
            });
            record.series.push(Series {
                name: series::GRAD_NORM.into(),
                values: values(g.sqr()?.sum(1)?.sqrt()?)?,
            });
        }
        Ok(TraversalPath { z: path, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::Plan;
    use crate::models::warped::WarpedConfig;
    use crate::nn::Params;
    use candle_core::Device;

    fn flow() -> WarpedFlow {
        let p = Params::new(9, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let cfg = WarpedConfig {
            k: 3,
            latent: 4,
            dipoles: 2,
            step: 0.25,
            names: vec!["a".into(), "b".into(), "c".into()],
        };
        WarpedFlow::new(Warps::new(&p, &cfg).unwrap())
    }

    fn z0() -> Tensor {
        crate::nn::fd::randn64(&[2, 4], 3).unwrap()
    }

    #[test]
    fn every_step_has_length_epsilon_and_follows_the_normalised_gradient() {
        let f = flow();
        let spec = PathSpec::single(1, 4);
        let p = f.path(&z0(), &spec).unwrap();
        assert_eq!(p.z.len(), 5);
        for r in &p.records {
            assert!(r.step_norm.iter().all(|n| (n - 0.25).abs() < 1e-6), "{r:?}");
            assert!(r.get(series::U).is_some() && r.get(series::GRAD_NORM).is_some());
        }
        // One step by hand: z_1 = z_0 + ε ∇f_1/‖∇f_1‖.
        let g = f.warps().eval(&p.z[0]).unwrap().grad;
        let g1 = g.narrow(1, 1, 1).unwrap().squeeze(1).unwrap();
        let n = g1.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
        let want = (&p.z[0] + (g1.broadcast_div(&n).unwrap() * 0.25).unwrap()).unwrap();
        let d = (&p.z[1] - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        // f rises along its own path (a gradient ascent of small steps).
        let u: Vec<f32> = p
            .records
            .iter()
            .map(|r| r.get(series::U).unwrap()[0])
            .collect();
        assert!(u.windows(2).all(|w| w[1] > w[0]), "{u:?}");
        assert_eq!(f.direction_name(2), "c");
        assert_eq!(f.method(), "warped");
    }

    #[test]
    fn backwards_superposed_and_density_preserving_walks() {
        let f = flow();
        let z = z0();
        // Backwards: z − ε û.
        let mut spec = PathSpec::single(0, 1);
        spec.negative = true;
        let back = f.walk(&z, &spec).unwrap();
        let fwd = f.walk(&z, &PathSpec::single(0, 1)).unwrap();
        let sum = ((&back[1] + &fwd[1]).unwrap() - (&z * 2.0).unwrap()).unwrap();
        assert!(
            sum.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
                < 1e-12
        );
        // Superposed: the weighted sum of the unit steps.
        spec = PathSpec::single(0, 1);
        spec.plan = Plan::Superpose(vec![(0, 1.0), (2, 0.5)]);
        let both = f.walk(&z, &spec).unwrap();
        let e = f.warps().eval(&z).unwrap();
        let u = f.warps().unit_directions(&e.grad).unwrap();
        let pick = |k: usize| u.narrow(1, k, 1).unwrap().squeeze(1).unwrap();
        let want = (&z + ((pick(0) + (pick(2) * 0.5).unwrap()).unwrap() * 0.25).unwrap()).unwrap();
        let d = (&both[1] - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
        // Density-preserving: the norm of z_0 at every point.
        spec = PathSpec::single(2, 5);
        spec.preserve_density = true;
        let p = f.path(&z, &spec).unwrap();
        let n0: Vec<f64> = z.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
        for zt in &p.z {
            let n: Vec<f64> = zt.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
            assert!(n.iter().zip(&n0).all(|(a, b)| (a - b).abs() < 1e-9));
        }
        assert!(p.records[0].get(series::LOG_DENSITY).is_some());
        assert!(f.walk(&z, &PathSpec::single(3, 1)).is_err());
    }
}
