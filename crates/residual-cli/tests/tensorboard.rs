//! `residual train` writes an events file that TensorBoard's own reader
//! (`EventAccumulator`, from the `tensorboard` package on PyPI) loads: the
//! expected tags, one point per step (or epoch, or monitored step), values
//! equal to the log's, and a resumed run's second file merged with the first.

mod common;

use common::{log_records, python_module_available, stderr, Tiny};
use residual_tensor::test_skip;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Loads a run folder with EventAccumulator (keeping every point) and prints
/// `{"scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step, num], ...]}}`.
const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0, "compressedHistograms": 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "histograms": {t: [[e.step, e.histogram_value.num] for e in acc.Histograms(t)] for t in tags["histograms"]},
}))
"#;

fn read_run(dir: &Path) -> Value {
    let o = Command::new("python3")
        .args(["-c", READER, dir.to_str().unwrap()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn steps(points: &Value) -> Vec<u64> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect()
}

/// The value at `step` of a tag's points.
fn at(points: &Value, step: u64) -> f32 {
    let p = points.as_array().unwrap().iter().find(|p| p[0] == step);
    p.unwrap_or_else(|| panic!("no point at step {step}"))[1]
        .as_f64()
        .unwrap() as f32
}

#[test]
fn tensorboard_reads_a_run_and_its_resumption() {
    if !python_module_available("tensorboard", "tensorboard") {
        test_skip::skipped(
            "python3 with the tensorboard package is not available (pip install tensorboard)",
        );
        return;
    }
    let tiny = Tiny::new();
    // 32 images in batches of 4: 8 steps per epoch; 2 epochs, then 1 more.
    let o = tiny.train("run", &["--epochs", "2", "--log-every", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tiny.resume("run", &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tiny.path("run");
    let files = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().starts_with("events.out.tfevents.")
        })
        .count();
    assert_eq!(files, 2, "one events file per process");

    let tb = read_run(&run);
    let (scalars, histos) = (&tb["scalars"], &tb["histograms"]);
    let counts = |v: &Value| -> Vec<(String, usize)> {
        let mut c: Vec<_> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(t, p)| (t.clone(), p.as_array().unwrap().len()))
            .collect();
        c.sort();
        c
    };
    eprintln!(
        "EventAccumulator scalars (tag, points): {:?}",
        counts(scalars)
    );
    eprintln!(
        "EventAccumulator histograms (tag, points): {:?}",
        counts(histos)
    );

    let every_step: Vec<u64> = (1..=24).collect();
    for tag in [
        "train/loss",
        "train/acc",
        "train/lr",
        "train/img_per_s",
        "train/grad_norm",
    ] {
        assert_eq!(steps(&scalars[tag]), every_step, "{tag}");
    }
    assert!(
        scalars.get("train/loss_scale").is_none(),
        "an f32 run has no loss scale"
    );
    for tag in [
        "test/loss",
        "test/acc",
        "train/epoch_loss",
        "train/epoch_acc",
    ] {
        assert_eq!(steps(&scalars[tag]), [8, 16, 24], "{tag}");
    }

    // The per-layer figures, every second step, for the layers the log names.
    let monitored: Vec<u64> = (1..=12).map(|i| 2 * i).collect();
    let records = log_records(&run);
    let step_record = |step: u64| {
        records
            .iter()
            .find(|r| r["step"] == step && r.get("batch").is_some())
            .unwrap_or_else(|| panic!("log record of step {step}"))
    };
    let detailed = step_record(2);
    let layers: Vec<&str> = detailed["layer_grad_norms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[0].as_str().unwrap())
        .collect();
    assert!(layers.len() >= 3, "{layers:?}");
    for layer in &layers {
        for kind in ["grad_norm", "weight_mean", "weight_std"] {
            let tag = format!("{kind}/{layer}");
            assert_eq!(steps(&scalars[&tag]), monitored, "{tag}");
        }
        for kind in ["weights", "grads"] {
            let tag = format!("{kind}/{layer}.weight");
            assert_eq!(steps(&histos[&tag]), monitored, "{tag}");
            let num = histos[&tag][0][1].as_f64().unwrap();
            assert!(num > 0.0, "{tag}: {num} values");
        }
    }
    for block in detailed["zero_activations"].as_array().unwrap() {
        let tag = format!("zero_fraction/{}", block[0].as_str().unwrap());
        assert_eq!(steps(&scalars[&tag]), monitored, "{tag}");
    }

    // Values equal the log's, before and after the resumption.
    for step in [5, 20] {
        let logged = step_record(step)["loss"].as_f64().unwrap() as f32;
        assert_eq!(
            at(&scalars["train/loss"], step),
            logged,
            "loss at step {step}"
        );
    }
    let logged = step_record(4)["layer_grad_norms"][0][1].as_f64().unwrap() as f32;
    assert_eq!(at(&scalars[&format!("grad_norm/{}", layers[0])], 4), logged);
    let epoch2 = records
        .iter()
        .find(|r| r["epoch"] == 2 && r.get("test_acc").is_some())
        .unwrap();
    assert_eq!(
        at(&scalars["test/acc"], 16),
        epoch2["test_acc"].as_f64().unwrap() as f32
    );
}
