//! A fully connected layer y = x Wᵀ + b with PyTorch's weight layout (out, in).

use super::{Dual, Layer, Params};
use candle_core::{Result, Tensor};

/// A fully connected layer. Parameters: `weight` (out, in) and `bias` (out).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Creates (or loads) the layer's parameters under the store's current prefix, with
    /// PyTorch's default initialisation (uniform in ±1/√fan_in).
    pub fn new(p: &Params, in_dim: usize, out_dim: usize) -> Result<Self> {
        let bound = 1. / (in_dim as f64).sqrt();
        let weight = p.uniform("weight", (out_dim, in_dim), bound)?;
        let bias = p.uniform("bias", out_dim, bound)?;
        Ok(Self {
            weight,
            bias: Some(bias),
        })
    }

    /// A layer from explicit tensors.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The weight matrix (out, in).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias vector (out), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)
    }
}

impl Layer for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.matmul(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(self.forward(&x.value)?, self.matmul(&x.tangent)?))
    }
}
