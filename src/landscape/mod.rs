//! The potential landscape: u^k(·, t) on the plane through z spanned by ∇u^k(z, t) and a
//! second direction, evaluated on an n × n grid — by a WGSL compute shader
//! (`shaders/landscape.wgsl`, [`GpuLandscape`]) or by candle on the CPU ([`cpu_grid`]).

mod gpu;

pub use gpu::GpuLandscape;

use crate::models::potential::Potentials;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;

/// A square slice of latent space.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Centre c (d).
    pub center: Vec<f32>,
    /// First axis e1 (unit, d).
    pub e1: Vec<f32>,
    /// Second axis e2 (unit, orthogonal to e1, d).
    pub e2: Vec<f32>,
    /// The grid spans [−extent, extent] along both axes.
    pub extent: f32,
    /// Points per side.
    pub n: usize,
}

/// Where to slice: the plane through `z` at time `t` for potential `k`.
#[derive(Debug, Clone, Copy)]
pub struct SliceSpec<'a> {
    /// The centre (d).
    pub z: &'a [f32],
    /// Time of the potential.
    pub t: f64,
    /// Which potential.
    pub k: usize,
    /// The second direction (None: random from `seed`).
    pub second: Option<&'a [f32]>,
    /// Seed of the random second direction.
    pub seed: u64,
    /// Half the side of the square.
    pub extent: f32,
    /// Points per side.
    pub n: usize,
}

fn normalise(v: &mut [f32]) -> f32 {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

impl Slice {
    /// The plane through `z` (d) spanned by ∇u^k(z, t) and `second` (made orthogonal; a
    /// random direction from `seed` when None or parallel).
    pub fn through(pots: &Potentials, spec: &SliceSpec) -> Result<Self> {
        let SliceSpec {
            z,
            t,
            k,
            second,
            seed,
            extent,
            n,
        } = *spec;
        let d = z.len();
        if n < 2 || !(extent.is_finite() && extent > 0.0) {
            return Err(Error::config(
                "a landscape needs n >= 2 and a positive extent",
            ));
        }
        let zt = Tensor::new(z, &Device::Cpu)?
            .unsqueeze(0)?
            .to_dtype(pots.dtype())?;
        let tt = Tensor::full(t, 1, &Device::Cpu)?.to_dtype(pots.dtype())?;
        let g = pots.grad(&zt, &tt, k)?;
        let mut e1: Vec<f32> = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut random = || -> Vec<f32> {
            (0..d)
                .map(|_| rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng))
                .collect()
        };
        if normalise(&mut e1) == 0.0 {
            e1 = random();
            normalise(&mut e1);
        }
        let mut e2 = second.map(<[f32]>::to_vec).unwrap_or_else(&mut random);
        for _ in 0..2 {
            let dot: f32 = e2.iter().zip(&e1).map(|(a, b)| a * b).sum();
            e2.iter_mut().zip(&e1).for_each(|(x, y)| *x -= dot * y);
            if normalise(&mut e2) > 1e-6 {
                break;
            }
            e2 = random();
        }
        Ok(Self {
            center: z.to_vec(),
            e1,
            e2,
            extent,
            n,
        })
    }

    /// The grid coordinate of axis position i (0..n).
    pub fn coordinate(&self, i: usize) -> f32 {
        -self.extent + 2.0 * self.extent * i as f32 / (self.n - 1) as f32
    }

    /// The plane coordinates (a, b) of a latent code (its projection).
    pub fn project(&self, z: &[f32]) -> (f32, f32) {
        let (mut a, mut b) = (0.0, 0.0);
        for (((zq, cq), e1q), e2q) in z.iter().zip(&self.center).zip(&self.e1).zip(&self.e2) {
            a += (zq - cq) * e1q;
            b += (zq - cq) * e2q;
        }
        (a, b)
    }
}

/// u^k(·, t) on the slice's grid by candle (row j, column i at j·n + i).
pub fn cpu_grid(pots: &Potentials, slice: &Slice, t: f64, k: usize) -> Result<Vec<f32>> {
    let (n, d) = (slice.n, slice.center.len());
    let mut points = Vec::with_capacity(n * n * d);
    for j in 0..n {
        for i in 0..n {
            let (a, b) = (slice.coordinate(i), slice.coordinate(j));
            points.extend((0..d).map(|q| slice.center[q] + a * slice.e1[q] + b * slice.e2[q]));
        }
    }
    let z = Tensor::from_vec(points, (n * n, d), &Device::Cpu)?.to_dtype(pots.dtype())?;
    let tt = Tensor::full(t, n * n, &Device::Cpu)?.to_dtype(pots.dtype())?;
    Ok(pots.value(&z, &tt, k)?.to_dtype(DType::F32)?.to_vec1()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::potential::{PotentialConfig, PotentialKind};
    use crate::nn::Params;

    #[test]
    fn gpu_and_cpu_grids_agree() {
        let p = Params::new(3, &Device::Cpu);
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 2, 7);
        cfg.hidden = 24;
        cfg.time_dim = 8;
        let pots = Potentials::new(&p, &cfg).unwrap();
        let z: Vec<f32> = (0..7).map(|i| (i as f32 * 0.37).sin()).collect();
        let spec = SliceSpec {
            z: &z,
            t: 2.0,
            k: 1,
            second: None,
            seed: 5,
            extent: 2.5,
            n: 17,
        };
        let slice = Slice::through(&pots, &spec).unwrap();
        let dot: f32 = slice.e1.iter().zip(&slice.e2).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 1e-5, "axes are orthogonal");
        assert_eq!(slice.project(&z), (0.0, 0.0));
        let cpu = cpu_grid(&pots, &slice, 2.0, 1).unwrap();
        let gpu = GpuLandscape::headless()
            .unwrap()
            .evaluate(&pots, &slice, 2.0, 1)
            .unwrap();
        assert_eq!(cpu.len(), 17 * 17);
        let err = cpu
            .iter()
            .zip(&gpu)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-4, "max |cpu − gpu| = {err}");
        // The grid is not constant, and its centre is u(z).
        let spread = cpu.iter().fold(f32::MIN, |m, x| m.max(*x))
            - cpu.iter().fold(f32::MAX, |m, x| m.min(*x));
        assert!(spread > 1e-3);
    }
}
