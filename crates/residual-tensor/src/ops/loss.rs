//! Softmax, log-softmax and cross-entropy.

use crate::backend::AxisView;
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    fn softmax_impl(&self, axis: isize, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        if self.is_half() {
            return self.to_f32()?.softmax_impl(axis, log);
        }
        let a = self.shape().axis(op, axis)?;
        let view = AxisView::new(self.shape(), a);
        let s = self.device().backend().softmax(self.storage(), view, log)?;
        let y = Tensor::from_storage(s.clone(), self.shape().clone(), self.device())?;
        Ok(Tensor::recorded(
            s,
            self.shape().clone(),
            self.device(),
            op,
            &[self],
            Box::new(move |dy| {
                let dx =
                    dy.device()
                        .backend()
                        .softmax_backward(y.storage(), dy.storage(), view, log)?;
                Ok(vec![Some(Tensor::from_storage(
                    dx,
                    y.shape().clone(),
                    y.device(),
                )?)])
            }),
            true,
        ))
    }

    /// Softmax along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, false)
    }

    /// Log-softmax along `axis` (computed stably, not as `log(softmax)`).
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, true)
    }

    /// Mean cross-entropy of `self: [N, C]` logits against class indices
    /// `targets` (`N` of them, each `< C`), with PyTorch's label smoothing:
    /// `loss = (1 - eps) * nll + eps * mean_c(-log p_c)`. Shape `[]`.
    pub fn cross_entropy(&self, targets: &[usize], label_smoothing: f32) -> Result<Tensor> {
        const OP: &str = "cross_entropy";
        if self.is_half() {
            return self.to_f32()?.cross_entropy(targets, label_smoothing);
        }
        if self.rank() != 2 {
            return Err(Error::shape(
                OP,
                format!("expected logits [N, C], got {}", self.shape()),
            ));
        }
        let (n, c) = (self.dims()[0], self.dims()[1]);
        if targets.len() != n || n == 0 {
            return Err(Error::shape(
                OP,
                format!(
                    "logits {} need {n} targets (N > 0), got {}",
                    self.shape(),
                    targets.len()
                ),
            ));
        }
        if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= c) {
            return Err(Error::arg(
                OP,
                format!("target {t} at position {i} is not a class index below C={c}"),
            ));
        }
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(Error::arg(
                OP,
                format!("label_smoothing must be in [0, 1], got {label_smoothing}"),
            ));
        }
        let s = self.device().backend().cross_entropy(
            self.storage(),
            n,
            c,
            targets,
            label_smoothing,
        )?;
        let (x, t) = (self.clone(), targets.to_vec());
        Ok(Tensor::from_op(
            s,
            Shape::new(vec![]),
            self.device(),
            OP,
            &[self],
            move |dl| {
                let dx = dl.device().backend().cross_entropy_backward(
                    x.storage(),
                    n,
                    c,
                    &t,
                    label_smoothing,
                    dl.storage(),
                )?;
                Ok(vec![Some(Tensor::from_storage(
                    dx,
                    x.shape().clone(),
                    x.device(),
                )?)])
            },
        ))
    }
}
