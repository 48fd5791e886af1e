//! The Grafana dashboard shipped in `monitoring/grafana/` queries only
//! metrics the trainer exports (`residual_train::metrics`), so no panel of
//! it stays empty for want of a renamed series.

use residual_train::metrics::server::encode;
use residual_train::metrics::TrainMetrics;
use residual_train::trainer::StepStats;
use std::collections::BTreeSet;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../monitoring/grafana/residual-training.json"
);

/// The metric names a scrape of a monitored step shows (`# TYPE` lines).
fn exported() -> BTreeSet<String> {
    let (m, registry) = TrainMetrics::new("run", "resnet20", "cpu");
    let stats = StepStats {
        epoch: 0,
        step: 1,
        batch: 0,
        batches: 1,
        loss: 1.0,
        acc: 0.5,
        lr: 0.1,
        img_per_s: 10.0,
        grad_norm: 1.0,
        loss_scale: Some(1024.0),
        skipped: false,
        comm_seconds: None,
        layer_grad_norms: Some(vec![("conv1".into(), 1.0)]),
        layer_weight_stats: Some(vec![("conv1".into(), 0.0, 1.0)]),
        zero_activations: Some(vec![("stem".into(), 0.5)]),
        histograms: None,
    };
    m.step(&stats, 8);
    let (text, _) = encode(&registry, None);
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Every `residual_*` / `process_*` name in a PromQL expression.
fn queried(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = ["residual_", "process_"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_panel_queries_metrics_the_trainer_exports() {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exported = exported();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    let mut checked = 0;
    for expr in &exprs {
        for name in queried(expr) {
            if name.starts_with("process_") && !cfg!(target_os = "linux") {
                continue;
            }
            assert!(
                exported.contains(&name),
                "the dashboard queries {name} ({expr}), which the trainer does not export; it exports {exported:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
    // Gradient flow by depth is there, with the depth in its legend.
    let grad_flow = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Gradient flow by depth")
        .expect("a gradient-flow panel");
    assert!(grad_flow["targets"][0]["legendFormat"]
        .as_str()
        .unwrap()
        .contains("{{depth}}"));
}
