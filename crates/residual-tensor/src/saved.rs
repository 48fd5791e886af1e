//! Counting the bytes the autograd graph keeps alive on this thread.
//!
//! An op output recorded for backward (an output with a graph node) lives
//! while a handle or a backward rule holds it: a convolution's input until its
//! backward has run, a batch norm's output that only a ReLU reads until the
//! ReLU has made its own. While a [`SavedBytesCounter`] is alive, ops add the
//! bytes of each such output to a per-thread total and take them back when
//! the output is freed (on the thread that frees it), so the count at the
//! end of a training forward is the activation memory the step keeps for
//! backward. The trainer's memory estimate reads it over a small forward
//! before a run allocates the real thing.

use crate::tally::{self, Counter, Tally};

thread_local! {
    /// Bytes counted on this thread while any counter was alive.
    static SAVED: Tally = const { Tally::new() };
}

/// Counts the bytes of the op outputs recorded for backward on this thread
/// while it lives, less those freed since. Counters nest: each sees every
/// byte counted after it started (and never goes below zero).
#[derive(Debug)]
pub struct SavedBytesCounter(Counter);

impl SavedBytesCounter {
    /// Starts counting from zero.
    pub fn start() -> Self {
        SavedBytesCounter(Counter::start(&SAVED))
    }

    /// Bytes of the recorded outputs made since this counter started and
    /// not freed yet.
    pub fn count(&self) -> u64 {
        self.0.count()
    }
}

/// Adds `bytes` to the running total while a counter is alive; whether it did.
pub(crate) fn add(bytes: u64) -> bool {
    tally::add(&SAVED, bytes)
}

/// Takes back `bytes` that [`add`] counted, the output being freed.
pub(crate) fn remove(bytes: u64) {
    tally::subtract(&SAVED, bytes);
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    #[test]
    fn counts_outputs_kept_for_backward_while_they_live() {
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
        // exp keeps its input, relu its output, sum_all nothing of its
        // input: once their handles are dropped, the exp's output (read by
        // the relu only) is freed, the mul's (the exp's input) and the
        // relu's are not.
        let e = y.exp().unwrap();
        let r = e.relu().unwrap();
        let _s = r.sum_all().unwrap();
        assert_eq!(counter.count(), 132 + 2 * 128 + 4);
        drop((y, r));
        assert_eq!(counter.count(), 132 + 2 * 128 + 4, "all kept for backward");
        drop(e);
        assert_eq!(
            counter.count(),
            132 + 128 + 4,
            "nothing keeps the exp's output"
        );
        drop(_s);
        assert_eq!(counter.count(), 4, "the sum's graph is freed, y with it");
        let e = w.exp().unwrap();
        let _sum = e.add(&w).unwrap();
        assert_eq!(counter.count(), 4 + 2 * 128);
        drop(e);
        assert_eq!(counter.count(), 4 + 128, "add keeps neither operand");
        drop(counter);
        let fresh = super::SavedBytesCounter::start();
        assert_eq!(fresh.count(), 0);
    }
}
