//! Held-out splits carved from a dataset: [`stratified_indices`] picks a
//! seeded fraction of each class, [`last_of_each_class`] the last fraction
//! of each class in a source order, [`Subset`] is the view of the chosen
//! samples, and [`validation_split`] and [`validation_split_last`] make both
//! halves of a training set.

use super::Dataset;
use residual_tensor::{Error, Result};
use std::sync::Arc;

/// Some samples of another dataset, by index: sample `i` of the subset is
/// sample `indices[i]` of the whole.
pub struct Subset {
    whole: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// The samples `indices` of `whole`; an error naming the first index out
    /// of range.
    pub fn new(whole: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= whole.len()) {
            return Err(Error::arg(
                "subset",
                format!(
                    "index {bad} is out of range for a dataset of {} samples",
                    whole.len()
                ),
            ));
        }
        Ok(Subset { whole, indices })
    }

    /// The indices into the whole dataset, in the subset's order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn shape(&self) -> [usize; 3] {
        self.whole.shape()
    }
    fn classes(&self) -> usize {
        self.whole.classes()
    }
    fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
        self.whole.get(self.indices[i])
    }
    fn get_seeded(&self, i: usize, seed: u64) -> Result<(Vec<f32>, usize)> {
        self.whole.get_seeded(self.indices[i], seed)
    }
    fn label(&self, i: usize) -> Result<usize> {
        self.whole.label(self.indices[i])
    }
}

/// Splits the sample indices `0..labels.len()` by class: `fraction` of each
/// class's samples (rounded, at least one of a class with two or more, never
/// all of it) are held out, chosen by a shuffle seeded by `seed`. Returns
/// `(kept, held_out)`, each grouped by class in the shuffle's order; the
/// same labels, fraction and seed give the same split on every machine.
pub fn stratified_indices(
    labels: &[usize],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    split_each_class(labels, fraction, Held::First, |class, of_class| {
        // Fisher-Yates, each swap drawn from the seed, the class and the position.
        for i in (1..of_class.len()).rev() {
            let j = (residual_tensor::rng::hash64(seed ^ class as u64, i as u64) % (i as u64 + 1))
                as usize;
            of_class.swap(i, j);
        }
    })
}

/// Splits the sample indices `0..labels.len()` by class as
/// [`stratified_indices`] does, but holds out the *last* `fraction` of each
/// class in the order `position` gives (`position[i]`: sample `i`'s place in
/// its source, smaller first), not a random sample: the validation split of
/// a dataset whose held-out split was cut that way, so that it is drawn from
/// the same part of the source. Returns `(kept, held_out)`, each grouped by
/// class in `position` order.
pub fn last_of_each_class(
    labels: &[usize],
    position: &[usize],
    fraction: f64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if position.len() != labels.len() {
        return Err(Error::arg(
            "split",
            format!(
                "{} positions for {} samples: expected one per sample",
                position.len(),
                labels.len()
            ),
        ));
    }
    split_each_class(labels, fraction, Held::Last, |_, of_class| {
        of_class.sort_by_key(|&i| (position[i], i))
    })
}

/// Which end of each arranged class a split holds out.
enum Held {
    First,
    Last,
}

/// The per-class split both of the above make: each class's indices (in
/// index order) are arranged by `arrange(class, indices)`, then
/// [`held_count`] of them at the `held` end are held out. Returns
/// `(kept, held_out)`, grouped by class in the arranged order.
fn split_each_class(
    labels: &[usize],
    fraction: f64,
    held: Held,
    mut arrange: impl FnMut(usize, &mut [usize]),
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::arg(
            "split",
            format!("the held-out fraction must be in [0, 1), got {fraction}"),
        ));
    }
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    let (mut kept, mut held_out) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut of_class: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        arrange(class, &mut of_class);
        let k = held_count(of_class.len(), fraction);
        let (h, rest) = match held {
            Held::First => of_class.split_at(k),
            Held::Last => {
                let (rest, h) = of_class.split_at(of_class.len() - k);
                (h, rest)
            }
        };
        held_out.extend_from_slice(h);
        kept.extend_from_slice(rest);
    }
    Ok((kept, held_out))
}

/// How many of a class's `n` samples a split holds out: `fraction` of them,
/// rounded, at least one of a class with two or more, never all of it.
fn held_count(n: usize, fraction: f64) -> usize {
    if n >= 2 {
        ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
    } else {
        0
    }
}

/// Carves a validation set out of a training set: `fraction` of each class
/// (see [`stratified_indices`]) becomes the validation set, the rest the
/// training set. Returns `(train, validation)`.
pub fn validation_split(
    train: Arc<dyn Dataset>,
    fraction: f64,
    seed: u64,
) -> Result<(Subset, Subset)> {
    carve(train, |labels| stratified_indices(labels, fraction, seed))
}

/// Carves a validation set out of a training set as the last `fraction` of
/// each class in its source's order (see [`last_of_each_class`]; `position`:
/// each training sample's place in the source). Returns `(train, validation)`.
pub fn validation_split_last(
    train: Arc<dyn Dataset>,
    position: &[usize],
    fraction: f64,
) -> Result<(Subset, Subset)> {
    carve(train, |labels| {
        last_of_each_class(labels, position, fraction)
    })
}

/// `train`'s `(kept, held_out)` subsets as `split` chooses them from its labels.
fn carve(
    train: Arc<dyn Dataset>,
    split: impl FnOnce(&[usize]) -> Result<(Vec<usize>, Vec<usize>)>,
) -> Result<(Subset, Subset)> {
    let labels = (0..train.len())
        .map(|i| train.label(i))
        .collect::<Result<Vec<usize>>>()?;
    let (kept, held) = split(&labels)?;
    Ok((Subset::new(train.clone(), kept)?, Subset::new(train, held)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_indices_hold_out_the_fraction_of_every_class_disjointly() {
        // 3 classes of 10, 20 and 1 samples, interleaved.
        let labels: Vec<usize> = (0..30)
            .map(|i| i % 3)
            .map(|c| c.min(1))
            .chain([2])
            .collect();
        let (kept, held) = stratified_indices(&labels, 0.2, 7).unwrap();
        let count = |v: &[usize], c: usize| v.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(
            (count(&held, 0), count(&held, 1), count(&held, 2)),
            (2, 4, 0)
        );
        assert_eq!(kept.len() + held.len(), labels.len());
        let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
        assert_eq!(stratified_indices(&labels, 0.2, 7).unwrap().1, held);
        assert_ne!(stratified_indices(&labels, 0.2, 8).unwrap().1, held);
    }

    #[test]
    fn last_of_each_class_holds_out_the_latest_positions_of_every_class() {
        // Two classes interleaved; class 0's positions run backwards.
        let labels = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        let position = [4, 0, 3, 1, 2, 2, 1, 3, 0, 4];
        let (kept, held) = last_of_each_class(&labels, &position, 0.4).unwrap();
        // Class 0: positions 4 and 3 are samples 0 and 2; class 1: 3 and 4 are 7 and 9.
        assert_eq!(held, vec![2, 0, 7, 9]);
        assert_eq!(kept, vec![8, 6, 4, 1, 3, 5]);
        let err = last_of_each_class(&labels, &position[..9], 0.4).unwrap_err();
        assert!(
            err.to_string().contains("9 positions for 10 samples"),
            "{err}"
        );
        assert!(last_of_each_class(&labels, &position, 1.0).is_err());
    }

    #[test]
    fn a_fraction_outside_zero_to_one_is_refused() {
        for f in [1.0, -0.1, f64::NAN] {
            let e = stratified_indices(&[0, 1], f, 0).unwrap_err().to_string();
            assert!(e.contains("[0, 1)"), "{e}");
        }
    }
}
