//! `shaders/layout.wgsl`: strided gathers, concatenation, index_select and
//! index_add.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `strided_copy`.
pub const COPY_PARAMS: Binding = Binding::uniform("copy_params", 0);
/// Parameters of `copy_block`.
pub const BLOCK_PARAMS: Binding = Binding::uniform("block_params", 0);
/// Parameters of `index_select` and `index_add`.
pub const INDEX_PARAMS: Binding = Binding::uniform("index_params", 0);
/// The input.
pub const X: Binding = Binding::read("x", 1);
/// The output.
pub const Y: Binding = Binding::read_write("y", 2);
/// `strided_copy`'s `[dims[rank], strides[rank]]`.
pub const SHAPE: Binding = Binding::read("shape", 3);
/// `index_select` / `index_add`'s `index[count]`.
pub const POSITIONS: Binding = Binding::read("positions", 4);

params! {
    /// Parameters of `strided_copy`.
    pub struct CopyParams in "layout" at COPY_PARAMS {
        /// Number of output elements.
        pub n: u32,
        /// Rank of the (coalesced) output shape; `shape` holds 2 * rank words.
        pub rank: u32,
        /// Offset of the first element in `x`.
        pub offset: u32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
    }
}

params! {
    /// Parameters of `copy_block` (one part of a concatenation).
    pub struct BlockParams in "layout" at BLOCK_PARAMS {
        /// Product of the dimensions before the axis.
        pub outer: u32,
        /// This part's length along the axis.
        pub len: u32,
        /// Product of the dimensions after the axis.
        pub inner: u32,
        /// The output's length along the axis.
        pub total_len: u32,
        /// Where this part starts along the axis.
        pub at: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad0: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad1: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad2: u32,
    }
}

params! {
    /// Parameters of `index_select` and `index_add`.
    pub struct IndexParams in "layout" at INDEX_PARAMS {
        /// Product of the dimensions before the axis.
        pub outer: u32,
        /// Length of the axis in the larger tensor.
        pub len: u32,
        /// Product of the dimensions after the axis.
        pub inner: u32,
        /// Number of indices in `positions`.
        pub count: u32,
    }
}

/// `y[i] = x[offset + sum(i_d * strides[d])]`.
pub const STRIDED_COPY: Entry<CopyParams> = Entry::new("strided_copy");
/// One part of a concatenation.
pub const COPY_BLOCK: Entry<BlockParams> = Entry::new("copy_block");
/// `y = x[:, index, :]`.
pub const INDEX_SELECT: Entry<IndexParams> = Entry::new("index_select");
/// `y[:, index[j], :] += x[:, j, :]`.
pub const INDEX_ADD: Entry<IndexParams> = Entry::new("index_add");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "layout",
        structs: vec![
            CopyParams::layout(),
            BlockParams::layout(),
            IndexParams::layout(),
        ],
        bindings: vec![
            COPY_PARAMS,
            BLOCK_PARAMS,
            INDEX_PARAMS,
            X,
            Y,
            SHAPE,
            POSITIONS,
        ],
        entries: vec![
            STRIDED_COPY.reflect(),
            COPY_BLOCK.reflect(),
            INDEX_SELECT.reflect(),
            INDEX_ADD.reflect(),
        ],
    }
}
