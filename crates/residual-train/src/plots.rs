//! SVG plots of training runs (plotters, with DejaVu Sans embedded so that
//! text is laid out the same on machines without fonts): curves over steps,
//! and gradient norm by depth over time.

use plotters::prelude::*;
use residual_tensor::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points in order.
    pub points: Vec<(f32, f32)>,
    /// Drawn dashed-looking (thin) instead of solid (thick).
    pub thin: bool,
}

/// Snapshots of per-layer gradient norms: `(step, [(layer, norm)])`, layers
/// shallow to deep.
pub type GradSnapshots = Vec<(u64, Vec<(String, f32)>)>;

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: format!("plotting: {e}"),
    }
}

fn register_font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Registering a valid embedded font cannot fail; if it ever did, text
        // would be missing from the plots, which the tests would catch.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn bounds(curves: &[Curve], log_y: bool) -> (f32, f32, f32, f32) {
    let pts = || {
        curves
            .iter()
            .flat_map(|c| c.points.iter())
            .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0))
    };
    let (mut x0, mut x1) = (f32::INFINITY, f32::NEG_INFINITY);
    let (mut y0, mut y1) = (f32::INFINITY, f32::NEG_INFINITY);
    for &(x, y) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return (0.0, 1.0, if log_y { 1e-3 } else { 0.0 }, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + if log_y { y0 } else { 1.0 };
    }
    if log_y {
        (x0, x1, y0 * 0.8, y1 * 1.25)
    } else {
        let pad = 0.05 * (y1 - y0);
        (x0, x1, (y0 - pad).min(0.0f32.max(y0 - pad)), y1 + pad)
    }
}

/// Draws `curves` into one panel of an SVG drawing area.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
    log_y: bool,
) -> std::result::Result<(), String> {
    let (x0, x1, y0, y1) = bounds(curves, log_y);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, c) in curves.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let style = ShapeStyle::from(&color).stroke_width(if c.thin { 1 } else { 2 });
                let pts: Vec<(f32, f32)> = c
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(|e| e.to_string())?
                    .label(c.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
            if curves.iter().any(|c| !c.label.is_empty()) {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 12))
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }};
    }
    if log_y {
        finish!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|e| e.to_string())?);
    } else {
        finish!(builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// A chart of `panels` side by side (one row), written as SVG to `path`.
/// Each panel: `(title, x label, y label, curves, log y)`.
pub fn panels(path: &Path, panels: &[(String, String, String, Vec<Curve>, bool)]) -> Result<()> {
    register_font();
    let width = 560 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, (title, xd, yd, curves, log_y)) in areas.iter().zip(panels) {
        draw_panel(area, title, xd, yd, curves, *log_y).map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))?;
    Ok(())
}

/// Gradient flow: for each snapshot, the gradient norm of every layer by its
/// depth (0 = shallowest); later snapshots in later colours.
pub fn grad_flow_curves(snapshots: &GradSnapshots, max_lines: usize) -> Vec<Curve> {
    let stride = snapshots.len().div_ceil(max_lines.max(1)).max(1);
    snapshots
        .iter()
        .enumerate()
        .filter(|(i, _)| i % stride == 0 || *i + 1 == snapshots.len())
        .map(|(_, (step, layers))| Curve {
            label: format!("step {step}"),
            points: layers
                .iter()
                .enumerate()
                .map(|(d, (_, n))| (d as f32, *n))
                .collect(),
            thin: true,
        })
        .collect()
}

/// Moving average over `window` points (for noisy per-step curves).
pub fn smooth(points: &[(f32, f32)], window: usize) -> Vec<(f32, f32)> {
    let w = window.max(1);
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(w - 1);
            let s: f32 = points[lo..=i].iter().map(|p| p.1).sum();
            (points[i].0, s / (i + 1 - lo) as f32)
        })
        .collect()
}

/// Renders the plots of a `residual train` run folder from its `log.jsonl`:
/// `curves.svg` (training loss and accuracy by step, held-out accuracy by
/// epoch) and `grad_flow.svg` (gradient norm by depth over time). Returns the
/// files written.
pub fn render_run(dir: &Path) -> Result<Vec<PathBuf>> {
    let log = dir.join("log.jsonl");
    // Torn lines (a crash or a full disk mid-write) are skipped, not fatal.
    let records = crate::runlog::read(&log)?.records;
    let (mut loss, mut acc, mut test_acc) = (Vec::new(), Vec::new(), Vec::new());
    let mut flow: GradSnapshots = Vec::new();
    let mut steps_per_epoch = 0.0f32;
    for v in &records {
        if let Some(step) = v["step"].as_u64() {
            let s = step as f32;
            steps_per_epoch = v["batches"].as_f64().unwrap_or(0.0) as f32;
            loss.push((s, v["loss"].as_f64().unwrap_or(f64::NAN) as f32));
            acc.push((s, v["acc"].as_f64().unwrap_or(f64::NAN) as f32));
            if let Some(layers) = v["layer_grad_norms"].as_array() {
                let l = layers
                    .iter()
                    .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_f64()? as f32)))
                    .collect();
                flow.push((step, l));
            }
        } else if let (Some(epoch), Some(a)) = (v["epoch"].as_u64(), v["test_acc"].as_f64()) {
            test_acc.push((epoch as f32 * steps_per_epoch, a as f32));
        }
    }
    let curves = dir.join("curves.svg");
    panels(
        &curves,
        &[
            (
                "training loss".into(),
                "step".into(),
                "cross-entropy".into(),
                vec![
                    Curve {
                        label: "per step".into(),
                        points: loss.clone(),
                        thin: true,
                    },
                    Curve {
                        label: "mean of 20".into(),
                        points: smooth(&loss, 20),
                        thin: false,
                    },
                ],
                true,
            ),
            (
                "accuracy".into(),
                "step".into(),
                "accuracy".into(),
                vec![
                    Curve {
                        label: "train (mean of 20 steps)".into(),
                        points: smooth(&acc, 20),
                        thin: false,
                    },
                    Curve {
                        label: "held out (end of epoch)".into(),
                        points: test_acc,
                        thin: false,
                    },
                ],
                false,
            ),
        ],
    )?;
    let mut written = vec![curves];
    if !flow.is_empty() {
        let path = dir.join("grad_flow.svg");
        panels(
            &path,
            &[(
                "gradient norm by depth (later steps in later colours)".into(),
                "layer (0 = stem, last = fc)".into(),
                "gradient L2 norm".into(),
                grad_flow_curves(&flow, 8),
                true,
            )],
        )?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_log_renders_to_svg_with_text() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut log = String::new();
        for step in 1..=30u64 {
            let mut rec = serde_json::json!({"epoch": 0, "step": step, "batches": 30, "loss": 2.3 / step as f64,
                "acc": 1.0 - 1.0 / step as f64});
            if step % 10 == 0 {
                rec["layer_grad_norms"] =
                    serde_json::json!([["conv1", 0.5], ["layer1.0", 0.2], ["fc", 0.1]]);
            }
            log.push_str(&format!("{rec}\n"));
        }
        log.push_str("{\"epoch\":1,\"test_acc\":0.9,\"test_loss\":0.3}\n");
        std::fs::write(dir.join("log.jsonl"), log).unwrap();
        let files = render_run(dir).unwrap();
        assert_eq!(files.len(), 2);
        for f in files {
            let svg = std::fs::read_to_string(&f).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("<polyline"),
                "{}",
                f.display()
            );
            assert!(
                svg.contains("step"),
                "axis labels present in {}",
                f.display()
            );
        }
        // A torn last line (a crash mid-write) is skipped: the plots render.
        let whole = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
        std::fs::write(dir.join("log.jsonl"), format!("{whole}{{\"step\": 9, \"lo")).unwrap();
        assert_eq!(render_run(dir).unwrap().len(), 2);
        std::fs::remove_file(dir.join("log.jsonl")).unwrap();
        let err = render_run(dir).unwrap_err().to_string();
        assert!(err.contains("log.jsonl"), "{err}");
    }
}
