//! A chain of layers applied in order, and a reshape step for use inside one.

use super::{Dual, Layer};
use candle_core::{Result, Tensor};

/// Layers applied one after another.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sequential({} layers)", self.layers.len())
    }
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Layer for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, l| l.forward(&x))
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        self.layers
            .iter()
            .try_fold(x.clone(), |x, l| l.forward_dual(&x))
    }

    fn set_training(&self, training: bool) {
        self.layers.iter().for_each(|l| l.set_training(training));
    }
}

/// Reshapes each sample (the batch dimension is kept) to `dims`.
#[derive(Debug, Clone)]
pub struct Reshape(pub Vec<usize>);

impl Reshape {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = vec![x.dim(0)?];
        dims.extend_from_slice(&self.0);
        x.reshape(dims)
    }
}

impl Layer for Reshape {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x)
    }

    fn forward_dual(&self, x: &Dual) -> Result<Dual> {
        Ok(Dual::new(self.apply(&x.value)?, self.apply(&x.tangent)?))
    }
}
