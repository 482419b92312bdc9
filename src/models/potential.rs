//! K learned potentials u^k(z, t) and their exact derivatives in one forward pass.
//!
//! The architecture is the papers' (Song et al., ICML 2023), one set of weights per k:
//!
//! ```text
//! h_z = tanh(W_z z + b_z)                                   (H)
//! e   = [sin(t ω_i), cos(t ω_i)],  ω_i = 10000^(−i/(E/2−1))  (E, i = 0..E/2)
//! h_t = W_t2 GELU(W_t1 e + b_t1) + b_t2                      (H)
//! v   = w_2 · tanh(W_1 (h_z + h_t) + b_1) + b_2              (scalar)
//! u   = tanh(v)  if final_tanh, else v
//! ```
//!
//! GELU is the exact one, x Φ(x) (PyTorch's `nn.GELU()` default).
//!
//! [`Potentials::eval`] returns u, ∇_z u, ∂_t u, ∂²_t u and the Laplacian Δ_z u (the trace
//! of the Hessian) per sample, carried forward through the layers as ordinary tensor
//! operations, so candle's first-order backward pass trains on any loss built from them.
//! For y = σ(a), a = W x + b with x carrying Jacobian J and Laplacian L:
//! J_a = W J, L_a = W L, J_y = σ'(a) ⊙ J_a, L_y = σ'(a) ⊙ L_a + σ''(a) ⊙ Σ_i (J_a)_{·i}².
//! ∇_z u is one hand-written reverse sweep. The time derivatives carry (value, first,
//! second) through the embedding (e' = [ω cos, −ω sin], e'' = −ω² e) and the same chain rule.
//!
//! A [`PotentialKind::Hj`] set is the flow-factorized VAE's (Song et al., NeurIPS 2023): the
//! same MLPs, obeying the Hamilton–Jacobi equation ∂_t u + ½‖∇_z u‖² = f^k(z, t) with a
//! force f^k = −MLP_f(z, t)² ≤ 0 (one more MLP of the same architecture per k, stored under
//! `force.*`, without the final tanh) and a diffusion coefficient D_k = softplus(ρ_k) of
//! the prior (`potential.diffusion`). Its flow steps at times 1..T (z_t = z_{t−1} +
//! ∇u(z_{t−1}, t)), as the reference code does: the initial condition ∇u(z, 0) = 0 holds at
//! t = 0, and a first step at t = 0 would be pinned to zero by it.
//!
//! A [`PotentialKind::Linear`] set is the paper's "Ours (Linear)" baseline: u^k = a_k · z,
//! so ∇u is the constant direction a_k (normalised to length `step` when traversing) and
//! every time derivative and the Laplacian vanish.

use crate::nn::Params;
use crate::{Error, Result};
use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

/// The family of a potential set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PotentialKind {
    /// The MLP potentials trained with the wave-equation PINN.
    Pde,
    /// Linear potentials u = a·z (constant directions).
    Linear,
    /// The flow-factorized VAE's MLP potentials, trained with the Hamilton–Jacobi PINN
    /// together with the VAE (see the module docs).
    Hj,
}

impl PotentialKind {
    /// Whether the potentials are MLPs (PDE or Hamilton–Jacobi), not linear.
    pub fn is_mlp(self) -> bool {
        !matches!(self, Self::Linear)
    }

    /// The time of the step that leaves point `s` of a walk: s, or s + 1 for the
    /// Hamilton–Jacobi potentials (see the module docs).
    pub fn step_time(self, s: usize) -> f64 {
        match self {
            Self::Hj => s as f64 + 1.0,
            _ => s as f64,
        }
    }
}

impl std::str::FromStr for PotentialKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pde" => Ok(Self::Pde),
            "linear" => Ok(Self::Linear),
            "hj" => Ok(Self::Hj),
            _ => Err(Error::config(format!(
                "unknown potential kind '{s}' (expected pde, linear or hj)"
            ))),
        }
    }
}

/// Shape of a potential set; stored in the manifest's `architecture`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotentialConfig {
    /// PDE (MLP) or linear.
    pub kind: PotentialKind,
    /// Number of potentials K.
    pub k: usize,
    /// Latent size d.
    pub latent: usize,
    /// Hidden width H.
    pub hidden: usize,
    /// Time-embedding size E (even, at least 4).
    pub time_dim: usize,
    /// Whether u = tanh(v) (bounded potentials) rather than v.
    pub final_tanh: bool,
    /// Length of one linear step (linear potentials only: ∇u is normalised to this).
    pub step: f64,
    /// Display names, one per potential (editable; default "potential k").
    #[serde(default)]
    pub names: Vec<String>,
    /// A floor c_min for the wave speeds: the stored `wave_speed` is then ρ_k and
    /// c_k = c_min + softplus(ρ_k) > c_min, starting at 1 (without one, the stored value is
    /// c_k itself, free to drift to 0 and remove the wave equation's coupling of space and
    /// time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_speed_floor: Option<f64>,
}

impl PotentialConfig {
    /// Defaults for `k` PDE potentials on a `latent`-dimensional space.
    pub fn new(kind: PotentialKind, k: usize, latent: usize) -> Self {
        Self {
            kind,
            k,
            latent,
            hidden: 128,
            time_dim: 32,
            final_tanh: true,
            step: 0.5,
            names: (0..k).map(|i| format!("potential {i}")).collect(),
            wave_speed_floor: None,
        }
    }

    /// Checks sizes.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.latent == 0 || self.hidden == 0 {
            return Err(Error::config(
                "k, latent size and hidden width must be positive",
            ));
        }
        use crate::limits::{MAX_K, MAX_LATENT, MAX_WIDTH, check_count};
        check_count("the number of potentials", self.k, MAX_K)?;
        check_count("the latent size", self.latent, MAX_LATENT)?;
        check_count("the hidden width", self.hidden, MAX_WIDTH)?;
        check_count("the time embedding size", self.time_dim, MAX_WIDTH)?;
        if self.time_dim < 4 || !self.time_dim.is_multiple_of(2) {
            return Err(Error::config(format!(
                "the time embedding size must be even and at least 4, not {}",
                self.time_dim
            )));
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(Error::config("the linear step must be positive"));
        }
        if let Some(floor) = self.wave_speed_floor
            && !(floor.is_finite() && (0.0..1.0).contains(&floor))
        {
            return Err(Error::config(format!(
                "the wave speed floor must be in [0, 1) (the speeds start at 1), not {floor}"
            )));
        }
        if !self.names.is_empty() && self.names.len() != self.k {
            return Err(Error::config(format!(
                "{} names given for {} potentials",
                self.names.len(),
                self.k
            )));
        }
        Ok(())
    }

    /// Name of potential `k`.
    pub fn name(&self, k: usize) -> String {
        self.names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("potential {k}"))
    }
}

/// One MLP potential at a fixed time, flattened for the landscape shader (f32, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct ShaderWeights {
    /// W_z (H·d).
    pub wz: Vec<f32>,
    /// b_z, h_t(t), b_1 and w_2, each H.
    pub vecs: Vec<f32>,
    /// W_1 (H·H).
    pub w1: Vec<f32>,
    /// b_2.
    pub b2: f32,
}

/// What [`Potentials::eval`] computes, each per sample.
#[derive(Debug, Clone)]
pub struct PotentialEval {
    /// u (B).
    pub u: Tensor,
    /// ∇_z u (B, d).
    pub grad: Tensor,
    /// ∂u/∂t (B).
    pub du_dt: Tensor,
    /// ∂²u/∂t² (B).
    pub d2u_dt2: Tensor,
    /// Δ_z u, the trace of the Hessian in z (B).
    pub laplacian: Tensor,
}

/// The weights of one MLP potential (views into the stacked tensors, so they follow
/// in-place optimiser updates and pass gradients back to them).
#[derive(Debug, Clone)]
struct Mlp {
    wz: Tensor,
    bz: Tensor,
    wt1: Tensor,
    bt1: Tensor,
    wt2: Tensor,
    bt2: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

/// The weights of one frozen MLP potential on the host, for [`Potentials::grad`] of a few
/// codes at a time: a traversal step of one code is a few dozen small tensor operations,
/// whose overhead (allocation, dispatch, thread hand-offs) dwarfs the arithmetic.
#[derive(Debug)]
struct HostMlp {
    d: usize,
    h: usize,
    wz: Vec<f64>,
    bz: Vec<f64>,
    w1: Vec<f64>,
    b1: Vec<f64>,
    w2: Vec<f64>,
    b2: f64,
}

/// Σ a_i b_i with four running sums (so the compiler can vectorise it).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

impl HostMlp {
    /// ∇_z v at `z` given h_t (the time branch at this time), and v; plain loops.
    fn grad(&self, z: &[f64], ht: &[f64], out: &mut [f64]) -> f64 {
        let (d, h) = (self.d, self.h);
        let hz: Vec<f64> = (0..h)
            .map(|i| (dot(&self.wz[i * d..][..d], z) + self.bz[i]).tanh())
            .collect();
        let x1: Vec<f64> = hz.iter().zip(ht).map(|(a, b)| a + b).collect();
        let h1: Vec<f64> = (0..h)
            .map(|i| (dot(&self.w1[i * h..][..h], &x1) + self.b1[i]).tanh())
            .collect();
        let v = dot(&self.w2, &h1) + self.b2;
        // Back through W_1 (rows of W_1 weighted by (1 − h1²) w2), then tanh and W_z.
        let mut g_x1 = vec![0.0; h];
        for ((&y, &w2), row) in h1.iter().zip(&self.w2).zip(self.w1.chunks_exact(h)) {
            let c = (1.0 - y * y) * w2;
            for (g, &w) in g_x1.iter_mut().zip(row) {
                *g += c * w;
            }
        }
        out.fill(0.0);
        for j in 0..h {
            let c = g_x1[j] * (1.0 - hz[j] * hz[j]);
            for (o, &w) in out.iter_mut().zip(&self.wz[j * d..][..d]) {
                *o += c * w;
            }
        }
        v
    }
}

/// The time branch h_t of frozen potentials, by (potential, bits of t).
type TimeBranches = std::collections::HashMap<(usize, u64), Vec<f64>>;

/// Codes per call below which [`Potentials::grad`] of frozen potentials runs on the host.
const HOST_GRAD_MAX_BATCH: usize = 4;

/// K potentials. Tensors (leading dimension K) are listed in `docs/checkpoint-format.md`.
#[derive(Debug, Clone)]
pub struct Potentials {
    cfg: PotentialConfig,
    tensors: Vec<Tensor>,
    /// Per-potential views, made once (a traversal step would otherwise slice 10 tensors).
    views: Vec<Mlp>,
    /// Host copies of frozen weights, made on first use (see [`HostMlp`]).
    host: std::sync::Arc<std::sync::OnceLock<Vec<HostMlp>>>,
    /// The time branch h_t of frozen potentials by (k, t), made on first use.
    time_branch: std::sync::Arc<std::sync::Mutex<TimeBranches>>,
    /// Wave speeds c^k (K), learnable, initialised to 1 (PDE and linear sets).
    wave_speed: Tensor,
    /// The force networks f^k = −MLP_f² of a Hamilton–Jacobi set.
    force: Option<Box<Potentials>>,
    /// ρ_k of the prior's diffusion coefficients D_k = softplus(ρ_k) (Hamilton–Jacobi sets).
    diffusion: Option<Tensor>,
    omega: Tensor,
}

const NAMES: [&str; 10] = [
    "z.weight",
    "z.bias",
    "t1.weight",
    "t1.bias",
    "t2.weight",
    "t2.bias",
    "h.weight",
    "h.bias",
    "out.weight",
    "out.bias",
];

impl Potentials {
    /// Creates (or loads, from a store holding a checkpoint) the potentials `cfg` describes,
    /// with PyTorch's default initialisation (uniform in ±1/√fan_in).
    pub fn new(p: &Params, cfg: &PotentialConfig) -> Result<Self> {
        Self::build(p, cfg, true)
    }

    /// [`Potentials::new`]; a Hamilton–Jacobi set's force networks have no wave speeds.
    fn build(p: &Params, cfg: &PotentialConfig, wave_speeds: bool) -> Result<Self> {
        cfg.validate()?;
        let (k, d, h, e) = (cfg.k, cfg.latent, cfg.hidden, cfg.time_dim);
        let (force, diffusion) = if cfg.kind == PotentialKind::Hj {
            let force_cfg = PotentialConfig {
                kind: PotentialKind::Pde,
                final_tanh: false,
                wave_speed_floor: None,
                ..cfg.clone()
            };
            let force = Potentials::build(&p.pp("force"), &force_cfg, false)?;
            // D_k = softplus(ρ_k) starts at 0.1.
            let rho = p
                .pp("potential")
                .constant("diffusion", k, 0.1f64.exp_m1().ln())?;
            (Some(Box::new(force)), Some(rho))
        } else {
            (None, None)
        };
        let p = p.pp("potential");
        let tensors = match cfg.kind {
            PotentialKind::Pde | PotentialKind::Hj => {
                let shapes: [(&[usize], usize); 10] = [
                    (&[k, h, d], d),
                    (&[k, h], d),
                    (&[k, h, e], e),
                    (&[k, h], e),
                    (&[k, h, h], h),
                    (&[k, h], h),
                    (&[k, h, h], h),
                    (&[k, h], h),
                    (&[k, h], h),
                    (&[k], h),
                ];
                NAMES
                    .iter()
                    .zip(shapes)
                    .map(|(name, (shape, fan_in))| {
                        p.uniform(name, shape.to_vec(), 1. / (fan_in as f64).sqrt())
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?
            }
            PotentialKind::Linear => vec![p.normal("direction", (k, d), 0.0, 1.0)?],
        };
        // c_k = 1 at the start: the stored value itself, or ρ with c_min + softplus(ρ) = 1.
        let start = match cfg.wave_speed_floor {
            Some(floor) => (1.0 - floor).exp_m1().ln(),
            None => 1.0,
        };
        let wave_speed = if cfg.kind == PotentialKind::Hj || !wave_speeds {
            // Not part of a Hamilton–Jacobi set (and not stored with it).
            Tensor::ones(k, p.dtype(), p.device())?
        } else {
            p.constant("wave_speed", k, start)?
        };
        let half = e / 2;
        let omega: Vec<f64> = (0..half)
            .map(|i| 10000f64.powf(-(i as f64) / (half as f64 - 1.)))
            .collect();
        let omega = Tensor::new(omega, p.device())?
            .to_dtype(p.dtype())?
            .reshape((1, half))?;
        let views = match cfg.kind {
            PotentialKind::Pde | PotentialKind::Hj => (0..k)
                .map(|i| Self::slice(&tensors, i))
                .collect::<Result<Vec<_>>>()?,
            PotentialKind::Linear => Vec::new(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            tensors,
            views,
            host: Default::default(),
            time_branch: Default::default(),
            wave_speed,
            force,
            diffusion,
            omega,
        })
    }

    /// Whether the weights are constants (loaded for inference, not being trained).
    fn frozen(&self) -> bool {
        !self.tensors.iter().any(Tensor::track_op)
    }

    /// The host copies of the weights (frozen potentials only).
    fn host_mlps(&self) -> Result<&[HostMlp]> {
        if let Some(h) = self.host.get() {
            return Ok(h);
        }
        let mlps = (0..self.cfg.k)
            .map(|k| -> Result<HostMlp> {
                let m = self.mlp(k)?;
                let v = |t: &Tensor| -> Result<Vec<f64>> {
                    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?)
                };
                Ok(HostMlp {
                    d: self.cfg.latent,
                    h: self.cfg.hidden,
                    wz: v(&m.wz)?,
                    bz: v(&m.bz)?,
                    w1: v(&m.w1)?,
                    b1: v(&m.b1)?,
                    w2: v(&m.w2)?,
                    b2: v(&m.b2)?.first().copied().unwrap_or(0.0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let _ = self.host.set(mlps);
        self.host
            .get()
            .map(Vec::as_slice)
            .ok_or_else(|| Error::config("host weights were not made"))
    }

    /// h_t of frozen potential `k` at time `t`, computed once per (k, t).
    fn host_time_branch(&self, k: usize, t: f64) -> Result<Vec<f64>> {
        let key = (k, t.to_bits());
        if let Ok(cache) = self.time_branch.lock()
            && let Some(v) = cache.get(&key)
        {
            return Ok(v.clone());
        }
        let m = self.mlp(k)?;
        let tt = Tensor::full(t, 1, self.omega.device())?.to_dtype(self.dtype())?;
        let (e, _, _) = self.embed(&tt)?;
        let pre = e.matmul(&m.wt1.t()?)?.broadcast_add(&m.bt1)?;
        let ht = gelu(&pre)?.matmul(&m.wt2.t()?)?.broadcast_add(&m.bt2)?;
        let v: Vec<f64> = ht.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        if let Ok(mut cache) = self.time_branch.lock() {
            // Traversals use a few dozen integer times; bound the cache all the same.
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(key, v.clone());
        }
        Ok(v)
    }

    /// [`Potentials::grad`] on the host: frozen MLP potentials, a few codes.
    fn host_grad(&self, z: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
        let mlp = &self.host_mlps()?[k];
        let (b, d) = z.dims2()?;
        let zs: Vec<f64> = z.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let ts: Vec<f64> = t.to_dtype(DType::F64)?.to_vec1()?;
        let mut out = vec![0.0; b * d];
        for (i, (zi, gi)) in zs.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
            let ht = self.host_time_branch(k, ts[i])?;
            let v = mlp.grad(zi, &ht, gi);
            if self.cfg.final_tanh {
                let s = 1.0 - v.tanh().powi(2);
                gi.iter_mut().for_each(|g| *g *= s);
            }
        }
        Ok(Tensor::from_vec(out, (b, d), z.device())?.to_dtype(z.dtype())?)
    }

    /// The configuration.
    pub fn config(&self) -> &PotentialConfig {
        &self.cfg
    }

    /// Number of potentials.
    pub fn len(&self) -> usize {
        self.cfg.k
    }

    /// Always false: a set has at least one potential.
    pub fn is_empty(&self) -> bool {
        self.cfg.k == 0
    }

    /// The wave speeds c^k (K).
    pub fn wave_speed(&self) -> &Tensor {
        &self.wave_speed
    }

    fn check(&self, z: &Tensor, k: usize) -> Result<()> {
        if k >= self.cfg.k {
            return Err(Error::config(format!(
                "potential {k} does not exist (this set has {}: 0..{})",
                self.cfg.k,
                self.cfg.k - 1
            )));
        }
        let dims = z.dims();
        if dims.len() != 2 || dims[1] != self.cfg.latent {
            return Err(Error::config(format!(
                "latent codes of shape {dims:?} do not fit potentials on a {}-dimensional latent space",
                self.cfg.latent
            )));
        }
        Ok(())
    }

    fn mlp(&self, k: usize) -> Result<Mlp> {
        self.views
            .get(k)
            .cloned()
            .ok_or_else(|| Error::config(format!("potential {k} has no MLP")))
    }

    fn slice(tensors: &[Tensor], k: usize) -> Result<Mlp> {
        let w: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.narrow(0, k, 1)?.squeeze(0))
            .collect::<candle_core::Result<_>>()?;
        let [wz, bz, wt1, bt1, wt2, bt2, w1, b1, w2, b2]: [Tensor; 10] = w
            .try_into()
            .map_err(|_| Error::config("a PDE potential set needs 10 tensors"))?;
        Ok(Mlp {
            wz,
            bz,
            wt1,
            bt1,
            wt2,
            bt2,
            w1,
            b1,
            w2,
            b2,
        })
    }

    fn linear_direction(&self, k: usize) -> Result<Tensor> {
        let a = self.tensors[0].narrow(0, k, 1)?; // (1, d)
        let norm = a.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok((a.broadcast_div(&(norm + 1e-12)?)? * self.cfg.step)?)
    }

    /// The sinusoidal embedding of `t` (B) and its first and second time derivatives, each
    /// (B, E).
    fn embed(&self, t: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let phase = t.unsqueeze(1)?.broadcast_mul(&self.omega)?;
        let (s, c) = (phase.sin()?, phase.cos()?);
        let e = Tensor::cat(&[&s, &c], 1)?;
        let e1 = Tensor::cat(
            &[
                &c.broadcast_mul(&self.omega)?,
                &s.broadcast_mul(&self.omega)?.neg()?,
            ],
            1,
        )?;
        let w2 = self.omega.sqr()?;
        let e2 = Tensor::cat(&[&s.broadcast_mul(&w2)?, &c.broadcast_mul(&w2)?], 1)?.neg()?;
        Ok((e, e1, e2))
    }

    /// u, ∇_z u, ∂_t u, ∂²_t u and Δ_z u of potential `k` at latent codes `z` (B, d) and
    /// times `t` (B).
    pub fn eval(&self, z: &Tensor, t: &Tensor, k: usize) -> Result<PotentialEval> {
        self.check(z, k)?;
        let b = z.dim(0)?;
        if self.cfg.kind == PotentialKind::Linear {
            let a = self.tensors[0].narrow(0, k, 1)?;
            let u = z.broadcast_mul(&a)?.sum(1)?;
            let zeros = u.zeros_like()?;
            return Ok(PotentialEval {
                u,
                grad: self
                    .linear_direction(k)?
                    .broadcast_as((b, self.cfg.latent))?
                    .contiguous()?,
                du_dt: zeros.clone(),
                d2u_dt2: zeros.clone(),
                laplacian: zeros,
            });
        }
        let m = self.mlp(k)?;
        // Latent branch.
        let hz = z.matmul(&m.wz.t()?)?.broadcast_add(&m.bz)?.tanh()?; // (B, H)
        let s1 = one_minus_sq(&hz)?;
        // Time branch: value, ∂t, ∂²t.
        let (e, e1, e2) = self.embed(t)?;
        let wt1t = m.wt1.t()?;
        let pre = e.matmul(&wt1t)?.broadcast_add(&m.bt1)?;
        let pre1 = e1.matmul(&wt1t)?;
        let pre2 = e2.matmul(&wt1t)?;
        let (g0, g1, g2) = gelu_derivs(&pre)?;
        let act = g0;
        let act1 = (&g1 * &pre1)?;
        let act2 = ((&g2 * pre1.sqr()?)? + (&g1 * &pre2)?)?;
        let wt2t = m.wt2.t()?;
        let ht = act.matmul(&wt2t)?.broadcast_add(&m.bt2)?;
        let ht1 = act1.matmul(&wt2t)?;
        let ht2 = act2.matmul(&wt2t)?;
        // Hidden layer.
        let w1t = m.w1.t()?;
        let a1 = (&hz + &ht)?.matmul(&w1t)?.broadcast_add(&m.b1)?;
        let h1 = a1.tanh()?;
        let s2 = one_minus_sq(&h1)?;
        let w2 = m.w2.unsqueeze(1)?; // (H, 1)
        let v = h1.matmul(&w2)?.squeeze(1)?.broadcast_add(&m.b2)?;
        // Time derivatives of v.
        let a1_t = ht1.matmul(&w1t)?;
        let a1_tt = ht2.matmul(&w1t)?;
        let h1_t = (&s2 * &a1_t)?;
        let curv2 = (&h1 * &s2)?.affine(-2., 0.)?; // tanh'' = −2 tanh (1 − tanh²)
        let h1_tt = ((&s2 * &a1_tt)? + (&curv2 * a1_t.sqr()?)?)?;
        let v_t = h1_t.matmul(&w2)?.squeeze(1)?;
        let v_tt = h1_tt.matmul(&w2)?.squeeze(1)?;
        // ∇_z v by one reverse sweep.
        let back_h1 = s2.broadcast_mul(&m.w2)?.matmul(&m.w1)?; // (B, H): ∂v/∂h_z
        let grad_v = (&back_h1 * &s1)?.matmul(&m.wz)?; // (B, d)
        // Δ_z v.
        let curv1 = (&hz * &s1)?.affine(-2., 0.)?;
        let row_sq = m.wz.sqr()?.sum(1)?; // (H)
        let lap_hz = curv1.broadcast_mul(&row_sq)?; // (B, H)
        let lap_a1 = lap_hz.matmul(&w1t)?;
        // Σ_i (J_a1)_{j i}² with J_a1 = W_1 diag(s1) W_z, per sample.
        let scaled = m.w1.unsqueeze(0)?.broadcast_mul(&s1.unsqueeze(1)?)?; // (B, H, H)
        let jac_sq = if self.cfg.latent <= self.cfg.hidden {
            scaled.broadcast_matmul(&m.wz)?.sqr()?.sum(D::Minus1)? // (B, H, d) → (B, H)
        } else {
            let gram = m.wz.matmul(&m.wz.t()?)?; // (H, H)
            (scaled.broadcast_matmul(&gram)? * &scaled)?.sum(D::Minus1)?
        };
        let lap_h1 = ((&s2 * &lap_a1)? + (&curv2 * &jac_sq)?)?;
        let lap_v = lap_h1.matmul(&w2)?.squeeze(1)?;
        if !self.cfg.final_tanh {
            return Ok(PotentialEval {
                u: v,
                grad: grad_v,
                du_dt: v_t,
                d2u_dt2: v_tt,
                laplacian: lap_v,
            });
        }
        let u = v.tanh()?;
        let s3 = one_minus_sq(&u)?;
        let curv3 = (&u * &s3)?.affine(-2., 0.)?;
        let grad_sq = grad_v.sqr()?.sum(1)?;
        Ok(PotentialEval {
            grad: grad_v.broadcast_mul(&s3.unsqueeze(1)?)?,
            du_dt: (&s3 * &v_t)?,
            d2u_dt2: ((&s3 * &v_tt)? + (&curv3 * v_t.sqr()?)?)?,
            laplacian: ((&s3 * &lap_v)? + (&curv3 * &grad_sq)?)?,
            u,
        })
    }

    /// ∇_z u of potential `k` at (z, t) only: the cheap path for traversal (no Laplacian,
    /// no time derivatives).
    pub fn grad(&self, z: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
        self.check(z, k)?;
        if self.cfg.kind == PotentialKind::Linear {
            let b = z.dim(0)?;
            return Ok(self
                .linear_direction(k)?
                .broadcast_as((b, self.cfg.latent))?
                .contiguous()?);
        }
        if z.device().is_cpu() && z.dim(0)? <= HOST_GRAD_MAX_BATCH && self.frozen() {
            return self.host_grad(z, t, k);
        }
        let m = self.mlp(k)?;
        let (hz, h1, v) = self.forward(&m, z, t)?;
        let back_h1 = one_minus_sq(&h1)?.broadcast_mul(&m.w2)?.matmul(&m.w1)?;
        let grad_v = (back_h1 * one_minus_sq(&hz)?)?.matmul(&m.wz)?;
        if !self.cfg.final_tanh {
            return Ok(grad_v);
        }
        Ok(grad_v.broadcast_mul(&one_minus_sq(&v.tanh()?)?.unsqueeze(1)?)?)
    }

    /// The plain forward pass of one MLP: h_z, h_1 and v (before the final tanh).
    fn forward(&self, m: &Mlp, z: &Tensor, t: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let hz = z.matmul(&m.wz.t()?)?.broadcast_add(&m.bz)?.tanh()?;
        let (e, _, _) = self.embed(t)?;
        let pre = e.matmul(&m.wt1.t()?)?.broadcast_add(&m.bt1)?;
        let ht = gelu(&pre)?.matmul(&m.wt2.t()?)?.broadcast_add(&m.bt2)?;
        let h1 = (&hz + &ht)?
            .matmul(&m.w1.t()?)?
            .broadcast_add(&m.b1)?
            .tanh()?;
        let v = h1
            .matmul(&m.w2.unsqueeze(1)?)?
            .squeeze(1)?
            .broadcast_add(&m.b2)?;
        Ok((hz, h1, v))
    }

    /// The host-side weights of MLP potential `k` at time `t` for the landscape shader.
    pub fn shader_weights(&self, k: usize, t: f64) -> Result<ShaderWeights> {
        if !self.cfg.kind.is_mlp() || k >= self.cfg.k {
            return Err(Error::config(
                "the landscape shader needs an existing MLP potential",
            ));
        }
        let m = self.mlp(k)?;
        let tt = Tensor::full(t, 1, self.omega.device())?.to_dtype(self.dtype())?;
        let (e, _, _) = self.embed(&tt)?;
        let pre = e.matmul(&m.wt1.t()?)?.broadcast_add(&m.bt1)?;
        let ht = gelu(&pre)?
            .matmul(&m.wt2.t()?)?
            .broadcast_add(&m.bt2)?
            .squeeze(0)?;
        let f = |x: &Tensor| -> Result<Vec<f32>> {
            Ok(x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        };
        let vecs = [f(&m.bz)?, f(&ht)?, f(&m.b1)?, f(&m.w2)?].concat();
        Ok(ShaderWeights {
            wz: f(&m.wz)?,
            vecs,
            w1: f(&m.w1)?,
            b2: f(&m.b2)?[0],
        })
    }

    /// u of potential `k` at (z, t) (B).
    pub fn value(&self, z: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
        self.check(z, k)?;
        if self.cfg.kind == PotentialKind::Linear {
            let a = self.tensors[0].narrow(0, k, 1)?;
            return Ok(z.broadcast_mul(&a)?.sum(1)?);
        }
        let m = self.mlp(k)?;
        let (_, _, v) = self.forward(&m, z, t)?;
        Ok(if self.cfg.final_tanh { v.tanh()? } else { v })
    }

    /// The wave speeds c_k (K): the stored values, or c_min + softplus(ρ_k) with a floor.
    pub fn speeds(&self) -> Result<Tensor> {
        Ok(match self.cfg.wave_speed_floor {
            // softplus(ρ) = log(1 + e^ρ), stably: max(ρ, 0) + log(1 + e^{−|ρ|}).
            Some(floor) => {
                let rho = &self.wave_speed;
                let tail = rho.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
                ((rho.relu()? + tail)? + floor)?
            }
            None => self.wave_speed.clone(),
        })
    }

    /// The wave-equation residual f = ∂²_t u − c_k² Δ_z u (B).
    pub fn residual(&self, eval: &PotentialEval, k: usize) -> Result<Tensor> {
        let c2 = self.speeds()?.narrow(0, k, 1)?.sqr()?;
        Ok((&eval.d2u_dt2 - eval.laplacian.broadcast_mul(&c2)?)?)
    }

    /// The residual of the set's own equation at (z, t), given `eval` there: the wave
    /// equation's, or for a Hamilton–Jacobi set ∂_t u + ½‖∇_z u‖² − f^k(z, t) (B).
    pub fn equation_residual(
        &self,
        z: &Tensor,
        t: &Tensor,
        eval: &PotentialEval,
        k: usize,
    ) -> Result<Tensor> {
        if self.cfg.kind != PotentialKind::Hj {
            return self.residual(eval, k);
        }
        let kinetic = (eval.grad.sqr()?.sum(1)? * 0.5)?;
        Ok(((&eval.du_dt + kinetic)? - self.force(z, t, k)?)?)
    }

    /// The force f^k(z, t) = −MLP_f(z, t)² ≤ 0 of a Hamilton–Jacobi set (B).
    pub fn force(&self, z: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
        let force = self
            .force
            .as_ref()
            .ok_or_else(|| Error::config("only Hamilton–Jacobi potentials have force networks"))?;
        Ok(force.value(z, t, k)?.sqr()?.neg()?)
    }

    /// The prior's diffusion coefficients D_k = softplus(ρ_k) ≥ 0 of a Hamilton–Jacobi set
    /// (K).
    pub fn diffusion(&self) -> Result<Tensor> {
        let rho = self.diffusion.as_ref().ok_or_else(|| {
            Error::config("only Hamilton–Jacobi potentials have diffusion coefficients")
        })?;
        let tail = rho.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        Ok((rho.relu()? + tail)?)
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.omega.dtype()
    }
}

fn one_minus_sq(y: &Tensor) -> candle_core::Result<Tensor> {
    y.sqr()?.affine(-1., 1.)
}

/// Φ(x), the standard normal CDF.
fn normal_cdf(x: &Tensor) -> candle_core::Result<Tensor> {
    (x / std::f64::consts::SQRT_2)?.erf()?.affine(0.5, 0.5)
}

fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    x * normal_cdf(x)?
}

/// Exact GELU x Φ(x) and its first two derivatives: Φ + x φ and φ (2 − x²).
fn gelu_derivs(x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let cdf = normal_cdf(x)?;
    let pdf = (x.sqr()? * -0.5)?.exp()? * (1. / (2. * std::f64::consts::PI).sqrt());
    let pdf = pdf?;
    let g0 = (x * &cdf)?;
    let g1 = (&cdf + (x * &pdf)?)?;
    let g2 = (&pdf * x.sqr()?.affine(-1., 2.)?)?;
    Ok((g0, g1, g2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fd::randn64;
    use candle_core::Device;

    fn potentials(d: usize, final_tanh: bool, seed: u64) -> Potentials {
        let p = Params::new(seed, &Device::Cpu)
            .with_dtype(DType::F64)
            .unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 3, d);
        cfg.hidden = 24;
        cfg.time_dim = 8;
        cfg.final_tanh = final_tanh;
        Potentials::new(&p, &cfg).unwrap()
    }

    #[test]
    fn a_wave_speed_floor_starts_at_one_and_holds_below() -> Result<()> {
        let p = Params::new(1, &Device::Cpu).with_dtype(DType::F64)?;
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 3, 4);
        cfg.hidden = 8;
        cfg.time_dim = 8;
        for bad in [-0.1, 1.0, f64::NAN] {
            cfg.wave_speed_floor = Some(bad);
            assert!(cfg.validate().is_err(), "{bad}");
        }
        cfg.wave_speed_floor = Some(0.3);
        cfg.validate()?;
        let pot = Potentials::new(&p, &cfg)?;
        // (The start value passes through f32 in the parameter store.)
        for c in pot.speeds()?.to_vec1::<f64>()? {
            assert!((c - 1.0).abs() < 1e-6, "{c}");
        }
        // However far ρ is pushed down, c stays above the floor; pushed up, c ≈ ρ.
        let vars = p.trainable_vars()?;
        let Some((_, rho)) = vars.iter().find(|(n, _)| n.ends_with("wave_speed")) else {
            panic!(
                "no wave speed variable in {:?}",
                vars.iter().map(|v| &v.0).collect::<Vec<_>>()
            );
        };
        rho.set(&Tensor::new(&[-50f64, 0.0, 40.0], &Device::Cpu)?)?;
        let c = pot.speeds()?.to_vec1::<f64>()?;
        assert!((c[0] - 0.3).abs() < 1e-12, "{c:?}");
        assert!((c[1] - (0.3 + 2f64.ln())).abs() < 1e-12, "{c:?}");
        assert!((c[2] - 40.3).abs() < 1e-9, "{c:?}");
        // The residual uses c: ∂²_t u − c² Δu, checked against the parts.
        let z = randn64(&[2, 4], 5)?;
        let t = Tensor::new(&[0.5f64, 2.0], &Device::Cpu)?;
        let ev = pot.eval(&z, &t, 1)?;
        let want = (&ev.d2u_dt2 - (&ev.laplacian * (0.3 + 2f64.ln()).powi(2))?)?;
        let got = pot.residual(&ev, 1)?;
        let diff = (got - want)?.abs()?.max(0)?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        Ok(())
    }

    fn scalar_u(pot: &Potentials, z: &[f64], t: f64, k: usize) -> f64 {
        let z = Tensor::new(z, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let t = Tensor::new(&[t], &Device::Cpu).unwrap();
        pot.value(&z, &t, k).unwrap().to_vec1::<f64>().unwrap()[0]
    }

    #[test]
    fn the_host_gradient_of_frozen_potentials_equals_the_tensor_one() {
        for final_tanh in [true, false] {
            let trained = potentials(5, final_tanh, 11);
            let frozen = Params::from_tensors(
                trained
                    .tensors
                    .iter()
                    .zip(NAMES)
                    .map(|(t, n)| (format!("potential.{n}"), t.copy().unwrap()))
                    .chain(std::iter::once((
                        "potential.wave_speed".to_string(),
                        trained.wave_speed.copy().unwrap(),
                    )))
                    .collect(),
                false,
                &Device::Cpu,
            )
            .unwrap();
            // Loaded weights are F32, as a checkpoint's are.
            let frozen = Potentials::new(&frozen, trained.config()).unwrap();
            assert!(frozen.frozen() && !trained.frozen());
            let b = HOST_GRAD_MAX_BATCH + 2;
            let z = randn64(&[b, 5], 3).unwrap().to_dtype(DType::F32).unwrap();
            let t = Tensor::new(vec![2.0f32; b], &Device::Cpu).unwrap();
            for k in 0..3 {
                // Above the host batch limit: the tensor path, on the same F32 weights.
                let want = frozen.grad(&z, &t, k).unwrap();
                for i in 0..b {
                    let zi = z.narrow(0, i, 1).unwrap();
                    let ti = t.narrow(0, i, 1).unwrap();
                    let host = frozen.grad(&zi, &ti, k).unwrap();
                    assert_eq!(host.dtype(), DType::F32);
                    let d = (host - want.narrow(0, i, 1).unwrap())
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(d < 1e-5, "k {k} row {i} tanh {final_tanh}: {d}");
                }
            }
        }
    }

    /// Checks every output against central differences of `value` at 3 samples.
    fn check(d: usize, final_tanh: bool) {
        let pot = potentials(d, final_tanh, d as u64);
        let b = 3;
        let z = randn64(&[b, d], 7).unwrap();
        let t = Tensor::new(&[0.3f64, 1.7, 4.2], &Device::Cpu).unwrap();
        for k in [0, 2] {
            let ev = pot.eval(&z, &t, k).unwrap();
            let fast_grad = pot.grad(&z, &t, k).unwrap();
            let value = pot.value(&z, &t, k).unwrap();
            let rel = |a: f64, n: f64| (a - n).abs() / (1e-6 + a.abs().max(n.abs()));
            let zs: Vec<Vec<f64>> = z.to_vec2().unwrap();
            let ts: Vec<f64> = t.to_vec1().unwrap();
            let grads: Vec<Vec<f64>> = ev.grad.to_vec2().unwrap();
            let fast: Vec<Vec<f64>> = fast_grad.to_vec2().unwrap();
            let us: Vec<f64> = ev.u.to_vec1().unwrap();
            let vs: Vec<f64> = value.to_vec1().unwrap();
            let du: Vec<f64> = ev.du_dt.to_vec1().unwrap();
            let d2u: Vec<f64> = ev.d2u_dt2.to_vec1().unwrap();
            let lap: Vec<f64> = ev.laplacian.to_vec1().unwrap();
            for s in 0..b {
                let f = |zz: &[f64], tt: f64| scalar_u(&pot, zz, tt, k);
                let (z0, t0) = (&zs[s], ts[s]);
                assert!((us[s] - vs[s]).abs() < 1e-12);
                let u0 = f(z0, t0);
                assert!((u0 - us[s]).abs() < 1e-12);
                let h = 1e-4;
                let mut lap_fd = 0.0;
                for i in 0..d {
                    let mut zp = z0.clone();
                    let mut zm = z0.clone();
                    zp[i] += h;
                    zm[i] -= h;
                    let (up, um) = (f(&zp, t0), f(&zm, t0));
                    let g = (up - um) / (2. * h);
                    assert!(
                        rel(grads[s][i], g) < 1e-6,
                        "d={d} k={k} ∂{i}: {} vs {g}",
                        grads[s][i]
                    );
                    assert!((fast[s][i] - grads[s][i]).abs() < 1e-12);
                    lap_fd += (up - 2. * u0 + um) / (h * h);
                }
                // Second differences lose digits; compare to the scale of the diagonal terms.
                let scale = 1e-3 + lap[s].abs().max(lap_fd.abs());
                assert!(
                    (lap[s] - lap_fd).abs() / scale < 1e-3,
                    "d={d} Δ: {} vs {lap_fd}",
                    lap[s]
                );
                let (tp, tm) = (f(z0, t0 + h), f(z0, t0 - h));
                let dt = (tp - tm) / (2. * h);
                let dtt = (tp - 2. * u0 + tm) / (h * h);
                assert!(rel(du[s], dt) < 1e-6, "∂t: {} vs {dt}", du[s]);
                assert!(rel(d2u[s], dtt) < 1e-3, "∂²t: {} vs {dtt}", d2u[s]);
            }
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for d in [2, 7, 64] {
            check(d, true);
        }
        check(7, false);
    }

    #[test]
    fn gram_path_for_wide_latents_matches() {
        // latent (40) > hidden (24) takes the Gram-matrix route for Σ_i (J_a1)²; the
        // finite-difference check covers it, and so does agreement with the narrow route.
        check(40, true);
    }

    #[test]
    fn gelu_derivatives_match_finite_differences() {
        let x = Tensor::new(&[-2.5f64, -0.7, 0.0, 0.4, 1.9], &Device::Cpu).unwrap();
        let (_, g1, g2) = gelu_derivs(&x).unwrap();
        let h = 1e-5;
        let f = |x: &Tensor| gelu(x).unwrap();
        let g1_fd = ((f(&(&x + h).unwrap()) - f(&(&x - h).unwrap())).unwrap() / (2. * h)).unwrap();
        let g2_fd = (((f(&(&x + h).unwrap()) + f(&(&x - h).unwrap())).unwrap()
            - (f(&x) * 2.).unwrap())
        .unwrap()
            / (h * h))
            .unwrap();
        let e1 = (g1 - g1_fd)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let e2 = (g2 - g2_fd)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(e1 < 1e-8 && e2 < 1e-4, "{e1} {e2}");
    }

    #[test]
    fn parameter_gradients_flow_through_the_derivatives() {
        // The training losses are built from ∇u, Δu and ∂²_t u: candle's backward must reach
        // every weight through them. Check one weight against a finite difference.
        let p = Params::new(1, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Pde, 2, 5);
        cfg.hidden = 8;
        cfg.time_dim = 4;
        let pot = Potentials::new(&p, &cfg).unwrap();
        let z = randn64(&[4, 5], 3).unwrap();
        let t = Tensor::new(&[0.5f64, 1.0, 2.0, 3.0], &Device::Cpu).unwrap();
        let loss = |pot: &Potentials| {
            let ev = pot.eval(&z, &t, 1).unwrap();
            let f = pot.residual(&ev, 1).unwrap();
            (f.sqr().unwrap().mean_all().unwrap() + ev.grad.sqr().unwrap().mean_all().unwrap())
                .unwrap()
        };
        let grads = loss(&pot).backward().unwrap();
        let vars = p.trainable_vars().unwrap();
        let (name, var) = vars.iter().find(|(n, _)| n.ends_with("h.weight")).unwrap();
        let g = grads.get(var.as_tensor()).unwrap();
        let analytic = g.flatten_all().unwrap().to_vec1::<f64>().unwrap()[8 * 8 + 3];
        let orig = var.as_tensor().copy().unwrap();
        let eps = 1e-6;
        let bump = |delta: f64| {
            let mut w = orig.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            w[8 * 8 + 3] += delta;
            var.set(&Tensor::from_vec(w, orig.shape(), &Device::Cpu).unwrap())
                .unwrap();
            loss(&pot).to_scalar::<f64>().unwrap()
        };
        let numeric = (bump(eps) - bump(-eps)) / (2. * eps);
        assert!(
            (analytic - numeric).abs() < 1e-6 * (1. + numeric.abs()),
            "{name}: {analytic} vs {numeric}"
        );
    }

    #[test]
    fn linear_potentials_have_constant_gradients() {
        let p = Params::new(2, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let cfg = PotentialConfig::new(PotentialKind::Linear, 2, 3);
        let pot = Potentials::new(&p, &cfg).unwrap();
        let z = randn64(&[2, 3], 3).unwrap();
        let t = Tensor::new(&[0.0f64, 5.0], &Device::Cpu).unwrap();
        let ev = pot.eval(&z, &t, 1).unwrap();
        let g: Vec<Vec<f64>> = ev.grad.to_vec2().unwrap();
        assert_eq!(g[0], g[1]);
        let norm = g[0].iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - cfg.step).abs() < 1e-9);
        assert_eq!(ev.laplacian.to_vec1::<f64>().unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let pot = potentials(4, true, 0);
        let z = randn64(&[2, 5], 1).unwrap();
        let t = Tensor::new(&[0.0f64, 1.0], &Device::Cpu).unwrap();
        assert!(
            pot.eval(&z, &t, 0)
                .unwrap_err()
                .to_string()
                .contains("4-dimensional")
        );
        let z = randn64(&[2, 4], 1).unwrap();
        assert!(
            pot.eval(&z, &t, 3)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn hamilton_jacobi_sets_have_forces_a_diffusion_and_their_own_residual() {
        let p = Params::new(3, &Device::Cpu).with_dtype(DType::F64).unwrap();
        let mut cfg = PotentialConfig::new(PotentialKind::Hj, 2, 3);
        cfg.hidden = 8;
        cfg.time_dim = 4;
        let pot = Potentials::new(&p, &cfg).unwrap();
        let names: Vec<String> = p.tensors().unwrap().keys().cloned().collect();
        assert!(
            names.contains(&"force.potential.z.weight".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"potential.diffusion".to_string()));
        assert!(!names.iter().any(|n| n.contains("wave_speed")), "{names:?}");
        // D_k = softplus(ρ_k) starts at 0.1.
        let d: Vec<f64> = pot.diffusion().unwrap().to_vec1().unwrap();
        assert!(d.iter().all(|v| (v - 0.1).abs() < 1e-7), "{d:?}");
        let z = randn64(&[4, 3], 2).unwrap();
        let t = Tensor::new(&[0.0f64, 1.0, 2.5, 7.0], &Device::Cpu).unwrap();
        // f = −MLP_f² ≤ 0; residual = ∂_t u + ½‖∇u‖² − f, by hand from eval.
        let f: Vec<f64> = pot.force(&z, &t, 1).unwrap().to_vec1().unwrap();
        assert!(f.iter().all(|v| *v <= 0.0));
        let ev = pot.eval(&z, &t, 1).unwrap();
        let r: Vec<f64> = pot
            .equation_residual(&z, &t, &ev, 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let du: Vec<f64> = ev.du_dt.to_vec1().unwrap();
        let g: Vec<Vec<f64>> = ev.grad.to_vec2().unwrap();
        for i in 0..4 {
            let kinetic = 0.5 * g[i].iter().map(|x| x * x).sum::<f64>();
            assert!((r[i] - (du[i] + kinetic - f[i])).abs() < 1e-12);
        }
        // ∂_t u and ∇u of the residual against central differences of u.
        let h = 1e-5;
        let u =
            |z: &Tensor, t: &Tensor| -> Vec<f64> { pot.value(z, t, 1).unwrap().to_vec1().unwrap() };
        let (tp, tm) = ((&t + h).unwrap(), (&t - h).unwrap());
        let (up, um) = (u(&z, &tp), u(&z, &tm));
        for i in 0..4 {
            assert!(((up[i] - um[i]) / (2.0 * h) - du[i]).abs() < 1e-7);
        }
        // Other kinds have no forces.
        let wave = potentials(3, true, 1);
        assert!(wave.force(&z, &t, 0).is_err() && wave.diffusion().is_err());
    }
}
