//! One training iteration of the flow-factorized VAE and its variants (the scenes VAE's
//! architecture, 64×64 RGB, K = 5, T = 8, random sequences: the time does not depend on the
//! images) at batch 8; `latentflow bench ffvae` prints the figure at batch 64 with
//! the PyTorch reference (benches/pytorch/ffvae.py) beside it.

use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::models::flow_vae::{Supervision, Variant};
use latentflow::train::flow_vae::measure_iteration_ms;

fn ffvae(c: &mut Criterion) {
    latentflow::alloc::tune();
    let dev = candle_core::Device::Cpu;
    let mut g = c.benchmark_group("ffvae_train_iteration_b8_t8_k5");
    g.sample_size(10);
    for (name, v, s) in [
        ("flow_full", Variant::Flow, Supervision::Full),
        ("flow_weak", Variant::Flow, Supervision::Weak),
        ("wave", Variant::Wave, Supervision::Full),
        ("naive", Variant::Naive, Supervision::Full),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let ms = match measure_iteration_ms(v, s, 3e-4, 8, 8, 5, iters as usize, &dev) {
                    Ok(ms) => ms,
                    Err(e) => panic!("{name}: {e}"),
                };
                std::time::Duration::from_secs_f64(ms * iters as f64 / 1e3)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ffvae);
criterion_main!(benches);
