//! The benchmark runner behind `cargo xtask bench` (built in release mode).
//!
//! Prints one JSON object per line and case with the keys of the design guide:
//! `case`, `device`, `gflops`, `peak_share` (of the FMA peak measured first, in
//! the same run), `peak_mem_mb`, and, where `python3 -c "import torch"` works,
//! `torch_gflops` and `ratio_vs_torch` from PyTorch timing the same case now.

mod peak;

/// mimalloc keeps freed tensor buffers for reuse instead of returning them to
/// the kernel, which saves a page fault per page of every fresh activation.
/// The runner sets it up as `residual train` does (`keep_freed_memory` in
/// `residual-cli`), so that the training cases measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_t` in the
/// bundled mimalloc headers); -1 never returns freed memory to the kernel.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

use residual_tensor::backend::{Conv2dGeometry, Conv2dParams};
use residual_tensor::{Device, Tensor};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds of repetitions per case (after one warm-up run), at least 3 runs.
const MIN_SECS: f64 = 1.0;

/// What a case runs.
#[derive(Clone)]
enum Kind {
    Sgemm(usize),
    /// The same product through the `gemm` crate (candle's GEMM), for the choice of kernel.
    SgemmGemmCrate(usize),
    /// An `n x n` matrix product of half-precision operands (the device's
    /// autocast dtype: bf16 on the CPU) with f32 accumulation.
    HalfGemm(usize),
    ConvFwd(Conv2dGeometry),
    ConvBwd(Conv2dGeometry),
    /// Evaluation-mode forward of a zoo model: (name, batch, input size).
    Infer(&'static str, usize, usize),
    /// One training step (forward, cross-entropy, backward, AdamW) of a zoo
    /// model with 10 classes: (name, batch, input size, mixed precision).
    /// Mixed precision runs forward and loss under autocast to the device's
    /// dtype (bf16 on the CPU), with dynamic loss scaling when that is f16.
    Train(&'static str, usize, usize, bool),
}

struct Case {
    name: String,
    kind: Kind,
    flops: f64,
}

fn conv(
    n: usize,
    c_in: usize,
    hw: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Conv2dGeometry {
    let p = Conv2dParams::new(stride, pad, 1, 1);
    let o = (hw + 2 * pad - k) / stride + 1;
    Conv2dGeometry {
        n,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        oh: o,
        ow: o,
        p,
    }
}

fn conv_flops(g: &Conv2dGeometry) -> f64 {
    2.0 * (g.n * g.c_out * g.oh * g.ow * (g.c_in / g.p.groups) * g.kh * g.kw) as f64
}

/// The cases whose names contain `filter`: sgemm sizes, the ResNet-50 conv
/// shapes at batch 8 / 224 input, model inference and training steps (whose
/// FLOPs come from the model's summary, a forward pass, so only selected
/// models are summarised).
fn cases(filter: Option<&str>) -> Vec<Case> {
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut v: Vec<Case> = [256, 512, 1024, 2048]
        .into_iter()
        .flat_map(|n| {
            let flops = 2.0 * (n as f64).powi(3);
            [
                Case {
                    name: format!("sgemm {n}"),
                    kind: Kind::Sgemm(n),
                    flops,
                },
                Case {
                    name: format!("sgemm {n} gemm-crate"),
                    kind: Kind::SgemmGemmCrate(n),
                    flops,
                },
            ]
        })
        .collect();
    for n in [1024, 2048] {
        v.push(Case {
            name: format!("hgemm {n}"),
            kind: Kind::HalfGemm(n),
            flops: 2.0 * (n as f64).powi(3),
        });
    }
    let b = 8;
    let mut shapes = vec![(
        "stem 7x7 3->64 224".to_string(),
        conv(b, 3, 224, 64, 7, 2, 3),
    )];
    for (stage, (c, hw)) in [(64, 56), (128, 28), (256, 14), (512, 7)]
        .into_iter()
        .enumerate()
    {
        let s = stage + 1;
        shapes.push((
            format!("layer{s} 3x3 {c}->{c} {hw}"),
            conv(b, c, hw, c, 3, 1, 1),
        ));
        shapes.push((
            format!("layer{s} 1x1 {c}->{} {hw}", 4 * c),
            conv(b, c, hw, 4 * c, 1, 1, 0),
        ));
    }
    for (dir, wrap) in [
        ("fwd", Kind::ConvFwd as fn(_) -> _),
        ("bwd", Kind::ConvBwd as fn(_) -> _),
    ] {
        for (name, g) in &shapes {
            let f = conv_flops(g) * if dir == "bwd" { 2.0 } else { 1.0 };
            v.push(Case {
                name: format!("conv2d {dir} {name} b{b}"),
                kind: wrap(*g),
                flops: f,
            });
        }
    }
    for (model, batch, size) in [
        ("resnet50", 1, 224),
        ("resnet50", 8, 224),
        ("resnet18", 8, 224),
        ("resnet152", 1, 224),
    ] {
        let name = format!("infer {model} b{batch} {size}");
        if !selected(&name) {
            continue;
        }
        let m = residual_zoo::create(
            model,
            &residual_zoo::ModelOptions::default(),
            0,
            &Device::cpu(),
        )
        .expect("zoo model");
        let macs = m
            .summary(model, [3, size, size])
            .expect("summary")
            .total_macs();
        v.push(Case {
            name,
            kind: Kind::Infer(model, batch, size),
            flops: 2.0 * macs as f64 * batch as f64,
        });
    }
    for (model, batch, size) in [("resnet18", 64, 32), ("resnet50", 16, 224)] {
        let names = ["f32", "amp"].map(|p| format!("train {model} b{batch} {size} {p}"));
        if !names.iter().any(|n| selected(n)) {
            continue;
        }
        let opts = residual_zoo::ModelOptions::classes(10);
        let m = residual_zoo::create(model, &opts, 0, &Device::cpu()).expect("zoo model");
        let macs = m
            .summary(model, [3, size, size])
            .expect("summary")
            .total_macs();
        for amp in [false, true] {
            v.push(Case {
                name: format!(
                    "train {model} b{batch} {size} {}",
                    if amp { "amp" } else { "f32" }
                ),
                kind: Kind::Train(model, batch, size, amp),
                // forward + backward (input and weight gradients): 3x the forward.
                flops: 3.0 * 2.0 * macs as f64 * batch as f64,
            });
        }
    }
    v
}

/// Images per case run (for img/s), 0 for kernel cases.
fn images(k: &Kind) -> usize {
    match k {
        Kind::Infer(_, b, _) | Kind::Train(_, b, _, _) => *b,
        _ => 0,
    }
}

/// Median seconds of `f` after a warm-up run.
/// Waits for the device: GPU kernels run asynchronously, so a timed
/// iteration ends when the device has finished its work.
fn sync(dev: &Device) {
    if !dev.is_cpu() {
        residual_wgpu::synchronize().expect("device synchronisation");
    }
}

/// Median seconds of `f` (run until done on `dev`) over at least 3 runs and 1 s.
fn timed(dev: &Device, mut f: impl FnMut()) -> f64 {
    f();
    sync(dev);
    let mut times = Vec::new();
    let t_end = Instant::now() + std::time::Duration::from_secs_f64(MIN_SECS);
    while times.len() < 3 || (Instant::now() < t_end && times.len() < 20) {
        let t0 = Instant::now();
        f();
        sync(dev);
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Resets the kernel's peak-RSS counter (Linux); false where unsupported.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident memory in MB since the last reset.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run_case(c: &Case, dev: &Device) -> f64 {
    let be = dev.backend();
    match &c.kind {
        Kind::Sgemm(n) => {
            let a = Tensor::randn([*n, *n], 0.0, 1.0, 1, dev).unwrap();
            let b = Tensor::randn([*n, *n], 0.0, 1.0, 2, dev).unwrap();
            timed(dev, || {
                std::hint::black_box(a.matmul(&b).unwrap());
            })
        }
        Kind::HalfGemm(n) => {
            let dtype = be.autocast_dtype();
            let a = Tensor::randn([*n, *n], 0.0, 1.0, 1, dev).unwrap();
            let b = Tensor::randn([*n, *n], 0.0, 1.0, 2, dev).unwrap();
            let (a, b) = (a.cast(dtype).unwrap(), b.cast(dtype).unwrap());
            timed(dev, || {
                std::hint::black_box(a.matmul(&b).unwrap());
            })
        }
        Kind::SgemmGemmCrate(n) => {
            let n = *n;
            let a = residual_tensor::rng::normal(1, n * n, 0.0, 1.0);
            let b = residual_tensor::rng::normal(2, n * n, 0.0, 1.0);
            let threads = rayon::current_num_threads();
            timed(dev, || {
                let mut c = vec![0f32; n * n];
                // SAFETY: a, b and c are dense row-major n x n matrices.
                unsafe {
                    gemm::gemm(
                        n,
                        n,
                        n,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        n as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(threads),
                    );
                }
                std::hint::black_box(c);
            })
        }
        Kind::ConvFwd(g) => {
            let x = Tensor::randn([g.n, g.c_in, g.h, g.w], 0.0, 1.0, 3, dev).unwrap();
            let w = Tensor::randn([g.c_out, g.c_in, g.kh, g.kw], 0.0, 0.1, 4, dev).unwrap();
            timed(dev, || {
                std::hint::black_box(x.conv2d(&w, None, g.p).unwrap());
            })
        }
        Kind::Infer(model, batch, size) => {
            use residual_nn::Module;
            let m = residual_zoo::create(model, &residual_zoo::ModelOptions::default(), 0, dev)
                .unwrap();
            let x = Tensor::randn([*batch, 3, *size, *size], 0.0, 1.0, 6, dev).unwrap();
            // Inference as a user runs it: the inference pass (batch norm
            // folded once, fused epilogues), evaluation mode, no graph recording.
            let m = residual_zoo::inference(&*m).unwrap();
            residual_tensor::no_grad(|| {
                timed(dev, || {
                    std::hint::black_box(m.forward(&x, residual_nn::Mode::Eval).unwrap());
                })
            })
        }
        Kind::Train(model, batch, size, amp) => {
            use residual_train::config::AmpDtype;
            use residual_train::optim::{Optimizer, OptimizerConfig};
            use residual_train::step::{train_step, StepSettings};
            let m = residual_zoo::create(model, &residual_zoo::ModelOptions::classes(10), 0, dev)
                .unwrap();
            let mut opt = Optimizer::new(
                OptimizerConfig::adamw(),
                residual_nn::named_tensors(&*m),
                false,
            );
            let batch = residual_train::data::Batch {
                images: Tensor::randn([*batch, 3, *size, *size], 0.0, 1.0, 7, dev).unwrap(),
                labels: (0..*batch).map(|i| i % 10).collect(),
            };
            let settings = StepSettings {
                amp: amp.then(|| AmpDtype::for_device(dev)),
                label_smoothing: 0.0,
                clip_grad_norm: None,
            };
            let mut scaler = settings.amp.and_then(AmpDtype::loss_scaler);
            // The trainer's own step (forward, loss, backward, AdamW).
            timed(dev, || {
                train_step(
                    &*m,
                    &mut opt,
                    scaler.as_mut(),
                    &batch,
                    &settings,
                    1e-3,
                    false,
                    &residual_train::distributed::Solo,
                )
                .unwrap();
            })
        }
        Kind::ConvBwd(g) => {
            let x = Tensor::randn([g.n, g.c_in, g.h, g.w], 0.0, 1.0, 3, dev).unwrap();
            let w = Tensor::randn([g.c_out, g.c_in, g.kh, g.kw], 0.0, 0.1, 4, dev).unwrap();
            let dy = Tensor::randn([g.n, g.c_out, g.oh, g.ow], 0.0, 1.0, 5, dev).unwrap();
            timed(dev, || {
                std::hint::black_box(
                    be.conv2d_backward_input(dy.storage(), w.storage(), g)
                        .unwrap(),
                );
                std::hint::black_box(
                    be.conv2d_backward_weight(x.storage(), dy.storage(), g)
                        .unwrap(),
                );
            })
        }
    }
}

/// PyTorch's GFLOP/s per case name, or why there are none.
fn torch_figures(
    cases: &[&Case],
    threads: usize,
    torch_device: &str,
) -> Result<HashMap<String, Value>, String> {
    let ok = Command::new("python3")
        .args(["-c", "import torch"])
        .stderr(Stdio::null())
        .status();
    if !matches!(ok, Ok(s) if s.success()) {
        return Err("python3 -c \"import torch\" failed: no PyTorch figures in this run (pip install torch)".into());
    }
    let spec: Vec<Value> = cases
        .iter()
        .map(|c| match &c.kind {
            Kind::Sgemm(n) | Kind::SgemmGemmCrate(n) => {
                json!({"case": c.name, "kind": "sgemm", "n": n, "flops": c.flops})
            }
            Kind::HalfGemm(n) => json!({
                "case": c.name, "kind": "sgemm", "n": n, "flops": c.flops,
                "dtype": if torch_device == "cpu" { "bf16" } else { "f16" },
            }),
            Kind::Train(model, batch, size, amp) => json!({
                "case": c.name, "kind": "train", "model": model, "batch": batch, "size": size, "flops": c.flops,
                "amp": amp,
            }),
            Kind::Infer(model, batch, size) => json!({
                "case": c.name, "kind": "infer", "model": model, "batch": batch, "size": size, "flops": c.flops,
            }),
            Kind::ConvFwd(g) | Kind::ConvBwd(g) => json!({
                "case": c.name,
                "kind": if matches!(c.kind, Kind::ConvFwd(_)) { "conv_fwd" } else { "conv_bwd" },
                "x": [g.n, g.c_in, g.h, g.w], "w": [g.c_out, g.c_in, g.kh, g.kw],
                "stride": g.p.stride.0, "padding": g.p.padding[0], "flops": c.flops,
            }),
        })
        .collect();
    let script =
        std::env::temp_dir().join(format!("residual_torch_peer_{}.py", std::process::id()));
    std::fs::write(&script, include_str!("torch_peer.py")).map_err(|e| e.to_string())?;
    let mut child = Command::new("python3")
        .arg(&script)
        .args([
            threads.to_string(),
            MIN_SECS.to_string(),
            torch_device.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start python3: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(spec_json(&spec).as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&script);
    if out.status.code() == Some(3) {
        return Err("PyTorch has no CUDA device here: no PyTorch figures beside the GPU's".into());
    }
    if !out.status.success() {
        return Err("the PyTorch timing script failed (see stderr above)".into());
    }
    let mut m = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            if let Some(name) = v["case"].as_str() {
                m.insert(name.to_string(), v);
            }
        }
    }
    Ok(m)
}

fn spec_json(v: &[Value]) -> String {
    Value::Array(v.to_vec()).to_string()
}

fn main() {
    // SAFETY: sets one integer option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filter: Option<String> = None;
    let mut on_gpu = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--filter" => match it.next() {
                Some(f) => filter = Some(f.clone()),
                None => {
                    eprintln!("bench: --filter needs a TEXT argument");
                    std::process::exit(2);
                }
            },
            "--device" => match it.next().map(String::as_str) {
                Some("cpu") => on_gpu = false,
                Some("wgpu") => on_gpu = true,
                other => {
                    eprintln!("bench: --device takes cpu or wgpu, got {other:?}");
                    std::process::exit(2);
                }
            },
            other => {
                eprintln!(
                    "bench: unknown argument {other:?}; usage: cargo xtask bench [--filter TEXT] [--device cpu|wgpu]"
                );
                std::process::exit(2);
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dev = if on_gpu {
        match residual_wgpu::device() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("bench: --device wgpu: {e}");
                std::process::exit(1);
            }
        }
    } else {
        Device::cpu()
    };
    let device_name = dev.to_string();
    // The CPU's FMA peak is the yardstick on the CPU; a GPU's peak is not
    // measured here, so GPU rows carry the adapter's name and PyTorch CUDA.
    let peak = if on_gpu {
        println!("{}", json!({"case": "adapter", "device": device_name}));
        None
    } else {
        let (peak, lanes) = peak::measure(threads);
        println!(
            "{}",
            json!({"case": "fma peak", "device": "cpu", "gflops": round(peak), "threads": threads, "vector_lanes": lanes})
        );
        Some(peak)
    };
    let all = cases(filter.as_deref());
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        .filter(|c| !(on_gpu && matches!(c.kind, Kind::SgemmGemmCrate(_))))
        .collect();
    if selected.is_empty() {
        eprintln!(
            "bench: no case name contains {:?}",
            filter.unwrap_or_default()
        );
        std::process::exit(2);
    }
    let torch = torch_figures(&selected, threads, if on_gpu { "cuda" } else { "cpu" });
    if let Err(why) = &torch {
        eprintln!("bench: {why}");
    }
    for c in selected {
        let rss = !on_gpu && reset_peak_rss();
        let secs = run_case(c, &dev);
        let gflops = c.flops / secs / 1e9;
        let mut row = json!({
            "case": c.name, "device": device_name, "gflops": round(gflops),
            "median_ms": round(secs * 1e3),
        });
        if let Some(peak) = peak {
            row["peak_share"] = round(gflops / peak).into();
        }
        if rss {
            row["peak_mem_mb"] = peak_rss_mb().map(round).into();
        }
        if let Some(s) = residual_wgpu::pool_stats().filter(|_| on_gpu) {
            row["device_pool_mb"] = round((s.in_use + s.free) as f64 / (1 << 20) as f64).into();
            residual_wgpu::trim_pool();
        }
        let imgs = images(&c.kind);
        if imgs > 0 {
            row["img_per_s"] = round(imgs as f64 / secs).into();
        }
        match &torch {
            Ok(m) => {
                let peer = m.get(&c.name);
                if let Some(t) = peer.and_then(|v| v["torch_gflops"].as_f64()) {
                    row["torch_gflops"] = round(t).into();
                    row["ratio_vs_torch"] = round(gflops / t).into();
                    if imgs > 0 {
                        row["torch_img_per_s"] = round(t * 1e9 / c.flops * imgs as f64).into();
                    }
                }
                if let Some(o) = peer.and_then(|v| v["ort_gflops"].as_f64()) {
                    row["ort_img_per_s"] = round(o * 1e9 / c.flops * imgs as f64).into();
                    row["ratio_vs_ort"] = round(gflops / o).into();
                }
                if let Some(note) = peer.and_then(|v| v["ort_note"].as_str()) {
                    row["ort"] = note.into();
                }
            }
            Err(why) => row["torch"] = why.as_str().into(),
        }
        println!("{row}");
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
