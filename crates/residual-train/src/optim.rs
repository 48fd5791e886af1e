//! Optimizers: SGD and AdamW with PyTorch's semantics. Each step is one fused
//! backend kernel per parameter, so it runs where the weights live.

use residual_nn::Param;
use residual_tensor::{AdamWHyper, Error, Gradients, Result, SgdHyper, Tensor};
use serde::{Deserialize, Serialize};

/// Which optimizer, with its hyper-parameters (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd {
        /// Momentum factor.
        momentum: f32,
        /// Dampening.
        dampening: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty.
        weight_decay: f32,
    },
    /// `torch.optim.AdamW` (lr 1e-3, betas 0.9 / 0.999, eps 1e-8, weight decay 1e-2).
    AdamW {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator epsilon.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    /// SGD with momentum 0.9 and weight decay 5e-4 (the ResNet paper's recipe).
    pub fn sgd_momentum() -> Self {
        OptimizerConfig::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 5e-4,
        }
    }
    /// The weight decay (SGD's L2 penalty, AdamW's decoupled decay).
    pub fn weight_decay(&self) -> f32 {
        match *self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::AdamW { weight_decay, .. } => weight_decay,
        }
    }
    /// The same optimizer with weight decay `wd`.
    pub fn with_weight_decay(mut self, wd: f32) -> Self {
        match &mut self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::AdamW { weight_decay, .. } => *weight_decay = wd,
        }
        self
    }
    /// PyTorch's AdamW defaults.
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// Per-parameter optimizer state: momentum buffer (SGD) or moments (AdamW).
#[derive(Debug, Clone, Default)]
pub struct ParamState {
    /// SGD momentum buffer, or AdamW's first moment.
    pub m: Option<Tensor>,
    /// AdamW's second moment.
    pub v: Option<Tensor>,
}

/// An optimizer over a fixed list of named parameters.
pub struct Optimizer {
    /// Hyper-parameters.
    pub config: OptimizerConfig,
    params: Vec<(String, Param)>,
    /// Weight-decay multiplier per parameter (0 for norms and biases when asked).
    decay: Vec<f32>,
    state: Vec<ParamState>,
    step: u64,
}

impl Optimizer {
    /// Over the trainable parameters among `named` (buffers and frozen ones are
    /// skipped). With `no_decay_norm_bias`, parameters of rank <= 1 (biases,
    /// norm scales and shifts) get no weight decay: PyTorch's usual two groups.
    pub fn new(
        config: OptimizerConfig,
        named: Vec<(String, Param)>,
        no_decay_norm_bias: bool,
    ) -> Self {
        let params: Vec<(String, Param)> = named
            .into_iter()
            .filter(|(_, p)| p.is_trainable())
            .collect();
        let decay = params
            .iter()
            .map(|(_, p)| {
                if no_decay_norm_bias && p.get().rank() <= 1 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let state = vec![ParamState::default(); params.len()];
        Optimizer {
            config,
            params,
            decay,
            state,
            step: 0,
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The parameters it updates, with their names.
    pub fn params(&self) -> &[(String, Param)] {
        &self.params
    }

    /// Applies one update with learning rate `lr`. A parameter without a
    /// gradient (unused in this step) is left alone, as PyTorch does.
    pub fn step(&mut self, grads: &Gradients, lr: f32) -> Result<()> {
        self.step += 1;
        for (i, (name, param)) in self.params.iter().enumerate() {
            let p = param.get();
            let Some(g) = grads.get(&p) else { continue };
            if g.shape() != p.shape() {
                return Err(Error::shape(
                    "optimizer",
                    format!(
                        "gradient {} for parameter {name} of shape {}",
                        g.shape(),
                        p.shape()
                    ),
                ));
            }
            let be = p.device().backend();
            let st = &mut self.state[i];
            match self.config {
                OptimizerConfig::Sgd {
                    momentum,
                    dampening,
                    nesterov,
                    weight_decay,
                } => {
                    let h = SgdHyper {
                        lr,
                        momentum,
                        dampening,
                        weight_decay: weight_decay * self.decay[i],
                        nesterov,
                    };
                    let (np, nb) = be.sgd_step(
                        p.storage(),
                        g.storage(),
                        st.m.as_ref().map(Tensor::storage),
                        &h,
                    )?;
                    param.set(Tensor::from_storage(np, p.shape().clone(), p.device())?);
                    st.m = nb
                        .map(|b| Tensor::from_storage(b, p.shape().clone(), p.device()))
                        .transpose()?;
                }
                OptimizerConfig::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let zeros = || Tensor::zeros(p.shape().clone(), p.device());
                    let m = st.m.take().map_or_else(zeros, Ok)?;
                    let v = st.v.take().map_or_else(zeros, Ok)?;
                    let h = AdamWHyper {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay: weight_decay * self.decay[i],
                        step: self.step,
                    };
                    // The moments' buffers leave their tensors, so that the
                    // backend may update them in place (no tensor holds them).
                    let (ms, vs) = (m.storage().clone(), v.storage().clone());
                    drop((m, v));
                    let (np, nm, nv) = be.adamw_step(p.storage(), g.storage(), ms, vs, &h)?;
                    param.set(Tensor::from_storage(np, p.shape().clone(), p.device())?);
                    st.m = Some(Tensor::from_storage(nm, p.shape().clone(), p.device())?);
                    st.v = Some(Tensor::from_storage(nv, p.shape().clone(), p.device())?);
                }
            }
        }
        Ok(())
    }

    /// The state as named tensors (`<param>.m`, `<param>.v`) and the step count, for checkpoints.
    pub fn state_tensors(&self) -> (Vec<(String, Tensor)>, u64) {
        let mut out = Vec::new();
        for ((name, _), st) in self.params.iter().zip(&self.state) {
            if let Some(m) = &st.m {
                out.push((format!("{name}.m"), m.clone()));
            }
            if let Some(v) = &st.v {
                out.push((format!("{name}.v"), v.clone()));
            }
        }
        (out, self.step)
    }

    /// Restores the state saved by [`Optimizer::state_tensors`].
    pub fn load_state(
        &mut self,
        tensors: &std::collections::BTreeMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for ((name, p), st) in self.params.iter().zip(self.state.iter_mut()) {
            let p = p.get();
            let fetch = |suffix: &str| -> Result<Option<Tensor>> {
                match tensors.get(&format!("{name}.{suffix}")) {
                    None => Ok(None),
                    Some(t) if t.shape() != p.shape() => Err(Error::Weights(format!(
                        "optimizer state {name}.{suffix} has shape {}, parameter has {}",
                        t.shape(),
                        p.shape()
                    ))),
                    Some(t) => Ok(Some(t.to_device(p.device())?)),
                }
            };
            st.m = fetch("m")?;
            st.v = fetch("v")?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_weight_decay_changes_the_decay_alone() {
        for base in [OptimizerConfig::sgd_momentum(), OptimizerConfig::adamw()] {
            let changed = base.with_weight_decay(0.25);
            assert_eq!(changed.weight_decay(), 0.25);
            assert_eq!(changed.with_weight_decay(base.weight_decay()), base);
        }
    }
}
