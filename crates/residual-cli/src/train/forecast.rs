//! The run's cost said up front: after its first few steps, how long an
//! epoch and the rest of the run will take at the measured pace.

use std::time::{Duration, Instant};

/// Steps not measured: the first allocate the activations and warm caches.
const WARMUP_STEPS: u64 = 2;
/// Steps measured after the warm-up before the forecast is made.
const MEASURED_STEPS: u64 = 8;

/// The step after which the forecast is made.
pub(super) const FORECAST_AFTER: u64 = WARMUP_STEPS + MEASURED_STEPS;

/// Watches the steps of one process and makes one forecast.
pub(super) struct Forecast {
    steps_per_epoch: u64,
    steps_left: u64,
    seen: u64,
    since: Option<Instant>,
    done: bool,
}

impl Forecast {
    /// A forecast for `steps_left` steps still to run (this process's share
    /// of the run), in epochs of `steps_per_epoch`.
    pub(super) fn new(steps_per_epoch: u64, steps_left: u64) -> Self {
        Forecast {
            steps_per_epoch,
            steps_left,
            seen: 0,
            since: None,
            done: false,
        }
    }

    /// Called after every step: the forecast line once the measured steps
    /// are done (and only then), `None` otherwise.
    pub(super) fn step(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        self.seen += 1;
        if self.seen == WARMUP_STEPS {
            self.since = Some(Instant::now());
        }
        if self.seen < WARMUP_STEPS + MEASURED_STEPS || self.seen >= self.steps_left {
            return None;
        }
        self.done = true;
        let per_step = self.since?.elapsed() / MEASURED_STEPS as u32;
        let remaining = self.steps_left - self.seen;
        Some(format!(
            "time: about {} per epoch ({} steps), {} for the {} step(s) left, plus evaluations \
             (measured over steps {}-{})",
            human_duration(per_step * self.steps_per_epoch as u32),
            self.steps_per_epoch,
            human_duration(per_step.saturating_mul(remaining as u32)),
            remaining,
            WARMUP_STEPS + 1,
            WARMUP_STEPS + MEASURED_STEPS
        ))
    }
}

/// A duration as a person reads it: `42 s`, `3 min 05 s`, `2 h 10 min`.
pub(super) fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_minutes_or_hours() {
        assert_eq!(human_duration(Duration::from_millis(41_600)), "42 s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(human_duration(Duration::from_secs(7_830)), "2 h 10 min");
    }

    #[test]
    fn one_forecast_after_the_measured_steps_and_none_for_short_runs() {
        let mut f = Forecast::new(100, 300);
        let lines: Vec<(u64, String)> =
            (1..=300).filter_map(|i| f.step().map(|l| (i, l))).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, WARMUP_STEPS + MEASURED_STEPS);
        assert!(
            lines[0].1.contains("per epoch (100 steps)"),
            "{}",
            lines[0].1
        );
        assert!(
            lines[0].1.contains("for the 290 step(s) left"),
            "{}",
            lines[0].1
        );
        let mut short = Forecast::new(5, 5);
        assert!((0..5).all(|_| short.step().is_none()));
    }
}
