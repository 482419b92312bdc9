//! Adam (Kingma & Ba) with bias correction, whose moment estimates can be saved and
//! restored so an interrupted training run resumes exactly.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
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
