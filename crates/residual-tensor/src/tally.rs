//! A per-thread running total that counts only while a counter reads it: the
//! mechanism behind [`crate::macs::MacCounter`] and
//! [`crate::saved::SavedBytesCounter`].

use std::cell::Cell;
use std::thread::LocalKey;

/// A thread's running total and how many counters read it.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    total: Cell<u64>,
    active: Cell<usize>,
}

impl Tally {
    /// An empty tally, for a `thread_local!`.
    pub(crate) const fn new() -> Self {
        Tally {
            total: Cell::new(0),
            active: Cell::new(0),
        }
    }
}

/// A counter started on one thread's tally: it sees every amount added on
/// that thread after it started. Counters nest.
#[derive(Debug)]
pub(crate) struct Counter {
    tally: &'static LocalKey<Tally>,
    base: u64,
}

impl Counter {
    /// Starts counting `tally` from zero.
    pub(crate) fn start(tally: &'static LocalKey<Tally>) -> Self {
        tally.with(|t| t.active.set(t.active.get() + 1));
        Counter {
            tally,
            base: tally.with(|t| t.total.get()),
        }
    }

    /// The amount added since this counter started, less what was
    /// subtracted (at least zero).
    pub(crate) fn count(&self) -> u64 {
        self.tally.with(|t| t.total.get()).saturating_sub(self.base)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.tally
            .with(|t| t.active.set(t.active.get().saturating_sub(1)));
    }
}

/// Adds `amount` to `tally` while a counter on it is alive; whether it did.
pub(crate) fn add(tally: &'static LocalKey<Tally>, amount: u64) -> bool {
    tally.with(|t| {
        let counting = t.active.get() > 0;
        if counting {
            t.total.set(t.total.get().saturating_add(amount));
        }
        counting
    })
}

/// Takes `amount` back from `tally` (an amount [`add`] counted) while a
/// counter on it is alive.
pub(crate) fn subtract(tally: &'static LocalKey<Tally>, amount: u64) {
    // A thread being torn down has no tally left to correct.
    let _ = tally.try_with(|t| {
        if t.active.get() > 0 {
            t.total.set(t.total.get().saturating_sub(amount));
        }
    });
}
