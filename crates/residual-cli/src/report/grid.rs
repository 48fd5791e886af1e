//! Per-layer snapshots as a grid for a heatmap: layers as rows (shallow to
//! deep, in the order the log names them), monitored steps as columns.

use crate::report::run::Snapshots;

/// Values by layer and step.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Row names (layers or blocks), shallow to deep.
    pub rows: Vec<String>,
    /// The step of each column.
    pub steps: Vec<u64>,
    /// `cells[row][column]`; NaN where a snapshot lacks the layer.
    pub cells: Vec<Vec<f32>>,
}

impl Grid {
    /// Value `pick` of each layer of `snaps`, keeping at most `max_cols`
    /// snapshots (evenly spaced, the first and the last always kept).
    pub fn from_snapshots<const N: usize>(
        snaps: &Snapshots<N>,
        pick: usize,
        max_cols: usize,
    ) -> Grid {
        let mut rows: Vec<String> = Vec::new();
        for (_, layers) in snaps {
            for (name, _) in layers {
                if !rows.contains(name) {
                    rows.push(name.clone());
                }
            }
        }
        let kept = evenly(snaps.len(), max_cols);
        let steps = kept.iter().map(|&i| snaps[i].0).collect();
        let cells = rows
            .iter()
            .map(|row| {
                kept.iter()
                    .map(|&i| {
                        let found = snaps[i].1.iter().find(|(n, _)| n == row);
                        found
                            .and_then(|(_, v)| v.get(pick).copied())
                            .unwrap_or(f32::NAN)
                    })
                    .collect()
            })
            .collect();
        Grid { rows, steps, cells }
    }

    /// Whether the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() || self.steps.is_empty()
    }
}

/// At most `max` indices of `0..n`, evenly spaced, first and last included.
pub fn evenly(n: usize, max: usize) -> Vec<usize> {
    let max = max.max(2);
    if n <= max {
        return (0..n).collect();
    }
    let mut out: Vec<usize> = (0..max)
        .map(|k| ((k * (n - 1)) as f64 / (max - 1) as f64).round() as usize)
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_become_rows_of_layers_and_columns_of_steps() {
        let snaps: Snapshots<2> = vec![
            (2, vec![("a".into(), [1.0, 2.0]), ("b".into(), [3.0, 4.0])]),
            (4, vec![("a".into(), [5.0, 6.0])]),
        ];
        let g = Grid::from_snapshots(&snaps, 1, 10);
        assert_eq!(g.rows, ["a", "b"]);
        assert_eq!(g.steps, [2, 4]);
        assert_eq!(g.cells[0], [2.0, 6.0]);
        assert!(g.cells[1][1].is_nan());
        assert_eq!(evenly(10, 4), [0, 3, 6, 9]);
        assert_eq!(evenly(3, 4), [0, 1, 2]);
    }
}
