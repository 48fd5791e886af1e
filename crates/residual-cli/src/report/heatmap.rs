//! A heatmap as inline SVG: rows top (shallow) to bottom (deep), columns in
//! step order, a colour bar with its scale, and a tooltip (`<title>`) on
//! every cell. Written by hand rather than with plotters: the row labels
//! are layer names and the cells need their own tooltips.

use crate::report::colour;
use crate::report::grid::Grid;
use crate::report::html::{compact, escape};
use residual_train::plots::{linear_ticks, log_ticks, tick_label};
use std::fmt::Write;

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// log10 of the value between the grid's smallest and largest positive
    /// values (viridis); zero, negative and non-finite cells are grey.
    Log,
    /// Linear between `lo` and `hi` (viridis).
    Linear {
        /// The value at the dark end.
        lo: f32,
        /// The value at the bright end.
        hi: f32,
    },
    /// Linear and centred on zero (blue negative, white zero, red positive).
    Symmetric,
}

/// Width of the whole SVG, in its own pixels (the page scales it).
const WIDTH: f32 = 1120.0;
/// Grey for cells without a value the scale can show.
const MISSING: &str = "#c8c8c8";

/// The scale's colour of `v`, or `None` when it cannot show `v`, with the
/// range `(lo, hi)` it maps (log10 units for [`Scale::Log`]).
struct Mapping {
    scale: Scale,
    lo: f32,
    hi: f32,
}

impl Mapping {
    fn new(scale: Scale, grid: &Grid) -> Mapping {
        let vals = grid
            .cells
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        let (mut lo, mut hi) = match scale {
            Scale::Log => vals
                .filter(|v| *v > 0.0)
                .map(f32::log10)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                }),
            Scale::Linear { lo, hi } => (lo, hi),
            Scale::Symmetric => {
                let m = vals.fold(0.0f32, |m, v| m.max(v.abs()));
                (-m, m)
            }
        };
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi <= lo {
            (lo, hi) = match scale {
                Scale::Log => (lo - 0.5, hi + 0.5),
                _ if lo == 0.0 => (-1.0, 1.0),
                _ => (lo - lo.abs() * 0.5, hi + hi.abs() * 0.5),
            };
        }
        Mapping { scale, lo, hi }
    }

    fn t(&self, v: f32) -> Option<f32> {
        let x = match self.scale {
            Scale::Log if v > 0.0 => v.log10(),
            Scale::Log => return None,
            _ => v,
        };
        x.is_finite().then(|| (x - self.lo) / (self.hi - self.lo))
    }

    fn colour(&self, t: f32) -> String {
        match self.scale {
            Scale::Symmetric => colour::diverging(t),
            _ => colour::viridis(t),
        }
    }

    /// Colour-bar ticks: `(t, label)`, at round values.
    fn ticks(&self) -> Vec<(f32, String)> {
        let at = |x: f32| (x - self.lo) / (self.hi - self.lo);
        match self.scale {
            Scale::Log => {
                let (lo, hi) = (10f32.powf(self.lo), 10f32.powf(self.hi));
                log_ticks(lo, hi)
                    .into_iter()
                    .map(|v| (at(v.log10()), tick_label(v)))
                    .collect()
            }
            _ => linear_ticks(self.lo, self.hi, false)
                .into_iter()
                .map(|v| (at(v), tick_label(v)))
                .collect(),
        }
    }
}

/// The heatmap of `grid` titled `title`, its colour bar labelled `what`.
pub fn svg(title: &str, what: &str, grid: &Grid, scale: Scale) -> String {
    let map = Mapping::new(scale, grid);
    let (rows, cols) = (grid.rows.len().max(1), grid.steps.len().max(1));
    let longest = grid
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(1);
    let left = (longest as f32 * 6.8 + 14.0).clamp(60.0, 240.0);
    let (top, bottom, right) = (36.0, 48.0, 110.0);
    let cell_h = (400.0 / rows as f32).clamp(5.0, 20.0);
    let plot_w = WIDTH - left - right;
    let plot_h = cell_h * rows as f32;
    let cell_w = plot_w / cols as f32;
    let height = top + plot_h + bottom;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" class="heatmap">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let _ = write!(s, r#"<g shape-rendering="crispEdges">"#);
    for (r, (name, row)) in grid.rows.iter().zip(&grid.cells).enumerate() {
        let y = top + r as f32 * cell_h;
        for (c, &v) in row.iter().enumerate() {
            let fill = map
                .t(v)
                .map_or_else(|| MISSING.to_string(), |t| map.colour(t));
            let shown = if v.is_finite() {
                compact(f64::from(v))
            } else {
                "none".into()
            };
            let _ = write!(
                s,
                r#"<rect x="{:.2}" y="{y:.2}" width="{:.2}" height="{cell_h:.2}" fill="{fill}"><title>{} at step {}: {shown}</title></rect>"#,
                left + c as f32 * cell_w,
                cell_w + 0.3,
                escape(name),
                grid.steps[c]
            );
        }
    }
    s.push_str("</g>");
    // Row labels (every one that fits).
    let stride = (11.0 / cell_h).ceil().max(1.0) as usize;
    for (r, name) in grid.rows.iter().enumerate().step_by(stride) {
        let y = top + (r as f32 + 0.5) * cell_h + 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{y:.1}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            escape(name)
        );
    }
    // The step axis.
    let axis_y = top + plot_h;
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/>"##,
        left + plot_w
    );
    for c in crate::report::grid::evenly(grid.steps.len(), 8) {
        let x = left + (c as f32 + 0.5) * cell_w;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{axis_y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            axis_y + 5.0,
            axis_y + 18.0,
            grid.steps[c]
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">step (shallow layers at the top, deep at the bottom)</text>"#,
        left + plot_w / 2.0,
        axis_y + 38.0
    );
    colour_bar(
        &mut s,
        &map,
        what,
        left + plot_w + 24.0,
        top,
        plot_h.max(120.0),
    );
    s.push_str("</svg>");
    s
}

/// The colour bar at `(x, y)`, `h` high, with its ticks and `what` beside it.
fn colour_bar(s: &mut String, map: &Mapping, what: &str, x: f32, y: f32, h: f32) {
    const BANDS: usize = 40;
    let band = h / BANDS as f32;
    let _ = write!(s, r#"<g shape-rendering="crispEdges">"#);
    for k in 0..BANDS {
        let t = 1.0 - (k as f32 + 0.5) / BANDS as f32;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{:.2}" width="14" height="{:.2}" fill="{}"/>"#,
            y + k as f32 * band,
            band + 0.3,
            map.colour(t)
        );
    }
    s.push_str("</g>");
    let _ = write!(
        s,
        r##"<rect x="{x}" y="{y}" width="14" height="{h}" fill="none" stroke="#333"/>"##
    );
    for (t, label) in map.ticks() {
        let ty = y + (1.0 - t) * h;
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{ty:.1}" x2="{}" y2="{ty:.1}" stroke="#333"/><text x="{}" y="{:.1}" font-size="11">{label}</text>"##,
            x + 14.0,
            x + 18.0,
            x + 21.0,
            ty + 4.0
        );
    }
    let (cx, cy) = (x + 76.0, y + h / 2.0);
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{cy}" font-size="12" text-anchor="middle" transform="rotate(-90 {cx} {cy})">{}</text>"#,
        escape(what)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_coloured_by_scale_and_names_escaped() {
        let grid = Grid {
            rows: vec!["conv1".into(), "<fc>".into()],
            steps: vec![10, 20],
            cells: vec![vec![0.01, 1.0], vec![f32::NAN, 0.0]],
        };
        let s = svg("gradient norm", "norm", &grid, Scale::Log);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<title>").count(), 4);
        assert!(s.contains("&lt;fc&gt;") && !s.contains("<fc>"));
        assert!(s.contains(&colour::viridis(0.0)) && s.contains(&colour::viridis(1.0)));
        assert_eq!(s.matches(MISSING).count(), 2, "NaN and zero on a log scale");
        let flat = Grid {
            rows: vec!["a".into()],
            steps: vec![1],
            cells: vec![vec![0.0]],
        };
        let s = svg("flat", "x", &flat, Scale::Symmetric);
        assert!(s.contains(&colour::diverging(0.5)), "zero is white");
    }
}
