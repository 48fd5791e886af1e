//! `residual train --metrics-addr HOST:PORT` serves `GET /metrics` while it
//! trains: scraped during a real run and parsed by Prometheus' own Python
//! client (`prometheus_client.parser`, from PyPI), whose figures must be the
//! run's (the log's loss at the scraped step, its layers by depth).

mod common;

use common::{log_records, python_module_available, stderr, Tiny};
use residual_tensor::test_skip;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Parses the Prometheus text on stdin with prometheus_client and prints
/// `{metric family: [[sample name, labels, value or null for NaN], ...]}`.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    # NaN (a figure before the first epoch) as null: JSON has no NaN.
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value if s.value == s.value else None] for s in fam.samples]}
print(json.dumps(out))
"#;

fn parse(text: &str) -> Value {
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The one sample of a family without labels beyond `run`.
fn value(families: &Value, name: &str) -> f64 {
    let samples = families[name]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(samples.len(), 1, "{name}: {samples:?}");
    samples[0][2].as_f64().unwrap()
}

#[test]
fn a_running_train_serves_its_figures_to_prometheus_client() {
    if !python_module_available("prometheus_client.parser", "prometheus_client") {
        test_skip::skipped("python3 with prometheus_client is not installed");
        return;
    }
    let tiny = Tiny::new();
    let run = tiny.path("run");
    let args = tiny.train_args(
        "run",
        &[
            "--epochs",
            "100000",
            "--log-every",
            "1",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address is printed before the first step.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("train exited before serving metrics: {seen:?}"))
            .unwrap();
        if let Some(rest) = line.strip_prefix("metrics: http://") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    // Drain stderr so the run never blocks on a full pipe.
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let t0 = Instant::now();
    let families = loop {
        let f = parse(&scrape(addr));
        // Two completed epochs (tiny epochs are 8 steps): per-epoch figures are there.
        if f["residual_epoch"]["samples"][0][2].as_f64().unwrap_or(0.0) >= 2.0 {
            break f;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no second epoch in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: sends SIGTERM to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let err = drain.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(130), "{err}");

    // Every run series carries the run folder as its `run` label.
    let run_label = run.display().to_string();
    for (name, fam) in families.as_object().unwrap() {
        if name.starts_with("residual_") {
            for s in fam["samples"].as_array().unwrap() {
                assert_eq!(s[1]["run"], run_label.as_str(), "{name}: {s:?}");
            }
        }
    }
    assert_eq!(families["residual_train_images"]["type"], "counter");
    assert_eq!(families["residual_learning_rate"]["type"], "gauge");
    let step = value(&families, "residual_step") as u64;
    let images = value(&families, "residual_train_images");
    // The counter is bumped after the step gauge: it lags by at most one step.
    assert!(
        images == (step * 4) as f64 || images == ((step - 1) * 4) as f64,
        "{images} images at step {step}"
    );
    assert_eq!(value(&families, "residual_planned_steps"), 100000.0 * 8.0);
    // The scraped loss is the loss the log recorded at the scraped step
    // (or the step that was being written while the scrape read).
    // The gauge holds the f32 loss as f64; the log prints the f32.
    let loss = value(&families, "residual_train_loss") as f32;
    let records = log_records(&run);
    let logged = |s: u64| {
        records
            .iter()
            .find(|r| r["step"].as_u64() == Some(s) && r.get("loss").is_some())
            .map(|r| r["loss"].as_f64().unwrap() as f32)
    };
    assert!(
        [step, step + 1].iter().any(|s| logged(*s) == Some(loss)),
        "scraped loss {loss} at step {step}; log: {:?} / {:?}",
        logged(step),
        logged(step + 1)
    );
    // The held-out figures of the epoch record with the scraped epoch.
    let epoch = value(&families, "residual_epoch") as u64;
    let epoch_rec = records
        .iter()
        .find(|r| r["epoch"].as_u64() == Some(epoch) && r.get("test_acc").is_some())
        .unwrap();
    let acc = value(&families, "residual_eval_accuracy");
    assert_eq!(acc as f32, epoch_rec["test_acc"].as_f64().unwrap() as f32);
    // Gradient flow by depth: the log's layers, in the log's order.
    let layer_rec = records
        .iter()
        .rev()
        .find(|r| r.get("layer_grad_norms").is_some())
        .unwrap();
    let layers: Vec<&str> = layer_rec["layer_grad_norms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    let mut scraped: Vec<(u64, String)> = families["residual_layer_grad_norm"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let depth = s[1]["depth"].as_str().unwrap().parse().unwrap();
            (depth, s[1]["layer"].as_str().unwrap().to_string())
        })
        .collect();
    scraped.sort();
    let by_depth: Vec<&str> = scraped.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(by_depth, layers);
    assert!(!families["residual_zero_activation_fraction"]["samples"]
        .as_array()
        .unwrap()
        .is_empty());
    // Process metrics, as Prometheus' own clients name them.
    assert!(value(&families, "process_resident_memory_bytes") > 1e6);
    assert!(families["process_cpu_seconds"]["type"] == "counter");
}

#[test]
fn a_metrics_address_that_cannot_be_served_stops_the_run_before_training() {
    let tiny = Tiny::new();
    let o = tiny.train(
        "run",
        &["--epochs", "1", "--metrics-addr", "no-such-host-or-port"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--metrics-addr")
            && err.contains("no-such-host-or-port")
            && err.contains("HOST:PORT"),
        "{err}"
    );
    assert!(!err.contains("epoch 1/1"), "trained before refusing: {err}");
}
