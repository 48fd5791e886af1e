//! BatchNorm2d (trainable or frozen), GroupNorm and LayerNorm.

use crate::module::{Mode, Module, Visitor};
use crate::Param;
use residual_tensor::{no_grad, Device, Result, Tensor};

/// How a batch norm behaves in training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnMode {
    /// PyTorch's `BatchNorm2d`: batch statistics in training, running ones in evaluation.
    #[default]
    Normal,
    /// torchvision's `FrozenBatchNorm2d`: always the running statistics and
    /// fixed affine terms, even in training mode (fine-tuning with small batches).
    Frozen,
}

/// `torch.nn.BatchNorm2d` (eps 1e-5, momentum 0.1 by default).
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    /// Scale `[C]`.
    pub weight: Param,
    /// Shift `[C]`.
    pub bias: Param,
    /// Running mean `[C]`.
    pub running_mean: Param,
    /// Running (unbiased) variance `[C]`.
    pub running_var: Param,
    /// Training steps seen, shape `[]` (int64 in PyTorch checkpoints).
    pub num_batches_tracked: Param,
    /// Added to the variance.
    pub eps: f32,
    /// Weight of the new batch in the running statistics.
    pub momentum: f32,
    /// Trainable or frozen.
    pub mode: BnMode,
}

impl BatchNorm2d {
    /// Weight 1, bias 0, running mean 0 and variance 1, as PyTorch.
    pub fn new(c: usize, mode: BnMode, dev: &Device) -> Result<Self> {
        let affine = |v: f32| -> Result<Param> {
            let t = Tensor::full(v, [c], dev)?;
            Ok(match mode {
                BnMode::Normal => Param::parameter(t),
                BnMode::Frozen => Param::frozen(t),
            })
        };
        Ok(BatchNorm2d {
            weight: affine(1.0)?,
            bias: affine(0.0)?,
            running_mean: Param::buffer(Tensor::zeros([c], dev)?),
            running_var: Param::buffer(Tensor::ones([c], dev)?),
            num_batches_tracked: Param::buffer(Tensor::zeros(Vec::<usize>::new(), dev)?),
            eps: 1e-5,
            momentum: 0.1,
            mode,
        })
    }
}

impl BatchNorm2d {
    /// Whether a forward in `mode` normalises with the running statistics (a
    /// fixed per-channel affine map) rather than batch statistics: evaluation,
    /// or a frozen norm in any mode.
    pub fn uses_running_stats(&self, mode: Mode) -> bool {
        mode == Mode::Eval || self.mode == BnMode::Frozen
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (w, b) = (self.weight.get(), self.bias.get());
        if self.uses_running_stats(mode) {
            let y = x.batch_norm_eval(
                &self.running_mean.get(),
                &self.running_var.get(),
                Some(&w),
                Some(&b),
                self.eps,
            )?;
            crate::trace::record(self, &y);
            return Ok(y);
        }
        let out = match crate::sync_bn::sync_replicas() {
            Some(replicas) => x.batch_norm_train_synced(Some(&w), Some(&b), self.eps, replicas)?,
            None => x.batch_norm_train(Some(&w), Some(&b), self.eps)?,
        };
        let (mut rm, mut rv) = (self.running_mean.get(), self.running_var.get());
        if crate::batch_stats::storing_batch_statistics() {
            // Recalibration: this batch's statistics (whatever the running
            // ones held, non-finite values included), not a step of training;
            // the variance without Bessel's correction (over the batch's
            // `n = N*H*W` values per channel), so that batches combine into
            // the variance of all their values together.
            let n = (x.numel() / out.mean.numel().max(1)) as f32;
            rm = out.mean.detach();
            rv = no_grad(|| {
                out.var_unbiased
                    .mul_scalar(if n > 1.0 { (n - 1.0) / n } else { 1.0 })
            })?
            .detach();
        } else {
            out.update_running_stats(&mut rm, &mut rv, self.momentum)?;
            let n = no_grad(|| self.num_batches_tracked.get().add_scalar(1.0))?;
            self.num_batches_tracked.set(n);
        }
        self.running_mean.set(rm);
        self.running_var.set(rv);
        crate::trace::record(self, &out.y);
        Ok(out.y)
    }
    fn kind(&self) -> String {
        match self.mode {
            BnMode::Normal => "BatchNorm2d".into(),
            BnMode::Frozen => "FrozenBatchNorm2d".into(),
        }
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        f("bias", &self.bias);
        f("running_mean", &self.running_mean);
        f("running_var", &self.running_var);
        f("num_batches_tracked", &self.num_batches_tracked);
    }
}

/// `torch.nn.GroupNorm` (eps 1e-5).
#[derive(Debug, Clone)]
pub struct GroupNorm {
    /// Number of groups.
    pub groups: usize,
    /// Scale `[C]`.
    pub weight: Param,
    /// Shift `[C]`.
    pub bias: Param,
    /// Added to the variance.
    pub eps: f32,
}

impl GroupNorm {
    /// Weight 1, bias 0.
    pub fn new(groups: usize, c: usize, dev: &Device) -> Result<Self> {
        if groups == 0 || !c.is_multiple_of(groups) {
            return Err(residual_tensor::Error::arg(
                "GroupNorm",
                format!("channels {c} must divide by groups={groups}"),
            ));
        }
        Ok(GroupNorm {
            groups,
            weight: Param::parameter(Tensor::ones([c], dev)?),
            bias: Param::parameter(Tensor::zeros([c], dev)?),
            eps: 1e-5,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = x.group_norm(
            self.groups,
            Some(&self.weight.get()),
            Some(&self.bias.get()),
            self.eps,
        )?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }
}

/// `torch.nn.LayerNorm` over the trailing `normalized_shape`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// The normalised trailing dimensions.
    pub normalized_shape: Vec<usize>,
    /// Scale.
    pub weight: Param,
    /// Shift.
    pub bias: Param,
    /// Added to the variance (timm's ViT uses 1e-6).
    pub eps: f32,
}

impl LayerNorm {
    /// Weight 1, bias 0.
    pub fn new(normalized_shape: &[usize], eps: f32, dev: &Device) -> Result<Self> {
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight: Param::parameter(Tensor::ones(normalized_shape.to_vec(), dev)?),
            bias: Param::parameter(Tensor::zeros(normalized_shape.to_vec(), dev)?),
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = x.layer_norm(
            &self.normalized_shape,
            Some(&self.weight.get()),
            Some(&self.bias.get()),
            self.eps,
        )?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }
}
