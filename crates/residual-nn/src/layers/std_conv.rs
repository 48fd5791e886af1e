//! Weight-standardised convolution with TensorFlow "SAME" padding: timm's
//! `StdConv2dSame` (`layers/std_conv.py`), the convolution of BiT and of the
//! ViT hybrids' ResNetV2 backbones.

use super::padding::{is_static_same, same_padding_2d};
use crate::init;
use crate::module::{Mode, Module, Visitor};
use crate::Param;
use residual_tensor::{
    autocast_dtype, is_grad_enabled, Conv2dParams, DType, Device, Error, Result, Tensor, TensorId,
};
use std::sync::{Arc, Mutex};

/// What a cached standardised weight was computed from: the weight's
/// identity, the bits of `eps`, and the autocast dtype it was cast to (the
/// bf16 inference pass multiplies the standardised weight in bf16: cast once
/// too).
type CacheKey = (TensorId, u32, Option<DType>);

/// A convolution whose weight is standardised per output channel before
/// every use: `w_hat = (w - mean) / sqrt(var + eps)` over `[in/groups, kh, kw]`
/// (the biased variance, as timm computes it with `F.batch_norm`), and whose
/// padding is TensorFlow's SAME (computed from the input's size when the
/// stride makes it depend on it). Training differentiates through the
/// standardisation.
#[derive(Debug, Clone)]
pub struct StdConv2dSame {
    /// `[out, in/groups, kh, kw]` (the raw, unstandardised weight, as saved).
    pub weight: Param,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Param>,
    /// Stride (both directions).
    pub stride: usize,
    /// Dilation (both directions).
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
    /// Added to the variance (timm's hybrids: `1e-8`; BiT: `1e-6`).
    pub eps: f32,
    /// The standardised weight of the last forward that recorded no graph,
    /// with the identity of the weight it came from and the `eps` it used:
    /// evaluation reuses it until either changes (an optimizer step, a load), as
    /// `torch.jit.freeze` folds it into a constant.
    cache: Arc<Mutex<Option<(CacheKey, Tensor)>>>,
}

impl StdConv2dSame {
    /// A `kernel x kernel` layer from `c_in` to `c_out` channels without a
    /// bias, its weight drawn as torchvision's conv init (kaiming normal,
    /// fan_out) from `seed` (the standardisation makes the scale irrelevant).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        eps: f32,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        if c_in == 0 || c_out == 0 || kernel == 0 || stride == 0 {
            return Err(Error::arg(
                "StdConv2dSame",
                format!("channels, kernel and stride must be >= 1, got in {c_in}, out {c_out}, kernel {kernel}, stride {stride}"),
            ));
        }
        let w = init::kaiming_normal_fan_out(&[c_out, c_in, kernel, kernel], seed, dev)?;
        Ok(StdConv2dSame {
            weight: Param::parameter(w),
            bias: None,
            stride,
            dilation: 1,
            groups: 1,
            eps,
            cache: Arc::default(),
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.get().dims()[0]
    }

    /// The standardised weight the convolution uses: `[out, in/groups, kh, kw]`
    /// (differentiable: training back-propagates through it).
    pub fn standardized_weight(&self) -> Result<Tensor> {
        self.standardize(&self.weight.get())
    }

    /// `w` standardised per output channel with this layer's `eps`.
    fn standardize(&self, w: &Tensor) -> Result<Tensor> {
        let dims = w.dims().to_vec();
        let per_out: usize = dims[1..].iter().product();
        w.reshape(&[dims[0], per_out])?
            .layer_norm(&[per_out], None, None, self.eps)?
            .reshape(&dims)
    }

    /// [`StdConv2dSame::standardized_weight`], computed once per weight (and
    /// `eps`, and cast once to the autocast dtype under autocast) while no
    /// graph is recorded (evaluation under `no_grad`), and
    /// afresh, with the cache dropped, whenever gradients may flow to the
    /// weight.
    fn weight_for_forward(&self) -> Result<Tensor> {
        let w = self.weight.get();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if is_grad_enabled() && w.requires_grad() {
            *cache = None;
            return self.standardize(&w);
        }
        let half = autocast_dtype();
        let key = (w.id(), self.eps.to_bits(), half);
        if let Some((k, hat)) = cache.as_ref() {
            if *k == key {
                return Ok(hat.clone());
            }
        }
        let mut hat = self.standardize(&w)?;
        if let Some(dtype) = half {
            hat = hat.cast(dtype)?;
        }
        *cache = Some((key, hat.clone()));
        Ok(hat)
    }

    /// The convolution's parameters on an input of spatial size `(h, w)`.
    pub fn params_for(&self, hw: (usize, usize), kernel: (usize, usize)) -> Conv2dParams {
        let (s, d) = (self.stride, self.dilation);
        let padding = if is_static_same(kernel.0, s, d) && is_static_same(kernel.1, s, d) {
            let (ph, pw) = ((kernel.0 - 1) * d / 2, (kernel.1 - 1) * d / 2);
            [ph, ph, pw, pw]
        } else {
            same_padding_2d(hw, kernel, (s, s), (d, d))
        };
        Conv2dParams {
            stride: (s, s),
            padding,
            dilation: (d, d),
            groups: self.groups,
        }
    }
}

impl Module for StdConv2dSame {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::shape(
                "StdConv2dSame",
                format!("expected input [N, C, H, W], got {}", x.shape()),
            ));
        }
        let w = self.weight_for_forward()?;
        let kernel = (w.dims()[2], w.dims()[3]);
        let params = self.params_for((x.dims()[2], x.dims()[3]), kernel);
        let b = self.bias.as_ref().map(Param::get);
        let y = x.conv2d(&w, b.as_ref(), params)?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use residual_tensor::no_grad;

    #[test]
    fn evaluation_reuses_the_standardised_weight_until_the_weight_changes() {
        let dev = Device::cpu();
        let conv = StdConv2dSame::new(3, 4, 3, 2, 1e-8, 7, &dev).unwrap();
        let x = Tensor::randn([1, 3, 9, 9], 0.0, 1.0, 1, &dev).unwrap();
        let y0 = no_grad(|| conv.forward(&x, Mode::Eval))
            .unwrap()
            .to_vec()
            .unwrap();
        let cached = conv
            .cache
            .lock()
            .unwrap()
            .as_ref()
            .map(|((id, _, _), _)| *id);
        assert_eq!(cached, Some(conv.weight.get().id()));
        assert_eq!(
            no_grad(|| conv.forward(&x, Mode::Eval))
                .unwrap()
                .to_vec()
                .unwrap(),
            y0
        );
        // A new weight (an optimizer step, a load) is standardised afresh.
        conv.weight.set(conv.weight.get().mul_scalar(-1.0).unwrap());
        let y1 = no_grad(|| conv.forward(&x, Mode::Eval))
            .unwrap()
            .to_vec()
            .unwrap();
        for (a, b) in y0.iter().zip(&y1) {
            assert!(
                (a + b).abs() < 1e-4,
                "a negated weight negates the output: {a} {b}"
            );
        }
        // With gradients recorded, the standardisation is part of the graph.
        let g = conv
            .forward(&x, Mode::Train)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(g.get(&conv.weight.get()).is_some());
    }
}
