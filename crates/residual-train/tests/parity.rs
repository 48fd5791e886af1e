//! Optimizers, schedules and clipping against PyTorch
//! (`scripts/fixtures/make_train_fixtures.py`).

use residual_nn::weights::read_tensors;
use residual_nn::Param;
use residual_tensor::{Device, Gradients, Tensor};
use residual_train::clip::{clip_grad_norm, clip_grad_value};
use residual_train::data::ResizedCrop;
use residual_train::optim::{Optimizer, OptimizerConfig};
use residual_train::schedule::Schedule;
use std::collections::BTreeMap;

fn fixtures() -> BTreeMap<String, Tensor> {
    read_tensors(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/torch_train.safetensors"
        ),
        &Device::cpu(),
    )
    .unwrap()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

fn run(config: OptimizerConfig, lr: f32, f: &BTreeMap<String, Tensor>, name: &str) {
    let p = Param::parameter(f["p0"].clone());
    let mut opt = Optimizer::new(config, vec![("w".into(), p.clone())], false);
    let grads = f["grads"].to_vec().unwrap();
    for k in 0..4 {
        let mut g = Gradients::default();
        g.insert(
            &p.get(),
            Tensor::from_vec(grads[k * 6..(k + 1) * 6].to_vec(), [6], &Device::cpu()).unwrap(),
        );
        opt.step(&g, lr).unwrap();
        let want = f[&format!("{name}.step{}", k + 1)].to_vec().unwrap();
        close(
            &format!("{name} step {}", k + 1),
            &p.get().to_vec().unwrap(),
            &want,
            1e-6,
        );
    }
    assert_eq!(opt.steps(), 4);
}

#[test]
fn sgd_variants_match_pytorch() {
    let f = fixtures();
    let sgd = |momentum, dampening, nesterov, weight_decay| OptimizerConfig::Sgd {
        momentum,
        dampening,
        nesterov,
        weight_decay,
    };
    run(sgd(0.0, 0.0, false, 0.0), 0.1, &f, "sgd_plain");
    run(sgd(0.9, 0.0, false, 5e-4), 0.1, &f, "sgd_momentum_wd");
    run(sgd(0.9, 0.0, true, 1e-3), 0.05, &f, "sgd_nesterov");
    run(sgd(0.8, 0.3, false, 0.0), 0.1, &f, "sgd_dampening");
}

#[test]
fn adamw_matches_pytorch() {
    let f = fixtures();
    run(OptimizerConfig::adamw(), 1e-2, &f, "adamw");
    run(
        OptimizerConfig::AdamW {
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 0.1,
        },
        3e-3,
        &f,
        "adamw_custom",
    );
}

#[test]
fn schedules_match_pytorch() {
    let f = fixtures();
    let check = |s: Schedule, key: &str, n: u64| {
        let got: Vec<f32> = (0..n).map(|i| s.lr(0.1, i)).collect();
        close(key, &got, &f[key].to_vec().unwrap(), 1e-5);
    };
    check(
        Schedule::Step {
            step_size: 3,
            gamma: 0.5,
        },
        "lr.step",
        10,
    );
    check(
        Schedule::MultiStep {
            milestones: vec![2, 5],
            gamma: 0.1,
        },
        "lr.multistep",
        10,
    );
    check(Schedule::parse("onecycle", 20).unwrap(), "lr.onecycle", 20);
    let c = Schedule::parse("cosine:5", 105).unwrap();
    assert!((c.lr(1.0, 0) - 0.2).abs() < 1e-6 && (c.lr(1.0, 4) - 1.0).abs() < 1e-6);
    assert!((c.lr(1.0, 55) - 0.5).abs() < 1e-6 && c.lr(1.0, 105).abs() < 1e-6);
    for bad in ["", "step:3", "cosine:x", "warm"] {
        assert!(
            Schedule::parse(bad, 10)
                .unwrap_err()
                .to_string()
                .contains("cannot parse"),
            "{bad}"
        );
    }
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    let f = fixtures();
    let (a, b) = (f["clip.a"].clone(), f["clip.b"].clone());
    let mut g = Gradients::default();
    let (pa, pb) = (
        Tensor::zeros([3, 2], &Device::cpu()).unwrap(),
        Tensor::zeros([4], &Device::cpu()).unwrap(),
    );
    g.insert(&pa, a.clone());
    g.insert(&pb, b.clone());
    let norm = clip_grad_norm(&mut g, 1.5).unwrap();
    close(
        "total norm",
        &[norm],
        &f["clip.norm"].to_vec().unwrap(),
        1e-6,
    );
    close(
        "clipped a",
        &g.get(&pa).unwrap().to_vec().unwrap(),
        &f["clip.a_after"].to_vec().unwrap(),
        1e-6,
    );
    close(
        "clipped b",
        &g.get(&pb).unwrap().to_vec().unwrap(),
        &f["clip.b_after"].to_vec().unwrap(),
        1e-6,
    );
    // A norm below the bound leaves gradients alone.
    let before = g.get(&pa).unwrap().to_vec().unwrap();
    clip_grad_norm(&mut g, 100.0).unwrap();
    assert_eq!(g.get(&pa).unwrap().to_vec().unwrap(), before);
}

/// Equal to the bit, where a NaN equals any NaN.
fn same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}[{i}]: got {g:?}, PyTorch {w:?}"
        );
    }
}

#[test]
fn clip_grad_value_matches_pytorch_with_inf_and_nan() {
    let f = fixtures();
    let bound = f["clip_value.bound"].to_vec().unwrap()[0];
    let (c, d) = (f["clip_value.c"].clone(), f["clip_value.d"].clone());
    let (want_c, want_d) = (
        f["clip_value.c_after"].to_vec().unwrap(),
        f["clip_value.d_after"].to_vec().unwrap(),
    );
    // The fixture has elements inside the bound, outside it, and not finite.
    let (vc, vd) = (c.to_vec().unwrap(), d.to_vec().unwrap());
    assert!(vc.iter().any(|v| v.abs() < bound) && vc.iter().any(|v| v.abs() > bound));
    assert!(vd.iter().any(|v| v.is_nan()) && vd.contains(&f32::INFINITY));
    assert!(vd.contains(&f32::NEG_INFINITY));
    let mut g = Gradients::default();
    let (pc, pd) = (
        Tensor::zeros(c.shape().clone(), &Device::cpu()).unwrap(),
        Tensor::zeros(d.shape().clone(), &Device::cpu()).unwrap(),
    );
    g.insert(&pc, c);
    g.insert(&pd, d);
    clip_grad_value(&mut g, bound).unwrap();
    same_bits("c", &g.get(&pc).unwrap().to_vec().unwrap(), &want_c);
    same_bits("d", &g.get(&pd).unwrap().to_vec().unwrap(), &want_d);
}

/// Mean and (sample) standard deviation of each column of `rows`.
fn column_stats(rows: &[[f64; 4]]) -> ([f64; 4], [f64; 4]) {
    let n = rows.len() as f64;
    let mut mean = [0.0; 4];
    let mut std = [0.0; 4];
    for c in 0..4 {
        mean[c] = rows.iter().map(|r| r[c]).sum::<f64>() / n;
        let ss: f64 = rows.iter().map(|r| (r[c] - mean[c]).powi(2)).sum();
        std[c] = (ss / (n - 1.0)).sqrt();
    }
    (mean, std)
}

#[test]
fn random_resized_crop_boxes_match_torchvisions_sampler() {
    let f = fixtures();
    let sizes = f["rrc.sizes"].to_vec().unwrap();
    let draws = f["rrc.draws"].to_vec().unwrap()[0] as u64;
    let want = f["rrc.stats"].to_vec().unwrap();
    let rc = ResizedCrop::default();
    for (k, wh) in sizes.chunks(2).enumerate() {
        let (w, h) = (wh[0] as u32, wh[1] as u32);
        let rows: Vec<[f64; 4]> = (0..draws)
            .map(|seed| {
                let b = rc.sample(w, h, seed);
                let (bw, bh) = (b.width as f64, b.height as f64);
                [
                    bw * bh / (w as f64 * h as f64),
                    (bw / bh).ln(),
                    (b.x as f64 + bw / 2.0) / w as f64,
                    (b.y as f64 + bh / 2.0) / h as f64,
                ]
            })
            .collect();
        let (mean, std) = column_stats(&rows);
        let torch = &want[k * 8..(k + 1) * 8];
        let names = ["area fraction", "log aspect", "centre x", "centre y"];
        for c in 0..4 {
            let (tm, ts) = (torch[c] as f64, torch[4 + c] as f64);
            // Two independent means of `draws` samples differ by a standard
            // error of std * sqrt(2 / draws); allow five of them (1e-6 for
            // the f32 fixture's rounding when every box is the same).
            let bound = 5.0 * ts * (2.0 / draws as f64).sqrt() + 1e-6;
            assert!(
                (mean[c] - tm).abs() <= bound,
                "{w}x{h} {}: mean {} vs torchvision {tm} (bound {bound})",
                names[c],
                mean[c]
            );
            assert!(
                (std[c] - ts).abs() <= 0.05 * ts + 1e-6,
                "{w}x{h} {}: std {} vs torchvision {ts}",
                names[c],
                std[c]
            );
        }
    }
    // Too elongated for any attempt: torchvision's centred fallback (i, j, h, w).
    let fallback = f["rrc.fallback_1000x10"].to_vec().unwrap();
    let b = rc.sample(1000, 10, 0);
    assert_eq!(
        [b.y, b.x, b.height, b.width].map(|v| v as f32).to_vec(),
        fallback
    );
}
