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

/// The colour of the `i`-th curve of a panel and its line (thin or thick).
fn curve_style(i: usize, c: &Curve) -> (RGBColor, ShapeStyle) {
    let color = PALETTE[i % PALETTE.len()];
    let style = ShapeStyle::from(&color).stroke_width(if c.thin { 1 } else { 2 });
    (color, style)
}

/// The points of `c` a panel can draw: finite, and positive on a log axis.
fn drawable_points(c: &Curve, log_y: bool) -> impl Iterator<Item = (f32, f32)> + '_ {
    c.points
        .iter()
        .copied()
        .filter(move |p| p.1.is_finite() && (!log_y || p.1 > 0.0))
}

fn bounds(curves: &[Curve], log_y: bool) -> (f32, f32, f32, f32) {
    let (mut x0, mut x1) = (f32::INFINITY, f32::NEG_INFINITY);
    let (mut y0, mut y1) = (f32::INFINITY, f32::NEG_INFINITY);
    for (x, y) in curves.iter().flat_map(|c| drawable_points(c, log_y)) {
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
                let (_, style) = curve_style(i, c);
                let pts: Vec<(f32, f32)> = drawable_points(c, log_y).collect();
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

/// Nice tick values in `lo..=hi`: multiples of 1, 2, 2.5 or 5 times a power
/// of ten, about five of them; whole numbers only when `whole`.
pub fn linear_ticks(lo: f32, hi: f32, whole: bool) -> Vec<f32> {
    let raw = f64::from(hi - lo) / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![lo];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    if whole {
        step = step.max(1.0).round();
    }
    let (k0, k1) = (
        (f64::from(lo) / step).ceil(),
        (f64::from(hi) / step).floor(),
    );
    (k0 as i64..=k1 as i64)
        .map(|k| (k as f64 * step) as f32)
        .collect()
}

/// Tick values for a log axis over `lo..=hi` (both > 0): powers of ten, else
/// 1-2-5 or 1..9 times them, else linear ticks, whichever first gives three.
pub fn log_ticks(lo: f32, hi: f32) -> Vec<f32> {
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for mantissas in [
        &[1.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let ticks: Vec<f32> = (e0..=e1)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f32.powi(e)))
            .filter(|v| (lo..=hi).contains(v))
            .collect();
        if ticks.len() >= 3 {
            let stride = ticks.len().div_ceil(9);
            return ticks.into_iter().step_by(stride).collect();
        }
    }
    linear_ticks(lo, hi, false)
        .into_iter()
        .filter(|v| *v > 0.0)
        .collect()
}

/// A linear axis over `lo..hi` with its tick values given (plotters'
/// `WithKeyPoints` over an f32 range takes no label formatter).
struct Ticked {
    lo: f32,
    hi: f32,
    ticks: Vec<f32>,
}

impl plotters::coord::ranged1d::Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f32;

    fn map(&self, v: &f32, (p0, p1): (i32, i32)) -> i32 {
        let f = f64::from((*v - self.lo) / (self.hi - self.lo));
        p0 + (f * f64::from(p1 - p0)).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f32> {
        match hint.weight().allow_light_points() {
            true => Vec::new(),
            false => self.ticks.clone(),
        }
    }

    fn range(&self) -> std::ops::Range<f32> {
        self.lo..self.hi
    }
}

/// A tick value, short: four significant digits, exponent notation far from 1.
pub fn tick_label(v: f32) -> String {
    let r: f64 = format!("{:.3e}", v).parse().unwrap_or(f64::from(v));
    match r != 0.0 && !(1e-3..1e5).contains(&r.abs()) {
        true => format!("{r:e}"),
        false => format!("{r}"),
    }
}

/// The corner of a panel holding the fewest points (`to_unit` maps a point
/// into the unit square), for its legend.
fn emptiest_corner(
    curves: &[Curve],
    to_unit: impl Fn((f32, f32)) -> (f32, f32),
) -> SeriesLabelPosition {
    let mut counts = [0usize; 4]; // upper right, lower right, upper left, lower left
    for &p in curves.iter().flat_map(|c| c.points.iter()) {
        let (fx, fy) = to_unit(p);
        let (right, left, up, low) = (fx > 0.5, fx < 0.5, fy > 0.55, fy < 0.45);
        for (i, hit) in [right && up, right && low, left && up, left && low]
            .iter()
            .enumerate()
        {
            counts[i] += usize::from(*hit && fx.is_finite() && fy.is_finite());
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    use SeriesLabelPosition::*;
    [UpperRight, LowerRight, UpperLeft, LowerLeft][best].clone()
}

/// Draws `curves` into one panel of a page: as [`draw_panel`], with round
/// ticks (a log axis plotted as log10 with the values as labels, whole
/// numbers on an x axis of whole numbers), no minor grid, a dot at each
/// point of curves of at most 60 points, and the legend in the emptiest corner.
fn draw_page_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    (title, x_desc, y_desc, curves, log_y): &(String, String, String, Vec<Curve>, bool),
) -> std::result::Result<(), String> {
    let log_y = *log_y;
    let (x0, x1, y0, y1) = bounds(curves, log_y);
    let ty = |y: f32| if log_y { y.log10() } else { y };
    let (cy0, cy1) = (ty(y0), ty(y1));
    let whole_x = curves
        .iter()
        .flat_map(|c| &c.points)
        .all(|p| p.0.fract() == 0.0);
    let y_ticks = match log_y {
        true => log_ticks(y0, y1).into_iter().map(f32::log10).collect(),
        false => linear_ticks(y0, y1, false),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            Ticked {
                lo: x0,
                hi: x1,
                ticks: linear_ticks(x0, x1, whole_x),
            },
            Ticked {
                lo: cy0,
                hi: cy1,
                ticks: y_ticks,
            },
        )
        .map_err(|e| e.to_string())?;
    let y_label = |v: &f32| tick_label(if log_y { 10f32.powf(*v) } else { *v });
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .y_desc(y_desc.as_str())
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.12))
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, c) in curves.iter().enumerate() {
        let (color, style) = curve_style(i, c);
        let pts: Vec<(f32, f32)> = drawable_points(c, log_y).map(|p| (p.0, ty(p.1))).collect();
        if pts.len() <= 60 {
            let dots = pts.iter().map(|&p| Circle::new(p, 3, color.filled()));
            chart.draw_series(dots).map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(pts, style))
            .map_err(|e| e.to_string())?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    if curves.iter().any(|c| !c.label.is_empty()) {
        let unit = |(x, y): (f32, f32)| ((x - x0) / (x1 - x0), (ty(y) - cy0) / (cy1 - cy0));
        chart
            .configure_series_labels()
            .position(emptiest_corner(curves, unit))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Panels side by side as an SVG document, for a page that inlines its
/// plots: each panel `(title, x label, y label, curves, log y)` drawn
/// `panel_size` pixels by [`draw_page_panel`].
pub fn panels_svg(
    panels: &[(String, String, String, Vec<Curve>, bool)],
    panel_size: (u32, u32),
) -> Result<String> {
    register_font();
    let here = Path::new("<inline SVG>");
    let n = panels.len().max(1);
    let mut svg = String::new();
    {
        let size = (panel_size.0 * n as u32, panel_size.1);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(here, e))?;
        for (area, panel) in root.split_evenly((1, n)).iter().zip(panels) {
            draw_page_panel(area, panel).map_err(|e| plot_error(here, e))?;
        }
        root.present().map_err(|e| plot_error(here, e))?;
    }
    Ok(svg)
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

    #[test]
    fn page_panels_have_round_ticks_and_render_to_a_string() {
        assert_eq!(
            linear_ticks(0.0, 1.0, false),
            [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(linear_ticks(1.0, 2.0, true), [1.0, 2.0]);
        let close = |a: Vec<f32>, b: &[f32]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs())
        };
        assert!(close(log_ticks(0.005, 3.0), &[0.01, 0.1, 1.0]));
        assert!(close(log_ticks(0.05, 0.5), &[0.1, 0.2, 0.5]));
        assert!(
            close(log_ticks(1.8, 3.0), &[2.0, 2.25, 2.5, 2.75, 3.0]),
            "a narrow range: linear ticks"
        );
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(2.5e-5), "2.5e-5");
        let curve = Curve {
            label: "one point".into(),
            points: vec![(3.0, 0.5)],
            thin: false,
        };
        let svg = panels_svg(
            &[("t".into(), "step".into(), "loss".into(), vec![curve], true)],
            (400, 300),
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<circle"),
            "a single point shows as a dot"
        );
    }
}
