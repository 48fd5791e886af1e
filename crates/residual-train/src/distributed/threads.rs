//! Ranks as threads of one process: the collective of the equivalence tests,
//! and of anyone who wants data parallelism without MPI on one machine.
//!
//! Each operation is a rendezvous: every rank deposits its buffer; the last
//! to arrive combines them in rank order (so sums are reproducible) and
//! wakes the others, who copy the result. A rank whose handle is dropped
//! (its thread ended or failed) breaks the group: the others' pending and
//! later operations fail at once instead of waiting for it.

use super::collective::{check_root, Collective};
use residual_tensor::{Error, Result};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a rank asked for, to catch ranks that call different operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    AllReduce,
    Broadcast(usize),
    Barrier,
}

struct Round {
    /// Each rank's contribution to the round in progress.
    slots: Vec<Option<(Op, Vec<f32>)>>,
    arrived: usize,
    /// Completed rounds.
    generation: u64,
    /// The last completed round's result.
    result: Arc<std::result::Result<Vec<f32>, String>>,
    /// The first rank whose handle was dropped.
    left: Option<usize>,
}

struct Group {
    round: Mutex<Round>,
    done: Condvar,
}

/// One rank's handle on a group of ranks that are threads of this process.
pub struct ThreadCollective {
    rank: usize,
    world: usize,
    group: Arc<Group>,
    timeout: Duration,
}

impl ThreadCollective {
    /// Handles for the `world` ranks of a new group (hand one to each
    /// thread); each operation gives up after `timeout`.
    pub fn group(world: usize, timeout: Duration) -> Vec<ThreadCollective> {
        let group = Arc::new(Group {
            round: Mutex::new(Round {
                slots: vec![None; world],
                arrived: 0,
                generation: 0,
                result: Arc::new(Ok(Vec::new())),
                left: None,
            }),
            done: Condvar::new(),
        });
        (0..world)
            .map(|rank| ThreadCollective {
                rank,
                world,
                group: group.clone(),
                timeout,
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        self.group.round.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deposits `buf` for `op`, waits for every rank, and returns the result.
    fn exchange(&self, op: Op, buf: Vec<f32>) -> Result<Vec<f32>> {
        let name = match op {
            Op::AllReduce => "all_reduce",
            Op::Broadcast(_) => "broadcast",
            Op::Barrier => "barrier",
        };
        let fail =
            |msg: String| Error::arg("collective", format!("rank {}: {name}: {msg}", self.rank));
        let mut round = self.lock();
        if let Some(r) = round.left {
            return Err(fail(format!(
                "rank {r} has left the group (its thread ended or failed)"
            )));
        }
        round.slots[self.rank] = Some((op, buf));
        round.arrived += 1;
        let generation = round.generation;
        if round.arrived == self.world {
            let slots: Vec<(Op, Vec<f32>)> = round
                .slots
                .iter_mut()
                .map(|s| s.take().unwrap_or((op, Vec::new())))
                .collect();
            round.result = Arc::new(combine(&slots));
            round.arrived = 0;
            round.generation += 1;
            self.group.done.notify_all();
        } else {
            // A timeout too large for the clock waits without a deadline.
            let deadline = Instant::now().checked_add(self.timeout);
            while round.generation == generation {
                if let Some(r) = round.left {
                    return Err(fail(format!(
                        "rank {r} has left the group (its thread ended or failed)"
                    )));
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    let missing: Vec<usize> = (0..self.world)
                        .filter(|&r| round.slots[r].is_none())
                        .collect();
                    // The round cannot complete: the group is broken for every rank.
                    round.left.get_or_insert(missing[0]);
                    self.group.done.notify_all();
                    return Err(fail(format!(
                        "rank(s) {missing:?} did not join within {:?} (died or hung)",
                        self.timeout
                    )));
                }
                round = self
                    .group
                    .done
                    .wait_timeout(
                        round,
                        deadline.map_or(Duration::from_secs(3600), |d| d - now),
                    )
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        match &*round.result {
            Ok(v) => Ok(v.clone()),
            Err(msg) => Err(fail(msg.clone())),
        }
    }
}

/// The result of one round: the sum in rank order, or the root's buffer.
fn combine(slots: &[(Op, Vec<f32>)]) -> std::result::Result<Vec<f32>, String> {
    let (op, first) = &slots[0];
    if let Some(r) = slots.iter().position(|(o, _)| o != op) {
        return Err(format!(
            "the ranks called different operations: rank 0 {op:?}, rank {r} {:?}",
            slots[r].0
        ));
    }
    if let Some(r) = slots.iter().position(|(_, b)| b.len() != first.len()) {
        return Err(format!(
            "the ranks passed buffers of different lengths: rank 0 {}, rank {r} {}",
            first.len(),
            slots[r].1.len()
        ));
    }
    Ok(match *op {
        Op::AllReduce => {
            let mut sum = first.clone();
            for (_, b) in &slots[1..] {
                for (s, v) in sum.iter_mut().zip(b) {
                    *s += v;
                }
            }
            sum
        }
        Op::Broadcast(root) => slots[root].1.clone(),
        Op::Barrier => Vec::new(),
    })
}

impl Collective for ThreadCollective {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let sum = self.exchange(Op::AllReduce, buf.to_vec())?;
        buf.copy_from_slice(&sum);
        Ok(())
    }
    fn broadcast(&self, buf: &mut [f32], root: usize) -> Result<()> {
        check_root(root, self.world)?;
        let v = self.exchange(Op::Broadcast(root), buf.to_vec())?;
        buf.copy_from_slice(&v);
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.exchange(Op::Barrier, Vec::new()).map(|_| ())
    }
    fn describe(&self) -> String {
        format!("{} replicas (threads of this process)", self.world)
    }
}

impl Drop for ThreadCollective {
    fn drop(&mut self) {
        let mut round = self.lock();
        round.left.get_or_insert(self.rank);
        self.group.done.notify_all();
    }
}

impl std::fmt::Debug for ThreadCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadCollective")
            .field("rank", &self.rank)
            .field("world", &self.world)
            .finish()
    }
}
