//! TensorFlow's "SAME" padding, as timm's `layers/padding.py` computes it:
//! the output is `ceil(input / stride)` long and the total padding is split
//! with the extra pixel after (`7x7` stride 2 on 224 pads 2 before and 3
//! after; a stride-2 `3x3` on an even input pads 0 and 1). PyTorch's
//! symmetric padding differs by a one-pixel shift wherever the total is odd.

/// `(before, after)` padding of one spatial axis of length `input` for a
/// window of `kernel` taps, `stride` and `dilation` (timm's `get_same_padding`
/// split as `pad_same` splits it).
pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let stride = stride.max(1);
    let out = input.div_ceil(stride);
    let span = (kernel.max(1) - 1) * dilation + 1;
    let total = ((out.max(1) - 1) * stride + span).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// Whether SAME padding is the same on every input size (stride 1 and an odd
/// dilated window: timm's `is_static_pad`), and so symmetric:
/// `(kernel - 1) * dilation / 2` on each side.
pub fn is_static_same(kernel: usize, stride: usize, dilation: usize) -> bool {
    stride == 1 && ((kernel.max(1) - 1) * dilation).is_multiple_of(2)
}

/// SAME padding of an `[.., h, w]` input as `[top, bottom, left, right]`.
pub fn same_padding_2d(
    (h, w): (usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
) -> [usize; 4] {
    let (top, bottom) = same_padding(h, kernel.0, stride.0, dilation.0);
    let (left, right) = same_padding(w, kernel.1, stride.1, dilation.1);
    [top, bottom, left, right]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_two_pads_the_extra_pixel_after() {
        assert_eq!(same_padding(224, 7, 2, 1), (2, 3));
        assert_eq!(same_padding(112, 3, 2, 1), (0, 1));
        assert_eq!(same_padding(56, 1, 2, 1), (0, 0));
        assert_eq!(same_padding(7, 3, 2, 1), (1, 1));
        assert_eq!(same_padding(5, 3, 1, 1), (1, 1));
        assert!(is_static_same(3, 1, 1) && !is_static_same(3, 2, 1) && !is_static_same(2, 1, 1));
    }
}
