//! `shaders/norm.wgsl`: batch norm and row norm, forward and fused backward.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `batch_norm` and `batch_norm_backward`.
pub const BN_PARAMS: Binding = Binding::uniform("bn_params", 0);
/// Parameters of the row-norm kernels.
pub const RN_PARAMS: Binding = Binding::uniform("rn_params", 0);
/// The input.
pub const X: Binding = Binding::read("x", 1);
/// The scale.
pub const GAMMA: Binding = Binding::read("gamma", 2);
/// The shift.
pub const BETA: Binding = Binding::read("beta", 3);
/// The output.
pub const Y: Binding = Binding::read_write("y", 4);
/// The forward's mean (written).
pub const MEAN_OUT: Binding = Binding::read_write("mean_out", 5);
/// The forward's reciprocal standard deviation (written).
pub const RSTD_OUT: Binding = Binding::read_write("rstd_out", 6);
/// The output's gradient.
pub const DY: Binding = Binding::read("dy", 7);
/// The forward's mean (read by the backward).
pub const MEAN_IN: Binding = Binding::read("mean_in", 8);
/// The forward's reciprocal standard deviation (read by the backward).
pub const RSTD_IN: Binding = Binding::read("rstd_in", 9);
/// The input's gradient.
pub const DX: Binding = Binding::read_write("dx", 10);
/// The scale's gradient.
pub const DGAMMA: Binding = Binding::read_write("dgamma", 11);
/// The shift's gradient.
pub const DBETA: Binding = Binding::read_write("dbeta", 12);

params! {
    /// Parameters of the batch-norm kernels, `x: [outer, channels, inner]`.
    pub struct BatchNormParams in "norm" at BN_PARAMS {
        /// Product of the dimensions before the channels.
        pub outer: u32,
        /// Channels.
        pub channels: u32,
        /// Product of the dimensions after the channels.
        pub inner: u32,
        /// Added to the variance (unused by the backward).
        pub eps: f32,
    }
}

params! {
    /// Parameters of the row-norm kernels, `x: [rows, cols]`; the parameter
    /// of (row r, col j) is `(r % groups) * cpg + j / per_channel`.
    pub struct RowNormParams in "norm" at RN_PARAMS {
        /// Rows.
        pub rows: u32,
        /// Columns.
        pub cols: u32,
        /// Groups of rows sharing parameters.
        pub groups: u32,
        /// Channels per group.
        pub cpg: u32,
        /// Columns per channel.
        pub per_channel: u32,
        /// Added to the variance (unused by the backward).
        pub eps: f32,
        /// Padding to a multiple of 16 bytes.
        pub _pad0: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad1: u32,
    }
}

/// Batch-norm forward.
pub const BATCH_NORM: Entry<BatchNormParams> = Entry::new("batch_norm");
/// Batch-norm fused backward.
pub const BATCH_NORM_BACKWARD: Entry<BatchNormParams> = Entry::new("batch_norm_backward");
/// Row-norm forward.
pub const ROW_NORM: Entry<RowNormParams> = Entry::new("row_norm");
/// Row-norm backward (dx).
pub const ROW_NORM_BACKWARD: Entry<RowNormParams> = Entry::new("row_norm_backward");
/// Row-norm backward (dgamma, dbeta).
pub const ROW_NORM_PARAMS_BACKWARD: Entry<RowNormParams> = Entry::new("row_norm_params_backward");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "norm",
        structs: vec![BatchNormParams::layout(), RowNormParams::layout()],
        bindings: vec![
            BN_PARAMS, RN_PARAMS, X, GAMMA, BETA, Y, MEAN_OUT, RSTD_OUT, DY, MEAN_IN, RSTD_IN, DX,
            DGAMMA, DBETA,
        ],
        entries: vec![
            BATCH_NORM.reflect(),
            BATCH_NORM_BACKWARD.reflect(),
            ROW_NORM.reflect(),
            ROW_NORM_BACKWARD.reflect(),
            ROW_NORM_PARAMS_BACKWARD.reflect(),
        ],
    }
}
