//! Max, average and adaptive average 2-D pooling (NCHW).

use crate::backend::{Pool2dGeometry, Pool2dParams, Storage};
use crate::{Error, Result, Shape, Tensor};

fn pooled_len(
    op: &'static str,
    len: usize,
    k: usize,
    s: usize,
    pad: usize,
    ceil: bool,
) -> Result<usize> {
    if k == 0 || s == 0 {
        return Err(Error::arg(
            op,
            format!("kernel and stride must be >= 1, got kernel {k}, stride {s}"),
        ));
    }
    if pad * 2 > k {
        return Err(Error::arg(
            op,
            format!("padding {pad} must be at most half the kernel {k} (as PyTorch)"),
        ));
    }
    let padded = len + 2 * pad;
    if padded < k {
        return Err(Error::shape(
            op,
            format!("kernel {k} is larger than the padded input length {padded}"),
        ));
    }
    let span = padded - k;
    let mut out = if ceil {
        span.div_ceil(s) + 1
    } else {
        span / s + 1
    };
    // PyTorch: the last window must start inside the input or left padding.
    if ceil && (out - 1) * s >= len + pad {
        out -= 1;
    }
    Ok(out)
}

fn geometry(op: &'static str, x: &Tensor, p: Pool2dParams) -> Result<Pool2dGeometry> {
    if x.rank() != 4 {
        return Err(Error::shape(
            op,
            format!("expected input [N, C, H, W], got {}", x.shape()),
        ));
    }
    let d = x.dims();
    let oh = pooled_len(op, d[2], p.kernel.0, p.stride.0, p.padding.0, p.ceil_mode)?;
    let ow = pooled_len(op, d[3], p.kernel.1, p.stride.1, p.padding.1, p.ceil_mode)?;
    Ok(Pool2dGeometry {
        planes: d[0] * d[1],
        h: d[2],
        w: d[3],
        oh,
        ow,
        p,
    })
}

impl Tensor {
    fn pool(
        &self,
        op: &'static str,
        g: Pool2dGeometry,
        fwd: fn(&dyn crate::Backend, &Storage, &Pool2dGeometry) -> Result<Storage>,
        bwd: fn(&dyn crate::Backend, &Tensor, &Tensor, &Pool2dGeometry) -> Result<Storage>,
    ) -> Result<Tensor> {
        if self.is_half() {
            return self.to_f32()?.pool(op, g, fwd, bwd);
        }
        let s = fwd(self.device().backend(), self.storage(), &g)?;
        let out = Shape::new([self.dims()[0], self.dims()[1], g.oh, g.ow]);
        let x = self.clone();
        Ok(Tensor::from_op(
            s,
            out,
            self.device(),
            op,
            &[self],
            move |dy| {
                let dx = bwd(dy.device().backend(), &x, dy, &g)?;
                Ok(vec![Some(Tensor::from_storage(
                    dx,
                    x.shape().clone(),
                    x.device(),
                )?)])
            },
        ))
    }

    /// Max pooling as `F.max_pool2d` (padding counts as `-inf`).
    pub fn max_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        let g = geometry("max_pool2d", self, p)?;
        self.pool(
            "max_pool2d",
            g,
            |b, x, g| b.max_pool2d(x, g),
            |b, x, dy, g| b.max_pool2d_backward(x.storage(), dy.storage(), g),
        )
    }

    /// Average pooling as `F.avg_pool2d`.
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        let g = geometry("avg_pool2d", self, p)?;
        self.pool(
            "avg_pool2d",
            g,
            |b, x, g| b.avg_pool2d(x, g),
            |b, _, dy, g| b.avg_pool2d_backward(dy.storage(), g),
        )
    }

    /// Adaptive average pooling to `(oh, ow)` as `F.adaptive_avg_pool2d`.
    pub fn adaptive_avg_pool2d(&self, out: (usize, usize)) -> Result<Tensor> {
        const OP: &str = "adaptive_avg_pool2d";
        if self.rank() != 4 {
            return Err(Error::shape(
                OP,
                format!("expected input [N, C, H, W], got {}", self.shape()),
            ));
        }
        let d = self.dims();
        if out.0 == 0 || out.1 == 0 || d[2] == 0 || d[3] == 0 {
            return Err(Error::arg(
                OP,
                format!(
                    "output size {out:?} and input {} must be non-empty",
                    self.shape()
                ),
            ));
        }
        let p = Pool2dParams::new(1, 1, 0);
        let g = Pool2dGeometry {
            planes: d[0] * d[1],
            h: d[2],
            w: d[3],
            oh: out.0,
            ow: out.1,
            p,
        };
        self.pool(
            OP,
            g,
            |b, x, g| b.adaptive_avg_pool2d(x, g),
            |b, _, dy, g| b.adaptive_avg_pool2d_backward(dy.storage(), g),
        )
    }
}
