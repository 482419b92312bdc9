//! Neural-network building blocks on candle whose forward pass can also carry a tangent.
//!
//! Every layer implements [`Layer`]: `forward(x)` for values and `forward_dual((x, ẋ))`
//! for the pair (value, tangent), so a stack of layers computes the exact Jacobian-vector
//! product J_f(x)·ẋ in one forward sweep (forward-mode differentiation). Linear and
//! convolutional layers apply their weights *without bias* to the tangent; activations
//! multiply the tangent by their derivative at the value. Parameters come from a
//! [`Params`] store ([`params`]), which initialises them from a seeded generator so training
//! runs are reproducible, and names them like PyTorch's `state_dict` keys.

pub mod activation;
pub mod conv;
pub(crate) mod direct;
pub mod gemm;
pub mod im2col;
pub mod linear;
pub mod norm;
pub mod optim;
pub mod params;
pub mod pointwise;
pub mod sequential;
pub(crate) mod sgemm;

/// The threads the CPU kernels of this module run on: candle's count (`RAYON_NUM_THREADS`
/// or the physical cores), read once — without the variable candle reads /proc/cpuinfo
/// on every call, a visible share of a batch-1 decode.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1))
}

/// Sets `RAYON_NUM_THREADS` to the count candle would choose when it is not set, so that
/// candle's own operations, which ask for the count each time, read the variable instead
/// of /proc/cpuinfo.
///
/// # Safety
/// No other thread may be reading or writing the environment: call it first thing in
/// `main`, before any thread is started.
pub unsafe fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads().max(1);
        // SAFETY: as the caller promised, no other thread touches the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

pub use activation::Activation;
pub use conv::{Conv2d, ConvTranspose2d};
pub use linear::Linear;
pub use norm::BatchNorm2d;
pub use optim::Adam;
pub use params::Params;
pub use sequential::Sequential;

use candle_core::Tensor;

/// A value and its tangent (directional derivative), always of the same shape.
#[derive(Debug, Clone)]
pub struct Dual {
    /// The value x.
    pub value: Tensor,
    /// The tangent ẋ = J·v carried alongside.
    pub tangent: Tensor,
}

impl Dual {
    /// Pairs a value with its tangent.
    pub fn new(value: Tensor, tangent: Tensor) -> Self {
        Self { value, tangent }
    }
}

/// A layer with an ordinary and a forward-mode (value, tangent) pass.
pub trait Layer: Send + Sync {
    /// The layer's output for input `x`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    /// The output and its tangent: (f(x), J_f(x)·ẋ).
    fn forward_dual(&self, x: &Dual) -> candle_core::Result<Dual>;
    /// Switches between training behaviour (batch statistics) and evaluation; a no-op
    /// for layers without such state.
    fn set_training(&self, _training: bool) {}
}

/// Finite-difference checks of tangent passes, shared by the layer and model tests.
#[cfg(test)]
pub(crate) mod fd {
    use candle_core::{DType, Device, Result, Tensor};

    /// Standard-normal f64 tensor from a fixed seed.
    pub fn randn64(shape: &[usize], seed: u64) -> Result<Tensor> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        crate::models::randn(shape, &mut rng, &Device::Cpu)?.to_dtype(DType::F64)
    }

    /// Largest |analytic − central difference| relative to the largest |analytic|, for
    /// `f` at `x` in direction `v` with step `h`.
    pub fn relative_error(
        f: impl Fn(&Tensor) -> Result<Tensor>,
        x: &Tensor,
        v: &Tensor,
        analytic: &Tensor,
        h: f64,
    ) -> Result<f64> {
        let plus = f(&(x + (v * h)?)?)?;
        let minus = f(&(x - (v * h)?)?)?;
        let numeric = ((plus - minus)? / (2. * h))?;
        let err = (analytic - numeric)?.abs()?.max_all()?.to_scalar::<f64>()?;
        let scale = analytic.abs()?.max_all()?.to_scalar::<f64>()?.max(1e-12);
        Ok(err / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::fd::{randn64, relative_error};
    use super::*;
    use candle_core::{DType, Device};

    fn check(layer: &dyn Layer, shape: &[usize]) -> candle_core::Result<f64> {
        let x = randn64(shape, 1)?;
        let v = randn64(shape, 2)?;
        let dual = layer.forward_dual(&Dual::new(x.clone(), v.clone()))?;
        let value_err = (&dual.value - layer.forward(&x)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?;
        assert!(value_err < 1e-12, "value pass differs by {value_err}");
        relative_error(|x| layer.forward(x), &x, &v, &dual.tangent, 1e-6)
    }

    fn params() -> Params {
        Params::new(7, &Device::Cpu).with_dtype(DType::F64).unwrap()
    }

    #[test]
    fn every_layer_tangent_matches_finite_differences() -> candle_core::Result<()> {
        let p = params();
        let cases: Vec<(&str, Box<dyn Layer>, Vec<usize>)> = vec![
            (
                "linear",
                Box::new(Linear::new(&p.pp("l"), 5, 4)?),
                vec![3, 5],
            ),
            (
                "conv",
                Box::new(Conv2d::new(&p.pp("c"), 2, 3, 4, 2, 1)?),
                vec![2, 2, 8, 8],
            ),
            (
                "deconv",
                Box::new(ConvTranspose2d::new(&p.pp("d"), 3, 2, 4, 2, 1)?),
                vec![2, 3, 4, 4],
            ),
            (
                "deconv s1",
                Box::new(ConvTranspose2d::new(&p.pp("e"), 3, 2, 4, 1, 0)?),
                vec![2, 3, 1, 1],
            ),
            (
                "batchnorm",
                Box::new(BatchNorm2d::new(&p.pp("b"), 3)?),
                vec![2, 3, 4, 4],
            ),
            ("relu", Box::new(Activation::Relu), vec![4, 6]),
            ("leaky", Box::new(Activation::LeakyRelu), vec![4, 6]),
            ("sigmoid", Box::new(Activation::Sigmoid), vec![4, 6]),
            ("tanh", Box::new(Activation::Tanh), vec![4, 6]),
        ];
        for (name, layer, shape) in cases {
            let err = check(layer.as_ref(), &shape)?;
            assert!(err < 1e-6, "{name}: relative error {err}");
        }
        Ok(())
    }

    #[test]
    fn a_wrong_tangent_is_caught() -> candle_core::Result<()> {
        // The check must be able to fail: a tangent scaled by 1.01 is rejected.
        let p = params();
        let l = Linear::new(&p, 3, 3)?;
        let x = randn64(&[2, 3], 1)?;
        let v = randn64(&[2, 3], 2)?;
        let t = (l.forward_dual(&Dual::new(x.clone(), v.clone()))?.tangent * 1.01)?;
        assert!(relative_error(|x| l.forward(x), &x, &v, &t, 1e-6)? > 1e-3);
        Ok(())
    }
}
