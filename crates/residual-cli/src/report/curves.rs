//! The run's curves as plotters SVG (`residual_train::plots`): training loss
//! and accuracy by step, the per-epoch figures, and the learning rate and
//! gradient norm by step.

use crate::report::grid::evenly;
use crate::report::run::Run;
use residual_tensor::Error;
use residual_train::plots::{panels_svg, smooth, Curve};

/// One panel: title, x label, y label, curves, log y.
pub type Panel = (String, String, String, Vec<Curve>, bool);

/// The size of one panel in its SVG's pixels (two side by side fill the page).
pub const PANEL: (u32, u32) = (560, 360);

/// A curve named `label`.
pub fn curve(label: impl Into<String>, points: Vec<(f32, f32)>, thin: bool) -> Curve {
    Curve {
        label: label.into(),
        points,
        thin,
    }
}

/// A panel.
pub fn panel(title: &str, x: &str, y: &str, curves: Vec<Curve>, log_y: bool) -> Panel {
    (title.into(), x.into(), y.into(), curves, log_y)
}

/// The moving-average window for `n` per-step points: about 1/25 of the
/// run, 1 to 50 steps.
pub fn window(n: usize) -> usize {
    (n / 25).clamp(1, 50)
}

/// Points a per-step curve keeps at most on the page (evenly spaced), so
/// that a long run's page stays small.
const MAX_POINTS: usize = 2000;

/// At most [`MAX_POINTS`] of `points`, evenly spaced, the first and last kept.
pub fn thin_out(points: Vec<(f32, f32)>) -> Vec<(f32, f32)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    evenly(points.len(), MAX_POINTS)
        .into_iter()
        .map(|i| points[i])
        .collect()
}

/// A per-step series as a thin raw curve and its moving average (only the
/// raw one when the run is too short to smooth), each thinned out.
fn raw_and_smoothed(points: Vec<(f32, f32)>) -> Vec<Curve> {
    let w = window(points.len());
    if w == 1 {
        return vec![curve("per step", thin_out(points), false)];
    }
    let smoothed = thin_out(smooth(&points, w));
    vec![
        curve("per step", thin_out(points), true),
        curve(format!("mean of {w} steps"), smoothed, false),
    ]
}

/// Training loss and accuracy by step, with the evaluation split's figures
/// ([`Run::eval`]) at the end of each epoch.
pub fn training(run: &Run) -> Result<String, Error> {
    let by_step = |f: fn(&crate::report::run::Step) -> f32| -> Vec<(f32, f32)> {
        run.steps.iter().map(|s| (s.step as f32, f(s))).collect()
    };
    let spe = run.steps_per_epoch() as f32;
    let at_epoch_end = |f: fn(&crate::report::run::Epoch) -> Option<f32>| -> Vec<(f32, f32)> {
        run.epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f32 * spe, f(e)?)))
            .collect()
    };
    let eval = format!("{} (end of epoch)", run.eval.legend());
    let mut loss = raw_and_smoothed(by_step(|s| s.loss));
    loss.push(curve(&*eval, at_epoch_end(|e| e.test_loss), false));
    let mut acc = raw_and_smoothed(by_step(|s| s.acc));
    acc.push(curve(eval, at_epoch_end(|e| e.test_acc), false));
    panels_svg(
        &[
            panel("training loss", "step", "cross-entropy", loss, true),
            panel("accuracy", "step", "accuracy", acc, false),
        ],
        PANEL,
    )
}

/// Loss and accuracy by epoch: the epoch's training mean and the evaluation
/// split's figure ([`Run::eval`]).
pub fn per_epoch(run: &Run) -> Result<String, Error> {
    let series = |f: fn(&crate::report::run::Epoch) -> Option<f32>| -> Vec<(f32, f32)> {
        run.epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f32, f(e)?)))
            .collect()
    };
    let eval = run.eval.legend();
    panels_svg(
        &[
            panel(
                "loss by epoch",
                "epoch",
                "cross-entropy",
                vec![
                    curve("train (epoch mean)", series(|e| e.train_loss), false),
                    curve(eval, series(|e| e.test_loss), false),
                ],
                true,
            ),
            panel(
                "accuracy by epoch",
                "epoch",
                "accuracy",
                vec![
                    curve("train (epoch mean)", series(|e| e.train_acc), false),
                    curve(eval, series(|e| e.test_acc), false),
                ],
                false,
            ),
        ],
        PANEL,
    )
}

/// The learning rate and the global gradient norm by step (and the loss
/// scale of an f16 run).
pub fn optimizer(run: &Run) -> Result<String, Error> {
    let lr = thin_out(run.steps.iter().map(|s| (s.step as f32, s.lr)).collect());
    let norm = run
        .steps
        .iter()
        .map(|s| (s.step as f32, s.grad_norm))
        .collect();
    let mut panels = vec![
        panel(
            "learning rate",
            "step",
            "learning rate",
            vec![curve("", lr, false)],
            false,
        ),
        panel(
            "global gradient norm (before clipping)",
            "step",
            "L2 norm",
            raw_and_smoothed(norm),
            true,
        ),
    ];
    let scale: Vec<(f32, f32)> = run
        .steps
        .iter()
        .filter_map(|s| Some((s.step as f32, s.loss_scale?)))
        .collect();
    let scale = thin_out(scale);
    if !scale.is_empty() {
        panels.push(panel(
            "loss scale (f16)",
            "step",
            "scale",
            vec![curve("", scale, false)],
            true,
        ));
    }
    panels_svg(&panels, PANEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_series_are_thinned_to_the_page() {
        let long: Vec<(f32, f32)> = (0..10_000).map(|i| (i as f32, 1.0)).collect();
        let thin = thin_out(long);
        assert_eq!(thin.len(), MAX_POINTS);
        assert_eq!((thin[0].0, thin[MAX_POINTS - 1].0), (0.0, 9999.0));
        assert_eq!(window(10_000), 50);
        assert_eq!(window(10), 1);
    }
}
