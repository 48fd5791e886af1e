//! Batched matrix product with broadcasting over the batch dimensions.

use crate::backend::MatmulSpec;
use crate::{Error, Result, Shape, Tensor};

/// `op(a) @ op(b)` on rank-3 storage, no autograd (used by backward rules).
fn raw(a: &Tensor, b: &Tensor, spec: MatmulSpec, out: Shape) -> Result<Tensor> {
    let s = a
        .device()
        .backend()
        .matmul(a.storage(), b.storage(), spec)?;
    Tensor::from_storage(s, out, a.device())
}

impl Tensor {
    /// Matrix product over the last two dimensions, `[..., m, k] @ [..., k, n] ->
    /// [..., m, n]`, broadcasting the leading (batch) dimensions as NumPy does.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.expect_same("matmul", rhs)?;
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(Error::shape(
                "matmul",
                format!(
                    "needs two tensors of rank >= 2, got {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let (ra, rb) = (self.rank(), rhs.rank());
        let (m, k) = (self.dims()[ra - 2], self.dims()[ra - 1]);
        let (k2, n) = (rhs.dims()[rb - 2], rhs.dims()[rb - 1]);
        if k != k2 {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner dimensions differ: {} @ {} ({k} vs {k2})",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let ba = Shape::new(self.dims()[..ra - 2].to_vec());
        let bb = Shape::new(rhs.dims()[..rb - 2].to_vec());
        let batch = Shape::broadcast("matmul", &ba, &bb).map_err(|_| {
            Error::shape(
                "matmul",
                format!(
                    "batch dimensions of {} and {} do not broadcast",
                    self.shape(),
                    rhs.shape()
                ),
            )
        })?;
        // A side whose batch is a single matrix is shared; any other partial
        // broadcast is materialised (recorded, so autograd sums it back).
        let prepare = |t: &Tensor, own: &Shape, r: usize| -> Result<(Tensor, bool)> {
            if own.numel() == 1 {
                return Ok((t.clone(), true));
            }
            if own == &batch {
                return Ok((t.clone(), false));
            }
            let mut d = batch.dims().to_vec();
            d.extend_from_slice(&t.dims()[r - 2..]);
            Ok((t.broadcast_to(&d)?, false))
        };
        let (a, a_shared) = prepare(self, &ba, ra)?;
        let (b, b_shared) = prepare(rhs, &bb, rb)?;
        let nb = batch.numel();
        let spec = MatmulSpec {
            batch: nb,
            m,
            k,
            n,
            trans_a: false,
            trans_b: false,
            a_shared,
            b_shared,
        };
        let mut out = batch.dims().to_vec();
        out.extend([m, n]);
        let s = a
            .device()
            .backend()
            .matmul(a.storage(), b.storage(), spec)?;
        let (sa, sb) = (a.clone(), b.clone());
        Ok(Tensor::from_op(
            s,
            Shape::new(out),
            a.device(),
            "matmul",
            &[&a, &b],
            move |g| {
                let ga = if sa.requires_grad() {
                    // dA = dC @ B^T : [nb, m, n] x [nb|1, k, n]^T
                    let spec = MatmulSpec {
                        batch: nb,
                        m,
                        k: n,
                        n: k,
                        trans_a: false,
                        trans_b: true,
                        a_shared: false,
                        b_shared,
                    };
                    let full = raw(g, &sb, spec, Shape::new([nb, m, k]))?;
                    Some(if a_shared {
                        full.sum(&[0], false)?.reshape(sa.dims())?
                    } else {
                        full.reshape(sa.dims())?
                    })
                } else {
                    None
                };
                let gb = if sb.requires_grad() {
                    // dB = A^T @ dC : [nb|1, m, k]^T x [nb, m, n]
                    let spec = MatmulSpec {
                        batch: nb,
                        m: k,
                        k: m,
                        n,
                        trans_a: true,
                        trans_b: false,
                        a_shared,
                        b_shared: false,
                    };
                    let full = raw(&sa, g, spec, Shape::new([nb, k, n]))?;
                    Some(if b_shared {
                        full.sum(&[0], false)?.reshape(sb.dims())?
                    } else {
                        full.reshape(sb.dims())?
                    })
                } else {
                    None
                };
                Ok(vec![ga, gb])
            },
        ))
    }
}
