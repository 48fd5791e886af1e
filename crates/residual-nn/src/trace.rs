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

/// Identifies a module in memory: its address and size. A sized module never
/// shares both with another sized one that is alive; zero-sized modules
/// (`Identity`) can, so they are never traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleKey {
    addr: usize,
    size: usize,
}

impl ModuleKey {
    /// The key of `m`; `None` for a zero-sized module.
    pub fn of<M: Module + ?Sized>(m: &M) -> Option<Self> {
        let size = std::mem::size_of_val(m);
        (size > 0).then_some(ModuleKey {
            addr: m as *const M as *const () as usize,
            size,
        })
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

/// What [`traced`] saw.
#[derive(Debug, Clone)]
pub struct Traced {
    /// Every leaf layer's forward, in call order.
    pub records: Vec<Record>,
    /// MACs counted over the whole closure.
    pub macs: u64,
}

/// Switches tracing off when dropped, also when the traced closure panics.
struct TraceGuard;

impl Drop for TraceGuard {
    fn drop(&mut self) {
        TRACE.with(|t| t.borrow_mut().take());
    }
}

/// Runs `f` with tracing on, returning its result and what the trace saw.
/// Traces do not nest: an inner `traced` is an error.
pub fn traced<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Traced)> {
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
    let guard = TraceGuard;
    let out = f();
    let trace = TRACE.with(|t| t.borrow_mut().take());
    drop(guard);
    let traced = trace.map_or(
        Traced {
            records: Vec::new(),
            macs: 0,
        },
        |t| Traced {
            macs: t.macs.count(),
            records: t.records,
        },
    );
    Ok((out?, traced))
}

/// Reports that layer `m` produced `out` (a no-op unless [`traced`] runs, and
/// for zero-sized modules). Every leaf layer of this crate calls it at the
/// end of its forward; a layer of another crate that computes with tensor
/// ops directly should too, and so should a module whose output is not its
/// last layer's (a reshape after it), so that a summary row shows its shape.
pub fn record<M: Module + ?Sized>(m: &M, out: &Tensor) {
    let Some(module) = ModuleKey::of(m) else {
        return;
    };
    TRACE.with(|t| {
        if let Some(trace) = t.borrow_mut().as_mut() {
            let macs_so_far = trace.macs.count();
            trace.records.push(Record {
                module,
                output: out.dims().to_vec(),
                macs_so_far,
            });
        }
    });
}
