//! Potential flows (PDE traversal, its linear baseline, and the flow-factorized VAE's
//! Hamilton–Jacobi potentials): z_{t+1} = z_t ± Σ_k w_k ∇u^k(z_t, τ_t), with τ_t the step
//! index t (t + 1 for Hamilton–Jacobi potentials, whose initial condition sits at 0).
//!
//! Along a Hamilton–Jacobi flow the path also records the log-density the flow carries,
//! log q(z_t) − log q(z_0) = −Σ_{s<t} log|1 + Σ_k w_k Δ_z u^k(z_s, τ_s)| (the flow-factorized
//! VAE's posterior density, the first-order log-determinant of the step's Jacobian).

use super::{PathSpec, Series, Traversal, TraversalPath, series};
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
            PotentialKind::Hj => "ffvae".into(),
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

    fn walk(&self, z0: &Tensor, spec: &PathSpec) -> Result<Vec<Tensor>> {
        let b = z0.dim(0)?;
        let dev = z0.device().clone();
        let z0 = z0.to_dtype(self.potentials.dtype())?;
        let kind = self.potentials.config().kind;
        super::walk_with(&z0, spec, self.directions(), |step, z, active, sign| {
            let t = Tensor::full(kind.step_time(step) as f32, b, &dev)?.to_dtype(z.dtype())?;
            let mut velocity = z.zeros_like()?;
            for &(k, w) in active {
                velocity = (velocity + (self.potentials.grad(z, &t, k)? * w)?)?;
            }
            Ok((z + (velocity * sign)?)?)
        })
    }

    fn potentials(&self) -> Option<&Potentials> {
        Some(&self.potentials)
    }

    fn path(&self, z0: &Tensor, spec: &PathSpec) -> Result<TraversalPath> {
        // The walk needs only gradients (the cheap path)...
        let path = self.walk(z0, spec)?;
        let b = z0.dim(0)?;
        let dev = z0.device().clone();
        // ...and the records come from one batched evaluation of every point, each at its
        // own time. The last point is measured with the potentials of the last step.
        let n = spec.steps + 1;
        let all = Tensor::cat(&path, 0)?;
        let point_times = spec.plan.point_times(spec.steps);
        let kind = self.potentials.config().kind;
        let offset = kind.step_time(0) as f32;
        let times: Vec<f32> = point_times
            .iter()
            .flat_map(|&t| std::iter::repeat_n(t as f32 + offset, b))
            .collect();
        let times = Tensor::new(times, &dev)?.to_dtype(all.dtype())?;
        let mut ks = spec.plan.directions();
        ks.sort_unstable();
        ks.dedup();
        let zero = Tensor::zeros(n * b, all.dtype(), &dev)?;
        let (mut u, mut du, mut d2u, mut lap, mut res) = (
            zero.clone(),
            zero.clone(),
            zero.clone(),
            zero.clone(),
            zero.clone(),
        );
        // Σ_k w_k Δu^k with the weights (and sign and scale) the walk stepped with.
        let mut lap_step = zero;
        let sign = if spec.negative {
            -spec.scale
        } else {
            spec.scale
        };
        let mut grad = all.zeros_like()?;
        for k in ks {
            let weights: Vec<f32> = (0..n)
                .flat_map(|s| {
                    let w = spec
                        .plan
                        .record_weights(s.min(spec.steps - 1))
                        .iter()
                        .filter(|(j, _)| *j == k)
                        .map(|(_, w)| *w as f32)
                        .sum::<f32>();
                    std::iter::repeat_n(w, b)
                })
                .collect();
            let w = Tensor::new(weights, &dev)?.to_dtype(all.dtype())?;
            let ev = self.potentials.eval(&all, &times, k)?;
            let f = self.potentials.equation_residual(&all, &times, &ev, k)?;
            if kind == PotentialKind::Hj {
                let stepped: Vec<f32> = (0..n)
                    .flat_map(|s| {
                        let w = if s < spec.steps {
                            spec.plan
                                .active(s)
                                .iter()
                                .filter(|(j, _)| *j == k)
                                .map(|(_, w)| *w * sign)
                                .sum::<f64>()
                        } else {
                            0.0
                        };
                        std::iter::repeat_n(w as f32, b)
                    })
                    .collect();
                let stepped = Tensor::new(stepped, &dev)?.to_dtype(all.dtype())?;
                lap_step = (lap_step + (&ev.laplacian * &stepped)?)?;
            }
            u = (u + (&ev.u * &w)?)?;
            du = (du + (&ev.du_dt * &w)?)?;
            d2u = (d2u + (&ev.d2u_dt2 * &w)?)?;
            lap = (lap + (&ev.laplacian * &w)?)?;
            res = (res + (&f * &w)?)?;
            grad = (grad + ev.grad.broadcast_mul(&w.unsqueeze(1)?)?)?;
        }
        let grad_norm = to_f32(&grad.sqr()?.sum(1)?.sqrt()?)?;
        let (u, du, d2u, lap, res) = (
            to_f32(&u)?,
            to_f32(&du)?,
            to_f32(&d2u)?,
            to_f32(&lap)?,
            to_f32(&res)?,
        );
        if [&u, &du, &d2u, &lap, &res, &grad_norm]
            .iter()
            .any(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Err(crate::Error::config(
                "the potentials' values along the walk are not finite; lower the step scale \
                 or the weights",
            ));
        }
        let rows = |v: &[f32], s: usize| v[s * b..(s + 1) * b].to_vec();
        // The flow's log-density change: −Σ log|1 + Δ| over the steps taken so far.
        let flow_density = (kind == PotentialKind::Hj)
            .then(|| -> Result<Vec<f32>> {
                let lap_step = to_f32(&lap_step)?;
                let mut acc = vec![0f32; n * b];
                for s in 1..n {
                    for i in 0..b {
                        let jac = (1.0 + lap_step[(s - 1) * b + i]).abs().max(1e-12);
                        acc[s * b + i] = acc[(s - 1) * b + i] - jac.ln();
                    }
                }
                Ok(acc)
            })
            .transpose()?;
        let mut records = super::base_records(&path, spec)?;
        for (s, record) in records.iter_mut().enumerate() {
            let named = [
                (series::U, &u),
                (series::GRAD_NORM, &grad_norm),
                (series::DU_DT, &du),
                (series::D2U_DT2, &d2u),
                (series::LAPLACIAN, &lap),
                (series::RESIDUAL, &res),
            ];
            record
                .series
                .extend(named.into_iter().map(|(name, v)| Series {
                    name: name.into(),
                    values: rows(v, s),
                }));
            if let Some(q) = &flow_density {
                record.series.push(Series {
                    name: series::FLOW_LOG_DENSITY.into(),
                    values: rows(q, s),
                });
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
        assert!((r.get(series::GRAD_NORM).unwrap()[0] as f64 - norm[0]).abs() < 1e-5);
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
    fn a_fractional_slider_records_the_whole_potential_at_fractional_t() {
        let f = flow();
        let z = z0();
        let (plan, steps) = Plan::from_sliders(&[0.0, -2.25, 0.0]);
        let spec = PathSpec {
            plan,
            steps,
            negative: false,
            scale: 1.0,
            preserve_density: false,
            density: None,
        };
        let p = f.path(&z, &spec).unwrap();
        let times: Vec<f64> = p.records.iter().map(|r| r.t).collect();
        assert_eq!(times, [0.0, 1.0, 2.0, 2.25]);
        // The walk takes a quarter of the last step, backwards...
        let want = (&p.z[2] - (grad(&f, &p.z[2], 2.0, 1) * 0.25).unwrap()).unwrap();
        assert!(close(&p.z[3], &want));
        // ...but every record, the shortened step's too, is −u^1 itself, at its own time.
        for (s, r) in p.records.iter().enumerate() {
            let t = Tensor::full(r.t, 2, &Device::Cpu).unwrap();
            let ev = f.potentials().eval(&p.z[s], &t, 1).unwrap();
            let u: Vec<f64> = ev.u.to_vec1().unwrap();
            assert!(
                (r.get(series::U).unwrap()[0] as f64 + u[0]).abs() < 1e-5,
                "point {s}"
            );
            let norm = grad(&f, &p.z[s], r.t, 1)
                .sqr()
                .unwrap()
                .sum(1)
                .unwrap()
                .sqrt()
                .unwrap();
            let norm: Vec<f64> = norm.to_vec1().unwrap();
            assert!(
                (r.get(series::GRAD_NORM).unwrap()[0] as f64 - norm[0]).abs() < 1e-5,
                "point {s}"
            );
        }
        // The step lengths are the walk's own: 1, 1 and a quarter of ‖∇u‖, the last point
        // repeating the last step.
        for (s, r) in p.records.iter().enumerate() {
            let from = s.min(2);
            let d: Vec<f64> = (&p.z[from + 1] - &p.z[from])
                .unwrap()
                .sqr()
                .unwrap()
                .sum(1)
                .unwrap()
                .sqrt()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!((r.step_norm[1] as f64 - d[1]).abs() < 1e-6, "point {s}");
        }
        let quarter = p.records[2].step_norm[0] / p.records[2].get(series::GRAD_NORM).unwrap()[0];
        assert!((quarter - 0.25).abs() < 1e-5, "{quarter}");
    }

    #[test]
    fn a_density_preserving_walk_keeps_the_norm_and_takes_the_gradient_at_the_rescaled_point() {
        let f = flow();
        let z = z0();
        let mut spec = PathSpec::single(1, 3);
        spec.scale = 3.0;
        spec.preserve_density = true;
        let p = f.path(&z, &spec).unwrap();
        let norm = |t: &Tensor| -> Vec<f64> {
            t.sqr()
                .unwrap()
                .sum(1)
                .unwrap()
                .sqrt()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let n0 = norm(&z);
        for (s, point) in p.z.iter().enumerate() {
            let n = norm(point);
            assert!(
                n.iter().zip(&n0).all(|(a, b)| (a - b).abs() < 1e-9),
                "point {s}: {n:?}"
            );
        }
        // Each point is the previous one plus its step, rescaled to ‖z_0‖.
        let stepped = (&p.z[1] + (grad(&f, &p.z[1], 1.0, 1) * 3.0).unwrap()).unwrap();
        let want =
            crate::methods::keep_norms(&stepped, &crate::methods::row_norms(&z).unwrap()).unwrap();
        assert!(close(&p.z[2], &want));
        // The records carry −½‖z‖², the same at every point.
        let want_log: Vec<f64> = n0.iter().map(|n| -0.5 * n * n).collect();
        for r in &p.records {
            let v = r.get(series::LOG_DENSITY).unwrap();
            assert!(
                (f64::from(v[0]) - want_log[0]).abs() < 1e-4,
                "{v:?} {want_log:?}"
            );
        }
        // Without the toggle the walk leaves the sphere and records no log-density.
        spec.preserve_density = false;
        let p = f.path(&z, &spec).unwrap();
        assert!(
            norm(&p.z[3])
                .iter()
                .zip(&n0)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
        assert!(p.records[0].get(series::LOG_DENSITY).is_none());
    }

    #[test]
    fn out_of_range_potential_is_refused() {
        let e = flow().path(&z0(), &PathSpec::single(3, 2)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn hamilton_jacobi_flows_step_at_t_plus_one_and_carry_their_log_density() {
        let p = Params::new(4, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Hj, 2, 4);
        cfg.hidden = 16;
        cfg.time_dim = 8;
        let f = PotentialFlow::new(Potentials::new(&p, &cfg).unwrap());
        assert_eq!(f.method(), "ffvae");
        let z = z0();
        let spec = PathSpec::single(1, 3);
        let walk = f.walk(&z, &spec).unwrap();
        // z_1 = z_0 + ∇u(z_0, 1), z_2 = z_1 + ∇u(z_1, 2).
        let z1 = (&z + grad(&f, &z, 1.0, 1)).unwrap();
        let z2 = (&z1 + grad(&f, &z1, 2.0, 1)).unwrap();
        assert!(close(&walk[1], &z1) && close(&walk[2], &z2));
        // log q(z_t) − log q(z_0) = −Σ_{s<t} log|1 + Δu(z_s, s + 1)|, from eval itself.
        let path = f.path(&z, &spec).unwrap();
        let mut want = vec![0.0f64; 2];
        for s in 0..=3 {
            let got = path.records[s].get(series::FLOW_LOG_DENSITY).unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] as f64 - want[i]).abs() < 1e-4,
                    "step {s}: {got:?} vs {want:?}"
                );
            }
            if s < 3 {
                let t = Tensor::full((s + 1) as f64, 2, &Device::Cpu).unwrap();
                let lap: Vec<f64> = f
                    .potentials()
                    .eval(&walk[s], &t, 1)
                    .unwrap()
                    .laplacian
                    .to_vec1()
                    .unwrap();
                for i in 0..2 {
                    want[i] -= (1.0 + lap[i]).abs().ln();
                }
            }
        }
        // The residual is the Hamilton–Jacobi one: ∂_t u + ½‖∇u‖² − f at (z_0, 1).
        let t = Tensor::full(1.0f64, 2, &Device::Cpu).unwrap();
        let ev = f.potentials().eval(&z, &t, 1).unwrap();
        let r: Vec<f64> = f
            .potentials()
            .equation_residual(&z, &t, &ev, 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let rec = path.records[0].get(series::RESIDUAL).unwrap();
        for i in 0..2 {
            assert!((rec[i] as f64 - r[i]).abs() < 1e-4 * r[i].abs().max(1.0));
        }
    }
}
