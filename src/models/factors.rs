//! The factor regressor: a CNN that reads the ground-truth factors of a procedural dataset
//! (floor hue, scale, shape, …) off an image, one softmax head per factor over its values.
//! Trained by `latentflow train-factors` on the dataset's own labelled images, it lets the
//! factor score ([`crate::eval::factors`]) measure which factor a traversal changes.

use crate::data::Factor;
use crate::nn::{Activation, BatchNorm2d, Conv2d, Layer, Linear, Params, Sequential};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// One factor as the regressor knows it (a [`Factor`] that can be stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorSpec {
    /// Name, e.g. `floor_hue`.
    pub name: String,
    /// Number of values.
    pub values: usize,
    /// Whether the values wrap around (hues).
    pub cyclic: bool,
    /// Whether the values have no order (shape).
    pub categorical: bool,
}

impl From<&Factor> for FactorSpec {
    fn from(f: &Factor) -> Self {
        Self {
            name: f.name.to_string(),
            values: f.values,
            cyclic: f.cyclic,
            categorical: f.categorical,
        }
    }
}

/// The architecture of a factor regressor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorRegressorConfig {
    /// Image channels.
    pub channels: usize,
    /// Image side.
    pub image_size: usize,
    /// The factors, in the dataset's order.
    pub factors: Vec<FactorSpec>,
    /// Width of the hidden layer between the features and the heads.
    pub hidden: usize,
}

impl FactorRegressorConfig {
    /// Checks the sizes (a stored architecture is not trusted).
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.channels, 1 | 3) {
            return Err(Error::config(format!(
                "a factor regressor reads 1- or 3-channel images, not {}",
                self.channels
            )));
        }
        if !(16..=1024).contains(&self.image_size) {
            return Err(Error::config(format!(
                "image side {} is outside 16..=1024",
                self.image_size
            )));
        }
        if self.factors.is_empty() || self.factors.len() > 64 {
            return Err(Error::config("a factor regressor needs 1 to 64 factors"));
        }
        if let Some(f) = self
            .factors
            .iter()
            .find(|f| !(2..=1024).contains(&f.values))
        {
            return Err(Error::config(format!(
                "factor {} has {} values (2 to 1024 allowed)",
                f.name, f.values
            )));
        }
        crate::limits::check_count("the hidden width", self.hidden, crate::limits::MAX_WIDTH)?;
        if self.hidden == 0 {
            return Err(Error::config("the hidden width must be positive"));
        }
        Ok(())
    }

    /// Logits per image: the factors' values, one after the other.
    pub fn outputs(&self) -> usize {
        self.factors.iter().map(|f| f.values).sum()
    }
}

/// Four 4×4 stride-2 convolutions (32, 32, 64, 64 channels) with batch normalisation and
/// ReLU, a hidden layer, and one linear head per factor. Tensors: `conv{i}`, `bn{i}`,
/// `fc`, `head`.
#[derive(Debug)]
pub struct FactorRegressor {
    cfg: FactorRegressorConfig,
    features: Sequential,
    fc: Linear,
    head: Linear,
    flat: usize,
}

impl FactorRegressor {
    /// A regressor of architecture `cfg` with weights from `p`.
    pub fn new(p: &Params, cfg: &FactorRegressorConfig) -> Result<Self> {
        cfg.validate()?;
        let mut features = Sequential::new();
        let (mut cin, mut side) = (cfg.channels, cfg.image_size);
        for (i, cout) in [32, 32, 64, 64].into_iter().enumerate() {
            features.push(Conv2d::new(&p.pp(format!("conv{i}")), cin, cout, 4, 2, 1)?);
            features.push(BatchNorm2d::new(&p.pp(format!("bn{i}")), cout)?);
            features.push(Activation::Relu);
            cin = cout;
            side /= 2;
        }
        let flat = cin * side * side;
        Ok(Self {
            cfg: cfg.clone(),
            features,
            fc: Linear::new(&p.pp("fc"), flat, cfg.hidden)?,
            head: Linear::new(&p.pp("head"), cfg.hidden, cfg.outputs())?,
            flat,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &FactorRegressorConfig {
        &self.cfg
    }

    /// Batch statistics (training) or running statistics (reading factors).
    pub fn set_training(&self, training: bool) {
        self.features.set_training(training);
    }

    /// Logits (B, Σ values) of images `x` (B, C, H, W) in [0, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.features.forward(x)?;
        let h = h.reshape((h.dim(0)?, self.flat))?;
        let h = Activation::Relu.apply(&self.fc.forward(&h)?)?;
        Ok(self.head.forward(&h)?)
    }

    /// Per factor, the probabilities (B, values) of its values.
    pub fn probabilities(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let logits = self.forward(x)?;
        let mut out = Vec::with_capacity(self.cfg.factors.len());
        let mut at = 0;
        for f in &self.cfg.factors {
            let l = logits.narrow(1, at, f.values)?;
            out.push(candle_nn::ops::softmax(&l, 1)?);
            at += f.values;
        }
        Ok(out)
    }

    /// The summed cross-entropy of every factor's head against `labels` (B, F) u32, and
    /// each factor's accuracy.
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> Result<(Tensor, Vec<f64>)> {
        let logits = self.forward(x)?;
        let mut total = Tensor::zeros((), DType::F32, x.device())?;
        let mut accuracy = Vec::with_capacity(self.cfg.factors.len());
        let mut at = 0;
        for (i, f) in self.cfg.factors.iter().enumerate() {
            let l = logits.narrow(1, at, f.values)?;
            let y = labels.narrow(1, i, 1)?.squeeze(1)?.contiguous()?;
            let (ce, acc) = super::classifier::cross_entropy(&l, &y)?;
            total = (total + ce)?;
            accuracy.push(acc);
            at += f.values;
        }
        Ok((total, accuracy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn config() -> FactorRegressorConfig {
        FactorRegressorConfig {
            channels: 1,
            image_size: 32,
            factors: vec![
                FactorSpec {
                    name: "a".into(),
                    values: 3,
                    cyclic: false,
                    categorical: false,
                },
                FactorSpec {
                    name: "b".into(),
                    values: 4,
                    cyclic: true,
                    categorical: false,
                },
            ],
            hidden: 16,
        }
    }

    #[test]
    fn heads_give_one_distribution_per_factor_and_the_loss_sums_them() {
        let dev = Device::Cpu;
        let r = FactorRegressor::new(&Params::new(0, &dev), &config()).unwrap();
        let x = Tensor::rand(0f32, 1.0, (5, 1, 32, 32), &dev).unwrap();
        let p = r.probabilities(&x).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].dims(), [5, 3]);
        assert_eq!(p[1].dims(), [5, 4]);
        for pi in &p {
            let sums = pi.sum(1).unwrap().to_vec1::<f32>().unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
        }
        // The loss is the sum of the two heads' cross-entropies, by hand.
        let labels = Tensor::new(&[[0u32, 3], [1, 0], [2, 1], [0, 2], [1, 3]], &dev).unwrap();
        let (loss, acc) = r.loss(&x, &labels).unwrap();
        let mut expected = 0.0;
        let y = labels.to_vec2::<u32>().unwrap();
        for (f, pf) in p.iter().enumerate() {
            let pf = pf.to_vec2::<f32>().unwrap();
            for (row, yi) in pf.iter().zip(&y) {
                expected -= f64::from(row[yi[f] as usize]).ln() / 5.0;
            }
        }
        let got = f64::from(loss.to_scalar::<f32>().unwrap());
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
        assert_eq!(acc.len(), 2);
    }

    #[test]
    fn bad_architectures_are_refused() {
        let mut c = config();
        c.factors.clear();
        assert!(c.validate().is_err());
        let mut c = config();
        c.factors[0].values = 1;
        assert!(c.validate().is_err());
        let mut c = config();
        c.channels = 2;
        assert!(c.validate().is_err());
        let mut c = config();
        c.image_size = 8;
        assert!(c.validate().is_err());
    }
}
