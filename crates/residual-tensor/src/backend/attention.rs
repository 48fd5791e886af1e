//! The sizes of a scaled dot-product attention call, and the shapes of the
//! kernels that its composition (`Backend::attention_composed`, the trait's
//! default for `Backend::attention`) calls.
//!
//! Shapes: `q: [batch, tq, d]`, `k: [batch, tk, d]`, `v: [batch, tk, dv]`,
//! `o: [batch, tq, dv]`; `batch` is every leading dimension (batch x heads).

use super::params::{AxisView, MatmulSpec};
use crate::Shape;

/// The sizes and scale of one attention call. Every size but `batch` is at
/// least 1 (`Tensor::scaled_dot_product_attention` refuses others), so a
/// kernel may assume it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionSpec {
    /// Independent attentions (batch x heads).
    pub batch: usize,
    /// Query tokens.
    pub tq: usize,
    /// Key / value tokens.
    pub tk: usize,
    /// Query / key width.
    pub d: usize,
    /// Value width.
    pub dv: usize,
    /// Multiplies `q k^T` before the softmax (`d^-0.5` in a ViT).
    pub scale: f32,
}

impl AttentionSpec {
    /// The batched GEMM `[m, k] x [k, n]` of every attention (`op` transposes where flagged).
    pub(crate) fn gemm(
        &self,
        m: usize,
        k: usize,
        n: usize,
        trans_a: bool,
        trans_b: bool,
    ) -> MatmulSpec {
        MatmulSpec {
            batch: self.batch,
            m,
            k,
            n,
            trans_a,
            trans_b,
            a_shared: false,
            b_shared: false,
        }
    }

    /// `[batch, tq, tk]`, the attention weights' shape.
    pub(crate) fn weights_shape(&self) -> Shape {
        Shape::new([self.batch, self.tq, self.tk])
    }

    /// The softmax rows of the attention weights.
    pub(crate) fn rows(&self) -> AxisView {
        AxisView {
            outer: self.batch * self.tq,
            len: self.tk,
            inner: 1,
        }
    }
}
