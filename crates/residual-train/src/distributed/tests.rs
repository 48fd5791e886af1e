//! The collectives' semantics, the bucketed all-reduce, the agreement checks
//! and the shards, on ranks that are threads.

use super::*;
use crate::data::{DataLoader, Dataset, Shard};
use residual_nn::Param;
use residual_tensor::{Device, Gradients, Tensor};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f(rank's collective)` on `world` threads and returns the results in rank order.
fn on_ranks<T: Send>(
    world: usize,
    timeout: Duration,
    f: impl Fn(ThreadCollective) -> T + Sync,
) -> Vec<T> {
    let group = ThreadCollective::group(world, timeout);
    std::thread::scope(|s| {
        let handles: Vec<_> = group.into_iter().map(|c| s.spawn(|| f(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn thread_ranks_sum_broadcast_and_meet() {
    let out = on_ranks(3, LONG, |c| {
        let r = c.rank() as f32;
        let mut sum = vec![r, 10.0 * r, 0.5];
        c.all_reduce_sum(&mut sum).unwrap();
        let mut b = vec![r; 2];
        c.broadcast(&mut b, 2).unwrap();
        c.barrier().unwrap();
        (sum, b)
    });
    for (sum, b) in out {
        assert_eq!(sum, vec![3.0, 30.0, 1.5]);
        assert_eq!(b, vec![2.0, 2.0]);
    }
}

#[test]
fn a_rank_that_leaves_fails_the_others_at_once() {
    let t0 = std::time::Instant::now();
    let out = on_ranks(3, LONG, |c| {
        if c.rank() == 1 {
            drop(c); // a rank whose thread ended
            return Ok(());
        }
        c.all_reduce_sum(&mut [1.0])
    });
    for r in [0, 2] {
        let e = out[r].as_ref().unwrap_err().to_string();
        assert!(e.contains("rank 1 has left the group"), "{e}");
    }
    assert!(t0.elapsed() < LONG / 2, "no wait for the timeout");
}

#[test]
fn a_rank_that_never_comes_times_the_others_out() {
    let out = on_ranks(2, Duration::from_millis(200), |c| {
        if c.rank() == 1 {
            std::thread::sleep(Duration::from_millis(600));
            return Ok(());
        }
        c.barrier()
    });
    let e = out[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("rank(s) [1] did not join within 200ms"), "{e}");
}

#[test]
fn ranks_that_disagree_on_length_or_operation_all_fail() {
    let out = on_ranks(2, LONG, |c| {
        let mut buf = vec![0.0; 2 + c.rank()];
        c.all_reduce_sum(&mut buf)
    });
    for o in &out {
        let e = o.as_ref().unwrap_err().to_string();
        assert!(
            e.contains("buffers of different lengths: rank 0 2, rank 1 3"),
            "{e}"
        );
    }
    let out = on_ranks(2, LONG, |c| match c.rank() {
        0 => c.barrier(),
        _ => c.all_reduce_sum(&mut []),
    });
    for o in &out {
        let e = o.as_ref().unwrap_err().to_string();
        assert!(e.contains("different operations"), "{e}");
    }
}

#[test]
fn gradients_are_averaged_in_buckets_in_parameter_order() {
    let dev = Device::cpu();
    // Two parameters that fit one bucket, then one larger than a bucket.
    let shapes = [vec![3], vec![2, 2], vec![BUCKET_ELEMS + 5]];
    let out = on_ranks(2, LONG, |c| {
        let params: Vec<(String, Param)> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    format!("p{i}"),
                    Param::parameter(Tensor::zeros(s.clone(), &dev).unwrap()),
                )
            })
            .collect();
        let mut grads = Gradients::default();
        for (i, (_, p)) in params.iter().enumerate() {
            let t = p.get();
            let v = (0..t.numel())
                .map(|k| (c.rank() * 100 + i * 10 + k % 7) as f32)
                .collect();
            grads.insert(&t, Tensor::from_vec(v, t.shape().clone(), &dev).unwrap());
        }
        let n = all_reduce_gradients(&c, &params, &mut grads).unwrap();
        let got: Vec<Vec<f32>> = params
            .iter()
            .map(|(_, p)| grads.get(&p.get()).unwrap().to_vec().unwrap())
            .collect();
        (n, got)
    });
    for (n, got) in out {
        assert_eq!(n, 3 + 4 + BUCKET_ELEMS + 5);
        for (i, g) in got.iter().enumerate() {
            for (k, v) in g.iter().enumerate() {
                // mean of (i*10 + k%7) and (100 + i*10 + k%7)
                assert_eq!(*v, (50 + i * 10 + k % 7) as f32, "p{i}[{k}]");
            }
        }
    }
}

#[test]
fn config_mismatch_names_the_setting_and_fails_every_rank() {
    let out = on_ranks(2, LONG, |c| {
        let json = match c.rank() {
            0 => r#"{"lr":0.1,"epochs":8}"#,
            _ => r#"{"lr":0.2,"epochs":8}"#,
        };
        verify_config(&c, json)
    });
    let e0 = out[0].as_ref().unwrap_err().to_string();
    assert!(e0.contains("rank(s) [1] differ(s) from rank 0"), "{e0}");
    let e1 = out[1].as_ref().unwrap_err().to_string();
    assert!(e1.contains("lr (0.2 here, 0.1 on rank 0)"), "{e1}");
    let out = on_ranks(2, LONG, |c| verify_config(&c, r#"{"lr":0.1}"#));
    assert!(out.iter().all(|o| o.is_ok()));
}

#[test]
fn checksums_that_differ_fail_every_rank() {
    let out = on_ranks(3, LONG, |c| {
        verify_same(&c, "the state", 7 + (c.rank() == 2) as u64)
    });
    for o in &out {
        let e = o.as_ref().unwrap_err().to_string();
        assert!(
            e.contains("the state of rank(s) [2] differ(s) from rank 0's"),
            "{e}"
        );
    }
    let big = u64::MAX - 12345;
    let out = on_ranks(2, LONG, |c| verify_same(&c, "the state", big));
    assert!(out.iter().all(|o| o.is_ok()));
}

/// `n` samples whose label is their index.
struct Indices(usize);
impl Dataset for Indices {
    fn len(&self) -> usize {
        self.0
    }
    fn shape(&self) -> [usize; 3] {
        [1, 1, 1]
    }
    fn classes(&self) -> usize {
        self.0
    }
    fn get(&self, i: usize) -> residual_tensor::Result<(Vec<f32>, usize)> {
        Ok((vec![i as f32], i))
    }
}

#[test]
fn shards_split_each_global_batch_as_distributed_sampler_does() {
    let data: Arc<dyn Dataset> = Arc::new(Indices(103));
    let dev = Device::cpu();
    let one = DataLoader::new(data.clone(), 12, true, true, 5).unwrap();
    let order = one.order(2);
    for world in [2, 3, 4] {
        let mut ranks = Vec::new();
        for rank in 0..world {
            let mut l = DataLoader::new(data.clone(), 12 / world, true, true, 5).unwrap();
            l.set_shard(Shard {
                rank,
                world,
                pad: true,
            })
            .unwrap();
            assert_eq!(
                l.batches(),
                one.batches(),
                "the step count does not depend on the world"
            );
            assert_eq!(l.order(2).len(), 103usize.div_ceil(world), "padded");
            ranks.push(l);
        }
        for b in 0..one.batches() {
            let mut together: Vec<usize> = ranks
                .iter()
                .flat_map(|l| l.batch(&l.order(2), 2, b, &dev).unwrap().labels)
                .collect();
            together.sort();
            let mut whole = one.batch(&order, 2, b, &dev).unwrap().labels;
            whole.sort();
            assert_eq!(together, whole, "world {world}, batch {b}");
        }
    }
    // Without padding (evaluation) the shards cover the data once.
    let mut seen: Vec<usize> = (0..4)
        .flat_map(|rank| {
            let mut l = DataLoader::new(data.clone(), 10, false, false, 0).unwrap();
            l.set_shard(Shard {
                rank,
                world: 4,
                pad: false,
            })
            .unwrap();
            l.order(0)
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..103).collect::<Vec<_>>());
}
