//! Batches from a dataset: seeded shuffling, drop_last, transforms in parallel.

use super::{Dataset, Transform};
use rayon::prelude::*;
use residual_tensor::{rng, Device, Error, Result, Tensor};
use std::sync::Arc;

/// The stream of a sample's seed that the dataset's decoding draws from (the
/// transforms draw from streams 0, 1, ... in their order).
const DECODE_STREAM: u64 = u64::MAX;

/// One batch: images `[B, C, H, W]` and their labels.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, C, H, W]`.
    pub images: Tensor,
    /// `B` class indices.
    pub labels: Vec<usize>,
}

/// Iterates a dataset in batches. The order of epoch `e` is a pure function of
/// `(seed, e)`, and so is every sample's augmentation: a resumed run sees the
/// same data as an uninterrupted one.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Drop the last incomplete batch.
    pub drop_last: bool,
    /// Seed of the order and augmentation.
    pub seed: u64,
    /// Applied to each sample, in order.
    pub transforms: Vec<Transform>,
    /// Whether samples are read with [`Dataset::get_seeded`], so that a
    /// dataset may augment while decoding (ImageFolder's random resized
    /// crop); `false` reads [`Dataset::get`], its evaluation preprocessing.
    pub augment_on_decode: bool,
    /// This loader's share of each epoch in a data-parallel run.
    shard: Shard,
}

/// A rank's share of every epoch: PyTorch's `DistributedSampler` semantics.
/// The epoch's order (the same on every rank: one seed) is padded, when
/// `pad`, by repeating its start up to a multiple of `world`, and rank `r`
/// reads positions `r, r + world, r + 2 world, ...` of it. With drop_last
/// (training), batch `b` of every rank together is then batch `b` of one
/// process whose batch is `world` times as large; without it, the padded
/// last batch repeats samples from the start of the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This rank.
    pub rank: usize,
    /// Number of ranks.
    pub world: usize,
    /// Pad the order to a multiple of `world` (training); without, the
    /// shards are disjoint and cover the data exactly once (evaluation).
    pub pad: bool,
}

impl Shard {
    /// The whole epoch: one rank.
    pub const WHOLE: Shard = Shard {
        rank: 0,
        world: 1,
        pad: false,
    };
}

impl DataLoader {
    /// A loader; `batch_size` must be at least 1.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        batch_size: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::arg("DataLoader", "batch size must be at least 1"));
        }
        Ok(DataLoader {
            dataset,
            batch_size,
            shuffle,
            drop_last,
            seed,
            transforms: Vec::new(),
            augment_on_decode: true,
            shard: Shard::WHOLE,
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Reads only `shard`'s share of every epoch (see [`Shard`]); `batch_size`
    /// is then this rank's part of the global batch.
    pub fn set_shard(&mut self, shard: Shard) -> Result<()> {
        if shard.world == 0 || shard.rank >= shard.world {
            return Err(Error::arg(
                "DataLoader",
                format!("rank {} is not in a world of {}", shard.rank, shard.world),
            ));
        }
        self.shard = shard;
        Ok(())
    }

    /// This loader's share of each epoch.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Samples of this rank's share of an epoch.
    fn shard_len(&self) -> usize {
        let (n, w) = (self.dataset.len(), self.shard.world);
        match self.shard.pad {
            true => n.div_ceil(w),
            false => n / w + usize::from(self.shard.rank < n % w),
        }
    }

    /// Batches per epoch. With drop_last, a sharded loader has as many as
    /// one process reading whole global batches (`world * batch_size`), so
    /// the step count does not depend on the number of ranks.
    pub fn batches(&self) -> usize {
        let n = self.dataset.len();
        if self.shard.world > 1 {
            return match self.drop_last {
                true => n / (self.batch_size * self.shard.world),
                false => self.shard_len().div_ceil(self.batch_size),
            };
        }
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The sample order of epoch `epoch`: this rank's share of it when the
    /// loader is sharded.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let whole = self.whole_order(epoch);
        let Shard { rank, world, pad } = self.shard;
        if world == 1 {
            return whole;
        }
        let n = whole.len();
        let total = if pad { n.div_ceil(world) * world } else { n };
        (rank..total)
            .step_by(world)
            .map(|i| whole[i % n.max(1)])
            .collect()
    }

    /// The order of the whole epoch, before sharding.
    fn whole_order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        let mut idx: Vec<usize> = (0..n).collect();
        if self.shuffle {
            let s = rng::hash64(self.seed, epoch);
            for i in (1..n).rev() {
                let j = (rng::hash64(s, i as u64) % (i as u64 + 1)) as usize;
                idx.swap(i, j);
            }
        }
        idx
    }

    /// Batch `b` of epoch `epoch` on `dev` (samples decoded and transformed in parallel).
    pub fn batch(&self, order: &[usize], epoch: u64, b: usize, dev: &Device) -> Result<Batch> {
        let ids = &order[b * self.batch_size..((b + 1) * self.batch_size).min(order.len())];
        let shape = self.dataset.shape();
        let samples: Vec<(Vec<f32>, usize)> = ids
            .par_iter()
            .map(|&i| {
                let s = rng::hash64(rng::hash64(self.seed ^ 0xa11ce, epoch), i as u64);
                let (mut img, label) = if self.augment_on_decode {
                    self.dataset.get_seeded(i, rng::hash64(s, DECODE_STREAM))?
                } else {
                    self.dataset.get(i)?
                };
                for (k, t) in self.transforms.iter().enumerate() {
                    t.apply(&mut img, shape, rng::hash64(s, k as u64));
                }
                Ok((img, label))
            })
            .collect::<Result<_>>()?;
        let mut pixels = Vec::with_capacity(ids.len() * shape.iter().product::<usize>());
        let mut labels = Vec::with_capacity(ids.len());
        for (img, l) in samples {
            pixels.extend_from_slice(&img);
            labels.push(l);
        }
        let images = Tensor::from_vec(pixels, [ids.len(), shape[0], shape[1], shape[2]], dev)?;
        Ok(Batch { images, labels })
    }
}
