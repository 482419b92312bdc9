//! The scenes VAE's convolution layers one at a time, batch 32: forward, and forward plus
//! the backward pass with all three gradients (input, kernel, bias), the per-layer figures
//! of docs/performance.md. Where a training step's time goes, layer by layer.

use candle_core::{DType, Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::nn::im2col::{conv_transpose2d_bias, conv2d_bias};

/// (input channels, output channels, input side): the encoder's 4×4 stride-2 convolutions.
const CONVS: [(usize, usize, usize); 4] = [(3, 32, 64), (32, 32, 32), (32, 64, 16), (64, 64, 8)];
/// The decoder's 4×4 stride-2 transposed convolutions.
const DECONVS: [(usize, usize, usize); 4] = [(64, 64, 4), (64, 32, 8), (32, 32, 16), (32, 3, 32)];

fn var(shape: &[usize], std: f64) -> Var {
    let Ok(v) =
        Tensor::randn(0f32, std as f32, shape, &Device::Cpu).and_then(|t| Var::from_tensor(&t))
    else {
        panic!("cannot draw {shape:?}");
    };
    v
}

fn layers(c: &mut Criterion) {
    // The binary's allocator and thread settings, so the figures match `latentflow bench`.
    latentflow::alloc::tune();
    // SAFETY: no other thread has been started yet.
    unsafe { latentflow::nn::pin_thread_count() };
    let n = 32;
    for (transposed, shapes) in [(false, CONVS), (true, DECONVS)] {
        for (cin, cout, side) in shapes {
            let x = var(&[n, cin, side, side], 1.0);
            let w = if transposed {
                var(&[cin, cout, 4, 4], 0.1)
            } else {
                var(&[cout, cin, 4, 4], 0.1)
            };
            let Ok(b) =
                Tensor::zeros(cout, DType::F32, &Device::Cpu).and_then(|t| Var::from_tensor(&t))
            else {
                panic!("cannot make a bias");
            };
            let forward = || {
                let (x, w, b) = (x.as_tensor(), w.as_tensor(), Some(b.as_tensor()));
                if transposed {
                    conv_transpose2d_bias(x, w, b, 2, 1)
                } else {
                    conv2d_bias(x, w, b, 2, 1)
                }
            };
            let name = format!(
                "{}_{cin}to{cout}_at{side}",
                if transposed { "deconv" } else { "conv" }
            );
            c.bench_function(&format!("{name}/forward"), |bench| {
                bench.iter(|| forward().map(|y| y.dims().to_vec()))
            });
            c.bench_function(&format!("{name}/forward_backward"), |bench| {
                bench.iter(|| {
                    forward()
                        .and_then(|y| y.sum_all()?.backward())
                        .map(|g| g.get(w.as_tensor()).is_some())
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = layers
}
criterion_main!(benches);
