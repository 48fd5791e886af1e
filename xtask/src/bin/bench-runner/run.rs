//! Timing one case in this process: the child side of the runner (each case
//! runs in a fresh process, so that its peak memory is its own).

use crate::cases::{Case, Kind};
use residual_tensor::{Device, Tensor};
use std::time::Instant;

/// Seconds of repetitions per case (after one warm-up run), at least 3 runs.
pub const MIN_SECS: f64 = 1.0;

/// Waits for the device: GPU kernels run asynchronously, so a timed
/// iteration ends when the device has finished its work.
fn sync(dev: &Device) {
    if !dev.is_cpu() {
        residual_wgpu::synchronize().expect("device synchronisation");
    }
}

/// Median seconds of `f` (run until done on `dev`) after one warm-up run,
/// over at least 3 runs, then more until 1 s has passed or 20 were run; the
/// median of an even count is the mean of the two middle runs, as Python's
/// `statistics.median` takes it for the PyTorch peer.
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
    let n = times.len();
    match n % 2 {
        1 => times[n / 2],
        _ => (times[n / 2 - 1] + times[n / 2]) / 2.0,
    }
}

/// Peak resident memory of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Median seconds of one run of `c` on `dev`.
pub fn run_case(c: &Case, dev: &Device) -> f64 {
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
        Kind::Infer(model, batch, size, bf16) => {
            use residual_nn::Module;
            let m = residual_zoo::create(model, &residual_zoo::ModelOptions::default(), 0, dev)
                .unwrap();
            let x = Tensor::randn([*batch, 3, *size, *size], 0.0, 1.0, 6, dev).unwrap();
            // Inference as a user runs it: the inference pass (batch norm
            // folded once, fused epilogues), evaluation mode, no graph recording.
            let precision = if *bf16 {
                residual_zoo::Precision::Bf16
            } else {
                residual_zoo::Precision::F32
            };
            let m = residual_zoo::inference_at(&*m, precision).unwrap();
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
