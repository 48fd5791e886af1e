//! Batch-norm recalibration ("precise BN"): while a [`BatchStatisticsGuard`]
//! lives on a thread, every training-mode [`BatchNorm2d`](crate::BatchNorm2d)
//! forward on that thread stores the batch's own statistics as its running
//! mean and variance (momentum 1; the variance is the batch's population
//! variance, without Bessel's correction, so that batches combine exactly)
//! and leaves `num_batches_tracked` alone, so
//! that a caller can read each batch's statistics and average them
//! (`residual_train::precise_bn`). Evaluation and frozen norms are unaffected.

use std::cell::Cell;

thread_local! {
    static BATCH_STATISTICS: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread's training-mode batch norms store each batch's
/// statistics instead of updating a running average.
pub fn storing_batch_statistics() -> bool {
    BATCH_STATISTICS.with(Cell::get)
}

/// Makes this thread's training-mode batch norms store each batch's
/// statistics until dropped (then the previous setting returns).
#[derive(Debug)]
#[must_use = "batch statistics are stored only while the guard lives"]
pub struct BatchStatisticsGuard {
    previous: bool,
}

impl BatchStatisticsGuard {
    /// Starts storing batch statistics.
    pub fn new() -> Self {
        BatchStatisticsGuard {
            previous: BATCH_STATISTICS.with(|c| c.replace(true)),
        }
    }
}

impl Default for BatchStatisticsGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BatchStatisticsGuard {
    fn drop(&mut self) {
        BATCH_STATISTICS.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchNorm2d, BnMode, Mode, Module};
    use residual_tensor::{Device, Tensor};

    #[test]
    fn a_guarded_forward_stores_the_batch_statistics_and_counts_no_step() {
        let dev = Device::cpu();
        let bn = BatchNorm2d::new(2, BnMode::Normal, &dev).unwrap();
        // [2, 2, 1, 2]: channel 0 holds 1, 2, 3, 6; channel 1 holds 0, 0, 4, 4.
        let x = Tensor::from_vec(vec![1., 2., 0., 0., 3., 6., 4., 4.], [2, 2, 1, 2], &dev).unwrap();
        {
            let _g = BatchStatisticsGuard::new();
            assert!(storing_batch_statistics());
            bn.forward(&x, Mode::Train).unwrap();
        }
        assert!(!storing_batch_statistics());
        assert_eq!(bn.running_mean.get().to_vec().unwrap(), vec![3.0, 2.0]);
        // Without Bessel's correction: channel 0 (4 + 1 + 0 + 9) / 4, channel 1 16 / 4.
        let var = bn.running_var.get().to_vec().unwrap();
        assert!((var[0] - 14.0 / 4.0).abs() < 1e-5 && (var[1] - 16.0 / 4.0).abs() < 1e-5);
        assert_eq!(bn.num_batches_tracked.get().to_vec().unwrap(), vec![0.0]);
        // Without the guard: a momentum-0.1 step, counted.
        bn.forward(&x, Mode::Train).unwrap();
        assert_eq!(bn.num_batches_tracked.get().to_vec().unwrap(), vec![1.0]);
        let mean = bn.running_mean.get().to_vec().unwrap();
        assert!((mean[0] - 3.0).abs() < 1e-6 && (mean[1] - 2.0).abs() < 1e-6);
    }
}
