//! Synchronised batch norm for data-parallel training: while a
//! [`SyncBatchNormGuard`] lives on a thread, every training-mode
//! [`BatchNorm2d`](crate::BatchNorm2d) forward on that thread normalises with
//! the statistics of the global batch (summed over the replicas by the
//! guard's [`ReplicaSum`]), forward and backward, as PyTorch's
//! `SyncBatchNorm`. Frozen norms and evaluation are unaffected.

use residual_tensor::ReplicaSum;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static REPLICAS: RefCell<Option<Arc<dyn ReplicaSum>>> = const { RefCell::new(None) };
}

/// The replicas this thread's training-mode batch norms synchronise over,
/// or `None` (per-replica statistics).
pub fn sync_replicas() -> Option<Arc<dyn ReplicaSum>> {
    REPLICAS.with(|r| r.borrow().clone())
}

/// Synchronises this thread's training-mode batch norms over `replicas`
/// until dropped (then the previous setting returns).
pub struct SyncBatchNormGuard {
    previous: Option<Arc<dyn ReplicaSum>>,
}

impl SyncBatchNormGuard {
    /// Starts synchronising over `replicas`.
    pub fn new(replicas: Arc<dyn ReplicaSum>) -> Self {
        let previous = REPLICAS.with(|r| r.borrow_mut().replace(replicas));
        SyncBatchNormGuard { previous }
    }
}

impl Drop for SyncBatchNormGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        REPLICAS.with(|r| *r.borrow_mut() = previous);
    }
}

impl std::fmt::Debug for SyncBatchNormGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncBatchNormGuard").finish_non_exhaustive()
    }
}
