//! The [`Dataset`] trait every data source implements.

use residual_tensor::Result;

/// An indexable set of labelled images, each `[channels, height, width]` f32.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `[channels, height, width]` of every sample.
    fn shape(&self) -> [usize; 3];
    /// Number of classes.
    fn classes(&self) -> usize;
    /// Sample `i`: its pixels (CHW, f32 in [0, 1]) and its label; an error
    /// naming the file when a sample cannot be read or decoded.
    fn get(&self, i: usize) -> Result<(Vec<f32>, usize)>;
    /// Sample `i` for training, with `seed` for augmentation done while
    /// decoding (ImageFolder's random resized crop). The loader derives
    /// `seed` from its own seed, the epoch and `i`. By default, `get(i)`.
    fn get_seeded(&self, i: usize, seed: u64) -> Result<(Vec<f32>, usize)> {
        let _ = seed;
        self.get(i)
    }
    /// The label of sample `i`, without its pixels where the source can
    /// (splits read every label). By default, `get(i)`'s label.
    fn label(&self, i: usize) -> Result<usize> {
        self.get(i).map(|(_, label)| label)
    }
}
