//! Learning-rate schedules, as functions of the optimizer step (PyTorch's formulas).

use residual_tensor::{Error, Result};
use serde::{Deserialize, Serialize};

/// A learning-rate schedule over optimizer steps `0, 1, ...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `StepLR`: times `gamma` every `step_size` steps.
    Step {
        /// Steps between decays.
        step_size: u64,
        /// Decay factor.
        gamma: f32,
    },
    /// `MultiStepLR`: times `gamma` at each milestone.
    MultiStep {
        /// Steps at which to decay.
        milestones: Vec<u64>,
        /// Decay factor.
        gamma: f32,
    },
    /// Linear warmup from 0 over `warmup` steps, then cosine to `min_lr` at `total`.
    WarmupCosine {
        /// Warmup steps.
        warmup: u64,
        /// Total steps.
        total: u64,
        /// Final learning rate.
        min_lr: f32,
    },
    /// `OneCycleLR` (cosine annealing): from `base/div_factor` up to the base rate
    /// over `pct_start` of `total`, then down to `base/(div_factor*final_div_factor)`.
    OneCycle {
        /// Total steps.
        total: u64,
        /// Fraction of steps spent increasing.
        pct_start: f32,
        /// Initial rate is `base / div_factor`.
        div_factor: f32,
        /// Final rate is `initial / final_div_factor`.
        final_div_factor: f32,
    },
}

fn cos_anneal(start: f32, end: f32, pct: f32) -> f32 {
    end + (start - end) / 2.0 * (1.0 + (std::f32::consts::PI * pct).cos())
}

impl Schedule {
    /// Parses `constant`, `step:SIZE:GAMMA`, `multistep:M1,M2,...:GAMMA`,
    /// `cosine:WARMUP` (to 0 at the end of training) or `onecycle`.
    pub fn parse(s: &str, total: u64) -> Result<Self> {
        let bad = || {
            Error::arg("schedule", format!("cannot parse {s:?}: expected constant, step:SIZE:GAMMA, multistep:M1,M2:GAMMA, cosine:WARMUP or onecycle"))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let int = |t: &str| t.parse::<u64>().map_err(|_| bad());
        // A decay factor is finite and in (0, 1]: 0 would stop training, more
        // than 1 would grow the rate without bound.
        let gamma = |t: &str| -> Result<f32> {
            let g = t.parse::<f32>().map_err(|_| bad())?;
            if !(g.is_finite() && g > 0.0 && g <= 1.0) {
                return Err(Error::arg(
                    "schedule",
                    format!("{s:?}: GAMMA must be a number in (0, 1], got {t}"),
                ));
            }
            Ok(g)
        };
        Ok(match parts.as_slice() {
            ["constant"] => Schedule::Constant,
            ["step", n, g] => {
                let step_size = int(n)?;
                if step_size == 0 {
                    return Err(Error::arg(
                        "schedule",
                        format!("{s:?}: SIZE (optimizer steps between decays) must be >= 1, got 0"),
                    ));
                }
                Schedule::Step {
                    step_size,
                    gamma: gamma(g)?,
                }
            }
            ["multistep", ms, g] => Schedule::MultiStep {
                milestones: ms.split(',').map(int).collect::<Result<_>>()?,
                gamma: gamma(g)?,
            },
            ["cosine"] => Schedule::WarmupCosine {
                warmup: 0,
                total,
                min_lr: 0.0,
            },
            ["cosine", w] => Schedule::WarmupCosine {
                warmup: int(w)?,
                total,
                min_lr: 0.0,
            },
            ["onecycle"] => Schedule::OneCycle {
                total,
                pct_start: 0.3,
                div_factor: 25.0,
                final_div_factor: 1e4,
            },
            _ => return Err(bad()),
        })
    }

    /// The steps the schedule spans, for the schedules shaped over a whole
    /// run (warmup + cosine, one-cycle); `None` for those that are a function
    /// of the step alone.
    pub fn total(&self) -> Option<u64> {
        match self {
            Schedule::WarmupCosine { total, .. } | Schedule::OneCycle { total, .. } => Some(*total),
            _ => None,
        }
    }

    /// The same schedule shaped over `total` steps instead (what extending a
    /// run with `--resume --epochs N` does, as timm rebuilds its scheduler
    /// for the new epoch count); a schedule without a total is unchanged.
    pub fn with_total(&self, total: u64) -> Self {
        let mut s = self.clone();
        match &mut s {
            Schedule::WarmupCosine { total: t, .. } | Schedule::OneCycle { total: t, .. } => {
                *t = total
            }
            _ => {}
        }
        s
    }

    /// The learning rate at optimizer step `step` for base rate `base`.
    pub fn lr(&self, base: f32, step: u64) -> f32 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => {
                base * gamma.powi((step / step_size.max(&1)) as i32)
            }
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| step >= m).count() as i32)
            }
            Schedule::WarmupCosine {
                warmup,
                total,
                min_lr,
            } => {
                if step < *warmup {
                    base * (step + 1) as f32 / *warmup as f32
                } else {
                    let span = total.saturating_sub(*warmup).max(1);
                    let pct = ((step - warmup) as f32 / span as f32).min(1.0);
                    cos_anneal(base, *min_lr, pct)
                }
            }
            Schedule::OneCycle {
                total,
                pct_start,
                div_factor,
                final_div_factor,
            } => {
                let initial = base / div_factor;
                let min = initial / final_div_factor;
                let up_end = (pct_start * *total as f32) - 1.0;
                let down_end = *total as f32 - 1.0;
                let s = step as f32;
                if s <= up_end {
                    cos_anneal(initial, base, if up_end > 0.0 { s / up_end } else { 1.0 })
                } else {
                    cos_anneal(
                        base,
                        min,
                        ((s - up_end) / (down_end - up_end).max(1.0)).min(1.0),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_parameter_is_checked() {
        for (bad, needle) in [
            ("step:0:0.1", "SIZE"),
            ("step:1:-1", "GAMMA"),
            ("step:1:0", "GAMMA"),
            ("step:1:nan", "GAMMA"),
            ("step:1:inf", "GAMMA"),
            ("step:1:1.5", "GAMMA"),
            ("multistep:2,4:-0.5", "GAMMA"),
        ] {
            let err = Schedule::parse(bad, 10).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(bad), "{bad}: {err}");
        }
        let onecycle = Schedule::parse("onecycle", 10).unwrap();
        assert_eq!(onecycle.total(), Some(10));
        assert_eq!(onecycle.with_total(40).total(), Some(40));
        assert_eq!(
            onecycle.with_total(40).lr(0.1, 39),
            Schedule::parse("onecycle", 40).unwrap().lr(0.1, 39)
        );
        assert_eq!(Schedule::Constant.with_total(40), Schedule::Constant);
        assert_eq!(
            Schedule::parse("step:3:0.5", 10).unwrap(),
            Schedule::Step {
                step_size: 3,
                gamma: 0.5
            }
        );
    }
}
