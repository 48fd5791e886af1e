//! Batch norm over the replicas of a data-parallel run (PyTorch's
//! `SyncBatchNorm`): every replica normalises its part of the batch with the
//! statistics of the whole global batch, and its backward uses the global
//! sums of the output gradient. Forward and backward side by side.
//!
//! The sums cross replicas through a [`ReplicaSum`] (the trainer's
//! collective). The statistics are computed in two passes (the mean first,
//! then the squared deviations from it, accumulated in f64 on each replica),
//! so a large mean does not cancel the variance away. The kernels run on the
//! host: the input is read back once per pass, which on the CPU backend is a
//! copy and on a GPU a transfer (SyncBatchNorm is for CPU clusters here).

use super::norm::{affine_param, BatchNormOutput};
use crate::{DType, Error, Result, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Sums a flat buffer element by element over every replica of a
/// data-parallel run. Every replica calls it with a buffer of the same length,
/// the same number of times, in the same order.
pub trait ReplicaSum: Send + Sync {
    /// Replaces `buf` by its element-wise sum over the replicas.
    fn sum_over_replicas(&self, buf: &mut [f32]) -> Result<()>;
}

/// `[N, C, inner]` as the kernels below index it.
#[derive(Debug, Clone, Copy)]
struct Layout {
    n: usize,
    c: usize,
    inner: usize,
}

impl Layout {
    /// Per-channel sums over `N` and `inner` of `f(channel, value index)`, in f64.
    fn channel_sums(&self, f: impl Fn(usize, usize) -> f64 + Sync) -> Vec<f64> {
        (0..self.c)
            .into_par_iter()
            .map(|ch| {
                let mut s = 0.0f64;
                for n in 0..self.n {
                    let base = (n * self.c + ch) * self.inner;
                    for i in base..base + self.inner {
                        s += f(ch, i);
                    }
                }
                s
            })
            .collect()
    }

    /// `out[i] = f(channel of i, i)` over the whole `[N, C, inner]` buffer.
    fn map(&self, f: impl Fn(usize, usize) -> f32 + Sync) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n * self.c * self.inner];
        let inner = self.inner.max(1);
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(row, chunk)| {
                let ch = row % self.c;
                for (k, o) in chunk.iter_mut().enumerate() {
                    *o = f(ch, row * inner + k);
                }
            });
        out
    }
}

/// Sums `local` over the replicas as f32 and returns the sums.
fn replica_sums(replicas: &dyn ReplicaSum, local: &[f64]) -> Result<Vec<f32>> {
    let mut buf: Vec<f32> = local.iter().map(|&v| v as f32).collect();
    replicas.sum_over_replicas(&mut buf)?;
    Ok(buf)
}

impl Tensor {
    /// Training-mode batch norm over `[N, C, ...]` with the statistics of the
    /// global batch of every replica (SyncBatchNorm): each channel is
    /// normalised with the global mean and biased variance, then
    /// `y = xhat * weight + bias`; the returned mean and unbiased variance are
    /// the global ones (for the running statistics, identical on every
    /// replica). The backward sums `dy` and `dy * xhat` over the replicas for
    /// the input's gradient; the weight and bias gradients are this
    /// replica's own, to be averaged with the other parameter gradients.
    ///
    /// With a single replica this is [`Tensor::batch_norm_train`], except
    /// that a half input's output is f32 here (see [`crate::autocast`]).
    pub fn batch_norm_train_synced(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        replicas: Arc<dyn ReplicaSum>,
    ) -> Result<BatchNormOutput> {
        const OP: &str = "sync_batch_norm";
        if self.rank() < 2 {
            return Err(Error::shape(
                OP,
                format!("expected input [N, C, ...], got {}", self.shape()),
            ));
        }
        let d = self.dims();
        let lay = Layout {
            n: d[0],
            c: d[1],
            inner: d[2..].iter().product(),
        };
        let c = lay.c;
        let dev = self.device().clone();
        let gamma_t = affine_param(OP, "weight", weight, self, c, 1.0)?;
        let beta_t = affine_param(OP, "bias", bias, self, c, 0.0)?;
        let (gamma, beta) = (gamma_t.to_vec()?, beta_t.to_vec()?);
        let x = self.to_vec()?;

        // Pass 1: the global count and mean.
        let mut sums: Vec<f64> = lay.channel_sums(|_, i| x[i] as f64);
        sums.push((lay.n * lay.inner) as f64);
        let sums = replica_sums(&*replicas, &sums)?;
        let count = sums[c] as f64;
        if count < 2.0 {
            return Err(Error::arg(
                OP,
                format!(
                    "training needs more than one value per channel over the replicas, got {count} \
                     (input {} here)",
                    self.shape()
                ),
            ));
        }
        let mean: Vec<f64> = sums[..c].iter().map(|&s| s as f64 / count).collect();
        // Pass 2: the squared deviations from the global mean.
        let dev2 = lay.channel_sums(|ch, i| (x[i] as f64 - mean[ch]).powi(2));
        let dev2 = replica_sums(&*replicas, &dev2)?;
        let var: Vec<f64> = dev2.iter().map(|&q| q as f64 / count).collect();
        let rstd: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v + eps as f64).sqrt()) as f32)
            .collect();
        let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();

        // y = (x - mean) * rstd * gamma + beta
        let y = lay.map(|ch, i| (x[i] - mean32[ch]) * rstd[ch] * gamma[ch] + beta[ch]);
        let y = Tensor::from_vec(y, self.shape().clone(), &dev)?;
        let mean_t = Tensor::from_vec(mean32.clone(), [c], &dev)?;
        let var_unbiased = var
            .iter()
            .map(|&v| (v * count / (count - 1.0)) as f32)
            .collect();
        let var_unbiased = Tensor::from_vec(var_unbiased, [c], &dev)?;

        let (xs, x_dtype) = (self.clone(), self.dtype());
        let (shape, gshape) = (self.shape().clone(), gamma_t.shape().clone());
        let bshape = beta_t.shape().clone();
        let y = Tensor::from_op(
            y.storage().clone(),
            shape.clone(),
            &dev,
            OP,
            &[self, &gamma_t, &beta_t],
            move |dy| {
                let dev = dy.device();
                let (x, dy) = (xs.to_vec()?, dy.to_vec()?);
                let xhat = |ch: usize, i: usize| (x[i] - mean32[ch]) * rstd[ch];
                // This replica's sums: dbeta = sum(dy), dgamma = sum(dy * xhat).
                let sdy = lay.channel_sums(|_, i| dy[i] as f64);
                let sdyx = lay.channel_sums(|ch, i| dy[i] as f64 * xhat(ch, i) as f64);
                let mut both = sdy.clone();
                both.extend_from_slice(&sdyx);
                let global = replica_sums(&*replicas, &both)?;
                let (gdy, gdyx) = global.split_at(c);
                // dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)),
                // the means over the global batch.
                let inv = 1.0 / count as f32;
                let dx = lay.map(|ch, i| {
                    gamma[ch] * rstd[ch] * (dy[i] - gdy[ch] * inv - xhat(ch, i) * gdyx[ch] * inv)
                });
                let dx = Tensor::from_vec(dx, shape.clone(), dev)?;
                let dx = match x_dtype {
                    DType::F32 => dx,
                    half => crate::no_grad(|| dx.cast(half))?,
                };
                let to_f32 = |v: &[f64]| v.iter().map(|&s| s as f32).collect::<Vec<_>>();
                Ok(vec![
                    Some(dx),
                    Some(Tensor::from_vec(to_f32(&sdyx), gshape.clone(), dev)?),
                    Some(Tensor::from_vec(to_f32(&sdy), bshape.clone(), dev)?),
                ])
            },
        );
        Ok(BatchNormOutput {
            y,
            mean: mean_t,
            var_unbiased,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    /// One replica: the sum over replicas is the buffer itself.
    struct Alone;
    impl ReplicaSum for Alone {
        fn sum_over_replicas(&self, _buf: &mut [f32]) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_replica_matches_batch_norm_forward_and_backward() -> Result<()> {
        let dev = Device::cpu();
        let x = Tensor::rand_uniform([4, 3, 5, 2], -2.0, 3.0, 7, &dev)?.requires_grad_();
        let w = Tensor::rand_uniform([3], 0.5, 1.5, 8, &dev)?.requires_grad_();
        let b = Tensor::rand_uniform([3], -1.0, 1.0, 9, &dev)?.requires_grad_();
        let probe = Tensor::rand_uniform([4, 3, 5, 2], -1.0, 1.0, 10, &dev)?;
        let reference = x.batch_norm_train(Some(&w), Some(&b), 1e-5)?;
        let synced = x.batch_norm_train_synced(Some(&w), Some(&b), 1e-5, Arc::new(Alone))?;
        let close = |a: &Tensor, b: &Tensor, what: &str| -> Result<()> {
            let (a, b) = (a.to_vec()?, b.to_vec()?);
            let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert!((p - q).abs() <= 1e-5 * scale, "{what}[{i}]: {p} vs {q}");
            }
            Ok(())
        };
        close(&reference.y, &synced.y, "y")?;
        close(&reference.mean, &synced.mean, "mean")?;
        close(&reference.var_unbiased, &synced.var_unbiased, "var")?;
        let g_ref = reference.y.mul(&probe)?.sum_all()?.backward()?;
        let g_syn = synced.y.mul(&probe)?.sum_all()?.backward()?;
        for (t, what) in [(&x, "dx"), (&w, "dweight"), (&b, "dbias")] {
            close(g_ref.get(t).unwrap(), g_syn.get(t).unwrap(), what)?;
        }
        Ok(())
    }
}
