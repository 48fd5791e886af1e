//! Batch, group and layer normalisation, each one fused forward kernel and one
//! fused backward kernel.

use crate::backend::{AxisView, NormGrads, NormStats, RowAffine};
use crate::{autograd, Error, Result, Shape, Tensor};

/// The result of a training-mode batch norm: the output and the batch
/// statistics for the running-stat update.
#[derive(Debug, Clone)]
pub struct BatchNormOutput {
    /// Normalised output, same shape as the input.
    pub y: Tensor,
    /// Per-channel batch mean `[C]` (no grad).
    pub mean: Tensor,
    /// Per-channel unbiased batch variance `[C]` (no grad), as PyTorch uses for
    /// the running variance.
    pub var_unbiased: Tensor,
}

impl BatchNormOutput {
    /// PyTorch's running-stat update: `r = (1 - momentum) * r + momentum * batch`.
    pub fn update_running_stats(
        &self,
        running_mean: &mut Tensor,
        running_var: &mut Tensor,
        momentum: f32,
    ) -> Result<()> {
        autograd::no_grad(|| {
            for (r, b) in [
                (running_mean, &self.mean),
                (running_var, &self.var_unbiased),
            ] {
                if r.shape() != b.shape() {
                    return Err(Error::shape(
                        "batch_norm",
                        format!(
                            "running statistic {} does not match channels {}",
                            r.shape(),
                            b.shape()
                        ),
                    ));
                }
                *r = r
                    .mul_scalar(1.0 - momentum)?
                    .add(&b.mul_scalar(momentum)?)?;
            }
            Ok(())
        })
    }
}

/// Checks an optional per-channel parameter and returns it (or `fill` values).
pub(super) fn affine_param(
    op: &'static str,
    name: &str,
    p: Option<&Tensor>,
    x: &Tensor,
    len: usize,
    fill: f32,
) -> Result<Tensor> {
    match p {
        Some(t) => {
            x.expect_same_device(op, t)?;
            if t.dims() != [len] {
                return Err(Error::shape(
                    op,
                    format!(
                        "{name} must be [{len}] for input {}, got {}",
                        x.shape(),
                        t.shape()
                    ),
                ));
            }
            t.to_f32()
        }
        None => Tensor::full(fill, [len], x.device()),
    }
}

/// Records a normalisation whose backward kernel yields `(dx, dgamma, dbeta)`.
fn record(
    op: &'static str,
    y: crate::Storage,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    backward: impl Fn(&Tensor) -> Result<NormGrads> + Send + Sync + 'static,
) -> Tensor {
    let (gs, bs) = (gamma.shape().clone(), beta.shape().clone());
    let xs = x.shape().clone();
    Tensor::from_op(
        y,
        xs.clone(),
        x.device(),
        op,
        &[x, gamma, beta],
        move |dy| {
            let g = backward(dy)?;
            let dev = dy.device();
            Ok(vec![
                Some(Tensor::from_storage(g.dx, xs.clone(), dev)?),
                Some(Tensor::from_storage(g.dgamma, gs.clone(), dev)?),
                Some(Tensor::from_storage(g.dbeta, bs.clone(), dev)?),
            ])
        },
    )
}

impl Tensor {
    /// Training-mode batch norm over `[N, C, ...]`: normalises each channel with
    /// the batch mean and biased variance, then `y = xhat * weight + bias`.
    pub fn batch_norm_train(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<BatchNormOutput> {
        const OP: &str = "batch_norm";
        // A half input (a convolution's output under autocast) goes to the
        // kernel as it is: it computes in f32 and returns the input's dtype,
        // as PyTorch's batch norm of a bf16 input, and its gradient comes
        // back in the input's dtype.
        if self.rank() < 2 {
            return Err(Error::shape(
                OP,
                format!("expected input [N, C, ...], got {}", self.shape()),
            ));
        }
        let view = AxisView::new(self.shape(), 1);
        let count = view.outer * view.inner;
        if count < 2 {
            return Err(Error::arg(
                OP,
                format!(
                    "training needs more than one value per channel, got input {}",
                    self.shape()
                ),
            ));
        }
        let c = view.len;
        let gamma = affine_param(OP, "weight", weight, self, c, 1.0)?;
        let beta = affine_param(OP, "bias", bias, self, c, 0.0)?;
        let be = self.device().backend();
        let (y, stats) =
            be.batch_norm(self.storage(), view, gamma.storage(), beta.storage(), eps)?;
        let dev = self.device();
        let mean = Tensor::from_storage(stats.mean.clone(), [c], dev)?;
        // unbiased var = (1/rstd^2 - eps) * n / (n - 1)
        let rstd = Tensor::from_storage(stats.rstd.clone(), [c], dev)?;
        let var_unbiased = rstd
            .mul(&rstd)?
            .powf(-1.0)?
            .add_scalar(-eps)?
            .mul_scalar(count as f32 / (count - 1) as f32)?;
        let (x, g) = (self.clone(), gamma.clone());
        let y = record(OP, y, self, &gamma, &beta, move |dy| {
            dy.device().backend().batch_norm_backward(
                x.storage(),
                dy.storage(),
                view,
                g.storage(),
                &stats,
            )
        });
        Ok(BatchNormOutput {
            y,
            mean,
            var_unbiased,
        })
    }

    /// Evaluation-mode batch norm with running statistics: a per-channel affine
    /// map, `y = (x - mean) / sqrt(var + eps) * weight + bias`.
    pub fn batch_norm_eval(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm";
        if self.is_half() {
            return self
                .to_f32()?
                .batch_norm_eval(running_mean, running_var, weight, bias, eps);
        }
        if self.rank() < 2 {
            return Err(Error::shape(
                OP,
                format!("expected input [N, C, ...], got {}", self.shape()),
            ));
        }
        let c = self.dims()[1];
        let mean = affine_param(OP, "running_mean", Some(running_mean), self, c, 0.0)?;
        let var = affine_param(OP, "running_var", Some(running_var), self, c, 1.0)?;
        let gamma = affine_param(OP, "weight", weight, self, c, 1.0)?;
        let beta = affine_param(OP, "bias", bias, self, c, 0.0)?;
        let scale = gamma.mul(&var.add_scalar(eps)?.rsqrt()?)?;
        let shift = beta.sub(&mean.mul(&scale)?)?;
        let mut bshape = vec![1; self.rank()];
        bshape[1] = c;
        self.mul(&scale.reshape(&bshape)?)?
            .add(&shift.reshape(&bshape)?)
    }

    /// Group norm over `[N, C, ...]` with `groups` groups, as `F.group_norm`.
    pub fn group_norm(
        &self,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "group_norm";
        if self.rank() < 2 {
            return Err(Error::shape(
                OP,
                format!("expected input [N, C, ...], got {}", self.shape()),
            ));
        }
        let (n, c) = (self.dims()[0], self.dims()[1]);
        if groups == 0 || c % groups != 0 {
            return Err(Error::arg(
                OP,
                format!(
                    "channels {c} of input {} must divide by groups={groups}",
                    self.shape()
                ),
            ));
        }
        let hw: usize = self.dims()[2..].iter().product();
        let affine = RowAffine {
            groups,
            channels_per_group: c / groups,
            per_channel: hw,
        };
        self.row_norm(
            OP,
            n * groups,
            c / groups * hw,
            affine,
            c,
            weight,
            bias,
            eps,
        )
    }

    /// Layer norm over the trailing dimensions `normalized_shape`, as `F.layer_norm`.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        let r = normalized_shape.len();
        if r == 0 || r > self.rank() || self.dims()[self.rank() - r..] != *normalized_shape {
            return Err(Error::shape(OP, format!("normalized_shape {normalized_shape:?} must be the trailing dimensions of input {}", self.shape())));
        }
        let cols: usize = normalized_shape.iter().product();
        let rows = self.numel() / cols.max(1);
        let check = |p: Option<&Tensor>, name: &str| -> Result<Option<Tensor>> {
            match p {
                Some(t) if t.dims() != normalized_shape => Err(Error::shape(
                    OP,
                    format!("{name} must be {:?}, got {}", normalized_shape, t.shape()),
                )),
                Some(t) => Ok(Some(t.reshape(&[cols])?)),
                None => Ok(None),
            }
        };
        let (w, b) = (check(weight, "weight")?, check(bias, "bias")?);
        let affine = RowAffine {
            groups: 1,
            channels_per_group: cols,
            per_channel: 1,
        };
        self.row_norm(OP, rows, cols, affine, cols, w.as_ref(), b.as_ref(), eps)
    }

    #[allow(clippy::too_many_arguments)]
    fn row_norm(
        &self,
        op: &'static str,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        params: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        if cols == 0 {
            return Err(Error::arg(
                op,
                format!("nothing to normalise in input {}", self.shape()),
            ));
        }
        // A half input (a convolution's or a linear layer's output under
        // autocast) goes to the kernel as it is, as for batch norm: no f32
        // copy of it is made or kept for the backward pass.
        let gamma = affine_param(op, "weight", weight, self, params, 1.0)?;
        let beta = affine_param(op, "bias", bias, self, params, 0.0)?;
        let be = self.device().backend();
        let (y, stats): (_, NormStats) = be.row_norm(
            self.storage(),
            rows,
            cols,
            affine,
            gamma.storage(),
            beta.storage(),
            eps,
        )?;
        let (x, g) = (self.clone(), gamma.clone());
        let out = record(op, y, self, &gamma, &beta, move |dy| {
            dy.device().backend().row_norm_backward(
                x.storage(),
                dy.storage(),
                rows,
                cols,
                affine,
                g.storage(),
                &stats,
            )
        });
        // The output keeps the input's shape.
        debug_assert_eq!(out.shape(), &Shape::new(self.dims().to_vec()));
        Ok(out)
    }
}
