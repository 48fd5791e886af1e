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
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Batches per epoch.
    pub fn batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The sample order of epoch `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
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
