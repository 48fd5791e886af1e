//! 2-D convolution (NCHW, PyTorch's weight layout `[c_out, c_in/groups, kh, kw]`).

use crate::backend::{Conv2dGeometry, Conv2dParams, ConvEpilogue, UnaryOp};
use crate::{DType, Error, Result, Shape, Tensor};

/// Checks a convolution call and resolves its geometry.
pub(crate) fn conv_geometry(x: &Shape, w: &Shape, p: &Conv2dParams) -> Result<Conv2dGeometry> {
    const OP: &str = "conv2d";
    if x.rank() != 4 || w.rank() != 4 {
        return Err(Error::shape(OP, format!("expected input [N, C, H, W] and weight [C_out, C_in/groups, kH, kW], got input {x} and weight {w}")));
    }
    if p.groups == 0 || p.stride.0 == 0 || p.stride.1 == 0 || p.dilation.0 == 0 || p.dilation.1 == 0
    {
        return Err(Error::arg(
            OP,
            format!("stride, dilation and groups must be >= 1, got {p:?}"),
        ));
    }
    let (n, c_in, h, wd) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let (c_out, cpg, kh, kw) = (w.dims()[0], w.dims()[1], w.dims()[2], w.dims()[3]);
    if c_in % p.groups != 0 || c_out % p.groups != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "input channels {c_in} and output channels {c_out} must both divide by groups={}",
                p.groups
            ),
        ));
    }
    if cpg * p.groups != c_in {
        return Err(Error::shape(
            OP,
            format!(
                "weight {w} expects {} input channels (groups={}), but input {x} has {c_in}",
                cpg * p.groups,
                p.groups
            ),
        ));
    }
    let eff_h = p.dilation.0 * (kh.max(1) - 1) + 1;
    let eff_w = p.dilation.1 * (kw.max(1) - 1) + 1;
    let ph = h + p.padding[0] + p.padding[1];
    let pw = wd + p.padding[2] + p.padding[3];
    if kh == 0 || kw == 0 || ph < eff_h || pw < eff_w {
        return Err(Error::shape(
            OP,
            format!(
                "kernel {kh}x{kw} (dilation {:?}) is larger than the padded input {ph}x{pw} of {x}",
                p.dilation
            ),
        ));
    }
    let oh = (ph - eff_h) / p.stride.0 + 1;
    let ow = (pw - eff_w) / p.stride.1 + 1;
    Ok(Conv2dGeometry {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        kh,
        kw,
        oh,
        ow,
        p: *p,
    })
}

impl Conv2dGeometry {
    /// Checks a convolution of an input of shape `x` (`[N, C, H, W]`) with a
    /// weight of shape `w` and resolves every size, as `conv2d` does: the
    /// output is `[n, c_out, oh, ow]`. Errors name the shapes.
    pub fn new(x: &Shape, w: &Shape, p: &Conv2dParams) -> Result<Self> {
        conv_geometry(x, w, p)
    }

    /// Multiply-accumulates of the whole call.
    pub fn macs(&self) -> u64 {
        (self.n * self.c_out * self.oh * self.ow * (self.c_in / self.p.groups) * self.kh * self.kw)
            as u64
    }
}

impl Tensor {
    /// 2-D cross-correlation as PyTorch's `F.conv2d`: `self: [N, C_in, H, W]`,
    /// `weight: [C_out, C_in/groups, kH, kW]`, optional `bias: [C_out]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        let g = conv_geometry(self.shape(), weight.shape(), &p)?;
        crate::macs::add(g.macs());
        let (xin, win) = self.gemm_operands("conv2d", weight)?;
        let be = self.device().backend();
        let s = be.conv2d(xin.storage(), win.storage(), &g)?;
        let (x, w) = (xin.clone(), win.clone());
        let out = Shape::new([g.n, g.c_out, g.oh, g.ow]);
        let y = Tensor::from_op(s, out, self.device(), "conv2d", &[&xin, &win], move |dy| {
            let be = dy.device().backend();
            let dy = dy.cast(x.dtype())?;
            let dx = x
                .requires_grad()
                .then(|| -> Result<Tensor> {
                    let s = be.conv2d_backward_input(dy.storage(), w.storage(), &g)?;
                    Tensor::from_storage(s, x.shape().clone(), x.device())
                })
                .transpose()?;
            let dw = w
                .requires_grad()
                .then(|| -> Result<Tensor> {
                    let s = be.conv2d_backward_weight(x.storage(), dy.storage(), &g)?;
                    Tensor::from_storage(s, w.shape().clone(), w.device())
                })
                .transpose()?;
            Ok(vec![dx, dw])
        });
        match bias {
            None => Ok(y),
            Some(b) => {
                if b.dims() != [g.c_out] {
                    return Err(Error::shape(
                        "conv2d",
                        format!(
                            "bias must be [{}] for weight {}, got {}",
                            g.c_out,
                            weight.shape(),
                            b.shape()
                        ),
                    ));
                }
                y.add(&b.reshape(&[1, g.c_out, 1, 1])?)
            }
        }
    }
}

impl Tensor {
    /// `act(conv2d(self, weight) + bias + residual)` in one fused kernel when no
    /// input needs gradients (inference); with gradients it runs the same
    /// computation as separate differentiable ops. `residual` must have the
    /// output's shape (it is never broadcast); `act` is any elementwise op.
    ///
    /// An input and weight of one half-precision dtype (bf16 inference)
    /// compute in f32 (products of half operands, f32 accumulation; bias,
    /// residual, cast to the input's dtype first, and activation in f32) and
    /// return that dtype, rounded once;
    /// outside autocast the separate ops give the same dtype. Under autocast,
    /// or with operands of different dtypes, the separate ops apply the
    /// mixed-precision rules (see [`crate::autocast`]).
    pub fn conv2d_fused(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        residual: Option<&Tensor>,
        act: Option<UnaryOp>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        self.expect_same_device("conv2d", weight)?;
        let g = conv_geometry(self.shape(), weight.shape(), &p)?;
        let out = Shape::new([g.n, g.c_out, g.oh, g.ow]);
        if let Some(b) = bias {
            self.expect_same_device("conv2d", b)?;
            if b.dims() != [g.c_out] {
                return Err(Error::shape(
                    "conv2d",
                    format!(
                        "bias must be [{}] for weight {}, got {}",
                        g.c_out,
                        weight.shape(),
                        b.shape()
                    ),
                ));
            }
        }
        if let Some(r) = residual {
            self.expect_same_device("conv2d", r)?;
            if r.shape() != &out {
                return Err(Error::shape(
                    "conv2d",
                    format!("residual {} must have the output's shape {out}", r.shape()),
                ));
            }
        }
        let operands = [Some(self), Some(weight), bias, residual];
        let needs_grad =
            crate::is_grad_enabled() && operands.into_iter().flatten().any(Tensor::requires_grad);
        // An input and weight of one dtype run the fused kernel in that dtype
        // (the half-precision inference path: f32 accumulation and epilogue,
        // the result in the input's dtype). Autocast and mixed operand
        // dtypes run the separate ops, which apply the mixed-precision rules.
        let one_dtype = self.dtype() == weight.dtype();
        let autocast = crate::autocast::autocast_dtype().is_some();
        if needs_grad || autocast || !one_dtype {
            let mut y = self.conv2d(weight, bias, p)?;
            if let Some(r) = residual {
                y = y.add(r)?;
            }
            y = match act {
                Some(op) => y.unary_op(op)?,
                None => y,
            };
            // Half operands of one dtype give that dtype either way.
            return if one_dtype && !autocast {
                y.cast(self.dtype())
            } else {
                Ok(y)
            };
        }
        crate::macs::add(g.macs());
        let bias = bias.map(|b| b.cast(DType::F32)).transpose()?;
        let residual = residual.map(|r| r.cast(self.dtype())).transpose()?;
        let epi = ConvEpilogue {
            bias: bias.as_ref().map(Tensor::storage),
            residual: residual.as_ref().map(Tensor::storage),
            act,
        };
        let s = self
            .device()
            .backend()
            .conv2d_fused(self.storage(), weight.storage(), &g, &epi)?;
        Tensor::from_storage(s, out, self.device())
    }
}
