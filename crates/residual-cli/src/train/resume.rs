//! `--resume`: which flags a resumed run refuses, and the data it reads.

use super::args::{setting, Args};
use crate::data::DataArgs;
use residual_tensor::Device;
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::data::Transform;
use residual_train::optim::OptimizerConfig;
use residual_train::schedule::Schedule;
use std::path::Path;

/// The flags given with `--resume` that disagree with the run's stored
/// configuration, each as "--flag VALUE: the run has ...".
pub(super) fn resume_conflicts(
    a: &Args,
    run: &TrainConfig,
    dir: &Path,
    dev: &Device,
) -> Vec<String> {
    let mut out = Vec::new();
    let differs = |out: &mut Vec<String>, flag: &str, given: String, stored: String| {
        if given != stored {
            out.push(format!("{flag} {given}: the run has {stored}"));
        }
    };
    if let Some(m) = &a.model {
        differs(&mut out, "--model", m.clone(), run.model.clone());
    }
    if a.sync_bn && !run.sync_bn {
        out.push("--sync-bn: the run keeps per-process batch statistics".into());
    }
    if let Some(n) = a.precise_bn {
        differs(
            &mut out,
            "--precise-bn",
            n.to_string(),
            run.precise_bn.to_string(),
        );
    }
    for (flag, key, given) in [
        ("--norm", "norm", a.norm.clone()),
        ("--act", "act", a.act.clone()),
        (
            "--freeze-bn",
            "norm",
            a.freeze_bn.then(|| "frozen_batch".into()),
        ),
    ] {
        if let Some(g) = given {
            let stored = setting(&run.model_config, key).unwrap_or_default();
            differs(&mut out, flag, g, format!("{key} {stored}"));
        }
    }
    if let Some(b) = a.batch_size {
        differs(
            &mut out,
            "--batch-size",
            b.to_string(),
            run.batch_size.to_string(),
        );
    }
    if let Some(lr) = a.lr {
        differs(&mut out, "--lr", lr.to_string(), run.lr.to_string());
    }
    if let Some(o) = &a.optimizer {
        let stored = match run.optimizer {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::AdamW { .. } => "adamw",
        };
        differs(&mut out, "--optimizer", o.clone(), stored.into());
    }
    if let Some(wd) = a.weight_decay {
        differs(
            &mut out,
            "--weight-decay",
            wd.to_string(),
            run.optimizer.weight_decay().to_string(),
        );
    }
    if let Some(s) = &a.schedule {
        // Compared by shape: the total is the run's (or its extension's).
        let total = run.schedule.total().unwrap_or(0);
        let same = Schedule::parse(s, total).is_ok_and(|p| p == run.schedule);
        if !same {
            differs(
                &mut out,
                "--schedule",
                s.clone(),
                format!("{:?}", run.schedule),
            );
        }
    }
    if let Some(c) = a.clip_grad_norm {
        let stored = run
            .clip_grad_norm
            .map_or("no clipping".into(), |c| c.to_string());
        differs(&mut out, "--clip-grad-norm", c.to_string(), stored);
    }
    if let Some(l) = a.label_smoothing {
        differs(
            &mut out,
            "--label-smoothing",
            l.to_string(),
            run.label_smoothing.to_string(),
        );
    }
    if let Some(s) = a.seed {
        differs(&mut out, "--seed", s.to_string(), run.seed.to_string());
    }
    if a.amp || a.amp_dtype.is_some() {
        let name = |d: Option<AmpDtype>| match d {
            Some(AmpDtype::Bf16) => "mixed precision bf16",
            Some(AmpDtype::F16) => "mixed precision f16",
            None => "f32",
        };
        // What the flags ask for, or what this CPU falls back to (a run made
        // with `--amp` where bf16 products are not native recorded f32): a
        // run resumes with its own precision on any machine.
        if run.amp != a.amp_dtype(dev) {
            differs(
                &mut out,
                "--amp",
                name(a.requested_amp_dtype(dev)).into(),
                name(run.amp).into(),
            );
        }
    }
    if let Some(l) = a.log_every {
        differs(
            &mut out,
            "--log-every",
            l.to_string(),
            run.log_every.to_string(),
        );
    }
    if let Some(o) = &a.out {
        let same = |p: &Path| std::fs::canonicalize(p).ok();
        if same(o) != same(dir) {
            out.push(format!(
                "--out {}: a resumed run writes into its own folder {}",
                o.display(),
                dir.display()
            ));
        }
    }
    if let Some(src) = &run.data {
        let stored = DataArgs::from_source(src);
        if let Some(d) = &a.data.data {
            let kind = |s: &str| s.split(':').next().unwrap_or("").to_string();
            differs(&mut out, "--data", kind(d), kind(stored.spec()));
        }
        if let Some(size) = a.data.image_size {
            let stored = src
                .image_size
                .map_or("the size chosen from the images".into(), |s| s.to_string());
            differs(&mut out, "--image-size", size.to_string(), stored);
        }
        if let Some(c) = a.data.crop_scale {
            let show = |c: [f64; 2]| format!("{},{}", c[0], c[1]);
            let stored = src.crop_scale.map_or("the recipe's own".into(), show);
            differs(&mut out, "--crop-scale", show(c.0), stored);
        }
        if let Some(r) = a.data.random_affine {
            differs(
                &mut out,
                "--random-affine",
                show_affine(r.transform().as_ref()),
                show_affine(
                    run.transforms
                        .iter()
                        .find(|t| matches!(t, Transform::RandomAffine { .. })),
                ),
            );
        }
        if let Some(e) = a.data.elastic {
            differs(
                &mut out,
                "--elastic",
                show_elastic(e.transform().as_ref()),
                show_elastic(
                    run.transforms
                        .iter()
                        .find(|t| matches!(t, Transform::Elastic { .. })),
                ),
            );
        }
        if let Some(f) = a.data.val_fraction {
            let stored = src
                .val_fraction
                .map_or("none (it evaluates on the held-out split)".into(), |v| {
                    v.to_string()
                });
            differs(&mut out, "--val-fraction", f.to_string(), stored);
        }
        if a.data.val.is_some() && src.val.is_none() {
            out.push("--val: the run holds out part of its training folder".into());
        }
    }
    out
}

/// A random affine warp as `--random-affine` spells it (`none (0,0,0)`
/// without one), to 4 decimals so that a scale range of `(0.9, 1.1)` reads `0.1`.
fn show_affine(t: Option<&Transform>) -> String {
    let round = |v: f32| (v * 1e4).round() / 1e4;
    match t {
        Some(Transform::RandomAffine {
            degrees,
            translate,
            scale,
        }) => format!(
            "{},{},{}",
            round(*degrees),
            round(*translate),
            round(scale.1 - 1.0)
        ),
        _ => "none (0,0,0)".into(),
    }
}

/// An elastic distortion as `--elastic` spells it (`none (0,0)` without one).
fn show_elastic(t: Option<&Transform>) -> String {
    match t {
        Some(Transform::Elastic { alpha, sigma }) => format!("{alpha},{sigma}"),
        _ => "none (0,0)".into(),
    }
}

/// The data a resumed run reads: its recorded source, or the same kind of
/// data at the place `--data` / `--val` name now.
pub(super) fn resumed_data(a: &DataArgs, run: &TrainConfig) -> DataArgs {
    match &run.data {
        Some(src) => DataArgs {
            data: a.data.clone().or(Some(src.data.clone())),
            val: a.val.clone().or(src.val.clone()),
            image_size: src.image_size,
            crop_scale: src.crop_scale.map(crate::data::CropScale),
            val_fraction: src.val_fraction,
            // A resumed run trains with its recorded transforms.
            random_affine: None,
            elastic: None,
            recorded_val_last: Some(src.val_last),
        },
        None => a.clone(),
    }
}
