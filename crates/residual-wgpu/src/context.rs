//! The wgpu context: adapter, device and queue, the pipeline cache, and the
//! command encoder that collects dispatches until data is read back.

use crate::contract::{Access, Binding};
use crate::pool::BufferPool;
use crate::shaders;
use residual_tensor::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// Dispatches recorded before the encoder is submitted on its own, so that a
/// long forward pass keeps the GPU busy without waiting for a read-back.
const DISPATCHES_PER_SUBMIT: usize = 128;

/// Threads per workgroup of the one-dimensional kernels (`@workgroup_size(256)`).
pub(crate) const THREADS: u32 = 256;

/// Storage buffers a shader may bind at most (the backward of batch norm binds 8).
const STORAGE_BUFFERS_NEEDED: u32 = 8;

fn backend_error(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "wgpu".into(),
        msg: msg.into(),
    }
}

/// One compiled pipeline: a shader file, an entry point and its override constants.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct PipelineKey {
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
}

/// A kernel launch: which entry point, with which constants, on which buffers.
/// (Kernels build it through [`crate::launch::Gpu::launch`], which types it.)
pub(crate) struct Dispatch<'a> {
    /// Shader file name (a key of [`shaders::SHADERS`]).
    pub shader: &'static str,
    /// Entry point in that file.
    pub entry: &'static str,
    /// Override constants of this variant.
    pub constants: &'a [(&'static str, f64)],
    /// Host bytes copied into a new buffer for this launch, each at its
    /// binding: the uniform parameter block and small read-only tables.
    pub host: &'a [(Binding, &'a [u8])],
    /// Device buffers, each at its binding.
    pub buffers: &'a [(Binding, &'a wgpu::Buffer)],
    /// Workgroup counts.
    pub groups: [u32; 3],
}

/// Everything a wgpu device needs: created once per [`crate::device`].
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    pub(crate) pool: BufferPool,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    pending: Mutex<Pending>,
    error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Context({})", self.info.name)
    }
}

/// The adapter chosen by `WGPU_ADAPTER_NAME` (a case-insensitive substring of
/// the name) among the backends of `WGPU_BACKEND`, else the default adapter.
fn choose_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let listing = || {
        adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Ok(want) = std::env::var("WGPU_ADAPTER_NAME") {
        let want_lc = want.to_lowercase();
        return adapters
            .iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&want_lc))
            .cloned()
            .ok_or_else(|| {
                backend_error(format!(
                    "WGPU_ADAPTER_NAME={want} matches no adapter; adapters found: [{}]",
                    listing()
                ))
            });
    }
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference:
            wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
        ..Default::default()
    }))
    .map_err(|e| {
        backend_error(format!(
            "no GPU adapter found ({e}); backends tried: {:?} (set WGPU_BACKEND to choose); \
             on a machine without a GPU install Mesa's lavapipe (Debian: mesa-vulkan-drivers)",
            wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())
        ))
    })
}

/// On a machine with no display (no valid `XDG_RUNTIME_DIR`, no `DISPLAY`),
/// switches off Mesa's device-select Vulkan layer for this process, unless
/// the user set `NODEVICE_SELECT` themselves. The layer only orders GPUs by
/// the display they drive, which such a machine lacks, and while looking for
/// a Wayland display it prints "XDG_RUNTIME_DIR is invalid or not set" once
/// per probe on every successful start. wgpu chooses the adapter itself
/// either way (see `choose_adapter`).
fn quiet_headless_device_select() {
    let has_runtime_dir =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    let has_display = std::env::var_os("DISPLAY").is_some();
    if !has_runtime_dir && !has_display && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

impl Context {
    /// Creates the instance, adapter, device and queue.
    pub fn new() -> Result<Context> {
        quiet_headless_device_select();
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = choose_adapter(&instance)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        if limits.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
            return Err(backend_error(format!(
                "adapter {} allows {} storage buffers per shader stage; residual's kernels need {}",
                info.name, limits.max_storage_buffers_per_shader_stage, STORAGE_BUFFERS_NEEDED
            )));
        }
        let features = adapter.features() & wgpu::Features::SHADER_F16;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("residual"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| {
            backend_error(format!(
                "adapter {}: cannot create a device: {e}",
                info.name
            ))
        })?;
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        Ok(Context {
            pool: BufferPool::new(device.clone(), &limits),
            device,
            queue,
            info,
            limits,
            features,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            pending: Mutex::default(),
            error,
        })
    }

    /// The adapter's name, e.g. `"llvmpipe (LLVM 19.1.7, 256 bits)"`.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// Whether the device has `SHADER_F16`.
    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// The first error wgpu reported (a bug in a kernel, or the device lost), if any.
    pub(crate) fn check(&self) -> Result<()> {
        let slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(e) => Err(backend_error(format!("device error: {e}"))),
            None => Ok(()),
        }
    }

    fn pipeline(
        &self,
        key: PipelineKey,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let module = {
            let mut modules = self.modules.lock().unwrap();
            match modules.get(key.shader) {
                Some(m) => m.clone(),
                None => {
                    let source = shaders::source(key.shader)
                        .ok_or_else(|| backend_error(format!("no shader named {}", key.shader)))?;
                    let m = self
                        .device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(key.shader),
                            source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(source)),
                        });
                    modules.insert(key.shader, m.clone());
                    m
                }
            }
        };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key.entry),
                layout: None,
                module: &module,
                entry_point: Some(key.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        self.check()?;
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Records one kernel launch; it runs at the next submit.
    pub(crate) fn dispatch(&self, d: Dispatch<'_>) -> Result<()> {
        if d.groups.contains(&0) {
            return Ok(());
        }
        let key = PipelineKey {
            shader: d.shader,
            entry: d.entry,
            constants: d.constants.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
        };
        let pipeline = self.pipeline(key, d.constants)?;
        // A binding cannot be empty: an empty table is one zero word.
        let host: Vec<(u32, wgpu::Buffer)> = d
            .host
            .iter()
            .map(|(b, bytes)| {
                let usage = match b.access {
                    Access::Uniform => wgpu::BufferUsages::UNIFORM,
                    Access::Read | Access::ReadWrite => wgpu::BufferUsages::STORAGE,
                };
                let contents: &[u8] = if bytes.is_empty() { &[0; 4] } else { bytes };
                let buffer = self
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(b.name),
                        contents,
                        usage,
                    });
                (b.binding, buffer)
            })
            .collect();
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = host
            .iter()
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        for (b, buffer) in d.buffers {
            entries.push(wgpu::BindGroupEntry {
                binding: b.binding,
                resource: buffer.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pending = self.pending.lock().unwrap();
        let encoder = pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
        pending.dispatches += 1;
        if pending.dispatches >= DISPATCHES_PER_SUBMIT {
            self.submit_locked(&mut pending);
        }
        Ok(())
    }

    fn submit_locked(&self, pending: &mut Pending) {
        if let Some(encoder) = pending.encoder.take() {
            self.queue.submit([encoder.finish()]);
        }
        pending.dispatches = 0;
    }

    /// Submits every recorded dispatch.
    pub(crate) fn flush(&self) {
        let mut pending = self.pending.lock().unwrap();
        self.submit_locked(&mut pending);
    }

    /// Submits everything recorded and waits until the device has run it.
    pub fn synchronize(&self) -> Result<()> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_error(format!("waiting for the device: {e}")))?;
        self.check()
    }

    /// Writes host bytes into a buffer, after the work recorded so far (which may
    /// still read the buffer's previous contents).
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, bytes: &[u8]) {
        self.flush();
        self.queue.write_buffer(buffer, 0, bytes);
    }

    /// Runs everything recorded and reads `bytes` bytes of `buffer` back.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let padded = bytes.div_ceil(4).max(1) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut pending = self.pending.lock().unwrap();
            let mut encoder = pending.encoder.take().unwrap_or_else(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, padded);
            self.queue.submit([encoder.finish()]);
            pending.dispatches = 0;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_error(format!("waiting for the device: {e}")))?;
        self.check()?;
        rx.recv()
            .map_err(|_| backend_error("read-back was never completed"))?
            .map_err(|e| backend_error(format!("mapping the read-back buffer: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| backend_error(format!("mapping the read-back buffer: {e}")))?;
        let mut out = view.to_vec();
        drop(view);
        staging.unmap();
        out.truncate(bytes as usize);
        Ok(out)
    }
}

/// Workgroup counts covering `groups` workgroups in a 2-D grid, each side at
/// most the adapter's per-dimension limit (kernels fold `y` back into the index).
pub(crate) fn grid(groups: u64, limit: u32) -> [u32; 3] {
    if groups == 0 {
        return [0, 1, 1];
    }
    let x = groups.min(limit as u64);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}
