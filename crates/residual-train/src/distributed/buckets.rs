//! The gradients' all-reduce: flattened into buckets of a few MB in the
//! optimizer's parameter order, summed over the ranks, divided by the world
//! size (DistributedDataParallel's averaging), written back.

use super::collective::Collective;
use residual_nn::Param;
use residual_tensor::{Gradients, Result, Tensor};

/// Values per bucket: 1 Mi f32, 4 MiB (PyTorch's DDP uses 25 MB buckets; a
/// few MB keep the copy small and still make each message large enough to
/// run at the network's bandwidth, not its latency).
pub const BUCKET_ELEMS: usize = 1 << 20;

/// Averages the gradients of `params` over the ranks of `c`, in buckets of
/// [`BUCKET_ELEMS`] values filled in `params`' order (the last bucket
/// smaller); a parameter larger than a bucket goes alone in one. Parameters
/// without a gradient (unused by this forward, which every rank runs alike)
/// are left out on every rank. Returns the number of values reduced.
pub fn all_reduce_gradients(
    c: &dyn Collective,
    params: &[(String, Param)],
    grads: &mut Gradients,
) -> Result<usize> {
    let world = c.world_size();
    if world == 1 {
        return Ok(0);
    }
    let inv = 1.0 / world as f32;
    let mut bucket: Vec<f32> = Vec::with_capacity(BUCKET_ELEMS);
    let mut members: Vec<Tensor> = Vec::new();
    let mut total = 0;
    for (_, p) in params {
        let t = p.get();
        let Some(g) = grads.get(&t) else { continue };
        let values = g.to_vec()?;
        if !bucket.is_empty() && bucket.len() + values.len() > BUCKET_ELEMS {
            total += flush(c, &mut bucket, &mut members, grads, inv)?;
        }
        bucket.extend_from_slice(&values);
        members.push(t);
    }
    total += flush(c, &mut bucket, &mut members, grads, inv)?;
    Ok(total)
}

/// Reduces one bucket and hands each member its averaged gradient.
fn flush(
    c: &dyn Collective,
    bucket: &mut Vec<f32>,
    members: &mut Vec<Tensor>,
    grads: &mut Gradients,
    inv: f32,
) -> Result<usize> {
    if bucket.is_empty() {
        return Ok(0);
    }
    c.all_reduce_sum(bucket)?;
    let mut offset = 0;
    for t in members.drain(..) {
        let n = t.numel();
        let avg: Vec<f32> = bucket[offset..offset + n].iter().map(|v| v * inv).collect();
        grads.insert(&t, Tensor::from_vec(avg, t.shape().clone(), t.device())?);
        offset += n;
    }
    let n = bucket.len();
    bucket.clear();
    Ok(n)
}
