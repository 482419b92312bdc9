//! Potential derivatives (d = 128, batch 32, hidden 128): the full forward pass with the
//! exact Laplacian, the gradient alone, the Laplacian by d backward passes (what autograd
//! would do), and a 10-step traversal of one code. `latentflow bench potentials` prints the
//! issue's figures (including a whole training iteration) as one JSON line.

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::bench::laplacian_by_backward;
use latentflow::methods::{PathSpec, PotentialFlow, Traversal};
use latentflow::models::potential::{PotentialConfig, PotentialKind, Potentials};
use latentflow::nn::Params;
use rand::SeedableRng;

fn potentials(c: &mut Criterion) {
    // The binary's allocator settings (src/alloc.rs), so the figures match `latentflow bench`.
    latentflow::alloc::tune();
    let dev = Device::Cpu;
    let (d, b) = (128, 32);
    let Ok(pots) = Potentials::new(
        &Params::new(0, &dev),
        &PotentialConfig::new(PotentialKind::Pde, 8, d),
    ) else {
        panic!("cannot build the potentials");
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (Ok(z), Ok(t)) = (
        latentflow::models::randn(&[b, d], &mut rng, &dev),
        Tensor::full(3f32, b, &dev),
    ) else {
        panic!("cannot make inputs");
    };
    c.bench_function("potentials/eval_with_laplacian_b32_d128", |bench| {
        bench.iter(|| pots.eval(&z, &t, 2).map(|e| e.laplacian.dims().to_vec()))
    });
    c.bench_function("potentials/grad_b32_d128", |bench| {
        bench.iter(|| pots.grad(&z, &t, 2).map(|g| g.dims().to_vec()))
    });
    let mut group = c.benchmark_group("potentials/slow");
    group.sample_size(10);
    group.bench_function("laplacian_by_128_backward_passes_b32", |bench| {
        bench.iter(|| laplacian_by_backward(&pots, &z, &t, 2).map(|l| l.dims().to_vec()))
    });
    group.finish();
    let flow = PotentialFlow::new(pots.clone());
    let Ok(z1) = z.narrow(0, 0, 1) else {
        panic!("cannot slice");
    };
    c.bench_function("potentials/path_10_steps_b1", |bench| {
        bench.iter(|| flow.path(&z1, &PathSpec::single(1, 10)).map(|p| p.z.len()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = potentials
}
criterion_main!(benches);
