//! The landscape on the GPU: `shaders/landscape.wgsl` through wgpu (eframe's device in the
//! app, a headless one in tests and benchmarks).

use super::Slice;
use crate::models::potential::Potentials;
use crate::{Error, Result};
use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt;

/// Largest latent size and hidden width the shader's private arrays hold.
pub const MAX_WIDTH: usize = 256;
/// The shader's `@workgroup_size`.
const WORKGROUP: u32 = 64;

/// A compiled landscape pipeline on a wgpu device.
pub struct GpuLandscape {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl GpuLandscape {
    /// Compiles the shader on `device`; an error where the device runs no compute shaders
    /// of the shader's workgroup size (OpenGL without compute, e.g. a software GL under
    /// Xvfb), and the landscape is then computed on the CPU.
    pub fn new(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let limits = device.limits();
        if limits.max_compute_invocations_per_workgroup < WORKGROUP
            || limits.max_compute_workgroup_size_x < WORKGROUP
        {
            return Err(Error::config(format!(
                "the wgpu device runs no compute shaders of {WORKGROUP} invocations (its \
                 limit: {}); the landscape is computed on the CPU",
                limits.max_compute_invocations_per_workgroup
            )));
        }
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("landscape"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/landscape.wgsl").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("landscape"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Ok(Self {
            device,
            queue,
            pipeline,
        })
    }

    /// A pipeline on the first adapter wgpu finds (a GPU, or llvmpipe's Vulkan on a
    /// machine without one).
    pub fn headless() -> Result<Self> {
        let instance = wgpu::Instance::default();
        let adapter =
            pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
                .map_err(|e| Error::config(format!("no wgpu adapter: {e}")))?;
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
                .map_err(|e| Error::config(format!("no wgpu device: {e}")))?;
        Self::new(device, queue)
    }

    /// u^k(·, t) on the slice's grid (row j, column i at j·n + i).
    pub fn evaluate(&self, pots: &Potentials, slice: &Slice, t: f64, k: usize) -> Result<Vec<f32>> {
        let cfg = pots.config();
        let (d, h, n) = (cfg.latent, cfg.hidden, slice.n);
        if d > MAX_WIDTH || h > MAX_WIDTH {
            return Err(Error::config(format!(
                "the landscape shader handles latent and hidden sizes up to {MAX_WIDTH}"
            )));
        }
        let weights = pots.shader_weights(k, t)?;
        let (wz, vecs, w1, b2) = (weights.wz, weights.vecs, weights.w1, weights.b2);
        let mut params = Vec::new();
        for x in [d as u32, h as u32, n as u32, u32::from(cfg.final_tanh)] {
            params.extend(x.to_le_bytes());
        }
        for x in [slice.extent, b2, 0.0, 0.0] {
            params.extend(x.to_le_bytes());
        }
        let plane = [slice.center.clone(), slice.e1.clone(), slice.e2.clone()].concat();
        let storage = |label: &str, data: &[u8], usage: wgpu::BufferUsages| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: data,
                    usage,
                })
        };
        let read = wgpu::BufferUsages::STORAGE;
        let uniform = storage("params", &params, wgpu::BufferUsages::UNIFORM);
        let wz = storage("wz", &bytes(&wz), read);
        let vecs = storage("vecs", &bytes(&vecs), read);
        let w1 = storage("w1", &bytes(&w1), read);
        let plane = storage("plane", &bytes(&plane), read);
        let size = (n * n * 4) as u64;
        let out = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("out"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let layout = self.pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = [&uniform, &wz, &vecs, &w1, &plane, &out]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("landscape"),
            layout: &layout,
            entries: &entries,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups((n * n).div_ceil(64) as u32, 1, 1);
        }
        enc.copy_buffer_to_buffer(&out, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = crossbeam_channel::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| Error::config(format!("GPU wait failed: {e}")))?;
        rx.recv()
            .map_err(|_| Error::config("the GPU never answered"))?
            .map_err(|e| Error::config(format!("cannot read the GPU result: {e}")))?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::config(format!("cannot read the GPU result: {e:?}")))?;
        let values = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        drop(data);
        staging.unmap();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_checked_is_the_shaders_workgroup_size() {
        let wgsl = include_str!("../../shaders/landscape.wgsl");
        assert!(wgsl.contains(&format!("@workgroup_size({})", super::WORKGROUP)));
    }
}
