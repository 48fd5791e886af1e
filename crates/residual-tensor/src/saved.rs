//! Counting the bytes the autograd graph keeps alive on this thread.
//!
//! Every op output recorded for backward (an output with a graph node) stays
//! alive until `backward` frees the graph, so their sum over one training
//! forward is the activation memory of a step. While a [`SavedBytesCounter`]
//! is alive, ops add the bytes of each such output to a per-thread total; the
//! trainer's memory estimate reads it over a small forward before a run
//! allocates the real thing.

use crate::tally::{self, Counter, Tally};

thread_local! {
    /// Bytes counted on this thread while any counter was alive.
    static SAVED: Tally = const { Tally::new() };
}

/// Counts the bytes of the op outputs recorded for backward on this thread
/// while it lives. Counters nest: each sees every byte counted after it started.
#[derive(Debug)]
pub struct SavedBytesCounter(Counter);

impl SavedBytesCounter {
    /// Starts counting from zero.
    pub fn start() -> Self {
        SavedBytesCounter(Counter::start(&SAVED))
    }

    /// Bytes counted since this counter started.
    pub fn count(&self) -> u64 {
        self.0.count()
    }
}

/// Adds `bytes` to the running total while a counter is alive.
pub(crate) fn add(bytes: u64) {
    tally::add(&SAVED, bytes);
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    #[test]
    fn counts_outputs_kept_for_backward_only() {
        let dev = Device::cpu();
        let x = Tensor::ones([4, 8], &dev).unwrap();
        let w = Tensor::ones([4, 8], &dev).unwrap().requires_grad_();
        let counter = super::SavedBytesCounter::start();
        let _untracked = x.relu().unwrap(); // no input requires grad: not kept
        assert_eq!(counter.count(), 0);
        let y = x.mul(&w).unwrap(); // [4, 8] f32: 128 bytes
        let _z = y.sum_all().unwrap(); // one f32
        assert_eq!(counter.count(), 128 + 4);
        let _quiet = crate::no_grad(|| y.relu()).unwrap();
        assert_eq!(counter.count(), 132, "no_grad outputs are not kept");
        drop(counter);
        let fresh = super::SavedBytesCounter::start();
        assert_eq!(fresh.count(), 0);
    }
}
