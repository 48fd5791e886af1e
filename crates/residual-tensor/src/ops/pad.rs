//! Constant padding along one axis, composed of `concat` (so it runs and
//! differentiates on every backend): TensorFlow's "SAME" padding, asymmetric
//! where a stride makes it so, and max pooling's `-inf` borders.

use crate::{Result, Tensor};

impl Tensor {
    /// Pads `axis` with `before` and `after` copies of `value` (PyTorch's
    /// `F.pad(x, ..., value=value)` on one dimension). The gradient of the
    /// padding is dropped; the input's passes through.
    pub fn pad(&self, axis: isize, before: usize, after: usize, value: f32) -> Result<Tensor> {
        let a = self.shape().axis("pad", axis)?;
        if before == 0 && after == 0 {
            return Ok(self.clone());
        }
        let border = |len: usize| -> Result<Option<Tensor>> {
            if len == 0 {
                return Ok(None);
            }
            let mut dims = self.dims().to_vec();
            dims[a] = len;
            Tensor::full(value, dims, self.device())?
                .cast(self.dtype())
                .map(Some)
        };
        let (head, tail) = (border(before)?, border(after)?);
        let parts: Vec<&Tensor> = head.iter().chain([self]).chain(tail.iter()).collect();
        Tensor::concat(&parts, a as isize)
    }
}
