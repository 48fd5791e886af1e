//! The MPI collective (feature `mpi`): the `mpi` crate (rsmpi) over the
//! system's MPI library (MPICH, OpenMPI, Intel MPI...).
//!
//! Operations are MPI's non-blocking collectives (`MPI_Iallreduce`,
//! `MPI_Ibcast`, `MPI_Ibarrier`), polled until they complete or the timeout
//! passes: a rank that waited that long for the others (one died without the
//! launcher noticing, or hangs) prints which operation timed out and aborts
//! the job (`MPI_Abort`), so no rank waits forever.

use super::collective::{check_root, Collective};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use residual_tensor::{Error, Result};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// This process's place in the MPI world.
pub struct MpiCollective {
    /// Finalizes MPI when dropped; the mutex serialises this process's MPI
    /// calls (MPI is initialised with `MPI_THREAD_SERIALIZED`).
    universe: Mutex<Universe>,
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    local_size: usize,
    timeout: Duration,
    library: String,
}

// SAFETY: the communicator is a handle that MPI allows any thread to use as
// long as calls are serialised (MPI_THREAD_SERIALIZED, which `init`
// requires); every call goes through `universe`'s lock.
unsafe impl Send for MpiCollective {}
// SAFETY: as above: shared use goes through the lock.
unsafe impl Sync for MpiCollective {}

impl MpiCollective {
    /// Starts MPI and joins the world the launcher (`mpirun`, `srun`) made;
    /// collectives give up after `timeout`.
    pub fn init(timeout: Duration) -> Result<Self> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::arg("mpi", "MPI was already initialised in this process"))?;
        if threading < Threading::Serialized {
            return Err(Error::arg(
                "mpi",
                format!(
                    "the MPI library provides thread level {threading:?}; training needs \
                     MPI_THREAD_SERIALIZED (its data loader and kernels run on other threads)"
                ),
            ));
        }
        let world = universe.world();
        let local_size = world.split_shared(world.rank()).size() as usize;
        let library = mpi::environment::library_version()
            .ok()
            .and_then(|v| {
                let first = v.lines().next()?.replace("Version:", "");
                Some(first.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .unwrap_or_else(|| "MPI".into());
        Ok(MpiCollective {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world,
            local_size,
            timeout,
            library,
            universe: Mutex::new(universe),
        })
    }

    /// Ranks on this machine (they share its cores).
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// Waits for `request` to complete, up to the timeout; past it, says
    /// which operation timed out and aborts the whole job.
    fn wait<'a, D: ?Sized, S: Scope<'a>>(&self, op: &str, mut request: Request<'a, D, S>) {
        // A timeout too large for the clock waits without a deadline.
        let deadline = Instant::now().checked_add(self.timeout);
        let mut spins = 0u32;
        loop {
            match request.test() {
                Ok(_) => return,
                Err(r) => request = r,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                eprintln!(
                    "error: rank {} of {}: {op} did not complete within {:?}: another rank died \
                     or hangs; aborting the MPI job",
                    self.rank, self.size, self.timeout
                );
                self.abort(70);
            }
            spins += 1;
            if spins < 1000 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let _serial = self.universe.lock().unwrap_or_else(|e| e.into_inner());
        let send = buf.to_vec();
        mpi::request::scope(|scope| {
            let r =
                self.world
                    .immediate_all_reduce_into(scope, &send[..], buf, SystemOperation::sum());
            self.wait("all-reduce", r);
        });
        Ok(())
    }
    fn broadcast(&self, buf: &mut [f32], root: usize) -> Result<()> {
        check_root(root, self.size)?;
        let _serial = self.universe.lock().unwrap_or_else(|e| e.into_inner());
        mpi::request::scope(|scope| {
            let r = self
                .world
                .process_at_rank(root as i32)
                .immediate_broadcast_into(scope, buf);
            self.wait("broadcast", r);
        });
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        let _serial = self.universe.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.world.immediate_barrier();
        self.wait("barrier", r);
        Ok(())
    }
    fn describe(&self) -> String {
        format!("{} processes (MPI, {})", self.size, self.library)
    }
    fn abort(&self, code: i32) {
        // The launcher forwards a rank's output asynchronously and drops
        // what it has not forwarded when the job is aborted: give it time to
        // pass on the error this rank just printed.
        std::thread::sleep(Duration::from_millis(500));
        self.world.abort(code)
    }
}
