//! What the app waits for: rendering one slider position (path, records and one batched
//! decode) and a 60-frame GIF export, on the shipped default model. `latentflow bench app`
//! measures the slider-to-texture latency inside the running app.

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use latentflow::session::{GifOptions, RenderRequest, export_gif, load_model, render};

fn worker(c: &mut Criterion) {
    // The binary's allocator settings (src/alloc.rs), so the figures match `latentflow bench`.
    latentflow::alloc::tune();
    let dev = Device::Cpu;
    let dir = latentflow::store::default_model_dir();
    let Ok(model) = load_model(&dir, &dev) else {
        panic!("cannot load {}", dir.display());
    };
    let k = model.methods.first().map_or(0, |(m, _)| m.names.len());
    let mut sliders = vec![0.0; k];
    if let Some(s) = sliders.first_mut() {
        *s = 7.5;
    }
    let req = RenderRequest {
        generation: 1,
        seed: 3,
        method: 0,
        sliders,
        switch: None,
        batch: 0,
        step_scale: 1.0,
        start: None,
        preserve_density: false,
        data_density: false,
    };
    c.bench_function("worker/render_slider_7.5", |b| {
        b.iter(|| render(&model, &req, &dev).map(|f| f.strip.len()))
    });
    let Ok(tmp) = tempfile::tempdir() else {
        panic!("no temp dir");
    };
    let mut long = req.clone();
    if let Some(s) = long.sliders.first_mut() {
        *s = 30.0;
    }
    let opts = GifOptions {
        out: tmp.path().join("walk.gif"),
        fps: 12,
        ping_pong: true,
        scale: 1,
        seeds: 1,
        state_json: String::new(),
    };
    let mut group = c.benchmark_group("worker/slow");
    group.sample_size(10);
    group.bench_function("gif_60_frames_64px", |b| {
        b.iter(|| export_gif(&model, &long, &opts, &dev, &mut |_| {}))
    });
    group.finish();
}

criterion_group!(benches, worker);
criterion_main!(benches);
