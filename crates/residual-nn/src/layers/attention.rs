//! Multi-head self-attention and the transformer MLP, as timm's
//! `vision_transformer.Attention` and `layers/mlp.Mlp` (same parameter names).

use super::{Activation, Linear};
use crate::module::{Mode, Module};
use residual_tensor::{Device, Error, Result, Tensor};

/// Multi-head self-attention: `qkv` (one linear layer for queries, keys and
/// values), attention per head with scale `head_dim^-0.5`, then `proj`.
pub struct Attention {
    /// `[3 * dim, dim]` (+ bias `[3 * dim]`): q, k and v in that order.
    pub qkv: Linear,
    /// `[dim, dim]` + bias.
    pub proj: Linear,
    /// Heads; `dim` divides by it.
    pub num_heads: usize,
}

impl Attention {
    /// Attention over tokens of width `dim` with `num_heads` heads, PyTorch's
    /// default linear init from `seed`.
    pub fn new(
        dim: usize,
        num_heads: usize,
        qkv_bias: bool,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        if num_heads == 0 || !dim.is_multiple_of(num_heads) {
            return Err(Error::arg(
                "Attention",
                format!("width {dim} must divide by num_heads={num_heads}"),
            ));
        }
        Ok(Attention {
            qkv: Linear::new(
                dim,
                3 * dim,
                qkv_bias,
                crate::init::derive_seed(seed, 1),
                dev,
            )?,
            proj: Linear::new(dim, dim, true, crate::init::derive_seed(seed, 2), dev)?,
            num_heads,
        })
    }
}

impl Module for Attention {
    /// `x: [B, N, D]` -> `[B, N, D]`.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.rank() != 3 {
            return Err(Error::shape(
                "Attention",
                format!("expected tokens [B, N, D], got {}", x.shape()),
            ));
        }
        let (b, n, d) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let h = self.num_heads;
        let hd = d / h;
        // qkv: [B, N, 3D] -> [B, N, 3, H, hd] -> [3, B, H, N, hd]
        let qkv = self
            .qkv
            .forward(x, mode)?
            .reshape(&[b, n, 3, h, hd])?
            .permute(&[2, 0, 3, 1, 4])?;
        let part = |i: usize| qkv.narrow(0, i, 1)?.reshape(&[b, h, n, hd]);
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scale = (hd as f32).powf(-0.5);
        // [B, H, N, hd] -> [B, N, H, hd] -> [B, N, D]
        let o = q
            .scaled_dot_product_attention(&k, &v, scale)?
            .permute(&[0, 2, 1, 3])?
            .reshape(&[b, n, d])?;
        self.proj.forward(&o, mode)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("qkv".into(), &self.qkv), ("proj".into(), &self.proj)]
    }
}

/// The transformer MLP: `fc2(act(fc1(x)))`, exact GELU by default.
pub struct Mlp {
    /// `[hidden, dim]` + bias.
    pub fc1: Linear,
    /// The activation between the two layers.
    pub act: Activation,
    /// `[dim, hidden]` + bias.
    pub fc2: Linear,
}

impl Mlp {
    /// `dim -> hidden -> dim`, PyTorch's default linear init from `seed`.
    pub fn new(
        dim: usize,
        hidden: usize,
        act: Activation,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        Ok(Mlp {
            fc1: Linear::new(dim, hidden, true, crate::init::derive_seed(seed, 1), dev)?,
            act,
            fc2: Linear::new(hidden, dim, true, crate::init::derive_seed(seed, 2), dev)?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let h = self.act.forward(&self.fc1.forward(x, mode)?, mode)?;
        self.fc2.forward(&h, mode)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("fc1".into(), &self.fc1),
            ("act".into(), &self.act),
            ("fc2".into(), &self.fc2),
        ]
    }
}
