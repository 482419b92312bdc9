//! Generator speed: decode latency (batch 1 and 32) and the exact JVP, for the default
//! VAE architecture with fresh weights (the figures depend on the architecture, not on
//! the trained values). `latentflow bench generator --model DIR` measures a trained model.

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::models::{
    Generator, GeneratorConfig, GeneratorKind, GeneratorModel, sample_latents,
};
use latentflow::nn::params::Params;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn generator(c: &mut Criterion) {
    // The binary's allocator settings (src/alloc.rs), so the figures match `latentflow bench`.
    latentflow::alloc::tune();
    let dev = Device::Cpu;
    for (name, kind, latent, channels) in [
        ("vae-scenes", GeneratorKind::Vae, 16, 3),
        ("gan-scenes", GeneratorKind::Gan, 64, 3),
    ] {
        let cfg = GeneratorConfig::new(kind, latent, channels);
        let Ok(model) = GeneratorModel::new(&Params::new(0, &dev), &cfg) else {
            panic!("cannot build {name}");
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for batch in [1usize, 32] {
            let Ok(z) = sample_latents(model.prior(), batch, latent, &mut rng, &dev) else {
                panic!("cannot sample");
            };
            c.bench_function(&format!("{name}/decode_b{batch}"), |b| {
                b.iter(|| model.decode(&z).map(|x| x.dims().to_vec()))
            });
        }
        let Ok(z) = sample_latents(model.prior(), 1, latent, &mut rng, &dev) else {
            panic!("cannot sample");
        };
        let v = z.clone();
        c.bench_function(&format!("{name}/jvp_b1"), |b| {
            b.iter(|| model.jvp(&z, &v).map(|(x, _)| x.dims().to_vec()))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = generator
}
criterion_main!(benches);
