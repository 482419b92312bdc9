//! Adam (Kingma & Ba) with bias correction, whose moment estimates can be saved and
//! restored so an interrupted training run resumes exactly.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Result, Storage, Tensor, Var};
use std::collections::BTreeMap;

/// The Adam optimiser over a fixed set of named variables.
#[derive(Debug)]
pub struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl Adam {
    /// Adam with the usual defaults (β = 0.9, 0.999; ε = 1e-8) and learning rate `lr`.
    pub fn new(vars: Vec<(String, Var)>, lr: f64) -> Result<Self> {
        Self::with_betas(vars, lr, 0.9, 0.999)
    }

    /// Adam with explicit moment decays.
    pub fn with_betas(vars: Vec<(String, Var)>, lr: f64, beta1: f64, beta2: f64) -> Result<Self> {
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            m,
            v,
            step: 0,
            lr,
            beta1,
            beta2,
            eps: 1e-8,
        })
    }

    /// Number of updates taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update from the gradients of a loss (variables without a gradient are kept).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let c1 = 1. - self.beta1.powi(t);
        let c2 = 1. - self.beta2.powi(t);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()).map(Tensor::detach) else {
                continue;
            };
            let h = Hyper {
                beta1: self.beta1,
                beta2: self.beta2,
                c1,
                c2,
                lr: self.lr,
                eps: self.eps,
            };
            if let Some((value, m, v)) = fused_f32(var.as_tensor(), &g, &self.m[i], &self.v[i], h)?
            {
                var.set(&value)?;
                self.m[i] = m;
                self.v[i] = v;
                continue;
            }
            let m = ((&self.m[i] * self.beta1)? + (&g * (1. - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1. - self.beta2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            var.set(&(var.as_detached_tensor() - (update * self.lr)?)?)?;
            // Detached: otherwise each moment would keep the previous iteration's graph
            // (and through it every earlier one) alive.
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// Computes the gradients of `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// The moment estimates as named tensors (`adam.m.NAME`, `adam.v.NAME`).
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moment estimates saved by [`Adam::state`] and the step count.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("adam.{prefix}.{name}");
                let t = state.get(&key).ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimiser state lacks {key}"))
                })?;
                if t.shape() != var.shape() {
                    candle_core::bail!("optimiser state {key} has the wrong shape");
                }
                *slot = t.to_device(var.device())?;
            }
        }
        self.step = steps;
        Ok(())
    }
}

/// The numbers of one update.
#[derive(Debug, Clone, Copy)]
struct Hyper {
    beta1: f64,
    beta2: f64,
    /// 1 − β₁ᵗ.
    c1: f64,
    /// 1 − β₂ᵗ.
    c2: f64,
    lr: f64,
    eps: f64,
}

/// One Adam update of an f32 CPU variable in a single pass over its value, gradient and
/// moments (candle's ops take a dozen passes and allocations): the new value and moments,
/// or `None` for other dtypes, devices or layouts (the caller then uses tensor ops, the
/// same formula).
fn fused_f32(
    value: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    h: Hyper,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    use rayon::prelude::*;
    if !value.device().is_cpu() || value.dtype() != DType::F32 {
        return Ok(None);
    }
    let n = value.elem_count();
    let mut out = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    {
        // Read locks on four distinct storages (the gradient and the moments are never
        // the variable's own).
        let guards = [value, g, m, v].map(|t| t.storage_and_layout());
        let mut ins: [&[f32]; 4] = [&[]; 4];
        for (slot, (storage, layout)) in ins.iter_mut().zip(&guards) {
            let Some((a, b)) = layout.contiguous_offsets() else {
                return Ok(None);
            };
            match &**storage {
                Storage::Cpu(CpuStorage::F32(d)) if b - a == n => *slot = &d[a..b],
                _ => return Ok(None),
            }
        }
        let (b1, b2) = (h.beta1 as f32, h.beta2 as f32);
        let (c1, c2, lr, eps) = (h.c1 as f32, h.c2 as f32, h.lr as f32, h.eps as f32);
        let [xo, mo, vo] = &mut out;
        let update = |start: usize, xo: &mut [f32], mo: &mut [f32], vo: &mut [f32]| {
            let len = xo.len();
            let [x, g, m, v] = ins.map(|s| &s[start..start + len]);
            for i in 0..len {
                let mi = b1 * m[i] + (1. - b1) * g[i];
                let vi = b2 * v[i] + (1. - b2) * g[i] * g[i];
                mo[i] = mi;
                vo[i] = vi;
                xo[i] = x[i] - lr * ((mi / c1) / ((vi / c2).sqrt() + eps));
            }
        };
        const CHUNK: usize = 1 << 15;
        if n < 4 * CHUNK {
            update(0, xo, mo, vo);
        } else {
            xo.par_chunks_mut(CHUNK)
                .zip(mo.par_chunks_mut(CHUNK))
                .zip(vo.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(q, ((xo, mo), vo))| update(q * CHUNK, xo, mo, vo));
        }
    }
    let (shape, dev) = (value.shape(), value.device());
    let [x, m, v] = out;
    Ok(Some((
        Tensor::from_vec(x, shape, dev)?,
        Tensor::from_vec(m, shape, dev)?,
        Tensor::from_vec(v, shape, dev)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic() -> Result<()> {
        let x = Var::from_vec(vec![3f32, -2.], 2, &Device::Cpu)?;
        let mut opt = Adam::new(vec![("x".into(), x.clone())], 0.1)?;
        for _ in 0..300 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            opt.backward_step(&loss)?;
        }
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!(v.iter().all(|x| x.abs() < 0.05), "{v:?}");
        Ok(())
    }

    #[test]
    fn the_fused_f32_update_matches_the_tensor_formula() -> Result<()> {
        // The same values and losses in f32 (the fused pass) and f64 (tensor ops), a
        // tensor large enough for the parallel chunks and one small one, six steps.
        let mut pairs = Vec::new();
        for (k, n) in [7usize, 140_003].into_iter().enumerate() {
            let x = crate::nn::fd::randn64(&[n], 10 + k as u64)?;
            pairs.push((
                Var::from_tensor(&x.to_dtype(DType::F32)?)?,
                Var::from_tensor(&x)?,
            ));
        }
        let vars = |f64s: bool| -> Vec<(String, Var)> {
            pairs
                .iter()
                .enumerate()
                .map(|(i, (a, b))| (format!("p{i}"), if f64s { b.clone() } else { a.clone() }))
                .collect()
        };
        let (mut o32, mut o64) = (Adam::new(vars(false), 0.01)?, Adam::new(vars(true), 0.01)?);
        for step in 0..6 {
            // loss = Σ (x − 0.3·step)⁴ / 4 per tensor: gradients of varied size and sign.
            let loss = |f64s: bool| -> Result<Tensor> {
                let mut total: Option<Tensor> = None;
                for (a, b) in &pairs {
                    let x = if f64s { b.as_tensor() } else { a.as_tensor() };
                    let t = x
                        .affine(1., -0.3 * step as f64)?
                        .powf(4.)?
                        .sum_all()?
                        .affine(0.25, 0.)?;
                    total = Some(match total {
                        Some(s) => (s + t)?,
                        None => t,
                    });
                }
                total.ok_or_else(|| candle_core::Error::Msg("no tensors".into()))
            };
            o32.backward_step(&loss(false)?)?;
            o64.backward_step(&loss(true)?)?;
        }
        for (a, b) in &pairs {
            let d = (a.as_tensor().to_dtype(DType::F64)? - b.as_tensor())?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f64>()?;
            assert!(d < 1e-5, "{d}");
        }
        Ok(())
    }

    #[test]
    fn first_step_moves_by_learning_rate_times_sign() -> Result<()> {
        // With bias correction the first Adam step is lr·g/(|g| + ε) ≈ lr·sign(g).
        let x = Var::from_vec(vec![1f32, -1.], 2, &Device::Cpu)?;
        let mut opt = Adam::new(vec![("x".into(), x.clone())], 0.01)?;
        let loss = x.as_tensor().sqr()?.sum_all()?;
        opt.backward_step(&loss)?;
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!(
            (v[0] - 0.99).abs() < 1e-5 && (v[1] + 0.99).abs() < 1e-5,
            "{v:?}"
        );
        Ok(())
    }
}
