//! A DCGAN-style GAN (Radford et al.) for square images.
//!
//! Generator: the latent code as a 1×1 image, `deconv0` (4×4 / stride 1 / padding 0 →
//! 4×4, width base·2^(stages−1)), then stride-2 transposed convolutions halving the width
//! up to the image size; batch norm and ReLU after every layer but the last, whose tanh
//! output is mapped to [0, 1]. Discriminator: 4×4 / stride 2 convolutions with leaky
//! ReLU (batch norm from the second on), then a 4×4 convolution to one logit.

use super::{Generator, GeneratorConfig};
use crate::nn::sequential::Reshape;
use crate::nn::{
    Activation, BatchNorm2d, Conv2d, ConvTranspose2d, Dual, Layer, Params, Sequential,
};
use candle_core::{Result, Tensor};

fn width(base: usize, level: usize) -> usize {
    base << level.min(4)
}

/// The GAN's generator.
#[derive(Debug)]
pub struct Gan {
    cfg: GeneratorConfig,
    net: Sequential,
}

impl Gan {
    /// Builds (or loads) the generator under the names `generator.*`.
    pub fn new(p: &Params, cfg: &GeneratorConfig) -> Result<Self> {
        cfg.validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let stages = cfg.stages();
        let p = p.pp("generator");
        let mut net = Sequential::new();
        net.push(Reshape(vec![cfg.latent, 1, 1]));
        let mut cin = cfg.latent;
        for i in 0..=stages {
            let last = i == stages;
            let cout = if last {
                cfg.channels
            } else {
                width(cfg.base, stages - 1 - i)
            };
            let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
            net.push(ConvTranspose2d::new(
                &p.pp(format!("deconv{i}")),
                cin,
                cout,
                4,
                stride,
                pad,
            )?);
            if !last {
                net.push(BatchNorm2d::new(&p.pp(format!("bn{i}")), cout)?);
                net.push(Activation::Relu);
            }
            cin = cout;
        }
        net.push(Activation::Tanh);
        Ok(Self {
            cfg: cfg.clone(),
            net,
        })
    }

    /// Batch-norm layers use batch statistics while `training` (GAN training only).
    pub fn set_training(&self, training: bool) {
        self.net.set_training(training);
    }

    /// The generator's raw output in [−1, 1].
    pub fn forward_tanh(&self, z: &Tensor) -> Result<Tensor> {
        self.net.forward(z)
    }
}

impl Generator for Gan {
    fn config(&self) -> &GeneratorConfig {
        &self.cfg
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.net.forward(z)?.affine(0.5, 0.5)
    }

    fn jvp(&self, z: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let y = self.net.forward_dual(&Dual::new(z.clone(), v.clone()))?;
        Ok((y.value.affine(0.5, 0.5)?, y.tangent.affine(0.5, 0.)?))
    }
}

/// The GAN's discriminator: images in [0, 1] → one logit each.
#[derive(Debug)]
pub struct Discriminator {
    net: Sequential,
}

impl Discriminator {
    /// Builds (or loads) the discriminator under the names `discriminator.*`.
    pub fn new(p: &Params, cfg: &GeneratorConfig) -> Result<Self> {
        let stages = cfg.stages();
        let p = p.pp("discriminator");
        let mut net = Sequential::new();
        let mut cin = cfg.channels;
        for i in 0..stages {
            let cout = width(cfg.base, i);
            net.push(Conv2d::new(&p.pp(format!("conv{i}")), cin, cout, 4, 2, 1)?);
            if i > 0 {
                net.push(BatchNorm2d::new(&p.pp(format!("bn{i}")), cout)?);
            }
            net.push(Activation::LeakyRelu);
            cin = cout;
        }
        net.push(Conv2d::new(
            &p.pp(format!("conv{stages}")),
            cin,
            1,
            4,
            1,
            0,
        )?);
        net.push(Reshape(vec![1]));
        Ok(Self { net })
    }

    /// Logits (n, 1) for images (n, c, s, s) in [0, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.net.forward(&x.affine(2.0, -1.0)?)
    }

    /// Batch-norm layers use batch statistics while `training`.
    pub fn set_training(&self, training: bool) {
        self.net.set_training(training);
    }
}
