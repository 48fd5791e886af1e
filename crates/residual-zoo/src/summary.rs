//! A model summary: per layer, output shape, parameters and MACs.

use std::fmt;

/// One row of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Layer name (`layer2.0`).
    pub name: String,
    /// Layer type (`Bottleneck`).
    pub kind: String,
    /// Output shape `[c, h, w]` for one sample.
    pub output: [usize; 3],
    /// Parameters.
    pub params: usize,
    /// Multiply-accumulates for one sample.
    pub macs: u64,
}

impl SummaryRow {
    /// A row.
    pub fn new(name: &str, kind: &str, output: [usize; 3], params: usize, macs: u64) -> Self {
        SummaryRow {
            name: name.into(),
            kind: kind.into(),
            output,
            params,
            macs,
        }
    }
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

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, h, w] = self.input;
        writeln!(f, "{} (input {c}x{h}x{w})", self.model)?;
        writeln!(
            f,
            "{:<12} {:<18} {:>14} {:>12} {:>15}",
            "layer", "type", "output", "params", "MACs"
        )?;
        for r in &self.rows {
            let [c, h, w] = r.output;
            let shape = format!("{c}x{h}x{w}");
            writeln!(
                f,
                "{:<12} {:<18} {:>14} {:>12} {:>15}",
                r.name,
                r.kind,
                shape,
                thousands(r.params as u64),
                thousands(r.macs)
            )?;
        }
        writeln!(
            f,
            "{:<12} {:<18} {:>14} {:>12} {:>15}",
            "total",
            "",
            "",
            thousands(self.total_params() as u64),
            thousands(self.total_macs())
        )?;
        write!(f, "{:.3} GMACs", self.total_macs() as f64 / 1e9)
    }
}
