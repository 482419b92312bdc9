//! Pointwise activations with their derivatives, for value and tangent passes.

use super::{Dual, Layer, pointwise};
use candle_core::{Result, Tensor};

/// A pointwise nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// x for x > 0, αx otherwise (α = 0.2 as in DCGAN).
    LeakyRelu,
    /// 1 / (1 + e^{−x}).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// The identity.
    Identity,
}

/// Slope of the leaky ReLU for negative inputs.
pub const LEAKY_SLOPE: f64 = 0.2;

impl Activation {
    /// σ(x).
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => pointwise::leaky_relu(x, 0.0),
            Activation::LeakyRelu => pointwise::leaky_relu(x, LEAKY_SLOPE),
            Activation::Sigmoid => candle_nn::ops::sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Identity => Ok(x.clone()),
        }
    }

    /// σ'(x), given the input `x` and the output `y = σ(x)` (whichever is cheaper).
    pub fn derivative(self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.gt(0.)?.to_dtype(x.dtype()),
            Activation::LeakyRelu => {
                let pos = x.gt(0.)?.to_dtype(x.dtype())?;
                pos.affine(1. - LEAKY_SLOPE, LEAKY_SLOPE)
            }
            Activation::Sigmoid => y * y.affine(-1., 1.)?,
            Activation::Tanh => y.sqr()?.affine(-1., 1.),
            Activation::Identity => x.ones_like(),
        }
    }
}

impl Layer for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x)
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        let y = self.apply(&x.value)?;
        let tangent = match self {
            Activation::Identity => return Ok(Dual::new(y, x.tangent.clone())),
            // The (leaky) ReLU's derivative is 1 or α by the sign of its output.
            Activation::Relu => pointwise::scale_by_sign(&x.tangent, &y, 0.0)?,
            Activation::LeakyRelu => pointwise::scale_by_sign(&x.tangent, &y, LEAKY_SLOPE)?,
            _ => (self.derivative(&x.value, &y)? * &x.tangent)?,
        };
        Ok(Dual::new(y, tangent))
    }
}
