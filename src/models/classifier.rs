//! A LeNet-style classifier: two strided 5×5 convolutions, a 2×2 max-pool and two fully
//! connected layers. It sees an image pair (x_t, x_{t+1}) stacked on the channel axis and
//! predicts which potential moved one into the other. The VP score's classifier of
//! (x_0, x_T) is [`VpClassifier`], four convolutions with batch normalisation.

use crate::Result;
use crate::nn::{Activation, BatchNorm2d, Conv2d, Layer, Linear, Params, Sequential};
use candle_core::Tensor;

fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    crate::nn::pointwise::leaky_relu(x, 0.0)
}

/// Tensors: `conv1`, `conv2` (weight, bias), `fc1`, `fc2` (weight, bias).
#[derive(Debug, Clone)]
pub struct PairClassifier {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    flat: usize,
}

impl PairClassifier {
    /// A classifier of `in_channels`-channel images of side `size` into `classes` classes.
    pub fn new(p: &Params, in_channels: usize, size: usize, classes: usize) -> Result<Self> {
        let conv1 = Conv2d::new(&p.pp("conv1"), in_channels, 16, 5, 2, 2)?;
        let conv2 = Conv2d::new(&p.pp("conv2"), 16, 32, 5, 2, 2)?;
        let side = size.div_ceil(2).div_ceil(2) / 2;
        let flat = 32 * side * side;
        Ok(Self {
            conv1,
            conv2,
            fc1: Linear::new(&p.pp("fc1"), flat, 128)?,
            fc2: Linear::new(&p.pp("fc2"), 128, classes)?,
            flat,
        })
    }

    /// Logits (B, classes) for images `a` and `b` (each (B, C, H, W)).
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let x = Tensor::cat(&[a, b], 1)?;
        let x = relu(&self.conv1.forward(&x)?)?;
        let x = relu(&self.conv2.forward(&x)?)?.max_pool2d(2)?;
        let x = x.reshape((x.dim(0)?, self.flat))?;
        Ok(self.fc2.forward(&relu(&self.fc1.forward(&x)?)?)?)
    }
}

/// The VP score's classifier: four 4×4 stride-2 convolutions (32, 32, 64, 64 channels),
/// each followed by batch normalisation and a ReLU, and a linear layer on the flattened
/// features; it sees the pair (x_0, x_T) stacked on the channel axis. Batch statistics
/// while training ([`VpClassifier::set_training`]), running statistics when scoring.
/// Tensors: `conv{i}`, `bn{i}` for i in 0..4, `fc`.
#[derive(Debug)]
pub struct VpClassifier {
    features: Sequential,
    fc: Linear,
    flat: usize,
}

impl VpClassifier {
    /// Channels of the four convolutions.
    pub const WIDTHS: [usize; 4] = [32, 32, 64, 64];

    /// A classifier of `in_channels`-channel images of side `size` into `classes` classes.
    pub fn new(p: &Params, in_channels: usize, size: usize, classes: usize) -> Result<Self> {
        let mut features = Sequential::new();
        let (mut cin, mut side) = (in_channels, size);
        for (i, &cout) in Self::WIDTHS.iter().enumerate() {
            features.push(Conv2d::new(&p.pp(format!("conv{i}")), cin, cout, 4, 2, 1)?);
            features.push(BatchNorm2d::new(&p.pp(format!("bn{i}")), cout)?);
            features.push(Activation::Relu);
            cin = cout;
            // (side + 2·1 − 4) / 2 + 1
            side /= 2;
        }
        let flat = cin * side * side;
        if flat == 0 {
            return Err(crate::Error::config(format!(
                "images of side {size} are too small for the VP classifier (at least 16)"
            )));
        }
        Ok(Self {
            features,
            fc: Linear::new(&p.pp("fc"), flat, classes)?,
            flat,
        })
    }

    /// Batch statistics (training) or running statistics (scoring).
    pub fn set_training(&self, training: bool) {
        self.features.set_training(training);
    }

    /// Logits (B, classes) for images `a` and `b` (each (B, C, H, W)).
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let x = self.features.forward(&Tensor::cat(&[a, b], 1)?)?;
        let x = x.reshape((x.dim(0)?, self.flat))?;
        Ok(self.fc.forward(&x)?)
    }
}

/// Mean cross-entropy of `logits` (B, K) against integer `labels` (B, u32), and the
/// fraction of correct argmax predictions.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, f64)> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?;
    let loss = picked.mean_all()?.neg()?;
    let predicted = logits.argmax(1)?;
    let correct = predicted
        .eq(labels)?
        .to_dtype(candle_core::DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?;
    Ok((loss, correct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vp_classifier_takes_pairs_and_normalises_by_batch_only_while_training() {
        use candle_core::Device;
        let dev = Device::Cpu;
        let p = Params::new(0, &dev);
        let c = VpClassifier::new(&p, 2, 32, 5).unwrap();
        let a = Tensor::randn(0f32, 1.0, (3, 1, 32, 32), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, (3, 1, 32, 32), &dev).unwrap();
        assert_eq!(c.forward(&a, &b).unwrap().dims(), [3, 5]);
        // Scoring is per image; training normalises over the batch, so an image's logits
        // depend on its batch mates.
        let first = |x: &Tensor| x.narrow(0, 0, 1).unwrap();
        let alone = c.forward(&first(&a), &first(&b)).unwrap();
        let in_batch = first(&c.forward(&a, &b).unwrap());
        let diff = |x: &Tensor, y: &Tensor| {
            (x - y)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(diff(&alone, &in_batch) < 1e-5);
        c.set_training(true);
        let a2 = Tensor::cat(&[first(&a), (first(&a) * 3.0).unwrap()], 0).unwrap();
        let b2 = Tensor::cat(&[first(&b), first(&b)], 0).unwrap();
        let trained = first(&c.forward(&a2, &b2).unwrap());
        assert!(diff(&trained, &alone) > 1e-3);
        assert!(VpClassifier::new(&p.pp("small"), 2, 8, 5).is_err());
    }

    use candle_core::{DType, Device};

    #[test]
    fn cross_entropy_matches_a_hand_computed_case() {
        // logits [0, ln 3] → p = [1/4, 3/4]; label 1 → −ln(3/4); label 0 → −ln(1/4).
        let logits = Tensor::new(&[[0f64, 3f64.ln()], [0., 3f64.ln()]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let (loss, acc) = cross_entropy(&logits, &labels).unwrap();
        let want = -(0.75f64.ln() + 0.25f64.ln()) / 2.;
        assert!((loss.to_scalar::<f64>().unwrap() - want).abs() < 1e-12);
        assert_eq!(acc, 0.5);
    }

    #[test]
    fn output_shape_for_64_pixel_pairs() {
        let p = Params::new(0, &Device::Cpu);
        let c = PairClassifier::new(&p, 6, 64, 5).unwrap();
        let x = Tensor::zeros((2, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(c.forward(&x, &x).unwrap().dims(), &[2, 5]);
    }
}
