//! Tracing a forward pass: which layer produced which output, and the
//! multiply-accumulates spent on the way.
//!
//! While [`traced`] runs a closure on this thread, every leaf layer of this
//! crate reports its output after its forward ([`record`]). A record names the
//! layer by its address, so [`crate::summary`] can tell which row of a
//! summary (a sub-tree of the model) each output belongs to without the model
//! code naming anything. Outside [`traced`], [`record`] is one thread-local
//! read.

use crate::module::Module;
use residual_tensor::macs::MacCounter;
use residual_tensor::{Result, Tensor};
use std::cell::RefCell;

/// Identifies a module in memory: its address and size (two zero-sized
/// modules may share an address, a sized one never shares it with another
/// sized one that is alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleKey {
    addr: usize,
    size: usize,
}

impl ModuleKey {
    /// The key of `m`.
    pub fn of<M: Module + ?Sized>(m: &M) -> Self {
        ModuleKey {
            addr: m as *const M as *const () as usize,
            size: std::mem::size_of_val(m),
        }
    }
}

/// One leaf layer's forward, as [`traced`] saw it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The layer.
    pub module: ModuleKey,
    /// Its output's shape.
    pub output: Vec<usize>,
    /// MACs counted on this thread from the start of the trace up to the end
    /// of this layer's forward.
    pub macs_so_far: u64,
}

struct Trace {
    records: Vec<Record>,
    macs: MacCounter,
}

thread_local! {
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// Runs `f` with tracing on, returning its result and the records of every
/// leaf layer's forward in call order. Traces do not nest: an inner `traced`
/// is an error.
pub fn traced<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Vec<Record>)> {
    let busy = TRACE.with(|t| t.borrow().is_some());
    if busy {
        return Err(residual_tensor::Error::arg(
            "trace",
            "a forward pass is already being traced on this thread",
        ));
    }
    TRACE.with(|t| {
        *t.borrow_mut() = Some(Trace {
            records: Vec::new(),
            macs: MacCounter::start(),
        })
    });
    let out = f();
    let trace = TRACE.with(|t| t.borrow_mut().take());
    Ok((out?, trace.map(|t| t.records).unwrap_or_default()))
}

/// Reports that leaf layer `m` produced `out` (a no-op unless [`traced`] runs).
pub fn record<M: Module + ?Sized>(m: &M, out: &Tensor) {
    TRACE.with(|t| {
        if let Some(trace) = t.borrow_mut().as_mut() {
            let macs_so_far = trace.macs.count();
            trace.records.push(Record {
                module: ModuleKey::of(m),
                output: out.dims().to_vec(),
                macs_so_far,
            });
        }
    });
}
