//! What a rank other than 0 does in a data-parallel run: the same steps and
//! evaluations as rank 0 (their collectives must meet), and nothing else:
//! rank 0 alone prints, writes the run folder and serves metrics.

use residual_tensor::Error;
use residual_train::data::Dataset;
use residual_train::trainer::{EpochEnd, Trainer};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How a follower's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// Every epoch was trained.
    Completed,
    /// Stopped by an interrupt, where rank 0 stopped and saved.
    Interrupted,
}

/// Trains as rank 0's [`super::run`] loop does, step for step and
/// evaluation for evaluation, then returns how the run ended.
pub(super) fn follow(
    mut trainer: Trainer,
    test: Arc<dyn Dataset>,
    stop: &AtomicBool,
) -> Result<Ended, Error> {
    while trainer.epoch < trainer.config.epochs {
        if trainer.train_epoch_until(stop, &mut |_| {})? == EpochEnd::Stopped {
            // Rank 0 saves the checkpoint: wait until it is whole.
            trainer.collective().barrier()?;
            return Ok(Ended::Interrupted);
        }
        trainer.evaluate(test.clone(), 256)?;
        if trainer.any_rank_stopping(stop)? {
            return Ok(Ended::Interrupted);
        }
    }
    trainer.evaluate(test, 256)?;
    Ok(Ended::Completed)
}
