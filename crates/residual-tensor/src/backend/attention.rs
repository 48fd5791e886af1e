//! Scaled dot-product attention as a backend kernel pair, and its
//! composition from the other kernels (the trait's default, so every backend
//! runs it; a backend overrides it with a fused kernel that must match it).
//!
//! Shapes: `q: [batch, tq, d]`, `k: [batch, tk, d]`, `v: [batch, tk, dv]`,
//! `o: [batch, tq, dv]`; `batch` is every leading dimension (batch x heads).

use super::kernels::Backend;
use super::params::{AxisView, BinaryOp, MatmulSpec};
use super::storage::Storage;
use crate::{Result, Shape};

/// The sizes and scale of one attention call.
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
    fn gemm(&self, m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> MatmulSpec {
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
    fn weights_shape(&self) -> Shape {
        Shape::new([self.batch, self.tq, self.tk])
    }

    /// `x * scale` over the attention weights' shape.
    fn scaled<B: Backend + ?Sized>(&self, be: &B, x: &Storage) -> Result<Storage> {
        let shape = self.weights_shape();
        let s = be.full(1, self.scale)?;
        be.binary(
            BinaryOp::Mul,
            (x, &shape),
            (&s, &Shape::new([1, 1, 1])),
            &shape,
        )
    }

    /// The softmax rows of the attention weights.
    fn rows(&self) -> AxisView {
        AxisView {
            outer: self.batch * self.tq,
            len: self.tk,
            inner: 1,
        }
    }
}

/// The composed forward: `s = scale * q @ k^T` (K read transposed in place),
/// `p = softmax(s)` along the keys, `o = p @ v`. Returns `(o, p)`: `p`
/// `[batch, tq, tk]` is what [`composed_attention_backward`] reads.
pub fn composed_attention<B: Backend + ?Sized>(
    be: &B,
    q: &Storage,
    k: &Storage,
    v: &Storage,
    s: AttentionSpec,
) -> Result<(Storage, Storage)> {
    let scores = be.matmul(q, k, s.gemm(s.tq, s.d, s.tk, false, true))?;
    let p = be.softmax(&s.scaled(be, &scores)?, s.rows(), false)?;
    let o = be.matmul(&p, v, s.gemm(s.tq, s.tk, s.dv, false, false))?;
    Ok((o, p))
}

/// The composed backward from the weights `p` the forward kept:
/// `dv = p^T @ do`, `dp = do @ v^T`, `ds = scale * p * (dp - sum(dp * p))`
/// (the softmax backward), `dq = ds @ k`, `dk = ds^T @ q`. Returns `[dq, dk, dv]`.
#[allow(clippy::too_many_arguments)]
pub fn composed_attention_backward<B: Backend + ?Sized>(
    be: &B,
    q: &Storage,
    k: &Storage,
    v: &Storage,
    p: &Storage,
    d_o: &Storage,
    s: AttentionSpec,
) -> Result<[Storage; 3]> {
    let dv = be.matmul(p, d_o, s.gemm(s.tk, s.tq, s.dv, true, false))?;
    let dp = be.matmul(d_o, v, s.gemm(s.tq, s.dv, s.tk, false, true))?;
    let ds = s.scaled(be, &be.softmax_backward(p, &dp, s.rows(), false)?)?;
    let dq = be.matmul(&ds, k, s.gemm(s.tq, s.tk, s.d, false, false))?;
    let dk = be.matmul(&ds, q, s.gemm(s.tk, s.tq, s.d, true, false))?;
    Ok([dq, dk, dv])
}
