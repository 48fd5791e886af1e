//! Counting the multiply-accumulates of forward ops on this thread.
//!
//! Convolutions and matrix products add their MACs (the figure torchvision
//! publishes: one per weight tap and output element) to a per-thread counter
//! while a [`MacCounter`] is alive. Model summaries read it between layers,
//! so any model built from these ops gets its MAC counts without writing them
//! down. Backward kernels are not counted.

use std::cell::Cell;

thread_local! {
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Counts the forward MACs of this thread while it lives; dropping it
/// restores the counter that was running before (counters nest).
#[derive(Debug)]
pub struct MacCounter {
    outer: Option<u64>,
}

impl MacCounter {
    /// Starts counting from zero.
    pub fn start() -> Self {
        MacCounter {
            outer: COUNT.with(|c| c.replace(Some(0))),
        }
    }

    /// MACs counted so far.
    pub fn count(&self) -> u64 {
        COUNT.with(|c| c.get()).unwrap_or(0)
    }
}

impl Drop for MacCounter {
    fn drop(&mut self) {
        let inner = COUNT.with(|c| c.get()).unwrap_or(0);
        // An outer counter also counts what this one saw.
        COUNT.with(|c| c.set(self.outer.map(|o| o.saturating_add(inner))));
    }
}

/// Adds `macs` to the running counter, if any.
pub(crate) fn add(macs: u64) {
    COUNT.with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n.saturating_add(macs)));
        }
    });
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
        let fresh = MacCounter::start();
        assert_eq!(fresh.count(), 0);
    }
}
