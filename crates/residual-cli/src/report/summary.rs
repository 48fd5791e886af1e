//! The page's header: what was trained on what, the run's configuration
//! and its final figures.

use crate::report::html::{escape, num, pct, value};
use crate::report::run::Run;
use serde_json::Value;
use std::fmt::Write;

/// The run's configuration as `(setting, value)` rows, from the checkpoint
/// (without one, only `model.json`'s model config, when there is one).
pub fn config_rows(run: &Run) -> Vec<(&'static str, String)> {
    let Some(meta) = &run.meta else {
        return match &run.model_json {
            Some(j) => vec![("model config (model.json)", value(j))],
            None => Vec::new(),
        };
    };
    let c = serde_json::to_value(&meta.config).unwrap_or(Value::Null);
    let field = |k: &str| value(&c[k]);
    let mut rows = vec![
        ("model", field("model")),
        ("model config", value(&c["model_config"])),
        ("data", data_source(&c["data"])),
        ("epochs", field("epochs")),
        ("batch size", field("batch_size")),
        ("learning rate", field("lr")),
        ("optimizer", field("optimizer")),
        ("schedule", field("schedule")),
        ("clip gradient norm", field("clip_grad_norm")),
        ("label smoothing", field("label_smoothing")),
        (
            "no weight decay on norms and biases",
            field("no_decay_norm_bias"),
        ),
        (
            "mixed precision",
            match &c["amp"] {
                Value::Null => "off (f32)".into(),
                v => value(v),
            },
        ),
        ("seed", field("seed")),
        (
            "per-layer records every",
            format!("{} steps", field("log_every")),
        ),
        ("transforms", field("transforms")),
    ];
    rows.push((
        "checkpoint",
        format!(
            "after epoch {} (optimizer step {}{})",
            meta.epoch,
            meta.optimizer_step,
            match meta.batch_in_epoch {
                0 => String::new(),
                b => format!(", {b} batches into the next epoch"),
            }
        ),
    ));
    rows
}

/// The data source in words: `mnist:DIR`, and the optional settings given.
fn data_source(d: &Value) -> String {
    let Some(o) = d.as_object() else {
        return "not recorded (a checkpoint from before runs recorded their data)".into();
    };
    let mut s = value(&d["data"]);
    for (k, v) in o.iter().filter(|(k, v)| *k != "data" && !v.is_null()) {
        let _ = write!(s, ", {} {}", k.replace('_', " "), value(v));
    }
    s
}

/// The model as the run named it: from the checkpoint, or `model.json`'s family.
pub fn model_name(run: &Run) -> String {
    match (&run.meta, &run.model_json) {
        (Some(m), _) => m.config.model.clone(),
        (None, Some(j)) => value(&j["family"]),
        (None, None) => "unknown model".into(),
    }
}

/// Whether the run has done all its epochs, in words.
fn status(run: &Run) -> String {
    let logged = run.epochs.last().map_or(0, |e| e.epoch);
    match &run.meta {
        Some(m) if m.epoch >= m.config.epochs => {
            format!("complete: {} of {} epochs", m.epoch, m.config.epochs)
        }
        Some(m) => format!(
            "not finished: {} of {} epochs checkpointed (resume with residual train --resume)",
            m.epoch, m.config.epochs
        ),
        None => format!("{logged} epoch(s) logged"),
    }
}

/// One figure of the header: `id` names it for readers of the page.
fn figure(out: &mut String, id: &str, label: &str, shown: &str, raw: Option<f32>) {
    let data = raw.map_or(String::new(), |v| format!(r#" data-value="{v}""#));
    let _ = write!(
        out,
        r#"<div class="figure"><div class="label">{label}</div><div class="value" id="{id}"{data}>{shown}</div></div>"#
    );
}

/// The header: title, what ran on what, the final figures and the
/// configuration table.
pub fn header(run: &Run) -> String {
    let mut s = String::new();
    let model = model_name(run);
    // A config file by its name (the whole path is in the configuration).
    let short = std::path::Path::new(&model)
        .file_name()
        .map_or(model.clone(), |n| n.to_string_lossy().into_owned());
    let _ = write!(
        s,
        r#"<header><h1>Run report: <span id="model" title="{}">{}</span></h1><p class="sub">{} &middot; {}</p></header>"#,
        escape(&model),
        escape(&short),
        escape(&run.dir.display().to_string()),
        escape(&status(run))
    );
    let last = run.epochs.last();
    let best = run.best_epoch();
    let steps = run.steps.last().map(|s| s.step);
    let seconds: f32 = run.epochs.iter().filter_map(|e| e.seconds).sum();
    let ips = last.and_then(|e| e.img_per_s);
    s.push_str(r#"<section class="figures">"#);
    let eval = run.eval.adjective();
    let eval_acc = |e: Option<&crate::report::run::Epoch>| e.and_then(|e| e.test_acc);
    figure(
        &mut s,
        "final-test-acc",
        &format!("{eval} accuracy (epoch {})", last.map_or(0, |e| e.epoch)),
        &pct(eval_acc(last)),
        eval_acc(last),
    );
    let test_loss = last.and_then(|e| e.test_loss);
    figure(
        &mut s,
        "final-test-loss",
        &format!("{eval} loss"),
        &num(test_loss),
        test_loss,
    );
    let best_label = match best {
        Some(b) => format!("best {eval} accuracy (epoch {})", b.epoch),
        None => format!("best {eval} accuracy"),
    };
    figure(
        &mut s,
        "best-test-acc",
        &best_label,
        &pct(eval_acc(best)),
        eval_acc(best),
    );
    let (tl, ta) = (
        last.and_then(|e| e.train_loss),
        last.and_then(|e| e.train_acc),
    );
    figure(
        &mut s,
        "final-train-loss",
        "train loss (last epoch mean)",
        &num(tl),
        tl,
    );
    figure(
        &mut s,
        "final-train-acc",
        "train accuracy (last epoch mean)",
        &pct(ta),
        ta,
    );
    let shown_steps = steps.map_or("\u{2014}".into(), |n| n.to_string());
    figure(
        &mut s,
        "total-steps",
        "optimizer steps",
        &shown_steps,
        steps.map(|n| n as f32),
    );
    figure(
        &mut s,
        "img-per-s",
        "training images / s (last epoch)",
        &num(ips.map(f32::round)),
        ips,
    );
    let time = match seconds > 0.0 {
        true => format!("{seconds:.1} s"),
        false => "\u{2014}".into(),
    };
    figure(
        &mut s,
        "train-seconds",
        "training time (sum of epochs)",
        &time,
        None,
    );
    s.push_str("</section>");
    s.push_str(r#"<section><h2 id="config">Configuration</h2><table class="config">"#);
    let rows = config_rows(run);
    if run.meta.is_none() {
        let why = run.meta_error.as_deref().unwrap_or("no checkpoint");
        let _ = write!(
            s,
            "<tr><th>configuration</th><td>unavailable: {}</td></tr>",
            escape(why)
        );
    }
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    s.push_str("</table></section>");
    s
}
