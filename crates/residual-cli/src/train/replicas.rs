//! `--replicas N`: data-parallel training inside one process, the ranks
//! threads ([`ThreadCollective`]). On a machine whose cores a small model
//! cannot keep busy inside one kernel, N replicas of a model each training
//! on its share of the global batch keep them busy on whole steps (the main
//! job: 2 replicas on 2 cores), with the semantics of N MPI processes.

use super::follower::{self, Ended};
use residual_tensor::{Device, Error};
use residual_train::config::TrainConfig;
use residual_train::data::Dataset;
use residual_train::distributed::{Collective, ThreadCollective};
use residual_train::trainer::Trainer;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// How every replica builds its trainer: the run's configuration, or the
/// checkpoint it resumes (with `--epochs`).
#[derive(Clone)]
pub(super) enum Start {
    /// A new run.
    New(Box<TrainConfig>),
    /// A resumed run.
    Resume(PathBuf, Option<u64>),
}

/// Starts replicas 1..n as threads following the run (each with its own
/// trainer, built as `start` says on `train`), and returns replica 0's
/// collective, which the caller's trainer joins with
/// [`Trainer::distribute`]. A replica that fails prints its error and leaves
/// the group, which fails replica 0's next collective.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    n: usize,
    timeout: Duration,
    start: Start,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    dev: &Device,
    stop: Arc<AtomicBool>,
) -> Arc<dyn Collective> {
    let mut group = ThreadCollective::group(n, timeout).into_iter();
    let lead: Arc<dyn Collective> = Arc::new(group.next().expect("a group of n >= 1"));
    for c in group {
        let (start, train, test, dev, stop) = (
            start.clone(),
            train.clone(),
            test.clone(),
            dev.clone(),
            stop.clone(),
        );
        let rank = c.rank();
        std::thread::spawn(move || {
            let follow = || -> Result<Ended, Error> {
                let _pool = kernel_pool(n)?;
                let mut t = match start {
                    Start::New(config) => Trainer::new(*config, train, &dev)?,
                    Start::Resume(dir, epochs) => Trainer::resume(&dir, train, epochs, &dev)?,
                };
                t.distribute(Arc::new(c))?;
                follower::follow(t, test, &stop)
            };
            if let Err(e) = follow() {
                eprintln!("error: replica {rank} of {n}: {e}");
            }
        });
    }
    lead
}

/// Gives the calling thread, one of `n` replicas training in this process
/// (`n` = 1: the only one), its share of the cores for its kernels
/// ([`residual_tensor::cpu::kernel_pool`]): `threads / n` of them, at least
/// one, where `threads` is the size of the process-wide pool
/// (`RAYON_NUM_THREADS`, an MPI rank's share, or the cores). With 2 replicas
/// on 2 cores each replica's kernels run inline on its own core. Hold the
/// handle for the run.
pub(super) fn kernel_pool(n: usize) -> Result<rayon::ThreadPool, Error> {
    residual_tensor::cpu::kernel_pool(rayon::current_num_threads() / n.max(1))
}
