//! The bench cases: what each row runs, its FLOPs, and how the PyTorch
//! peer is told to run the same thing.

use residual_tensor::backend::{Conv2dGeometry, Conv2dParams};
use residual_tensor::Device;
use serde_json::{json, Value};

/// What a case runs.
#[derive(Clone)]
pub enum Kind {
    /// An `n x n` f32 matrix product through the backend's GEMM.
    Sgemm(usize),
    /// The same product through the `gemm` crate (candle's GEMM), for the choice of kernel.
    SgemmGemmCrate(usize),
    /// An `n x n` matrix product of half-precision operands (the device's
    /// autocast dtype: bf16 on the CPU) with f32 accumulation.
    HalfGemm(usize),
    /// A convolution's forward, of this geometry.
    ConvFwd(Conv2dGeometry),
    /// A convolution's backward (input and weight gradients), of this geometry.
    ConvBwd(Conv2dGeometry),
    /// Evaluation-mode forward of a zoo model: (name, batch, input size,
    /// bf16). With bf16 the inference pass is `Precision::Bf16` (weights cast
    /// once, bf16 products with f32 accumulation) and PyTorch runs under bf16
    /// autocast; ONNX Runtime stays fp32 (its CPU provider has no bf16
    /// convolutions), the yardstick of the f32 rows.
    Infer(&'static str, usize, usize, bool),
    /// One training step (forward, cross-entropy, backward, AdamW) of a zoo
    /// model with 10 classes: (name, batch, input size, mixed precision).
    /// Mixed precision runs forward and loss under autocast to the device's
    /// dtype (bf16 on the CPU), with dynamic loss scaling when that is f16.
    Train(&'static str, usize, usize, bool),
}

/// One row of the bench.
pub struct Case {
    /// The row's name, e.g. `infer resnet50 b8 224`.
    pub name: String,
    /// What it runs.
    pub kind: Kind,
    /// Useful FLOPs of one run (2 per multiply-add).
    pub flops: f64,
    /// Threads of the case (rayon's and PyTorch's), `None` for every core:
    /// the scaling view's one-thread rows.
    pub threads: Option<usize>,
}

/// The geometry of a square convolution: batch `n`, `c_in` channels of
/// `hw x hw` to `c_out`, a `k x k` kernel, `stride`, `pad`.
pub fn conv(
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

/// Useful FLOPs of a convolution's forward (2 per multiply-add).
pub fn conv_flops(g: &Conv2dGeometry) -> f64 {
    2.0 * (g.n * g.c_out * g.oh * g.ow * (g.c_in / g.p.groups) * g.kh * g.kw) as f64
}

/// The cases whose names contain `filter`: sgemm sizes, the ResNet-50 conv
/// shapes at batch 8 / 224 input, model inference and training steps (whose
/// FLOPs come from the model's summary, a forward pass, so only selected
/// models are summarised).
pub fn cases(filter: Option<&str>) -> Vec<Case> {
    cases_where(&|name: &str| filter.is_none_or(|f| name.contains(f)), true)
}

/// The case named exactly `name`, without its FLOPs (0: no model is built
/// or summarised, so that a child process's peak memory is the case's own).
pub fn case_named(name: &str) -> Option<Case> {
    // A training row comes with its f32 / amp twin: pick the one named.
    cases_where(&|n: &str| n == name, false)
        .into_iter()
        .find(|c| c.name == name)
}

/// The cases `selected` names; `count_flops`: with their FLOPs (the zoo
/// models' summaries), else 0 for the model rows.
fn cases_where(selected: &dyn Fn(&str) -> bool, count_flops: bool) -> Vec<Case> {
    let macs_of = |model: &str, opts: &residual_zoo::ModelOptions, size: usize| -> u64 {
        if !count_flops {
            return 0;
        }
        let m = residual_zoo::create(model, opts, 0, &Device::cpu()).expect("zoo model");
        m.summary(model, [3, size, size])
            .expect("summary")
            .total_macs()
    };
    let mut v: Vec<Case> = [256, 512, 1024, 2048]
        .into_iter()
        .flat_map(|n| {
            let flops = 2.0 * (n as f64).powi(3);
            [
                Case {
                    name: format!("sgemm {n}"),
                    kind: Kind::Sgemm(n),
                    flops,
                    threads: None,
                },
                Case {
                    name: format!("sgemm {n} gemm-crate"),
                    kind: Kind::SgemmGemmCrate(n),
                    flops,
                    threads: None,
                },
            ]
        })
        .collect();
    for n in [1024, 2048] {
        v.push(Case {
            name: format!("hgemm {n}"),
            kind: Kind::HalfGemm(n),
            flops: 2.0 * (n as f64).powi(3),
            threads: None,
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
                threads: None,
            });
        }
    }
    // The scaling view: ResNet-50 at batch 1, 8 and 32 on every core and on
    // one thread (rows ending in ` t1`).
    let mut infer: Vec<(&str, usize, usize, Option<usize>)> = vec![
        ("resnet50", 1, 224, None),
        ("resnet50", 8, 224, None),
        ("resnet50", 32, 224, None),
        ("resnet18", 8, 224, None),
        ("resnet152", 1, 224, None),
        ("vit_small_r26_s32_224", 1, 224, None),
        ("vit_small_r26_s32_224", 8, 224, None),
        ("vit_base_r50_s16_224", 1, 224, None),
    ];
    infer.extend([1, 8, 32].map(|b| ("resnet50", b, 224, Some(1))));
    let mut infer: Vec<_> = infer
        .into_iter()
        .map(|(m, b, s, t)| (m, b, s, t, false))
        .collect();
    // The bf16 inference path (`--precision bf16`).
    infer.extend(
        [
            ("resnet50", 1, 224),
            ("resnet50", 8, 224),
            ("resnet18", 8, 224),
            ("vit_small_r26_s32_224", 8, 224),
        ]
        .map(|(m, b, s)| (m, b, s, None, true)),
    );
    for (model, batch, size, threads, bf16) in infer {
        let name = format!(
            "infer {model} b{batch} {size}{}{}",
            threads.map_or(String::new(), |t| format!(" t{t}")),
            if bf16 { " bf16" } else { "" }
        );
        if !selected(&name) {
            continue;
        }
        let macs = macs_of(model, &residual_zoo::ModelOptions::default(), size);
        v.push(Case {
            name,
            kind: Kind::Infer(model, batch, size, bf16),
            flops: 2.0 * macs as f64 * batch as f64,
            threads,
        });
    }
    for (model, batch, size) in [
        ("resnet18", 64, 32),
        ("resnet50", 16, 224),
        ("vit_small_r26_s32_224", 8, 224),
    ] {
        let names = ["f32", "amp"].map(|p| format!("train {model} b{batch} {size} {p}"));
        if !names.iter().any(|n| selected(n)) {
            continue;
        }
        let macs = macs_of(model, &residual_zoo::ModelOptions::classes(10), size);
        for amp in [false, true] {
            v.push(Case {
                name: format!(
                    "train {model} b{batch} {size} {}",
                    if amp { "amp" } else { "f32" }
                ),
                kind: Kind::Train(model, batch, size, amp),
                // forward + backward (input and weight gradients): 3x the forward.
                flops: 3.0 * 2.0 * macs as f64 * batch as f64,
                threads: None,
            });
        }
    }
    v
}

/// Images per case run (for img/s), 0 for kernel cases.
pub fn images(k: &Kind) -> usize {
    match k {
        Kind::Infer(_, b, _, _) | Kind::Train(_, b, _, _) => *b,
        _ => 0,
    }
}

impl Kind {
    /// Whether the case computes in half precision (its `peak_share` is
    /// taken of the bf16 peak where the CPU has native bf16 products).
    pub fn is_half(&self) -> bool {
        matches!(
            self,
            Kind::HalfGemm(_) | Kind::Train(_, _, _, true) | Kind::Infer(_, _, _, true)
        )
    }
}

impl Case {
    /// What the PyTorch peer (`torch_peer.py`) runs for this case, on
    /// `threads` threads of `torch_device` (`cpu` or `cuda`).
    pub fn peer_spec(&self, threads: usize, torch_device: &str) -> Value {
        let mut v = match &self.kind {
            Kind::Sgemm(n) | Kind::SgemmGemmCrate(n) => json!({"kind": "sgemm", "n": n}),
            Kind::HalfGemm(n) => json!({
                "kind": "sgemm", "n": n,
                "dtype": if torch_device == "cpu" { "bf16" } else { "f16" },
            }),
            Kind::Train(model, batch, size, amp) => json!({
                "kind": "train", "model": model, "batch": batch, "size": size, "amp": amp,
            }),
            Kind::Infer(model, batch, size, bf16) => json!({
                "kind": "infer", "model": model, "batch": batch, "size": size, "bf16": bf16,
            }),
            Kind::ConvFwd(g) | Kind::ConvBwd(g) => json!({
                "kind": if matches!(self.kind, Kind::ConvFwd(_)) { "conv_fwd" } else { "conv_bwd" },
                "x": [g.n, g.c_in, g.h, g.w], "w": [g.c_out, g.c_in, g.kh, g.kw],
                "stride": g.p.stride.0, "padding": g.p.padding[0],
            }),
        };
        v["case"] = self.name.clone().into();
        v["flops"] = self.flops.into();
        v["threads"] = threads.into();
        v
    }
}
