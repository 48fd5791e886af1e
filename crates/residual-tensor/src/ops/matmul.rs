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
        self.matmul_impl("matmul", rhs, false)
    }

    /// `self @ rhs^T` over the last two dimensions, `[..., m, k] @ ([..., n, k])^T
    /// -> [..., m, n]` (PyTorch's `a @ b.transpose(-2, -1)`), broadcasting the
    /// batch dimensions as [`Tensor::matmul`]. The GEMM reads `rhs` transposed
    /// in place: no transposed copy is made, forward or backward.
    pub fn matmul_nt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_impl("matmul_nt", rhs, true)
    }

    /// `self @ op(rhs)` with `op` the transpose when `trans_b` (`rhs` then
    /// stored `[..., n, k]`).
    fn matmul_impl(&self, op: &'static str, rhs: &Tensor, trans_b: bool) -> Result<Tensor> {
        let dtype = self.gemm_dtype(op, rhs)?;
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(Error::shape(
                op,
                format!(
                    "needs two tensors of rank >= 2, got {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let (ra, rb) = (self.rank(), rhs.rank());
        let (m, k) = (self.dims()[ra - 2], self.dims()[ra - 1]);
        let (k2, n) = match trans_b {
            false => (rhs.dims()[rb - 2], rhs.dims()[rb - 1]),
            true => (rhs.dims()[rb - 1], rhs.dims()[rb - 2]),
        };
        if k != k2 {
            let expected = match trans_b {
                false => "[..., m, k] @ [..., k, n]",
                true => "[..., m, k] @ ([..., n, k])^T",
            };
            return Err(Error::shape(
                op,
                format!(
                    "inner dimensions differ: {} and {} ({k} vs {k2}; expected {expected})",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let ba = Shape::new(self.dims()[..ra - 2].to_vec());
        let bb = Shape::new(rhs.dims()[..rb - 2].to_vec());
        let batch = Shape::broadcast(op, &ba, &bb).map_err(|_| {
            Error::shape(
                op,
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
        let (a, b) = (
            crate::autocast::cast_for_gemm(&a, dtype)?,
            crate::autocast::cast_for_gemm(&b, dtype)?,
        );
        let nb = batch.numel();
        let spec = MatmulSpec {
            batch: nb,
            m,
            k,
            n,
            trans_a: false,
            trans_b,
            a_shared,
            b_shared,
        };
        let mut out = batch.dims().to_vec();
        out.extend([m, n]);
        crate::macs::add((nb * m * k * n) as u64);
        let s = a
            .device()
            .backend()
            .matmul(a.storage(), b.storage(), spec)?;
        let (sa, sb) = (a.clone(), b.clone());
        // Sums a gradient computed per batch entry back onto a shared operand.
        let fold = |full: Tensor, shared: bool, dims: &[usize]| -> Result<Tensor> {
            match shared {
                true => full.sum(&[0], false)?.reshape(dims),
                false => full.reshape(dims),
            }
        };
        Ok(Tensor::from_op(
            s,
            Shape::new(out),
            a.device(),
            op,
            &[&a, &b],
            move |g| {
                let g = &g.cast(sa.dtype())?;
                let ga = if sa.requires_grad() {
                    // dA = dC @ op(B)^T: [nb, m, n] x ([nb|1, k, n])^T, or
                    // [nb, m, n] x [nb|1, n, k] when B is stored transposed.
                    let spec = MatmulSpec {
                        batch: nb,
                        m,
                        k: n,
                        n: k,
                        trans_a: false,
                        trans_b: !trans_b,
                        a_shared: false,
                        b_shared,
                    };
                    let full = raw(g, &sb, spec, Shape::new([nb, m, k]))?;
                    Some(fold(full, a_shared, sa.dims())?)
                } else {
                    None
                };
                let gb = if sb.requires_grad() {
                    let full = if trans_b {
                        // dB = dC^T @ A: ([nb, m, n])^T x [nb|1, m, k] -> [nb, n, k]
                        let spec = MatmulSpec {
                            batch: nb,
                            m: n,
                            k: m,
                            n: k,
                            trans_a: true,
                            trans_b: false,
                            a_shared: false,
                            b_shared: a_shared,
                        };
                        raw(g, &sa, spec, Shape::new([nb, n, k]))?
                    } else {
                        // dB = A^T @ dC: ([nb|1, m, k])^T x [nb, m, n] -> [nb, k, n]
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
                        raw(&sa, g, spec, Shape::new([nb, k, n]))?
                    };
                    Some(fold(full, b_shared, sb.dims())?)
                } else {
                    None
                };
                Ok(vec![ga, gb])
            },
        ))
    }
}

impl Tensor {
    /// A fully connected layer as PyTorch's `F.linear`: `self: [..., in]`,
    /// `weight: [out, in]`, optional `bias: [out]`, result `[..., out]`. The
    /// weight is read transposed by the GEMM, never copied.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (input, weight) = self.gemm_operands("linear", weight)?;
        let weight = &weight;
        if input.rank() < 1
            || weight.rank() != 2
            || input.dims()[input.rank() - 1] != weight.dims()[1]
        {
            return Err(Error::shape(
                "linear",
                format!("input {} and weight {} do not fit: expected input [..., in] and weight [out, in]", input.shape(), weight.shape()),
            ));
        }
        let (out_f, in_f) = (weight.dims()[0], weight.dims()[1]);
        let rows = input.numel() / in_f.max(1);
        let x2 = input.reshape(&[rows, in_f])?;
        let spec = MatmulSpec {
            batch: 1,
            m: rows,
            k: in_f,
            n: out_f,
            trans_a: false,
            trans_b: true,
            a_shared: false,
            b_shared: false,
        };
        crate::macs::add((rows * in_f * out_f) as u64);
        let s = self
            .device()
            .backend()
            .linear(x2.storage(), weight.storage(), spec)?;
        let (x, w) = (x2.clone(), weight.clone());
        let y = Tensor::from_op(
            s,
            Shape::new([rows, out_f]),
            input.device(),
            "linear",
            &[&x2, weight],
            move |g| {
                let g = &g.cast(x.dtype())?;
                let dx = x.requires_grad().then(|| {
                    // dX = dY @ W : [rows, out] x [out, in]
                    let spec = MatmulSpec {
                        batch: 1,
                        m: rows,
                        k: out_f,
                        n: in_f,
                        trans_a: false,
                        trans_b: false,
                        a_shared: false,
                        b_shared: false,
                    };
                    raw(g, &w, spec, Shape::new([rows, in_f]))
                });
                let dw = w.requires_grad().then(|| {
                    // dW = dY^T @ X : [out, rows] x [rows, in]
                    let spec = MatmulSpec {
                        batch: 1,
                        m: out_f,
                        k: rows,
                        n: in_f,
                        trans_a: true,
                        trans_b: false,
                        a_shared: false,
                        b_shared: false,
                    };
                    raw(g, &x, spec, Shape::new([out_f, in_f]))
                });
                Ok(vec![dx.transpose()?, dw.transpose()?])
            },
        );
        let mut out_dims = input.dims()[..input.rank() - 1].to_vec();
        out_dims.push(out_f);
        let y = match bias {
            None => y,
            Some(b) => {
                if b.dims() != [out_f] {
                    return Err(Error::shape(
                        "linear",
                        format!(
                            "bias must be [{out_f}] for weight {}, got {}",
                            weight.shape(),
                            b.shape()
                        ),
                    ));
                }
                y.add(b)?
            }
        };
        y.reshape(&out_dims)
    }
}
