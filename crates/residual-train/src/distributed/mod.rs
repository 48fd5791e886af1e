//! Data-parallel training over a [`Collective`]: every rank (a process under
//! MPI, a thread in tests) holds the whole model, trains on its own shard of
//! each global batch, and the ranks average their gradients before every
//! optimizer step, so that all of them take the same step.
//!
//! - [`Collective`]: all-reduce (sum) of a flat f32 buffer, broadcast,
//!   barrier; implemented by [`Solo`] (a world of one), [`ThreadCollective`]
//!   (ranks as threads of one process, for tests) and, with the `mpi`
//!   feature, [`mpi::MpiCollective`].
//! - [`all_reduce_gradients`]: the gradients in buckets of
//!   [`BUCKET_ELEMS`] values, in the optimizer's parameter order (fixed, so a
//!   run is reproducible), averaged over the ranks.
//! - [`broadcast_model`], [`verify_same`], [`verify_config`]: rank 0's
//!   weights and buffers at the start, checksums of the whole training state
//!   compared every [`CHECK_EVERY`] steps, the configurations compared before
//!   the first step.
//!
//! The trainer uses them in [`Trainer::distribute`](crate::trainer::Trainer::distribute).

mod agreement;
mod buckets;
mod collective;
#[cfg(feature = "mpi")]
pub mod mpi;
mod threads;

#[cfg(test)]
mod tests;

pub use agreement::{
    broadcast_buffers, broadcast_model, state_checksum, verify_config, verify_same,
};
pub use buckets::{all_reduce_gradients, BUCKET_ELEMS};
pub use collective::{Collective, Replicas, Solo};
pub use threads::ThreadCollective;

use std::time::Duration;

/// Steps between two comparisons of the ranks' training-state checksums.
pub const CHECK_EVERY: u64 = 100;

/// How long a rank waits in a collective for the others by default before it
/// gives up (a rank that died or hangs).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The number of processes the launcher that started this one asked for,
/// from the environment MPI launchers set (MPICH's and Intel's `PMI_SIZE`,
/// OpenMPI's `OMPI_COMM_WORLD_SIZE`, and Slurm's `SLURM_NTASKS` in a job
/// step that `srun` started), or `None` when none did. Read without
/// starting MPI, so that a binary built without the `mpi` feature can say
/// it cannot join the world it was launched into.
pub fn launcher_world_size() -> Option<usize> {
    let slurm_step = std::env::var_os("SLURM_STEP_ID").is_some();
    ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE"]
        .iter()
        .chain(slurm_step.then_some(&"SLURM_NTASKS"))
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
}
