//! Activation monitoring: while enabled on this thread, a ResNet's forward
//! records, after the stem and after every block, the fraction of its output
//! that is exactly zero (units a ReLU switched off: dead or sleeping units).

use residual_tensor::{Result, Tensor};
use std::cell::RefCell;

thread_local! {
    static RECORDS: RefCell<Option<Vec<(String, f32)>>> = const { RefCell::new(None) };
}

/// Starts recording on this thread (clearing earlier records).
pub fn start() {
    RECORDS.with(|r| *r.borrow_mut() = Some(Vec::new()));
}

/// Stops recording and returns `(layer, zero fraction)` in forward order.
pub fn take() -> Vec<(String, f32)> {
    RECORDS.with(|r| r.borrow_mut().take()).unwrap_or_default()
}

/// Records the zero fraction of `t` under `name` when recording is on.
pub(crate) fn observe(name: impl FnOnce() -> String, t: &Tensor) -> Result<()> {
    let on = RECORDS.with(|r| r.borrow().is_some());
    if !on {
        return Ok(());
    }
    let v = t.to_vec()?;
    let zeros = v.iter().filter(|&&x| x == 0.0).count() as f32 / v.len().max(1) as f32;
    RECORDS.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.push((name(), zeros));
        }
    });
    Ok(())
}
