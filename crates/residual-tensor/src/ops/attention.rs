//! Scaled dot-product attention: one op whose forward and backward are a
//! backend kernel pair ([`Backend::attention`](crate::Backend::attention)).
//! By default a backend composes it from its batched GEMM (reading K
//! transposed in place) and softmax kernels, so every backend runs it; the
//! CPU backend fuses it (`cpu/attention.rs`), and the conformance suite
//! checks the fused kernels against the composition.

use crate::backend::AttentionSpec;
use crate::{DType, Error, Result, Shape, Tensor};

impl Tensor {
    /// `softmax(scale * q @ k^T) @ v` over the last two dimensions, as
    /// PyTorch's `F.scaled_dot_product_attention(q, k, v, scale=scale)`
    /// without a mask or dropout:
    ///
    /// - `q` (`self`): `[..., tq, d]` (`[batch, heads, tokens, head_dim]` in a ViT),
    /// - `k`: `[..., tk, d]`, `v`: `[..., tk, dv]`, the same leading dimensions,
    /// - result: `[..., tq, dv]`.
    ///
    /// Computed in f32 (half inputs are widened, as autocast leaves them).
    pub fn scaled_dot_product_attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        scale: f32,
    ) -> Result<Tensor> {
        const OP: &str = "scaled_dot_product_attention";
        let q = self;
        q.expect_same_device(OP, k)?;
        q.expect_same_device(OP, v)?;
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
        let sizes = [
            q.dims()[r - 2],
            k.dims()[r - 2],
            q.dims()[r - 1],
            v.dims()[r - 1],
        ];
        if sizes.contains(&0) {
            return Err(Error::shape(
                OP,
                format!(
                    "needs tokens and widths of at least 1, got q {}, k {}, v {}",
                    q.shape(),
                    k.shape(),
                    v.shape()
                ),
            ));
        }
        if !scale.is_finite() {
            return Err(Error::arg(OP, format!("scale must be finite, got {scale}")));
        }
        let spec = AttentionSpec {
            batch: q.dims()[..r - 2].iter().product(),
            tq: q.dims()[r - 2],
            tk: k.dims()[r - 2],
            d: q.dims()[r - 1],
            dv: v.dims()[r - 1],
            scale,
        };
        let (q, k, v) = (
            q.cast(DType::F32)?,
            k.cast(DType::F32)?,
            v.cast(DType::F32)?,
        );
        let be = q.device().backend();
        let (o, saved) = be.attention(q.storage(), k.storage(), v.storage(), spec)?;
        crate::macs::add((spec.batch * spec.tq * spec.tk * (spec.d + spec.dv)) as u64);
        let mut out = q.dims().to_vec();
        out[r - 1] = spec.dv;
        let o_kept = o.clone();
        let (qs, ks, vs) = (q.clone(), k.clone(), v.clone());
        Ok(Tensor::recorded(
            o,
            Shape::new(out),
            q.device(),
            OP,
            &[&q, &k, &v],
            Box::new(move |g| {
                let g = g.cast(DType::F32)?;
                let be = qs.device().backend();
                let grads = be.attention_backward(
                    qs.storage(),
                    ks.storage(),
                    vs.storage(),
                    &o_kept,
                    &saved,
                    g.storage(),
                    spec,
                )?;
                let mut out = Vec::with_capacity(3);
                for (grad, input) in grads.into_iter().zip([&qs, &ks, &vs]) {
                    out.push(Some(Tensor::from_storage(
                        grad,
                        input.shape().clone(),
                        input.device(),
                    )?));
                }
                Ok(out)
            }),
            true,
        ))
    }
}
