//! The whole page: the header, one section per view of the run, the epoch
//! table; inline CSS and inline SVG only, so it opens offline.

use crate::report::html::escape;
use crate::report::run::Run;
use crate::report::{curves, layers, summary, table};
use residual_tensor::Error;
use std::fmt::Write;

/// The page's style sheet.
const CSS: &str = "
body { margin: 0; background: #f4f5f7; color: #1d1f23; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 48px; }
header h1 { margin: 8px 0 2px; font-size: 26px; }
.sub { margin: 0 0 14px; color: #555; overflow-wrap: anywhere; }
nav { margin: 0 0 16px; font-size: 14px; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
h2 { font-size: 19px; margin: 0 0 10px; }
section { background: white; border: 1px solid #dde0e4; border-radius: 8px; padding: 16px 18px; margin: 0 0 18px; }
section.figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; background: none; border: none; padding: 0; }
.figure { background: white; border: 1px solid #dde0e4; border-radius: 8px; padding: 10px 12px; }
.figure .label { font-size: 12px; color: #555; }
.figure .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
figure { margin: 0 0 12px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption, .note { font-size: 13px; color: #555; margin: 4px 0 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; overflow-wrap: anywhere; }
table.config th { width: 260px; color: #444; font-weight: 600; }
table.epochs td { font-variant-numeric: tabular-nums; }
table.epochs tr.best td { background: #e8f4e8; font-weight: 600; }
footer { font-size: 12px; color: #777; }
";

/// One chart with its caption.
fn chart(out: &mut String, id: &str, svg: &str, caption: &str) {
    let _ = write!(
        out,
        r#"<figure id="{id}">{svg}<figcaption>{caption}</figcaption></figure>"#
    );
}

/// A section titled `title`, its body from `body`.
fn section(out: &mut String, id: &str, title: &str, body: impl FnOnce(&mut String)) {
    let _ = write!(out, r#"<section id="{id}"><h2>{title}</h2>"#);
    body(out);
    out.push_str("</section>");
}

/// The note for a view the log has no records for.
const NO_LAYER_RECORDS: &str = "<p class=\"note\">The log has no per-layer records \
    (they come every --log-every steps; the run may have stopped before the first).</p>";

/// The report page of `run`.
pub fn render(run: &Run) -> Result<String, Error> {
    let model = summary::model_name(run);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>residual report: {}</title><style>{CSS}</style></head><body><main>"#,
        escape(&model)
    );
    s.push_str(&summary::header(run));
    s.push_str(
        r##"<nav><a href="#curves">curves</a><a href="#grad-flow">gradient flow</a><a href="#weights">weights</a><a href="#dead-units">dead units</a><a href="#epochs">epochs</a><a href="#config">configuration</a></nav>"##,
    );
    let (training, per_epoch, optimizer) = (
        curves::training(run)?,
        curves::per_epoch(run)?,
        curves::optimizer(run)?,
    );
    let eval = run.eval.adjective();
    section(&mut s, "curves", "Training curves", |s| {
        chart(s, "fig-training", &training, &format!("Per step: each batch's loss and accuracy (thin) and their moving average (thick); dots: the {eval} figures at the end of each epoch. Loss on a log scale."));
        chart(
            s,
            "fig-per-epoch",
            &per_epoch,
            &format!("Per epoch: the training mean over the epoch's steps and the {eval} figure."),
        );
        chart(s, "fig-optimizer", &optimizer, "The learning rate the schedule gave each step, and the global gradient norm before clipping.");
    });
    let flow = layers::grad_flow(&run.grad_norms)?;
    section(
        &mut s,
        "grad-flow",
        "Gradient flow by depth",
        |s| match &flow {
            Some([map, lines]) => {
                chart(s, "fig-grad-heatmap", map, "Each weight layer's gradient L2 norm (weight and bias together) at the monitored steps, colour on a log scale; hover a cell for its value. Grey: no finite value.");
                chart(s, "fig-grad-lines", lines, "Left: the norms by depth at up to eight snapshots; right: the first, middle and last layer over time.");
            }
            None => s.push_str(NO_LAYER_RECORDS),
        },
    );
    let weights = layers::weights(&run.weight_stats)?;
    section(
        &mut s,
        "weights",
        "Weight distributions",
        |s| match &weights {
            Some([std, mean, lines]) => {
                chart(s, "fig-weight-std", std, "Standard deviation of each layer's weight tensor (rank 2 and up) over time, log colour.");
                chart(
                    s,
                    "fig-weight-mean",
                    mean,
                    "Mean of each layer's weights over time: blue below zero, red above.",
                );
                chart(s, "fig-weight-lines", lines, "Standard deviation and mean by depth at the first (thin) and last (thick) snapshot.");
            }
            None => s.push_str(NO_LAYER_RECORDS),
        },
    );
    section(
        &mut s,
        "dead-units",
        "Dead units per block",
        |s| match layers::dead_units(&run.zero_fractions) {
            Some([map, bars]) => {
                chart(s, "fig-dead-heatmap", &map, "Fraction of exactly-zero outputs after the stem and each block (units the activation switched off) over time, 0 (dark) to 1 (bright).");
                chart(s, "fig-dead-bars", &bars, "The last snapshot.");
            }
            None => s.push_str(NO_LAYER_RECORDS),
        },
    );
    section(&mut s, "epochs", "Epoch records", |s| {
        s.push_str(&table::epochs(run))
    });
    notes(&mut s, run);
    let _ = writeln!(
        s,
        "<footer>Written by residual {} (residual report) from log.jsonl, model.json and state.safetensors; a self-contained page (no scripts, no external files).</footer></main></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    Ok(s)
}

/// What the report left out or the log recorded as odd: torn lines, skipped
/// optimizer steps, an unreadable checkpoint.
fn notes(s: &mut String, run: &Run) {
    let mut items = Vec::new();
    if run.torn_lines > 0 {
        items.push(format!(
            "{} line(s) of log.jsonl were not whole records (a crash or a full disk mid-write) and were skipped.",
            run.torn_lines
        ));
    }
    let skipped = run.steps.iter().filter(|s| s.skipped).count();
    if skipped > 0 {
        items.push(format!(
            "{skipped} optimizer step(s) were skipped because a gradient overflowed (f16 loss scaling)."
        ));
    }
    if let Some(e) = &run.meta_error {
        items.push(format!("The configuration is missing: {e}"));
    }
    if items.is_empty() {
        return;
    }
    section(s, "notes", "Notes", |s| {
        s.push_str("<ul>");
        for i in items {
            let _ = write!(s, "<li>{}</li>", escape(&i));
        }
        s.push_str("</ul>");
    });
}
