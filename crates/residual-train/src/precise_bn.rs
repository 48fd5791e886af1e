//! Batch-norm recalibration ("precise BN", Wu and Johnson 2021, as pycls'
//! `compute_precise_bn_stats` and fvcore's `update_bn_stats` do it): after
//! an epoch, the running statistics of every batch norm are replaced by the
//! statistics of training images as evaluation sees them (no augmentation),
//! gathered over several batches with the weights fixed. The running averages of training were
//! taken of augmented images under moving weights; evaluation normalises
//! clean ones with them, and the difference costs accuracy where the
//! augmentation is strong (random warps of binarised digits turn them grey).

use crate::data::{DataLoader, Dataset, Shard, Transform};
use crate::distributed::Collective;
use residual_nn::batch_stats::BatchStatisticsGuard;
use residual_nn::{named_tensors, Mode, Module, Param, ParamKind};
use residual_tensor::{no_grad, Device, Result, Tensor};
use std::sync::Arc;

/// The seed of the recalibration's sample order (its own stream, so that the
/// images it reads do not follow the training order's seed).
const ORDER_SEED: u64 = 0x005e_edb4_57a7;

/// Recalibrates `model`'s batch norms on up to `images` samples of `data`
/// (a seeded sample of it, the same every time, read with `transforms`:
/// preprocessing only) in batches of `global_batch` over the ranks of `c`
/// (each reads its shard). Each batch norm's running mean becomes the mean
/// of the batches' means, and its running variance the variance of all
/// those images' values together by the law of total variance: the mean of
/// the batches' population variances (without Bessel's correction, see
/// [`BatchStatisticsGuard`]) plus the variance of their means, as fvcore's
/// population estimator (`update_bn_stats`) computes it (pycls averages the
/// batches' unbiased variances alone). The sums are taken about the running
/// means before recalibration (rank 0's), so that a large mean does not
/// cancel the variance away in f32. `num_batches_tracked` is left as it
/// was. The sums are all-reduced, so every rank ends with the same
/// statistics. Returns the number of batches used: 0 when the model has no
/// trained batch norm (nothing to do) or `images` is below one batch.
pub fn recalibrate_batch_norm(
    model: &dyn Module,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    images: usize,
    global_batch: usize,
    dev: &Device,
    c: &dyn Collective,
) -> Result<usize> {
    let stats = BatchNormStats::of(model);
    let world = c.world_size().max(1);
    let batches = images.min(data.len()) / global_batch.max(1);
    if stats.is_empty() || batches == 0 || !global_batch.is_multiple_of(world) {
        return Ok(0);
    }
    let mut loader = DataLoader::new(data, global_batch / world, true, true, ORDER_SEED)?;
    loader.transforms = transforms.to_vec();
    loader.augment_on_decode = false;
    loader.set_shard(Shard {
        rank: c.rank(),
        world,
        pad: true,
    })?;
    let order = loader.order(0);
    let batches = batches.min(loader.batches());
    // The shift of the sums, the same on every rank.
    let mut shift = stats.means()?;
    if world > 1 {
        c.broadcast(&mut shift, 0)?;
    }
    shift
        .iter_mut()
        .filter(|v| !v.is_finite())
        .for_each(|v| *v = 0.0);
    // Per channel: sums over batches of (mean - shift), and of
    // var + (mean - shift)^2.
    let mut sums: Vec<f32> = vec![0.0; stats.len() * 2];
    // An error part way (a batch that cannot be read) leaves the statistics
    // as they were, not those of the last batch.
    let before = stats.snapshot();
    let gathered = (|| -> Result<()> {
        let _guard = BatchStatisticsGuard::new();
        for b in 0..batches {
            let batch = loader.batch(&order, 0, b, dev)?;
            no_grad(|| model.forward(&batch.images, Mode::Train))?;
            stats.accumulate(&mut sums, &shift)?;
        }
        Ok(())
    })();
    if let Err(e) = gathered {
        stats.restore(before);
        return Err(e);
    }
    if world > 1 {
        c.all_reduce_sum(&mut sums)?;
    }
    stats.set_from(&sums, &shift, (batches * world) as f32)?;
    Ok(batches)
}

/// The number of images [`recalibrate_batch_norm`] reads with these
/// arguments: `images` (at most the data's `len`) rounded down to whole
/// global batches, 0 when `model` has no trained batch norm.
pub fn images_read(model: &dyn Module, images: usize, len: usize, global_batch: usize) -> usize {
    if BatchNormStats::of(model).is_empty() || global_batch == 0 {
        return 0;
    }
    images.min(len) / global_batch * global_batch
}

/// The running mean and variance buffers of a model's batch norms, in pairs.
struct BatchNormStats {
    /// `(running_mean, running_var)` of each batch norm.
    pairs: Vec<(Param, Param)>,
    /// Channels of each.
    channels: Vec<usize>,
}

impl BatchNormStats {
    /// The batch norms of `model` that train their statistics: buffers named
    /// `...running_mean` with a `...running_var` beside them, and no frozen
    /// `...weight` (a frozen batch norm normalises with its running
    /// statistics in training too: they are not the model's to change).
    fn of(model: &dyn Module) -> Self {
        let named = named_tensors(model);
        let find_kind = |name: &str, kind: ParamKind| {
            named
                .iter()
                .find(|(n, p)| n == name && p.kind() == kind)
                .map(|(_, p)| p.clone())
        };
        let find = |name: &str| find_kind(name, ParamKind::Buffer);
        let mut pairs = Vec::new();
        let mut channels = Vec::new();
        for (name, p) in &named {
            let Some(prefix) = name.strip_suffix("running_mean") else {
                continue;
            };
            if p.kind() != ParamKind::Buffer
                || find_kind(&format!("{prefix}weight"), ParamKind::Frozen).is_some()
            {
                continue;
            }
            if let Some(var) = find(&format!("{prefix}running_var")) {
                channels.push(p.get().numel());
                pairs.push((p.clone(), var));
            }
        }
        BatchNormStats { pairs, channels }
    }

    fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The running statistics as they are now (recalibration replaces the
    /// buffers' tensors, it does not write into them: the handles are the copy).
    fn snapshot(&self) -> Vec<(Tensor, Tensor)> {
        self.pairs.iter().map(|(m, v)| (m.get(), v.get())).collect()
    }

    /// Puts back what [`BatchNormStats::snapshot`] took.
    fn restore(&self, saved: Vec<(Tensor, Tensor)>) {
        for ((mean, var), (m, v)) in self.pairs.iter().zip(saved) {
            mean.set(m);
            var.set(v);
        }
    }

    /// Values in `sums`: every norm's channels of means, then of squares.
    fn len(&self) -> usize {
        self.channels.iter().sum()
    }

    /// Every norm's running means, concatenated.
    fn means(&self) -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(self.len());
        for (mean, _) in &self.pairs {
            v.extend(mean.get().to_vec()?);
        }
        Ok(v)
    }

    /// Adds the current running statistics (one batch's, under the guard):
    /// `mean - shift` to the first half of `sums`, `var + (mean - shift)^2`
    /// to the second.
    fn accumulate(&self, sums: &mut [f32], shift: &[f32]) -> Result<()> {
        let half = self.len();
        let mut at = 0;
        for (mean, var) in &self.pairs {
            let (m, v) = (mean.get().to_vec()?, var.get().to_vec()?);
            for (i, (m, v)) in m.iter().zip(&v).enumerate() {
                let d = m - shift[at + i];
                sums[at + i] += d;
                sums[half + at + i] += v + d * d;
            }
            at += m.len();
        }
        Ok(())
    }

    /// Sets every running mean to `shift + d` and variance to
    /// `squares / count - d^2` (clamped at 0), with `d = sum / count`.
    fn set_from(&self, sums: &[f32], shift: &[f32], count: f32) -> Result<()> {
        let half = self.len();
        let mut at = 0;
        for ((mean, var), &n) in self.pairs.iter().zip(&self.channels) {
            let d: Vec<f32> = sums[at..at + n].iter().map(|s| s / count).collect();
            let v: Vec<f32> = sums[half + at..half + at + n]
                .iter()
                .zip(&d)
                .map(|(s, d)| (s / count - d * d).max(0.0))
                .collect();
            let m: Vec<f32> = d
                .iter()
                .zip(&shift[at..at + n])
                .map(|(d, c)| c + d)
                .collect();
            for (p, values) in [(mean, m), (var, v)] {
                let t = p.get();
                let new = Tensor::from_vec(values, t.shape().clone(), t.device())?;
                p.set(new.cast(t.dtype())?);
            }
            at += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::{Solo, ThreadCollective};
    use residual_nn::{BatchNorm2d, BnMode, GroupNorm};
    use std::time::Duration;

    /// `n` one-pixel samples: sample `i` is `(i * i) % 97` (batches differ in
    /// their means, so the between-batch term of the variance matters).
    struct Values(usize);
    impl Dataset for Values {
        fn len(&self) -> usize {
            self.0
        }
        fn shape(&self) -> [usize; 3] {
            [1, 1, 1]
        }
        fn classes(&self) -> usize {
            2
        }
        fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
            Ok((vec![((i * i) % 97) as f32], i % 2))
        }
    }

    fn value(i: usize) -> f64 {
        ((i * i) % 97) as f64
    }

    fn stats(bn: &BatchNorm2d) -> (f32, f32, f32) {
        let one = |p: &Param| p.get().to_vec().unwrap()[0];
        (
            one(&bn.running_mean),
            one(&bn.running_var),
            one(&bn.num_batches_tracked),
        )
    }

    #[test]
    fn the_running_statistics_become_those_of_all_the_batches_images_together() {
        let dev = Device::cpu();
        let data: Arc<dyn Dataset> = Arc::new(Values(70));
        let bn = BatchNorm2d::new(1, BnMode::Normal, &dev).unwrap();
        let used = recalibrate_batch_norm(&bn, data.clone(), &[], 64, 16, &dev, &Solo).unwrap();
        assert_eq!(used, 4);
        assert_eq!(images_read(&bn, 64, 70, 16), 64);
        // The 64 images of the batches the loader reads, and their mean and
        // variance taken over all of them at once, in f64.
        let order = DataLoader::new(data, 16, true, true, ORDER_SEED)
            .unwrap()
            .order(0);
        let read: Vec<f64> = order[..64].iter().map(|&i| value(i)).collect();
        let mean = read.iter().sum::<f64>() / 64.0;
        let var = read.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 64.0;
        let (m, v, tracked) = stats(&bn);
        assert!((m as f64 - mean).abs() < 1e-4 * mean, "{m} vs {mean}");
        assert!((v as f64 - var).abs() < 1e-4 * var, "{v} vs {var}");
        assert_eq!(tracked, 0.0, "recalibration is not a training step");
    }

    #[test]
    fn every_rank_ends_with_the_statistics_of_all_ranks_batches() {
        let dev = Device::cpu();
        let data: Arc<dyn Dataset> = Arc::new(Values(64));
        let group = ThreadCollective::group(2, Duration::from_secs(60));
        let out: Vec<(f32, f32, f32)> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .into_iter()
                .map(|c| {
                    let (data, dev) = (data.clone(), dev.clone());
                    s.spawn(move || {
                        let bn = BatchNorm2d::new(1, BnMode::Normal, &dev).unwrap();
                        let used = recalibrate_batch_norm(&bn, data, &[], 64, 16, &dev, &c);
                        assert_eq!(used.unwrap(), 4);
                        stats(&bn)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(out[0], out[1], "the ranks' statistics differ");
        // Four global batches of 16 (8 per rank) read every sample once: the
        // mean and the variance are the data's own.
        let mean = (0..64).map(value).sum::<f64>() / 64.0;
        let var = (0..64).map(|i| (value(i) - mean).powi(2)).sum::<f64>() / 64.0;
        assert!((out[0].0 as f64 - mean).abs() < 1e-4 * mean);
        let v = out[0].1 as f64;
        assert!((v - var).abs() < 1e-4 * var, "{v} vs {var}");
    }

    /// [`Values`] of 64 samples whose sample `.0` cannot be read.
    struct Broken(usize);
    impl Dataset for Broken {
        fn len(&self) -> usize {
            64
        }
        fn shape(&self) -> [usize; 3] {
            [1, 1, 1]
        }
        fn classes(&self) -> usize {
            2
        }
        fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
            if i == self.0 {
                return Err(residual_tensor::Error::arg(
                    "test",
                    format!("sample {i} is unreadable"),
                ));
            }
            Values(64).get(i)
        }
    }

    #[test]
    fn a_batch_that_cannot_be_read_leaves_the_statistics_as_they_were() {
        let dev = Device::cpu();
        // The last batch's last sample fails: three batches were stored first.
        let order = DataLoader::new(Arc::new(Values(64)), 16, true, true, ORDER_SEED)
            .unwrap()
            .order(0);
        let last = order[63];
        let bn = BatchNorm2d::new(1, BnMode::Normal, &dev).unwrap();
        let err = recalibrate_batch_norm(&bn, Arc::new(Broken(last)), &[], 64, 16, &dev, &Solo)
            .unwrap_err();
        assert!(err.to_string().contains(&format!("sample {last}")), "{err}");
        assert_eq!(stats(&bn), (0.0, 1.0, 0.0));
    }

    #[test]
    fn models_without_trained_batch_norm_and_too_few_images_are_left_alone() {
        let dev = Device::cpu();
        let data: Arc<dyn Dataset> = Arc::new(Values(64));
        let gn = GroupNorm::new(1, 1, &dev).unwrap();
        assert_eq!(
            recalibrate_batch_norm(&gn, data.clone(), &[], 64, 16, &dev, &Solo).unwrap(),
            0
        );
        let frozen = BatchNorm2d::new(1, BnMode::Frozen, &dev).unwrap();
        assert_eq!(
            recalibrate_batch_norm(&frozen, data.clone(), &[], 64, 16, &dev, &Solo).unwrap(),
            0
        );
        assert_eq!(stats(&frozen), (0.0, 1.0, 0.0));
        assert_eq!(images_read(&frozen, 64, 64, 16), 0);
        assert_eq!(images_read(&gn, 64, 64, 16), 0);
        let bn = BatchNorm2d::new(1, BnMode::Normal, &dev).unwrap();
        assert_eq!(
            recalibrate_batch_norm(&bn, data, &[], 15, 16, &dev, &Solo).unwrap(),
            0
        );
        assert_eq!(stats(&bn), (0.0, 1.0, 0.0));
    }
}
