//! The residual add, `y = F(x) + x`, which never broadcasts.

use residual_tensor::{Error, Result, Shape, Tensor};

/// The error of a residual add whose branch and shortcut disagree in shape.
pub(crate) fn shape_mismatch(branch: &Shape, shortcut: &Shape) -> Error {
    Error::shape(
        "residual add",
        format!(
            "the block's branch gives {branch} but its shortcut gives {shortcut}; a block that changes stride \
             or channels needs a 1x1 conv + norm shortcut (downsample)"
        ),
    )
}

/// `y = branch + shortcut`, refusing shapes that differ (never a silent broadcast).
pub fn residual_add(branch: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
    if branch.shape() != shortcut.shape() {
        return Err(shape_mismatch(branch.shape(), shortcut.shape()));
    }
    branch.add(shortcut)
}
