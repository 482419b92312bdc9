//! What the app, the worker and the command line share, below all three: the loaded
//! model and its methods (opened through [`crate::methods::open`]), the compute device,
//! rendering a request into frames, GIF/PNG export, the landscape, encoding a user's
//! image, and the saved-state format embedded in exports. Nothing here runs a thread or
//! knows the UI: the worker drives it from its thread, the CLI calls it directly.

pub mod export;
mod render;
pub mod state;

pub use export::{GifOptions, export_gif};
pub use render::{Frame, RenderRequest, Switch, render};

use crate::methods::Traversal;
use crate::store::{LoadedGenerator, find_methods, load_generator};
use crate::train::CancelToken;
use std::path::PathBuf;

/// The compute device: CPU, or the first CUDA device in a `cuda` build.
pub fn device() -> crate::Result<candle_core::Device> {
    #[cfg(feature = "cuda")]
    {
        Ok(candle_core::Device::new_cuda(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(candle_core::Device::Cpu)
    }
}

/// A landscape request: the slice through the end point of `render`'s path, spanned by
/// ∇u^k there and a random direction from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct LandscapeRequest {
    /// The traversal whose end point is the centre.
    pub render: RenderRequest,
    /// Which potential of the method.
    pub k: usize,
    /// The second axis: the gradient of this potential (made orthogonal), or a random
    /// direction from the seed when None.
    pub second: Option<usize>,
    /// Half the side of the square.
    pub extent: f32,
    /// Grid points per side.
    pub n: usize,
}

/// An evaluated landscape.
#[derive(Debug, Clone)]
pub struct LandscapeFrame {
    /// The render request's generation.
    pub generation: u64,
    /// Points per side.
    pub n: usize,
    /// Half the side.
    pub extent: f32,
    /// u on the grid, row j (second axis), column i (first axis).
    pub values: Vec<f32>,
    /// The traversal projected on the plane.
    pub path: Vec<(f32, f32)>,
    /// Whether the shader computed it (else the CPU).
    pub on_gpu: bool,
    /// Milliseconds.
    pub ms: f64,
}

/// One set of potentials of the loaded model, as the UI lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodInfo {
    /// Method name ("pde", "linear").
    pub method: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Display names of its directions.
    pub names: Vec<String>,
    /// Whether it has scalar potentials (the landscape draws them); fixed directions
    /// have none.
    pub has_potentials: bool,
}

/// The user's image and its latent code.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The file it came from.
    pub path: PathBuf,
    /// The latent code z_0.
    pub latent: Vec<f32>,
    /// The model's input: the image cropped and resized (none for a reopened code).
    pub original: Option<crate::data::Image>,
    /// G(z_0).
    pub reconstruction: crate::data::Image,
    /// Mean squared error of the reconstruction per value (none for a reopened code).
    pub mse: Option<f64>,
}

/// The loaded model: generator and potential sets.
pub struct Loaded {
    /// The generator.
    pub generator: LoadedGenerator,
    /// The traversal methods, one per potential set.
    pub methods: Vec<(MethodInfo, Box<dyn Traversal>)>,
    /// The potential sets that could not be loaded, and why (the generator and the other
    /// sets are usable all the same).
    pub unusable: Vec<(PathBuf, String)>,
    /// The density model of the data's codes in the model's `density` folder, if any.
    pub density: Option<crate::methods::SharedDensity>,
}

/// Loads a generator folder and every potential set in it that can be loaded: a set that
/// cannot (truncated, trained on other weights...) is listed in [`Loaded::unusable`]
/// instead of making the whole model unusable. Fails only when the generator does.
pub fn load_model(dir: &std::path::Path, device: &candle_core::Device) -> crate::Result<Loaded> {
    let generator = load_generator(dir, device)?;
    let mut methods = Vec::new();
    let mut unusable = Vec::new();
    for p in find_methods(dir) {
        let flow = match crate::methods::open(&p, &generator, device) {
            Ok(flow) => flow,
            Err(e) => {
                unusable.push((p, e.to_string()));
                continue;
            }
        };
        let info = MethodInfo {
            method: flow.method(),
            dir: p,
            names: (0..flow.directions())
                .map(|k| flow.direction_name(k))
                .collect(),
            has_potentials: flow.potentials().is_some(),
        };
        methods.push((info, flow));
    }
    let density_dir = crate::store::density::find_density(dir);
    let density = if density_dir.is_dir() {
        match crate::store::density::load_density(&density_dir, &generator, device) {
            Ok(d) => Some(crate::methods::SharedDensity(std::sync::Arc::new(d))),
            Err(e) => {
                unusable.push((density_dir, e.to_string()));
                None
            }
        }
    } else {
        None
    };
    // `find_methods` lists the paper's method first: the app opens on it, as the
    // commands do.
    Ok(Loaded {
        generator,
        methods,
        unusable,
        density,
    })
}

/// The model in one line, for the status bar: kind, dataset, latent size, image shape
/// and the device.
pub fn describe(g: &LoadedGenerator, device: &candle_core::Device) -> String {
    let c = &g.config;
    let data = g.manifest.dataset.as_deref().unwrap_or("unknown data");
    format!(
        "{:?} on {data}, latent {}, {}×{}×{} · computing on {}",
        c.kind,
        c.latent,
        c.channels,
        c.image_size,
        c.image_size,
        device_name(device)
    )
}

/// Which device computes, in words: "CPU (2 threads)", "CUDA GPU 0".
pub fn device_name(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => {
            format!("CPU ({} threads)", candle_core::utils::get_num_threads())
        }
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("CUDA GPU {gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("Metal GPU {gpu_id}"),
    }
}

/// The latent code of an image file (encoded or inverted), or of a saved code (JSON).
pub fn encode_file(
    model: &Loaded,
    path: &std::path::Path,
    device: &candle_core::Device,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f32),
) -> crate::Result<Encoded> {
    let g = &model.generator;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let code = crate::edit::LatentCode::load(path, g)?;
        let reconstruction = crate::edit::reconstruction(g, &code.latent, device)?;
        return Ok(Encoded {
            path: path.to_path_buf(),
            latent: code.latent,
            original: None,
            reconstruction,
            mse: code.reconstruction_mse,
        });
    }
    let image = crate::edit::read_image(path, g)?;
    let (latent, mse) = crate::edit::encode(
        g,
        &image,
        device,
        &crate::edit::InvertOptions::default(),
        cancel,
        &mut |step, steps, _| progress(step as f32 / steps.max(1) as f32),
    )?;
    let reconstruction = crate::edit::reconstruction(g, &latent, device)?;
    Ok(Encoded {
        path: path.to_path_buf(),
        latent,
        original: Some(image),
        reconstruction,
        mse: Some(mse),
    })
}

/// Evaluates a landscape request (on the GPU when one is given and the potentials are MLPs).
pub fn landscape(
    model: &Loaded,
    req: &LandscapeRequest,
    gpu: Option<&crate::landscape::GpuLandscape>,
    device: &candle_core::Device,
) -> crate::Result<LandscapeFrame> {
    use crate::landscape::{Slice, SliceSpec, cpu_grid};
    let start = std::time::Instant::now();
    let Some((_, flow)) = model.methods.get(req.render.method) else {
        return Err(crate::Error::config("this model has no such potential set"));
    };
    let Some(pots) = flow.potentials() else {
        return Err(crate::Error::config(format!(
            "the landscape needs potentials; {} moves along fixed directions",
            flow.method()
        )));
    };
    let (path, _) = render::request_path(model, &req.render, device)?;
    let rows: Vec<Vec<f32>> = path
        .iter()
        .map(|z| -> crate::Result<Vec<f32>> {
            Ok(z.narrow(0, 0, 1)?
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?)
        })
        .collect::<crate::Result<_>>()?;
    let Some(center) = rows.last() else {
        return Err(crate::Error::config("empty path"));
    };
    let t = (rows.len() - 1) as f64;
    let second: Option<Vec<f32>> = match req.second {
        Some(j) => {
            let z = candle_core::Tensor::new(center.as_slice(), device)?.unsqueeze(0)?;
            let z = z.to_dtype(pots.dtype())?;
            let tt = candle_core::Tensor::full(t, 1, device)?.to_dtype(pots.dtype())?;
            let g = pots.grad(&z, &tt, j)?;
            Some(
                g.to_dtype(candle_core::DType::F32)?
                    .flatten_all()?
                    .to_vec1()?,
            )
        }
        None => None,
    };
    let slice = Slice::through(
        pots,
        &SliceSpec {
            z: center,
            t,
            k: req.k,
            second: second.as_deref(),
            seed: req.render.seed,
            extent: req.extent,
            n: req.n,
        },
    )?;
    let gpu_values = match gpu {
        Some(g) if pots.config().kind == crate::models::potential::PotentialKind::Pde => {
            g.evaluate(pots, &slice, t, req.k).ok()
        }
        _ => None,
    };
    let on_gpu = gpu_values.is_some();
    let values = match gpu_values {
        Some(v) => v,
        None => cpu_grid(pots, &slice, t, req.k)?,
    };
    Ok(LandscapeFrame {
        generation: req.render.generation,
        n: req.n,
        extent: req.extent,
        values,
        path: rows.iter().map(|z| slice.project(z)).collect(),
        on_gpu,
        ms: start.elapsed().as_secs_f64() * 1e3,
    })
}
