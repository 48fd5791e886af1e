//! `shaders/optim.wgsl`: fused SGD and AdamW updates.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `sgd` and `sgd_momentum`.
pub const SGD_PARAMS: Binding = Binding::uniform("sgd_params", 0);
/// Parameters of `adamw`.
pub const ADAMW_PARAMS: Binding = Binding::uniform("adamw_params", 0);
/// The parameter.
pub const P: Binding = Binding::read("p", 1);
/// Its gradient.
pub const G: Binding = Binding::read("g", 2);
/// The updated parameter.
pub const P_OUT: Binding = Binding::read_write("p_out", 3);
/// SGD's momentum buffer.
pub const BUF: Binding = Binding::read("buf", 4);
/// The updated momentum buffer.
pub const BUF_OUT: Binding = Binding::read_write("buf_out", 5);
/// AdamW's first moment.
pub const M: Binding = Binding::read("m", 6);
/// AdamW's second moment.
pub const V: Binding = Binding::read("v", 7);
/// The updated first moment.
pub const M_OUT: Binding = Binding::read_write("m_out", 8);
/// The updated second moment.
pub const V_OUT: Binding = Binding::read_write("v_out", 9);

params! {
    /// Parameters of the SGD kernels (torch.optim.SGD).
    pub struct SgdParams in "optim" at SGD_PARAMS {
        /// Number of elements.
        pub n: u32,
        /// Learning rate.
        pub lr: f32,
        /// Momentum.
        pub momentum: f32,
        /// Dampening.
        pub dampening: f32,
        /// Weight decay (L2, added to the gradient).
        pub weight_decay: f32,
        /// Nesterov momentum (1) or not (0).
        pub nesterov: u32,
        /// The first step (1): the buffer is not read.
        pub first: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad0: u32,
    }
}

params! {
    /// Parameters of `adamw` (torch.optim.AdamW).
    pub struct AdamWParams in "optim" at ADAMW_PARAMS {
        /// Number of elements.
        pub n: u32,
        /// Learning rate.
        pub lr: f32,
        /// First-moment decay.
        pub beta1: f32,
        /// Second-moment decay.
        pub beta2: f32,
        /// Added to the denominator.
        pub eps: f32,
        /// Decoupled weight decay.
        pub weight_decay: f32,
        /// `lr / (1 - beta1^t)`.
        pub step_size: f32,
        /// `sqrt(1 - beta2^t)`.
        pub bc2_sqrt: f32,
    }
}

/// SGD without momentum.
pub const SGD: Entry<SgdParams> = Entry::new("sgd");
/// SGD with momentum.
pub const SGD_MOMENTUM: Entry<SgdParams> = Entry::new("sgd_momentum");
/// AdamW.
pub const ADAMW: Entry<AdamWParams> = Entry::new("adamw");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "optim",
        structs: vec![SgdParams::layout(), AdamWParams::layout()],
        bindings: vec![
            SGD_PARAMS,
            ADAMW_PARAMS,
            P,
            G,
            P_OUT,
            BUF,
            BUF_OUT,
            M,
            V,
            M_OUT,
            V_OUT,
        ],
        entries: vec![SGD.reflect(), SGD_MOMENTUM.reflect(), ADAMW.reflect()],
    }
}
