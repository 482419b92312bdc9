//! ReLU, leaky ReLU and binary cross-entropy with logits as single-pass CPU ops with
//! single-pass gradients.
//!
//! candle computes the gradient of its ReLU as `grad · (x ≥ 0)` in four passes over the
//! activation (zeros, compare, convert, multiply), and the leaky ReLU here was `max(x, αx)`
//! (two passes forward, more backward). [`Relu`] and [`LeakyRelu`] take one pass each way:
//! the gradient is the output gradient masked by the sign of the *output* (positive
//! exactly where the input is), by [`ScaleBySign`] — which is also how a tangent passes
//! through the activation in a forward-mode (value, tangent) pass, and which is linear in
//! its first argument, so it is its own gradient.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements below which a pass runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;
/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

trait Float:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + Into<f64>
    + std::ops::Mul<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Add<Output = Self>
{
    fn from_f64(v: f64) -> Self;
    /// log(1 + e^{−|x|}), the stable part of the softplus, to an absolute error of an ulp
    /// of 1.
    fn softplus_tail(self) -> Self;
    /// 1 / (1 + e^{−x}).
    fn sigmoid(self) -> Self;
}
impl Float for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn softplus_tail(self) -> Self {
        // ln rather than ln_1p: e^{−|x|} ≤ 1, so the absolute error is within an ulp of
        // 1, and glibc's log1pf is several times slower than its logf.
        (1.0 + (-self.abs()).exp()).ln()
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
}
impl Float for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn softplus_tail(self) -> Self {
        // ln rather than ln_1p: e^{−|x|} ≤ 1, so the absolute error is within an ulp of
        // 1, and glibc's log1pf is several times slower than its logf.
        (1.0 + (-self.abs()).exp()).ln()
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
}

fn slice<'a, T>(v: &'a [T], l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("pointwise op on a non-contiguous tensor"),
    }
}

/// `out[i] = f(x[i])`, in parallel for large inputs.
fn map1<T: Float>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let run = |(o, i): (&mut [T], &[T])| {
        for (o, &i) in o.iter_mut().zip(i) {
            *o = f(i);
        }
    };
    if x.len() < PARALLEL_MIN {
        run((&mut out, x));
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(run);
    }
    out
}

/// `out[i] = f(a[i], b[i])`, in parallel for large inputs.
fn map2<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); a.len()];
    let run = |(o, (a, b)): (&mut [T], (&[T], &[T]))| {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    };
    if a.len() < PARALLEL_MIN {
        run((&mut out, (a, b)));
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(run);
    }
    out
}

/// Two same-shaped contiguous operands of one float dtype, handed to `f32_op` or `f64_op`
/// (for the binary ops here).
fn on_pair(
    what: &str,
    [s1, s2]: [&CpuStorage; 2],
    [l1, l2]: [&Layout; 2],
    f32_op: impl FnOnce(&[f32], &[f32]) -> CpuStorage,
    f64_op: impl FnOnce(&[f64], &[f64]) -> CpuStorage,
) -> Result<CpuStorage> {
    if l1.shape() != l2.shape() {
        candle_core::bail!("{what} of shapes {:?} and {:?}", l1.shape(), l2.shape());
    }
    Ok(match (s1, s2) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => f32_op(slice(a, l1)?, slice(b, l2)?),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => f64_op(slice(a, l1)?, slice(b, l2)?),
        _ => candle_core::bail!("{what}: F32 or F64 operands of one dtype"),
    })
}

/// The leaky ReLU with slope `alpha` for negative inputs (0 for the plain ReLU).
fn leaky<T: Float>(x: &[T], alpha: f64) -> Vec<T> {
    let (zero, a) = (T::default(), T::from_f64(alpha));
    map1(x, move |v| if v > zero { v } else { v * a })
}

/// max(x, 0); its gradient is [`ScaleBySign`] with slope 0.
#[derive(Debug, Clone, Copy)]
pub struct Relu;

/// x for x > 0, `.0`·x otherwise; its gradient is [`ScaleBySign`] with the same slope.
#[derive(Debug, Clone, Copy)]
pub struct LeakyRelu(pub f64);

fn leaky_fwd(alpha: f64, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let out = match s {
        CpuStorage::F32(v) => CpuStorage::F32(leaky(slice(v, l)?, alpha)),
        CpuStorage::F64(v) => CpuStorage::F64(leaky(slice(v, l)?, alpha)),
        _ => candle_core::bail!("ReLU supports F32 and F64 only"),
    };
    Ok((out, l.shape().clone()))
}

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "latentflow-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        leaky_fwd(0.0, s, l)
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(scale_by_sign(grad, y, 0.0)?))
    }
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "latentflow-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        leaky_fwd(self.0, s, l)
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(scale_by_sign(grad, y, self.0)?))
    }
}

/// `t · (y > 0 ? 1 : .0)`: a gradient or tangent through a (leaky) ReLU whose output is
/// `y`. Linear in `t`, so its gradient is itself; `y` gets none (the slope is piecewise
/// constant).
#[derive(Debug, Clone, Copy)]
pub struct ScaleBySign(pub f64);

fn scale<T: Float>(t: &[T], y: &[T], alpha: f64) -> Vec<T> {
    let (zero, a) = (T::default(), T::from_f64(alpha));
    map2(t, y, move |t, y| if y > zero { t } else { t * a })
}

impl CustomOp2 for ScaleBySign {
    fn name(&self) -> &'static str {
        "latentflow-scale-by-sign"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = self.0;
        let out = on_pair(
            "scale-by-sign",
            [s1, s2],
            [l1, l2],
            |t, y| CpuStorage::F32(scale(t, y, a)),
            |t, y| CpuStorage::F64(scale(t, y, a)),
        )?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        t: &Tensor,
        y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dt = if t.track_op() {
            Some(scale_by_sign(grad, y, self.0)?)
        } else {
            None
        };
        Ok((dt, None))
    }
}

fn fast(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `t` scaled by 1 where `y > 0` and by `alpha` elsewhere (see [`ScaleBySign`]).
pub fn scale_by_sign(t: &Tensor, y: &Tensor, alpha: f64) -> Result<Tensor> {
    if fast(t) {
        return t
            .contiguous()?
            .apply_op2(&y.contiguous()?, ScaleBySign(alpha));
    }
    let pos = y.gt(0.)?.to_dtype(t.dtype())?;
    t * pos.affine(1. - alpha, alpha)?
}

/// The leaky ReLU with slope `alpha` (0: the ReLU), by [`Relu`]/[`LeakyRelu`] on the CPU.
pub fn leaky_relu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    if fast(x) {
        let x = x.contiguous()?;
        return if alpha == 0.0 {
            x.apply_op1(Relu)
        } else {
            x.apply_op1(LeakyRelu(alpha))
        };
    }
    if alpha == 0.0 {
        x.relu()
    } else {
        x.maximum(&x.affine(alpha, 0.)?)
    }
}

/// Σ ℓ(l, x) over all elements, ℓ = max(l, 0) − l·x + log(1 + e^{−|l|}): binary
/// cross-entropy with logits in one pass (candle's ops take ten passes and as many
/// allocations forward, more backward). Its gradient is [`BceGrad`] for the logits and
/// −l·g for the targets.
#[derive(Debug, Clone, Copy)]
pub struct BceWithLogitsSum;

/// The gradient of [`BceWithLogitsSum`] with respect to the logits, scaled:
/// `.0`·(σ(l) − x), one pass.
#[derive(Debug, Clone, Copy)]
pub struct BceGrad(pub f64);

fn bce_sum<T: Float>(l: &[T], x: &[T]) -> f64 {
    // Each term in the operands' precision, the sum in f64.
    let zero = T::default();
    let part = |(l, x): (&[T], &[T])| -> f64 {
        l.iter()
            .zip(x)
            .map(|(&l, &x)| {
                let relu = if l > zero { l } else { zero };
                (relu - l * x + l.softplus_tail()).into()
            })
            .sum()
    };
    if l.len() < PARALLEL_MIN {
        part((l, x))
    } else {
        l.par_chunks(CHUNK).zip(x.par_chunks(CHUNK)).map(part).sum()
    }
}

fn bce_grad<T: Float>(l: &[T], x: &[T], scale: f64) -> Vec<T> {
    let scale = T::from_f64(scale);
    map2(l, x, move |l, x| scale * (l.sigmoid() - x))
}

impl CustomOp2 for BceWithLogitsSum {
    fn name(&self) -> &'static str {
        "latentflow-bce-with-logits-sum"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = on_pair(
            "binary cross-entropy",
            [s1, s2],
            [l1, l2],
            |l, x| CpuStorage::F32(vec![bce_sum(l, x) as f32]),
            |l, x| CpuStorage::F64(vec![bce_sum(l, x)]),
        )?;
        Ok((out, Shape::from(())))
    }

    fn bwd(
        &self,
        l: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let dl = if l.track_op() {
            // Tracked, without a backward of its own: a second derivative through this
            // loss fails loudly instead of silently reading zero.
            Some(l.apply_op2(x, BceGrad(g))?)
        } else {
            None
        };
        let dx = if x.track_op() {
            Some(l.affine(-g, 0.)?)
        } else {
            None
        };
        Ok((dl, dx))
    }
}

impl CustomOp2 for BceGrad {
    fn name(&self) -> &'static str {
        "latentflow-bce-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let scale = self.0;
        let out = on_pair(
            "binary cross-entropy gradient",
            [s1, s2],
            [l1, l2],
            |l, x| CpuStorage::F32(bce_grad(l, x, scale)),
            |l, x| CpuStorage::F64(bce_grad(l, x, scale)),
        )?;
        Ok((out, l1.shape().clone()))
    }
}

/// Σ ℓ(l, x) over every element (see [`BceWithLogitsSum`]) — one pass on the CPU, candle's
/// ops elsewhere.
pub fn bce_with_logits_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if fast(logits) && logits.dtype() == targets.dtype() && targets.device().is_cpu() {
        return logits
            .contiguous()?
            .apply_op2(&targets.contiguous()?, BceWithLogitsSum);
    }
    let stable = logits.abs()?.neg()?.exp()?.affine(1., 1.)?.log()?;
    ((logits.relu()? - (logits * targets)?)? + stable)?.sum_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn values_and_gradients_match_candles_ops() {
        // Small (one thread) and large (parallel) inputs; no exact zeros, where the
        // derivative of a ReLU is a convention.
        for n in [7, 3 * PARALLEL_MIN + 5] {
            let x = Var::from_tensor(&crate::nn::fd::randn64(&[n], 1).unwrap()).unwrap();
            let g = crate::nn::fd::randn64(&[n], 2).unwrap();
            for alpha in [0.0, 0.2] {
                let ours = leaky_relu(x.as_tensor(), alpha).unwrap();
                let theirs = x
                    .as_tensor()
                    .maximum(&x.as_tensor().affine(alpha, 0.).unwrap())
                    .unwrap();
                assert_eq!(max_diff(&ours, &theirs), 0.0, "{n} {alpha}");
                let go = (&ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let gt = (&theirs * &g)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let (a, b) = (
                    go.get(x.as_tensor()).unwrap(),
                    gt.get(x.as_tensor()).unwrap(),
                );
                assert!(max_diff(a, b) < 1e-15, "{n} {alpha}");
            }
        }
    }

    #[test]
    fn the_fused_cross_entropy_and_its_gradients_match_candles_ops() {
        // Small (one thread) and large (parallel) inputs, logits of both signs and large
        // magnitudes, targets in [0, 1]; f64 throughout, then one f32 case.
        for n in [7, 3 * PARALLEL_MIN + 5] {
            let l = Var::from_tensor(&(crate::nn::fd::randn64(&[n], 6).unwrap() * 8.0).unwrap())
                .unwrap();
            let x = Var::from_tensor(
                &crate::nn::fd::randn64(&[n], 7)
                    .unwrap()
                    .affine(0.2, 0.5)
                    .unwrap()
                    .clamp(0.0, 1.0)
                    .unwrap(),
            )
            .unwrap();
            let (lt, xt) = (l.as_tensor(), x.as_tensor());
            let ours = bce_with_logits_sum(lt, xt).unwrap();
            let stable = lt
                .abs()
                .unwrap()
                .neg()
                .unwrap()
                .exp()
                .unwrap()
                .affine(1., 1.)
                .unwrap()
                .log()
                .unwrap();
            let theirs = ((lt.relu().unwrap() - (lt * xt).unwrap()).unwrap() + stable)
                .unwrap()
                .sum_all()
                .unwrap();
            let (a, b) = (
                ours.to_scalar::<f64>().unwrap(),
                theirs.to_scalar::<f64>().unwrap(),
            );
            assert!((a - b).abs() < 1e-9 * b.abs(), "{n}: {a} vs {b}");
            // Gradients of 0.7·loss (a non-unit upstream gradient) for both arguments.
            let go = (ours * 0.7).unwrap().backward().unwrap();
            let gt = (theirs * 0.7).unwrap().backward().unwrap();
            for v in [lt, xt] {
                let d = max_diff(go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(d < 1e-12, "{n}: {d}");
            }
        }
        // Hand-computed, f32: l = 0, x = 1: log 2; l = 2, x = 0: 2 + log(1 + e^-2);
        // gradients σ(l) − x: −½ and σ(2).
        let l = Var::from_vec(vec![0f32, 2.], 2, &Device::Cpu).unwrap();
        let x = Tensor::new(&[1f32, 0.], &Device::Cpu).unwrap();
        let loss = bce_with_logits_sum(l.as_tensor(), &x).unwrap();
        let want = 2f32.ln() + 2. + (-2f32).exp().ln_1p();
        assert!((loss.to_scalar::<f32>().unwrap() - want).abs() < 1e-6);
        let g = loss.backward().unwrap();
        let g = g.get(l.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let s2 = 1. / (1. + (-2f32).exp());
        assert!(
            (g[0] + 0.5).abs() < 1e-6 && (g[1] - s2).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn the_sign_scaling_is_its_own_gradient() {
        let t = Var::from_tensor(&crate::nn::fd::randn64(&[2, 5], 3).unwrap()).unwrap();
        let y = crate::nn::fd::randn64(&[2, 5], 4).unwrap();
        let g = crate::nn::fd::randn64(&[2, 5], 5).unwrap();
        let out = scale_by_sign(t.as_tensor(), &y, 0.2).unwrap();
        let grads = (&out * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let want = scale_by_sign(&g, &y, 0.2).unwrap();
        assert_eq!(max_diff(grads.get(t.as_tensor()).unwrap(), &want), 0.0);
        let slow = (t.as_tensor()
            * y.gt(0.)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .affine(0.8, 0.2)
                .unwrap())
        .unwrap();
        assert_eq!(max_diff(&out, &slow), 0.0);
        let f32_case = scale_by_sign(
            &Tensor::new(&[1f32, -2.], &Device::Cpu).unwrap(),
            &Tensor::new(&[-1f32, 3.], &Device::Cpu).unwrap(),
            0.0,
        )
        .unwrap();
        assert_eq!(f32_case.to_vec1::<f32>().unwrap(), vec![0.0, -2.0]);
    }
}
