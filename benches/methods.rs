//! The traversal methods side by side on the scenes VAE's latent space (d = 16, fresh
//! weights: the figures depend on the architectures, not on the trained values): a 10-step
//! walk of one code (what a slider move costs before decoding) for fixed directions, PDE
//! potentials, WarpedSpace and NeuralODE (MLP and constant fields), and one training
//! iteration (batch 16) of WarpedSpace and NeuralODE including the generator and the
//! reconstructor or regressor passes.

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::methods::{Directions, OdeFlow, PathSpec, PotentialFlow, Traversal, WarpedFlow};
use latentflow::models::factors::{FactorRegressor, FactorRegressorConfig, FactorSpec};
use latentflow::models::ode::{OdeConfig, VectorFields};
use latentflow::models::potential::{PotentialConfig, PotentialKind, Potentials};
use latentflow::models::warped::{WarpedConfig, Warps};
use latentflow::models::{GeneratorConfig, GeneratorKind, GeneratorModel};
use latentflow::nn::Params;
use latentflow::store::directions::DirectionsConfig;
use latentflow::train::ode::{OdeTrainConfig, OdeTrainer};
use latentflow::train::warped::{WarpedTrainConfig, WarpedTrainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const D: usize = 16;
const K: usize = 6;

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

fn methods(c: &mut Criterion) {
    // The binary's allocator settings (src/alloc.rs), so the figures match the app's.
    latentflow::alloc::tune();
    let dev = Device::Cpu;
    let p = |seed| Params::new(seed, &dev);
    let directions = Directions::from_steps(
        DirectionsConfig {
            method: "sefa".into(),
            latent: D,
            k: K,
            step: 0.3,
            names: Vec::new(),
        },
        ok(Tensor::randn(0f32, 0.1, (K, D), &dev), "directions"),
    );
    let pde = PotentialFlow::new(ok(
        Potentials::new(&p(1), &PotentialConfig::new(PotentialKind::Pde, K, D)),
        "potentials",
    ));
    let warped_cfg = WarpedConfig {
        k: K,
        latent: D,
        dipoles: 8,
        step: 0.3,
        names: Vec::new(),
    };
    let warped = WarpedFlow::new(ok(Warps::new(&p(2), &warped_cfg), "warps"));
    let ode_cfg = |depth| OdeConfig {
        k: 5,
        latent: D,
        depth,
        hidden: 64,
        step: 0.3,
        substeps: 4,
        names: Vec::new(),
    };
    let ode = OdeFlow::new(ok(VectorFields::new(&p(3), &ode_cfg(2)), "fields"));
    let ode_linear = OdeFlow::new(ok(VectorFields::new(&p(4), &ode_cfg(0)), "fields"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let z = ok(latentflow::models::randn(&[1, D], &mut rng, &dev), "z");
    let flows: [(&str, &dyn Traversal); 5] = [
        ("directions", &directions),
        ("pde", &pde),
        ("warped", &warped),
        ("ode", &ode),
        ("ode-linear", &ode_linear),
    ];
    for (name, flow) in flows {
        c.bench_function(&format!("methods/{name}/path_10_steps_b1"), |b| {
            b.iter(|| flow.path(&z, &PathSpec::single(1, 10)).map(|p| p.z.len()))
        });
    }

    let g = ok(
        GeneratorModel::new(&p(5), &GeneratorConfig::new(GeneratorKind::Vae, D, 3)),
        "generator",
    );
    let mut group = c.benchmark_group("methods/train_iteration_b16");
    group.sample_size(10);
    let wcfg = WarpedTrainConfig::new("g".into(), "w".into());
    let mut wt = ok(
        WarpedTrainer::new(&warped_cfg, 3, 64, &wcfg, &dev),
        "warped trainer",
    );
    group.bench_function("warped", |b| {
        b.iter(|| wt.step(&g, &wcfg, &mut rng).map(|v| v.len()))
    });
    let factor = |name: &str, values, cyclic| FactorSpec {
        name: name.into(),
        values,
        cyclic,
        categorical: false,
    };
    let rcfg = FactorRegressorConfig {
        channels: 3,
        image_size: 64,
        factors: vec![
            factor("floor_hue", 10, true),
            factor("wall_hue", 10, true),
            factor("object_hue", 10, true),
            factor("scale", 8, false),
            factor("orientation", 15, false),
        ],
        hidden: 256,
    };
    let regressor = ok(FactorRegressor::new(&p(6), &rcfg), "regressor");
    let ocfg = OdeTrainConfig::new("g".into(), "o".into());
    let mut ot = ok(
        OdeTrainer::new(&ode_cfg(2), regressor, (0..5).collect(), &ocfg, &dev),
        "ode trainer",
    );
    group.bench_function("ode", |b| {
        b.iter(|| ot.step(&g, &ocfg, &mut rng).map(|v| v.len()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = methods
}
criterion_main!(benches);
