//! Loss functions, each checked against a hand-computed case.

use candle_core::{Result, Tensor};

/// Binary cross-entropy between Bernoulli `logits` and targets in [0, 1], summed over
/// every dimension but the first and averaged over the batch:
/// ℓ = max(l, 0) − l·x + log(1 + e^{−|l|}) (the numerically stable form).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let n = logits.dim(0)? as f64;
    crate::nn::pointwise::bce_with_logits_sum(logits, targets)? / n
}

/// KL(N(μ, diag e^{logvar}) ‖ N(0, I)) = −½ Σ (1 + logvar − μ² − e^{logvar}), summed over
/// the latent and averaged over the batch.
pub fn gaussian_kl(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    let n = mu.dim(0)? as f64;
    let per = (logvar.affine(1., 1.)? - mu.sqr()?)?.sub(&logvar.exp()?)?;
    per.sum_all()?.affine(-0.5 / n, 0.)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn bce_matches_hand_computed_values() -> Result<()> {
        // logits [[0, 2]], targets [[1, 0]]:
        // l=0, x=1: log 2 = 0.693147; l=2, x=0: 2 + log(1 + e^-2) = 2.126928
        let l = Tensor::new(&[[0f32, 2.]], &Device::Cpu)?;
        let x = Tensor::new(&[[1f32, 0.]], &Device::Cpu)?;
        let v = bce_with_logits(&l, &x)?.to_scalar::<f32>()?;
        let want = 2f32.ln() + 2. + (-2f32).exp().ln_1p();
        assert!((v - want).abs() < 1e-5, "{v}");
        // Large negative logit with target 0 is stable and near 0.
        let l = Tensor::new(&[[-100f32]], &Device::Cpu)?;
        let x = Tensor::new(&[[0f32]], &Device::Cpu)?;
        assert!(bce_with_logits(&l, &x)?.to_scalar::<f32>()?.abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn kl_matches_hand_computed_values() -> Result<()> {
        // μ = 1, logvar = 0: ½; μ = 0, logvar = ln 2: −½(1 + ln2 − 2) = 0.153426. Batch 2 → mean.
        let mu = Tensor::new(&[[1f32], [0.]], &Device::Cpu)?;
        let lv = Tensor::new(&[[0f32], [2f32.ln()]], &Device::Cpu)?;
        let v = gaussian_kl(&mu, &lv)?.to_scalar::<f32>()?;
        assert!((v - (0.5 + 0.153_426) / 2.).abs() < 1e-5, "{v}");
        Ok(())
    }
}
