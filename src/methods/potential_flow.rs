//! Potential flows (PDE traversal and its linear baseline): z_{t+1} = z_t ± Σ_k w_k ∇u^k(z_t, t),
//! with t the step index.

use super::{PathSpec, StepRecord, Traversal, TraversalPath};
use crate::Result;
use crate::models::potential::{PotentialKind, Potentials};
use candle_core::Tensor;

/// A [`Traversal`] by a set of learned potentials.
#[derive(Debug, Clone)]
pub struct PotentialFlow {
    potentials: Potentials,
}

impl PotentialFlow {
    /// Traversal by `potentials`.
    pub fn new(potentials: Potentials) -> Self {
        Self { potentials }
    }

    /// The potentials.
    pub fn potentials(&self) -> &Potentials {
        &self.potentials
    }
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?.to_vec1()?)
}

impl Traversal for PotentialFlow {
    fn method(&self) -> String {
        match self.potentials.config().kind {
            PotentialKind::Pde => "pde".into(),
            PotentialKind::Linear => "linear".into(),
        }
    }

    fn latent_dim(&self) -> usize {
        self.potentials.config().latent
    }

    fn directions(&self) -> usize {
        self.potentials.len()
    }

    fn direction_name(&self, k: usize) -> String {
        self.potentials.config().name(k)
    }

    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
        spec.validate(self.directions())?;
        let b = z0.dim(0)?;
        let sign = if spec.negative {
            -spec.scale
        } else {
            spec.scale
        };
        let mut z = z0.to_dtype(self.potentials.dtype())?;
        let mut path = vec![z.clone()];
        let mut records = Vec::with_capacity(spec.steps + 1);
        for step in 0..=spec.steps {
            // The last point is measured with the potentials of the last step.
            let active = spec.plan.active(step.min(spec.steps - 1));
            let t = Tensor::full(step as f32, b, z.device())?.to_dtype(z.dtype())?;
            let (mut u, mut grad, mut du, mut d2u, mut lap, mut res) =
                (None::<Tensor>, None::<Tensor>, None, None, None, None);
            for (k, w) in active {
                let ev = self.potentials.eval(&z, &t, k)?;
                let f = self.potentials.residual(&ev, k)?;
                let acc = |a: Option<Tensor>, x: &Tensor| -> Result<Option<Tensor>> {
                    let x = (x * w)?;
                    Ok(Some(match a {
                        Some(a) => (a + x)?,
                        None => x,
                    }))
                };
                u = acc(u, &ev.u)?;
                grad = acc(grad, &ev.grad)?;
                du = acc(du, &ev.du_dt)?;
                d2u = acc(d2u, &ev.d2u_dt2)?;
                lap = acc(lap, &ev.laplacian)?;
                res = acc(res, &f)?;
            }
            let (Some(u), Some(grad), Some(du), Some(d2u), Some(lap), Some(res)) =
                (u, grad, du, d2u, lap, res)
            else {
                return Err(crate::Error::config("a plan needs at least one direction"));
            };
            records.push(StepRecord {
                t: step as f64,
                u: to_f32(&u)?,
                grad_norm: to_f32(&grad.sqr()?.sum(1)?.sqrt()?)?,
                du_dt: to_f32(&du)?,
                d2u_dt2: to_f32(&d2u)?,
                laplacian: to_f32(&lap)?,
                residual: to_f32(&res)?,
            });
            if step < spec.steps {
                z = (&z + (grad * sign)?)?;
                path.push(z.clone());
            }
        }
        Ok(TraversalPath { z: path, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::Plan;
    use crate::models::potential::PotentialConfig;
    use crate::nn::Params;
    use candle_core::{DType, Device};

    fn flow() -> PotentialFlow {
        let p = Params::new(3, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 3, 4);
        cfg.hidden = 16;
        cfg.time_dim = 8;
        PotentialFlow::new(Potentials::new(&p, &cfg).unwrap())
    }

    fn z0() -> Tensor {
        crate::nn::fd::randn64(&[2, 4], 5).unwrap()
    }

    fn grad(f: &PotentialFlow, z: &Tensor, t: f64, k: usize) -> Tensor {
        let t = Tensor::full(t, z.dim(0).unwrap(), z.device()).unwrap();
        f.potentials().grad(z, &t, k).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        d < 1e-12
    }

    #[test]
    fn steps_follow_the_gradient_forwards_and_backwards() {
        let f = flow();
        let z = z0();
        let p = f.path(&z, &PathSpec::single(1, 3)).unwrap();
        assert_eq!(p.z.len(), 4);
        assert_eq!(p.records.len(), 4);
        let want = (&p.z[1] + grad(&f, &p.z[1], 1.0, 1)).unwrap();
        assert!(close(&p.z[2], &want));
        let mut neg = PathSpec::single(1, 3);
        neg.negative = true;
        neg.scale = 0.5;
        let n = f.path(&z, &neg).unwrap();
        let want = (&z - (grad(&f, &z, 0.0, 1) * 0.5).unwrap()).unwrap();
        assert!(close(&n.z[1], &want));
        // Records hold the potential's own values.
        let r = &p.records[2];
        let norm = grad(&f, &p.z[2], 2.0, 1)
            .sqr()
            .unwrap()
            .sum(1)
            .unwrap()
            .sqrt()
            .unwrap();
        let norm: Vec<f64> = norm.to_vec1().unwrap();
        assert!((r.grad_norm[0] as f64 - norm[0]).abs() < 1e-5);
        assert_eq!(r.t, 2.0);
    }

    #[test]
    fn switching_and_superposition() {
        let f = flow();
        let z = z0();
        let mut spec = PathSpec::single(0, 3);
        spec.plan = Plan::Switch {
            k: 0,
            then: 2,
            at: 1,
        };
        let p = f.path(&z, &spec).unwrap();
        assert!(close(&p.z[1], &(&z + grad(&f, &z, 0.0, 0)).unwrap()));
        assert!(close(
            &p.z[2],
            &(&p.z[1] + grad(&f, &p.z[1], 1.0, 2)).unwrap()
        ));
        spec.plan = Plan::Superpose(vec![(0, 1.0), (2, -0.5)]);
        let p = f.path(&z, &spec).unwrap();
        let step = (grad(&f, &z, 0.0, 0) - (grad(&f, &z, 0.0, 2) * 0.5).unwrap()).unwrap();
        assert!(close(&p.z[1], &(&z + step).unwrap()));
    }

    #[test]
    fn out_of_range_potential_is_refused() {
        let e = flow().path(&z0(), &PathSpec::single(3, 2)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
