//! The benchmark runner behind `cargo xtask bench` (built in release mode).
//!
//! Prints one JSON object per line: first the machine (CPU model, its
//! instruction sets, the kernel paths residual uses on it, the peers'
//! versions), then the measured peaks (fp32 FMA and, with AVX512-BF16, bf16
//! `vdpbf16ps`, on every core and on one thread), then one row per case with
//! the keys of the design guide (`case`, `device`, `gflops`, `peak_share`,
//! `peak_mem_mb`) and, where `python3 -c "import torch"` works, the peers'
//! figures for the same case: PyTorch eager, PyTorch's frozen inference path
//! and ONNX Runtime. Each case runs in a fresh child process of this runner
//! (`--one CASE`), so that its peak memory is its own, and its peers in a
//! fresh `python3` process right before or after it (the order alternates
//! from case to case). Last, the scaling view of ResNet-50 inference.

mod cases;
mod machine;
mod peak;
mod peers;
mod run;

/// mimalloc keeps freed tensor buffers for reuse instead of returning them to
/// the kernel, which saves a page fault per page of every fresh activation.
/// The runner sets it up as `residual train` does (`keep_freed_memory` in
/// `residual-cli`), so that the training cases measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_t` in the
/// bundled mimalloc headers); -1 never returns freed memory to the kernel.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

use cases::{Case, Kind};
use residual_tensor::Device;
use serde_json::{json, Value};
use std::process::{Command, ExitCode, Stdio};

/// The runner's command line.
struct Options {
    filter: Option<String>,
    on_gpu: bool,
    /// Child mode: time only the case of this exact name and print its figures.
    one: Option<String>,
}

const USAGE: &str = "usage: cargo xtask bench [--filter TEXT] [--device cpu|wgpu]";

fn parse_args() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        filter: None,
        on_gpu: false,
        one: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--filter" => {
                o.filter = Some(it.next().ok_or("--filter needs a TEXT argument")?.clone())
            }
            "--one" => o.one = Some(it.next().ok_or("--one needs a CASE argument")?.clone()),
            "--device" => match it.next().map(String::as_str) {
                Some("cpu") => o.on_gpu = false,
                Some("wgpu") => o.on_gpu = true,
                other => return Err(format!("--device takes cpu or wgpu, got {other:?}")),
            },
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    // SAFETY: sets one integer option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let dev = if opts.on_gpu {
        match residual_wgpu::device() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("bench: --device wgpu: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Device::cpu()
    };
    match &opts.one {
        Some(name) => child(name, &dev, opts.on_gpu),
        None => parent(&opts, &dev),
    }
}

/// Child mode: times the case `name` in this (fresh) process and prints
/// `{"secs", "peak_mem_mb", "device_pool_mb"}`.
fn child(name: &str, dev: &Device, on_gpu: bool) -> ExitCode {
    let Some(c) = cases::case_named(name) else {
        eprintln!("bench: no case is named {name:?}");
        return ExitCode::from(2);
    };
    // This thread runs the case: make it worker 0 of a pool of
    // RAYON_NUM_THREADS threads, as `residual` does, so that its kernels
    // split across the workers from here instead of being handed to rayon's
    // pool and waited for.
    let _pool = match residual_tensor::cpu::kernel_pool(rayon::current_num_threads()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = run::run_case(&c, dev);
    let mut out = json!({"secs": secs});
    if !on_gpu {
        out["peak_mem_mb"] = run::peak_rss_mb().map(round).into();
    }
    if let Some(s) = residual_wgpu::pool_stats().filter(|_| on_gpu) {
        out["device_pool_mb"] = round((s.in_use + s.free) as f64 / (1 << 20) as f64).into();
    }
    println!("{out}");
    ExitCode::SUCCESS
}

/// Residual's figures for `c` on `threads` threads, from a fresh child process.
fn ours(c: &Case, threads: usize, on_gpu: bool) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no runner path: {e}"))?;
    let out = Command::new(exe)
        .args(["--one", &c.name])
        .args(if on_gpu {
            &["--device", "wgpu"][..]
        } else {
            &[]
        })
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start the case's process: {e}"))?;
    if !out.status.success() {
        return Err(format!("the case's process failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .ok_or_else(|| "the case's process printed no figures".into())
}

/// The peaks a case's `peak_share` is taken of, on some number of threads.
#[derive(Clone, Copy)]
struct Peaks {
    fp32: f64,
    bf16: Option<f64>,
}

/// Measures and prints the peaks on `threads` threads and on one.
fn measure_peaks(threads: usize) -> [(usize, Peaks); 2] {
    [(threads, ""), (1, " t1")].map(|(t, suffix)| {
        let (fp32, lanes) = peak::measure(t);
        println!(
            "{}",
            json!({"case": format!("fma peak{suffix}"), "device": "cpu", "gflops": round(fp32), "threads": t, "vector_lanes": lanes})
        );
        let bf16 = peak::measure_bf16(t);
        let mut row = json!({"case": format!("bf16 peak{suffix}"), "device": "cpu", "threads": t});
        match bf16 {
            Some((g, instruction)) => {
                row["gflops"] = round(g).into();
                row["instruction"] = instruction.into();
            }
            None => row["note"] = "no AVX512-BF16 on this CPU: bf16 cases are taken of the fp32 peak".into(),
        }
        println!("{row}");
        (
            t,
            Peaks {
                fp32,
                bf16: bf16.map(|(g, _)| g),
            },
        )
    })
}

fn parent(opts: &Options, dev: &Device) -> ExitCode {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let device_name = dev.to_string();
    let peers = peers::Peers::start(if opts.on_gpu { "cuda" } else { "cpu" });
    let versions = match &peers {
        Ok(p) => p.versions.clone(),
        Err(why) => {
            eprintln!("bench: {why}");
            "none (PyTorch not importable)".into()
        }
    };
    println!("{}", machine::row(threads, &versions));
    // The CPU's peaks are the yardstick on the CPU; a GPU's peak is not
    // measured here, so GPU rows carry the adapter's name and PyTorch CUDA.
    let peaks = if opts.on_gpu {
        println!("{}", json!({"case": "adapter", "device": device_name}));
        None
    } else {
        Some(measure_peaks(threads))
    };
    let all = cases::cases(opts.filter.as_deref());
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| {
            opts.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
        })
        .filter(|c| !(opts.on_gpu && matches!(c.kind, Kind::SgemmGemmCrate(_))))
        .collect();
    if selected.is_empty() {
        eprintln!(
            "bench: no case name contains {:?}",
            opts.filter.clone().unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    let mut rows = Vec::new();
    for (i, c) in selected.into_iter().enumerate() {
        let t = c.threads.unwrap_or(threads);
        // Peers and us back to back, the order alternating from case to case.
        let peer = |p: &peers::Peers| p.time(c, t);
        let (o, p) = if i % 2 == 0 {
            let o = ours(c, t, opts.on_gpu);
            (o, peers.as_ref().map_err(Clone::clone).and_then(peer))
        } else {
            let p = peers.as_ref().map_err(Clone::clone).and_then(peer);
            (ours(c, t, opts.on_gpu), p)
        };
        let case_peaks = peaks.and_then(|ps| ps.iter().find(|(pt, _)| *pt == t).map(|(_, p)| *p));
        let mut row = row(c, t, &device_name, o, p, case_peaks);
        row["order"] = if i % 2 == 0 {
            "ours first"
        } else {
            "peers first"
        }
        .into();
        println!("{row}");
        rows.push(row);
    }
    if let Some(s) = scaling(&rows, threads) {
        println!("{s}");
    }
    ExitCode::SUCCESS
}

/// One case's row from our figures and the peers'.
fn row(
    c: &Case,
    threads: usize,
    device: &str,
    ours: Result<Value, String>,
    peer: Result<Value, String>,
    peaks: Option<Peaks>,
) -> Value {
    let mut row = json!({"case": c.name, "device": device, "threads": threads});
    let imgs = images_of(c);
    let per_s = |gflops: f64| round(gflops * 1e9 / c.flops * imgs);
    let gflops = match ours {
        Ok(v) => {
            let secs = v["secs"].as_f64().unwrap_or(f64::NAN);
            let g = c.flops / secs / 1e9;
            row["gflops"] = round(g).into();
            row["median_ms"] = round(secs * 1e3).into();
            for k in ["peak_mem_mb", "device_pool_mb"] {
                if !v[k].is_null() {
                    row[k] = v[k].clone();
                }
            }
            if imgs > 0.0 {
                row["img_per_s"] = per_s(g).into();
            }
            if let Some(p) = peaks {
                let (peak, kind) = match p.bf16.filter(|_| c.kind.is_half()) {
                    Some(b) => (b, "bf16"),
                    None => (p.fp32, "fp32"),
                };
                row["peak_share"] = round(g / peak).into();
                row["peak"] = kind.into();
            }
            Some(g)
        }
        Err(e) => {
            row["error"] = e.into();
            None
        }
    };
    let v = match peer {
        Ok(v) => v,
        Err(why) => {
            row["torch"] = why.into();
            return row;
        }
    };
    let ratio = |theirs: f64| gflops.map(|g| round(g / theirs));
    if let Some(t) = v["torch_gflops"].as_f64() {
        row["torch_gflops"] = round(t).into();
        row["ratio_vs_torch"] = ratio(t).into();
        if imgs > 0.0 {
            row["torch_img_per_s"] = per_s(t).into();
        }
    }
    if let Some(m) = v["torch_peak_mem_mb"].as_f64() {
        row["torch_peak_mem_mb"] = round(m).into();
    }
    if let Some(f) = v["torch_frozen_gflops"].as_f64() {
        row["torch_frozen_img_per_s"] = per_s(f).into();
        row["ratio_vs_torch_frozen"] = ratio(f).into();
        row["torch_frozen_path"] = v["torch_frozen_path"].clone();
    }
    if let Some(o) = v["ort_gflops"].as_f64() {
        row["ort_img_per_s"] = per_s(o).into();
        row["ratio_vs_ort"] = ratio(o).into();
    }
    for note in ["ort_note", "torch_frozen_note", "ort_precision"] {
        if let Some(n) = v[note].as_str() {
            row[note] = n.into();
        }
    }
    row
}

/// Images per run of a case, as a float (0 for kernel cases).
fn images_of(c: &Case) -> f64 {
    cases::images(&c.kind) as f64
}

/// The scaling view: ResNet-50 inference by batch and threads, with each
/// row's parallel efficiency (img/s on every core over the core count times
/// img/s on one thread, same batch) and its img/s over batch 1's.
fn scaling(rows: &[Value], threads: usize) -> Option<Value> {
    let find = |b: usize, t: usize| -> Option<f64> {
        let name = if t == threads && t != 1 {
            format!("infer resnet50 b{b} 224")
        } else {
            format!("infer resnet50 b{b} 224 t1")
        };
        rows.iter()
            .find(|r| r["case"] == name.as_str())
            .and_then(|r| r["img_per_s"].as_f64())
    };
    let mut out = Vec::new();
    for t in [1, threads] {
        for b in [1, 8, 32] {
            let Some(ips) = find(b, t) else { continue };
            let mut r = json!({"batch": b, "threads": t, "img_per_s": ips});
            if let Some(one) = find(b, 1).filter(|_| t > 1) {
                r["thread_efficiency"] = round(ips / (t as f64 * one)).into();
            }
            if let Some(b1) = find(1, t).filter(|_| b > 1) {
                r["vs_batch_1"] = round(ips / b1).into();
            }
            out.push(r);
        }
        if threads == 1 {
            break;
        }
    }
    (!out.is_empty()).then(|| json!({"case": "scaling infer resnet50 224", "rows": out}))
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
