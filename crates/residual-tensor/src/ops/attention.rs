//! Scaled dot-product attention, composed of primitives: two batched GEMMs
//! (the first reads K transposed in place) around a softmax. Every backend
//! runs it as it runs those kernels, and autograd differentiates the
//! composition (forward and backward rules of `matmul_nt`, `softmax` and
//! `matmul`, side by side in their files).

use crate::{Error, Result, Tensor};

impl Tensor {
    /// `softmax(scale * q @ k^T) @ v` over the last two dimensions, as
    /// PyTorch's `F.scaled_dot_product_attention(q, k, v, scale=scale)`
    /// without a mask or dropout:
    ///
    /// - `q` (`self`): `[..., tq, d]` (`[batch, heads, tokens, head_dim]` in a ViT),
    /// - `k`: `[..., tk, d]`, `v`: `[..., tk, dv]`, the same leading dimensions,
    /// - result: `[..., tq, dv]`.
    ///
    /// The attention weights (`[..., tq, tk]`) are computed once and kept for
    /// the backward pass.
    pub fn scaled_dot_product_attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        scale: f32,
    ) -> Result<Tensor> {
        const OP: &str = "scaled_dot_product_attention";
        let q = self;
        let r = q.rank();
        let fits = r >= 2
            && k.rank() == r
            && v.rank() == r
            && q.dims()[..r - 2] == k.dims()[..r - 2]
            && k.dims()[..r - 1] == v.dims()[..r - 1]
            && q.dims()[r - 1] == k.dims()[r - 1];
        if !fits {
            return Err(Error::shape(
                OP,
                format!(
                    "q {}, k {}, v {} do not fit: expected q [..., tq, d], k [..., tk, d], v [..., tk, dv] with the same leading dimensions",
                    q.shape(),
                    k.shape(),
                    v.shape()
                ),
            ));
        }
        if !scale.is_finite() {
            return Err(Error::arg(OP, format!("scale must be finite, got {scale}")));
        }
        // scores, weights: [..., tq, tk]
        let scores = q.matmul_nt(k)?.mul_scalar(scale)?;
        scores.softmax(-1)?.matmul(v)
    }
}
