//! Reductions: sum, mean, max, var over any set of axes; argmax.

use crate::backend::{AxisView, ReduceOp};
use crate::{Error, Result, Shape, Tensor};

/// The shape after reducing `axes` (sorted), with or without kept dims.
fn reduced_shape(shape: &Shape, axes: &[usize], keepdim: bool) -> (Shape, Shape) {
    let kept: Vec<usize> = shape
        .dims()
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let squeezed: Vec<usize> = shape
        .dims()
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    let kept = Shape::new(kept);
    let out = if keepdim {
        kept.clone()
    } else {
        Shape::new(squeezed)
    };
    (kept, out)
}

impl Tensor {
    /// Sum over `axes` (empty: all axes).
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        if self.is_half() {
            return self.to_f32()?.sum(axes, keepdim);
        }
        let ax = self.shape().axes("sum", axes)?;
        let (kept, out) = reduced_shape(self.shape(), &ax, keepdim);
        let s = self
            .device()
            .backend()
            .reduce(ReduceOp::Sum, self.storage(), self.shape(), &ax)?;
        let in_shape = self.shape().clone();
        Ok(Tensor::from_op(
            s,
            out,
            self.device(),
            "sum",
            &[self],
            move |g| {
                Ok(vec![Some(
                    g.reshape(kept.dims())?.broadcast_to(in_shape.dims())?,
                )])
            },
        ))
    }

    /// Sum of all elements, shape `[]`.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Mean over `axes` (empty: all axes).
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let ax = self.shape().axes("mean", axes)?;
        let count: usize = ax.iter().map(|&a| self.dims()[a]).product();
        if count == 0 {
            return Err(Error::arg(
                "mean",
                format!("mean over empty axes of shape {}", self.shape()),
            ));
        }
        self.sum(axes, keepdim)?.mul_scalar(1.0 / count as f32)
    }

    /// Maximum over `axes`; the gradient goes to every element equal to the
    /// maximum, shared evenly between ties (as PyTorch's `amax`).
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        if self.is_half() {
            return self.to_f32()?.max(axes, keepdim);
        }
        let ax = self.shape().axes("max", axes)?;
        if ax.iter().any(|&a| self.dims()[a] == 0) {
            return Err(Error::arg(
                "max",
                format!("max over an empty axis of shape {}", self.shape()),
            ));
        }
        let (kept, out) = reduced_shape(self.shape(), &ax, keepdim);
        let s = self
            .device()
            .backend()
            .reduce(ReduceOp::Max, self.storage(), self.shape(), &ax)?;
        let x = self.clone();
        let y = Tensor::from_storage(s.clone(), kept.clone(), self.device())?;
        let axes_i: Vec<isize> = ax.iter().map(|&a| a as isize).collect();
        Ok(Tensor::recorded(
            s,
            out,
            self.device(),
            "max",
            &[self],
            Box::new(move |g| {
                let mask = x.eq_mask(&y)?;
                let count = mask.sum(&axes_i, true)?;
                let g = g.reshape(kept.dims())?;
                Ok(vec![Some(mask.mul(&g.div(&count)?)?)])
            }),
            true,
        ))
    }

    /// 1.0 where `self == other` (broadcast), else 0.0, and NaN where either
    /// is NaN (so that a max over NaN has a NaN gradient, as PyTorch's);
    /// not differentiable.
    fn eq_mask(&self, other: &Tensor) -> Result<Tensor> {
        // (x - m) is 0 exactly where equal, and 1 - min(|x - m| * big, 1) maps
        // it to 1 and every other difference to 0. Infinities are first
        // clamped to +-f32::MAX, so that Inf == Inf (whose difference is NaN)
        // counts as equal (and so does a finite f32::MAX with Inf: too rare to
        // cost a comparison kernel); NaN passes through the clamps.
        let finite = |t: &Tensor| t.detach().clamp(-f32::MAX, f32::MAX);
        let d = finite(self)?.sub(&finite(other)?)?.abs()?;
        d.mul_scalar(f32::MAX)?
            .clamp(0.0, 1.0)?
            .neg()?
            .add_scalar(1.0)
    }

    /// Variance over `axes`; `unbiased` divides by `count - 1` (PyTorch's default).
    pub fn var(&self, axes: &[isize], keepdim: bool, unbiased: bool) -> Result<Tensor> {
        let ax = self.shape().axes("var", axes)?;
        let count: usize = ax.iter().map(|&a| self.dims()[a]).product();
        let denom = if unbiased {
            count.saturating_sub(1)
        } else {
            count
        };
        if denom == 0 {
            return Err(Error::arg(
                "var",
                format!(
                    "variance over {count} element(s) of shape {} (unbiased={unbiased})",
                    self.shape()
                ),
            ));
        }
        let centered = self.sub(&self.mean(axes, true)?)?;
        centered
            .mul(&centered)?
            .sum(axes, keepdim)?
            .mul_scalar(1.0 / denom as f32)
    }

    /// Index of the maximum along `axis` (first on ties), shape without the axis.
    pub fn argmax(&self, axis: isize) -> Result<Vec<usize>> {
        if self.is_half() {
            return self.to_f32()?.argmax(axis);
        }
        let a = self.shape().axis("argmax", axis)?;
        if self.dims()[a] == 0 {
            return Err(Error::arg(
                "argmax",
                format!("empty axis {a} of shape {}", self.shape()),
            ));
        }
        let idx = self
            .device()
            .backend()
            .argmax(self.storage(), AxisView::new(self.shape(), a))?;
        Ok(idx.into_iter().map(|i| i as usize).collect())
    }
}
