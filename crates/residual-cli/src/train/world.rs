//! The processes of a run: one, or the MPI world `mpirun` / `srun` started
//! this one in (binary built with `--features mpi`), detected from the
//! launcher's environment without a flag.

use residual_tensor::Error;
use residual_train::distributed::{launcher_world_size, Collective, Solo};
use std::sync::Arc;
use std::time::Duration;

/// The collective of this process's run: the MPI world when a launcher
/// started several processes, [`Solo`] otherwise. A binary built without
/// MPI that a launcher started as one of several processes refuses to run
/// (each would train alone and all would write the same run folder).
pub(super) fn join(timeout: Duration) -> Result<Arc<dyn Collective>, Error> {
    let launched = launcher_world_size().unwrap_or(1);
    if launched <= 1 {
        return Ok(Arc::new(Solo));
    }
    mpi_world(launched, timeout)
}

#[cfg(feature = "mpi")]
fn mpi_world(launched: usize, timeout: Duration) -> Result<Arc<dyn Collective>, Error> {
    let world = residual_train::distributed::mpi::MpiCollective::init(timeout)?;
    if world.world_size() != launched {
        return Err(Error::arg(
            "train",
            format!(
                "the launcher started {launched} processes but MPI sees a world of {}: the \
                 launcher (mpirun, srun) probably belongs to another MPI library than the one \
                 this binary was built with",
                world.world_size()
            ),
        ));
    }
    share_cores(world.local_size());
    Ok(Arc::new(world))
}

#[cfg(not(feature = "mpi"))]
fn mpi_world(launched: usize, _timeout: Duration) -> Result<Arc<dyn Collective>, Error> {
    Err(Error::arg(
        "train",
        format!(
            "an MPI launcher started this process as one of {launched}, but this residual was \
             built without MPI: each process would train alone and all would write the same run \
             folder. Build it with `cargo build --release -p residual-cli --features mpi` (needs \
             an MPI library's development files and libclang: Debian's libmpich-dev and \
             libclang-dev), or run it without mpirun"
        ),
    ))
}

/// Gives each of the `local` ranks on this machine its share of the cores
/// for its kernels (rayon's pool), unless `RAYON_NUM_THREADS` says otherwise:
/// ranks that each started one thread per core would oversubscribe them.
#[cfg(feature = "mpi")]
fn share_cores(local: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / local.max(1)).max(1);
    // Fails only when the pool already started, which `join` runs before.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}
