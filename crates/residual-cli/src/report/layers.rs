//! The per-layer figures: gradient flow by depth over time, weight
//! distributions, and units the activation switched off, as heatmaps
//! ([`heatmap`]), depth curves (plotters) and a bar chart ([`bars`]).

use crate::report::bars;
use crate::report::curves::{curve, panel, PANEL};
use crate::report::grid::Grid;
use crate::report::heatmap::{self, Scale};
use crate::report::run::Snapshots;
use residual_tensor::Error;
use residual_train::plots::{grad_flow_curves, panels_svg, Curve, GradSnapshots};

/// Snapshots a heatmap keeps at most (evenly spaced).
const MAX_COLUMNS: usize = 240;

/// Value `pick` of every layer of one snapshot, by depth.
fn by_depth<const N: usize>(layers: &[(String, [f32; N])], pick: usize) -> Vec<(f32, f32)> {
    layers
        .iter()
        .enumerate()
        .map(|(d, (_, v))| (d as f32, v[pick]))
        .collect()
}

/// Value `pick` of the layers `names` over time.
fn over_time<const N: usize>(snaps: &Snapshots<N>, names: &[&String], pick: usize) -> Vec<Curve> {
    names
        .iter()
        .map(|name| {
            let points = snaps
                .iter()
                .filter_map(|(step, l)| {
                    let (_, v) = l.iter().find(|(n, _)| n == *name)?;
                    Some((*step as f32, v[pick]))
                })
                .collect();
            curve(name.as_str(), points, false)
        })
        .collect()
}

/// The first, middle and last of `rows`.
fn ends_and_middle(rows: &[String]) -> Vec<&String> {
    let mut picked: Vec<&String> = Vec::new();
    for i in [0, rows.len() / 2, rows.len().saturating_sub(1)] {
        if let Some(r) = rows.get(i).filter(|r| !picked.contains(r)) {
            picked.push(r);
        }
    }
    picked
}

/// The first and last snapshot's value `pick` by depth.
fn first_and_last<const N: usize>(snaps: &Snapshots<N>, pick: usize) -> Vec<Curve> {
    let mut out = Vec::new();
    if let Some((step, l)) = snaps.first() {
        out.push(curve(format!("step {step}"), by_depth(l, pick), true));
    }
    if let Some((step, l)) = snaps.last().filter(|_| snaps.len() > 1) {
        out.push(curve(format!("step {step}"), by_depth(l, pick), false));
    }
    out
}

/// Gradient flow: the heatmap of per-layer gradient norms (log colour) and
/// the norms by depth (later snapshots in later colours) and over time.
/// `None` when the log has no per-layer records.
pub fn grad_flow(snaps: &Snapshots<1>) -> Result<Option<[String; 2]>, Error> {
    let grid = Grid::from_snapshots(snaps, 0, MAX_COLUMNS);
    if grid.is_empty() {
        return Ok(None);
    }
    let map = heatmap::svg(
        "gradient L2 norm by layer and step",
        "gradient norm (log scale)",
        &grid,
        Scale::Log,
    );
    let flow: GradSnapshots = snaps
        .iter()
        .map(|(s, l)| (*s, l.iter().map(|(n, v)| (n.clone(), v[0])).collect()))
        .collect();
    let lines = panels_svg(
        &[
            panel(
                "gradient norm by depth (later steps in later colours)",
                "layer (0 = stem, last = classifier)",
                "gradient L2 norm",
                grad_flow_curves(&flow, 8),
                true,
            ),
            panel(
                "gradient norm over time: first, middle, last layer",
                "step",
                "gradient L2 norm",
                over_time(snaps, &ends_and_middle(&grid.rows), 0),
                true,
            ),
        ],
        PANEL,
    )?;
    Ok(Some([map, lines]))
}

/// Weight distributions: heatmaps of each layer's weight standard deviation
/// (log colour) and mean (centred on zero), and both by depth at the first
/// and last snapshot. `None` without per-layer records.
pub fn weights(snaps: &Snapshots<2>) -> Result<Option<[String; 3]>, Error> {
    let std = Grid::from_snapshots(snaps, 1, MAX_COLUMNS);
    if std.is_empty() {
        return Ok(None);
    }
    let mean = Grid::from_snapshots(snaps, 0, MAX_COLUMNS);
    let std_map = heatmap::svg(
        "weight standard deviation by layer and step",
        "weight std (log scale)",
        &std,
        Scale::Log,
    );
    let mean_map = heatmap::svg(
        "weight mean by layer and step",
        "weight mean (0 is white)",
        &mean,
        Scale::Symmetric,
    );
    let lines = panels_svg(
        &[
            panel(
                "weight std by depth: first and last snapshot",
                "layer (0 = stem, last = classifier)",
                "standard deviation",
                first_and_last(snaps, 1),
                true,
            ),
            panel(
                "weight mean by depth: first and last snapshot",
                "layer (0 = stem, last = classifier)",
                "mean",
                first_and_last(snaps, 0),
                false,
            ),
        ],
        PANEL,
    )?;
    Ok(Some([std_map, mean_map, lines]))
}

/// Dead units: the heatmap of each block's zero fraction over time (0 to 1)
/// and the last snapshot as bars. `None` without per-layer records.
pub fn dead_units(snaps: &Snapshots<1>) -> Option<[String; 2]> {
    let grid = Grid::from_snapshots(snaps, 0, MAX_COLUMNS);
    let (step, last) = snaps.last()?;
    if grid.is_empty() {
        return None;
    }
    let map = heatmap::svg(
        "fraction of zero outputs by block and step",
        "fraction zero",
        &grid,
        Scale::Linear { lo: 0.0, hi: 1.0 },
    );
    let bars: Vec<(String, f32)> = last.iter().map(|(n, v)| (n.clone(), v[0])).collect();
    let title = format!("zero outputs after the stem and each block at step {step}");
    Some([map, bars::svg(&title, &bars)])
}
