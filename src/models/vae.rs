//! A convolutional VAE for square images (the β-VAE architecture of Burgess et al.).
//!
//! Encoder: `stages` convolutions 4×4 / stride 2 / padding 1 with ReLU down to 4×4,
//! widths base·(1, 1, 2, 2, 4, 4, …), then `fc` (→ 8·base, ReLU) and two heads `mu`,
//! `logvar` (→ latent). Decoder: `fc0` (latent → 8·base, ReLU), `fc1` (→ width·4·4, ReLU),
//! then transposed convolutions 4×4 / stride 2 / padding 1 mirroring the encoder (ReLU
//! between, none after the last), whose output are Bernoulli logits; `decode` applies the
//! sigmoid. Tensor names are listed in docs/checkpoint-format.md.

use super::{Generator, GeneratorConfig};
use crate::nn::sequential::Reshape;
use crate::nn::{Activation, Conv2d, ConvTranspose2d, Dual, Layer, Linear, Params, Sequential};
use candle_core::{Result, Tensor};

/// Width of encoder stage `i` (decoder stages mirror it).
pub(crate) fn stage_width(base: usize, i: usize) -> usize {
    base << (i / 2).min(3)
}

/// The encoder, reparameterised sampler and decoder.
#[derive(Debug)]
pub struct Vae {
    cfg: GeneratorConfig,
    encoder: Sequential,
    mu: Linear,
    logvar: Linear,
    decoder: Sequential,
}

impl Vae {
    /// Builds (or loads) a VAE under the names `encoder.*` and `decoder.*`.
    pub fn new(p: &Params, cfg: &GeneratorConfig) -> Result<Self> {
        cfg.validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let stages = cfg.stages();
        let hidden = 8 * cfg.base;
        let top = stage_width(cfg.base, stages - 1);

        let pe = p.pp("encoder");
        let mut encoder = Sequential::new();
        let mut cin = cfg.channels;
        for i in 0..stages {
            let cout = stage_width(cfg.base, i);
            encoder.push(Conv2d::new(&pe.pp(format!("conv{i}")), cin, cout, 4, 2, 1)?);
            encoder.push(Activation::Relu);
            cin = cout;
        }
        encoder.push(Reshape(vec![top * 16]));
        encoder.push(Linear::new(&pe.pp("fc"), top * 16, hidden)?);
        encoder.push(Activation::Relu);
        let mu = Linear::new(&pe.pp("mu"), hidden, cfg.latent)?;
        let logvar = Linear::new(&pe.pp("logvar"), hidden, cfg.latent)?;

        let pd = p.pp("decoder");
        let mut decoder = Sequential::new();
        decoder.push(Linear::new(&pd.pp("fc0"), cfg.latent, hidden)?);
        decoder.push(Activation::Relu);
        decoder.push(Linear::new(&pd.pp("fc1"), hidden, top * 16)?);
        decoder.push(Activation::Relu);
        decoder.push(Reshape(vec![top, 4, 4]));
        for i in 0..stages {
            let cin = stage_width(cfg.base, stages - 1 - i);
            let last = i + 1 == stages;
            let cout = if last {
                cfg.channels
            } else {
                stage_width(cfg.base, stages - 2 - i)
            };
            decoder.push(ConvTranspose2d::new(
                &pd.pp(format!("deconv{i}")),
                cin,
                cout,
                4,
                2,
                1,
            )?);
            if !last {
                decoder.push(Activation::Relu);
            }
        }
        Ok(Self {
            cfg: cfg.clone(),
            encoder,
            mu,
            logvar,
            decoder,
        })
    }

    /// The posterior q(z|x) = N(μ, diag(exp(logvar))) of images (n, c, s, s) in [0, 1].
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.forward(x)?;
        Ok((self.mu.forward(&h)?, self.logvar.forward(&h)?))
    }

    /// Bernoulli logits of the decoder (the pre-sigmoid output).
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(z)
    }
}

impl Generator for Vae {
    fn config(&self) -> &GeneratorConfig {
        &self.cfg
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(&self.decode_logits(z)?)
    }

    fn jvp(&self, z: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let logits = self
            .decoder
            .forward_dual(&Dual::new(z.clone(), v.clone()))?;
        let x = Activation::Sigmoid.forward_dual(&logits)?;
        Ok((x.value, x.tangent))
    }
}
