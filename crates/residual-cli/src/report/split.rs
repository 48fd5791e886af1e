//! Which split the figures evaluated after each epoch come from, as the page
//! names it: the held-out split, or the validation split that
//! `--val-fraction` carves from the training data.

use residual_train::checkpoint::CheckpointMeta;

/// The split a run evaluates on at the end of each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSplit {
    /// The dataset's held-out split (the default).
    HeldOut,
    /// A validation split carved from the training data (`--val-fraction`).
    Validation,
}

impl EvalSplit {
    /// The split of a run with checkpoint metadata `meta`: validation when
    /// its data source has a `val_fraction`, held-out otherwise (also
    /// without metadata or a recorded data source).
    pub fn of(meta: Option<&CheckpointMeta>) -> EvalSplit {
        let carved = meta
            .and_then(|m| m.config.data.as_ref())
            .is_some_and(|d| d.val_fraction.is_some());
        match carved {
            true => EvalSplit::Validation,
            false => EvalSplit::HeldOut,
        }
    }

    /// The name before a noun: "held-out" or "validation" (accuracy).
    pub fn adjective(self) -> &'static str {
        match self {
            EvalSplit::HeldOut => "held-out",
            EvalSplit::Validation => "validation",
        }
    }

    /// The name on its own, as in a legend: "held out" or "validation".
    pub fn legend(self) -> &'static str {
        match self {
            EvalSplit::HeldOut => "held out",
            EvalSplit::Validation => "validation",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_metadata_the_split_is_held_out() {
        assert_eq!(EvalSplit::of(None), EvalSplit::HeldOut);
        assert_eq!(EvalSplit::HeldOut.adjective(), "held-out");
        assert_eq!(EvalSplit::Validation.legend(), "validation");
    }
}
