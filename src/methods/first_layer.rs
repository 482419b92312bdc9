//! The generator's first layer as an affine map with its non-linearity (what SeFa,
//! GANSpace and DP-LaSE read), and the symmetric eigen-solver they share.

use crate::models::GeneratorKind;
use crate::store::LoadedGenerator;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// Eigenvalues (descending) and unit eigenvectors of the symmetric `n × n` matrix `a`
/// (row-major), by cyclic Jacobi rotations. Each eigenvector's sign is fixed so that its
/// largest-magnitude entry is positive.
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    if a.len() != n * n {
        return Err(Error::config(format!(
            "a {n} × {n} matrix needs {} values, not {}",
            n * n,
            a.len()
        )));
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::config("the matrix has values that are not finite"));
    }
    let mut m = a.to_vec();
    // v holds the eigenvectors as columns.
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // m ← Jᵀ m J, rows and columns p and q.
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut pairs: Vec<(f64, Vec<f64>)> = (0..n)
        .map(|j| (m[j * n + j], (0..n).map(|i| v[i * n + j]).collect()))
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (values, vectors) = pairs
        .into_iter()
        .map(|(l, mut vec)| {
            fix_sign(&mut vec);
            (l, vec)
        })
        .unzip();
    Ok((values, vectors))
}

/// Flips `v` so that its largest-magnitude entry is positive (eigenvectors and principal
/// axes are defined up to sign; this makes them reproducible).
pub(crate) fn fix_sign(v: &mut [f64]) {
    let big = v
        .iter()
        .copied()
        .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if big < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

/// The generator's first layer as an affine map z → A z + b (A: m × d), and what follows
/// it up to its first non-linearity (a GAN's batch norm, in its running statistics).
pub struct FirstLayer {
    /// (m, d).
    pub weight: Tensor,
    /// (m).
    pub bias: Tensor,
    /// Per output: scale and shift of the batch norm after it (GAN), or none (VAE).
    pub norm: Option<(Tensor, Tensor)>,
    /// Consecutive outputs that make one channel: a VAE's fully connected units are a
    /// channel each (1), a GAN's 4 × 4 maps 16.
    pub per_channel: usize,
}

impl FirstLayer {
    /// Reads the first layer from the generator's checkpoint: a VAE's `decoder.fc0`, a
    /// GAN's `generator.deconv0` (a 4 × 4 transposed convolution of a 1 × 1 input: a
    /// linear map to C·16 outputs) with `generator.bn0`.
    pub fn of(g: &LoadedGenerator, device: &Device) -> Result<Self> {
        let (_, tensors) = crate::store::generator::read_weights(&g.dir, &g.manifest, device)?;
        let get = |name: &str| -> Result<Tensor> {
            tensors
                .get(name)
                .map(|t| t.to_dtype(DType::F64))
                .transpose()?
                .ok_or_else(|| {
                    Error::checkpoint(
                        g.dir.join(crate::store::MANIFEST_FILE),
                        format!("the generator has no tensor '{name}'"),
                    )
                })
        };
        let d = g.config.latent;
        Ok(match g.config.kind {
            GeneratorKind::Vae => Self {
                weight: get("decoder.fc0.weight")?,
                bias: get("decoder.fc0.bias")?,
                norm: None,
                per_channel: 1,
            },
            GeneratorKind::Gan => {
                let w = get("generator.deconv0.weight")?; // (d, C, 4, 4)
                let (_, c, kh, kw) = w.dims4()?;
                let per = kh * kw;
                let repeat = |t: Tensor| -> Result<Tensor> {
                    Ok(t.unsqueeze(1)?.repeat((1, per))?.flatten_all()?)
                };
                let gamma = get("generator.bn0.weight")?;
                let beta = get("generator.bn0.bias")?;
                let mean = get("generator.bn0.running_mean")?;
                let var = get("generator.bn0.running_var")?;
                let scale = (gamma / (var + 1e-5)?.sqrt()?)?;
                let shift = (beta - (&mean * &scale)?)?;
                Self {
                    weight: w.reshape((d, c * per))?.t()?.contiguous()?,
                    bias: repeat(get("generator.deconv0.bias")?)?,
                    norm: Some((repeat(scale)?, repeat(shift)?)),
                    per_channel: per,
                }
            }
        })
    }

    /// The number of channels (outputs / [`FirstLayer::per_channel`]).
    pub fn channels(&self) -> Result<usize> {
        Ok(self.weight.dim(0)? / self.per_channel.max(1))
    }

    /// The activations after the first layer and its non-linearity (ReLU) for codes z
    /// (n, d): (n, m).
    pub fn features(&self, z: &Tensor) -> Result<Tensor> {
        let mut y = z
            .to_dtype(DType::F64)?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        if let Some((scale, shift)) = &self.norm {
            y = y.broadcast_mul(scale)?.broadcast_add(shift)?;
        }
        Ok(y.relu()?)
    }
}
