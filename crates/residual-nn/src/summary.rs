//! Model summaries computed from the module tree: per row, the output shape,
//! the parameters and the multiply-accumulates.
//!
//! A summary's rows are sub-trees of the model (its children, say). Parameters
//! are counted by walking each row's tensors; output shapes and MACs come from
//! one traced forward pass on a single sample ([`crate::trace`]): each leaf
//! layer's output is attributed to the row holding it, and the MACs the tensor
//! core counted since the previous attributed output go to that row. Nothing
//! is written per model.

use crate::module::{parameter_count, Module};
use crate::trace::{traced, ModuleKey};
use residual_tensor::{Error, Result, Tensor};
use std::collections::HashMap;
use std::fmt;

/// One row of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Layer name (`layer2.0`).
    pub name: String,
    /// Layer type (`Bottleneck`).
    pub kind: String,
    /// Output shape for one sample (`[c, h, w]`, `[classes]`, `[tokens, dim]`).
    pub output: Vec<usize>,
    /// Parameters (trainable and frozen, not buffers).
    pub params: usize,
    /// Multiply-accumulates for one sample.
    pub macs: u64,
}

/// A whole model's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Rows, input to output.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Total parameters.
    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
    /// Total multiply-accumulates for one sample.
    pub fn total_macs(&self) -> u64 {
        self.rows.iter().map(|r| r.macs).sum()
    }
}

/// The largest input (elements of one sample) a summary runs its forward on:
/// 2^22, a 1,182 x 1,182 RGB image (ResNet-152 there is 320 GMACs).
pub const MAX_SUMMARY_INPUT: usize = 1 << 22;

/// Summarises `rows` (name and sub-module, input to output) of a model named
/// `model`; `forward` runs the model once on one sample of shape `input`
/// (`[1, c, h, w]`). Every row must produce an output during that forward.
pub fn summarize(
    model: &str,
    input: [usize; 3],
    rows: &[(String, &dyn Module)],
    forward: impl FnOnce() -> Result<Tensor>,
) -> Result<Summary> {
    let mut owner: HashMap<ModuleKey, usize> = HashMap::new();
    for (i, (_, m)) in rows.iter().enumerate() {
        claim(*m, i, &mut owner);
    }
    let (_, trace) = traced(forward)?;
    let mut out: Vec<SummaryRow> = rows
        .iter()
        .map(|(name, m)| SummaryRow {
            name: name.clone(),
            kind: m.kind(),
            output: Vec::new(),
            params: parameter_count(*m),
            macs: 0,
        })
        .collect();
    let mut seen = vec![false; rows.len()];
    let mut attributed = 0u64;
    let mut last = None;
    for r in trace.records {
        let Some(&i) = owner.get(&r.module) else {
            continue;
        };
        out[i].macs += r.macs_so_far.saturating_sub(attributed);
        attributed = r.macs_so_far;
        out[i].output = r.output.get(1..).unwrap_or_default().to_vec();
        seen[i] = true;
        last = Some(i);
    }
    // Tensor ops after the last traced layer belong to the last row.
    if let Some(i) = last {
        out[i].macs += trace.macs.saturating_sub(attributed);
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(Error::arg(
            "summary",
            format!(
                "row {} ({}) produced no output in the forward pass: a summary row must be a layer the forward runs",
                out[i].name, out[i].kind
            ),
        ));
    }
    Ok(Summary {
        model: model.to_string(),
        input,
        rows: out,
    })
}

/// Marks `m` and all its descendants as belonging to row `row`.
fn claim(m: &dyn Module, row: usize, owner: &mut HashMap<ModuleKey, usize>) {
    if let Some(key) = ModuleKey::of(m) {
        owner.insert(key, row);
    }
    for (_, child) in m.children() {
        claim(child, row, owner);
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A per-sample shape as `CxHxW`, a vector's trailing dimensions of 1 filled
/// in up to three (a classifier's `[1000]` reads `1000x1x1`, as pooled
/// features do); tokens `[N, D]` read `NxD`.
fn shape_text(dims: &[usize]) -> String {
    let mut d = dims.to_vec();
    if d.len() < 2 {
        d.resize(3, 1);
    }
    d.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, h, w] = self.input;
        writeln!(f, "{} (input {c}x{h}x{w})", self.model)?;
        // Names as wide as the longest (at least 12 columns).
        let nw = self.rows.iter().map(|r| r.name.len()).fold(12, usize::max);
        writeln!(
            f,
            "{:<nw$} {:<18} {:>14} {:>12} {:>15}",
            "layer", "type", "output", "params", "MACs"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<nw$} {:<18} {:>14} {:>12} {:>15}",
                r.name,
                r.kind,
                shape_text(&r.output),
                thousands(r.params as u64),
                thousands(r.macs)
            )?;
        }
        writeln!(
            f,
            "{:<nw$} {:<18} {:>14} {:>12} {:>15}",
            "total",
            "",
            "",
            thousands(self.total_params() as u64),
            thousands(self.total_macs())
        )?;
        write!(f, "{:.3} GMACs", self.total_macs() as f64 / 1e9)
    }
}
