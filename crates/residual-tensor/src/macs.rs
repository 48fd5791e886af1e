//! Counting the multiply-accumulates of forward ops on this thread.
//!
//! Convolutions and matrix products add their MACs (the figure torchvision
//! publishes: one per weight tap and output element) to a per-thread total
//! while a [`MacCounter`] is alive. Model summaries read it between layers,
//! so any model built from these ops gets its MAC counts without writing them
//! down. Backward kernels are not counted.

use crate::tally::{self, Counter, Tally};

thread_local! {
    /// MACs counted on this thread while any counter was alive.
    static MACS: Tally = const { Tally::new() };
}

/// Counts the forward MACs of this thread from its start while it lives.
/// Counters nest: each sees every MAC counted after it started.
#[derive(Debug)]
pub struct MacCounter(Counter);

impl MacCounter {
    /// Starts counting from zero.
    pub fn start() -> Self {
        MacCounter(Counter::start(&MACS))
    }

    /// MACs counted since this counter started.
    pub fn count(&self) -> u64 {
        self.0.count()
    }
}

/// Adds `macs` to the running total while a counter is alive.
pub(crate) fn add(macs: u64) {
    tally::add(&MACS, macs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_while_alive_and_nests() {
        add(5);
        let outer = MacCounter::start();
        add(2);
        {
            let inner = MacCounter::start();
            add(3);
            assert_eq!(inner.count(), 3);
        }
        assert_eq!(
            outer.count(),
            5,
            "the outer counter sees the inner one's MACs"
        );
        drop(outer);
        add(7);
        let fresh = MacCounter::start();
        assert_eq!(
            fresh.count(),
            0,
            "nothing is counted while no counter lives"
        );
    }
}
