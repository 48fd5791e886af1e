//! The [`Collective`] interface of data-parallel training, the world of one
//! ([`Solo`]), and a collective as the tensor core's [`ReplicaSum`].

use residual_tensor::{Error, ReplicaSum, Result};
use std::sync::Arc;

/// The communication of a data-parallel run. Every rank calls the same
/// operations in the same order with buffers of the same length; an
/// operation that does not complete within the collective's timeout (a rank
/// died or hangs) fails with an error naming the operation, or, under MPI,
/// says so and aborts the job.
pub trait Collective: Send + Sync {
    /// This rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn world_size(&self) -> usize;
    /// Replaces `buf` on every rank by the element-wise sum over the ranks.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// Replaces `buf` on every rank by rank `root`'s.
    fn broadcast(&self, buf: &mut [f32], root: usize) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// What carries the run, for the console: `1 process`, `2 processes (MPI, ...)`.
    fn describe(&self) -> String;
    /// Ends every rank of the job at once, after this rank failed alone (the
    /// others would wait for it until their timeout). Returns where ranks
    /// are not processes of their own (one rank, threads: the caller's error
    /// reaches the others when its handle is dropped).
    fn abort(&self, _code: i32) {}
}

/// A world of one rank: every collective is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _buf: &mut [f32], _root: usize) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "1 process".into()
    }
}

/// A collective as the tensor core's [`ReplicaSum`], for synchronised batch
/// norm ([`residual_nn::sync_bn`]).
pub struct Replicas(pub Arc<dyn Collective>);

impl ReplicaSum for Replicas {
    fn sum_over_replicas(&self, buf: &mut [f32]) -> Result<()> {
        self.0.all_reduce_sum(buf)
    }
}

/// Checks that a broadcast's `root` is a rank of a world of `world`.
pub(super) fn check_root(root: usize, world: usize) -> Result<()> {
    if root >= world {
        return Err(Error::arg(
            "collective",
            format!("broadcast from rank {root} in a world of {world}"),
        ));
    }
    Ok(())
}
