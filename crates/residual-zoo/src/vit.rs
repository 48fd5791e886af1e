//! The transformer part of timm's `VisionTransformer`: pre-norm blocks
//! (LayerNorm eps 1e-6, multi-head attention, exact-GELU MLP, stochastic
//! depth), names as timm's (`blocks.0.attn.qkv.weight`, `blocks.3.mlp.fc2.bias`).

use residual_nn::*;
use residual_tensor::{Device, Result, Tensor};

/// timm's ViT LayerNorm epsilon.
pub const VIT_LN_EPS: f32 = 1e-6;

/// One pre-norm transformer block: `x + drop_path(attn(norm1(x)))`, then
/// `x + drop_path(mlp(norm2(x)))` on tokens `[B, N, D]`.
pub struct VitBlock {
    /// Before attention.
    pub norm1: LayerNorm,
    /// Multi-head self-attention.
    pub attn: Attention,
    /// Before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// Stochastic depth of both branches.
    pub drop_path: DropPath,
}

impl VitBlock {
    /// A block of width `dim`, `heads` heads and MLP width `hidden`, its
    /// linear layers drawn as timm's `init_weights_vit_timm` (normal, std 0.02,
    /// zero bias) from `seed`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        heads: usize,
        hidden: usize,
        qkv_bias: bool,
        drop_path: f32,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        let s = |i| init::derive_seed(seed, i);
        let block = VitBlock {
            norm1: LayerNorm::new(&[dim], VIT_LN_EPS, dev)?,
            attn: Attention::new(dim, heads, qkv_bias, s(1), dev)?,
            norm2: LayerNorm::new(&[dim], VIT_LN_EPS, dev)?,
            mlp: Mlp::new(dim, hidden, Activation::Gelu, s(2), dev)?,
            drop_path: DropPath::new(drop_path, s(3))?,
        };
        for (i, l) in [
            &block.attn.qkv,
            &block.attn.proj,
            &block.mlp.fc1,
            &block.mlp.fc2,
        ]
        .into_iter()
        .enumerate()
        {
            vit_linear_init(l, s(10 + i as u64), dev)?;
        }
        Ok(block)
    }
}

/// timm's `init_weights_vit_timm` for a linear layer: weight normal with std
/// 0.02 (timm truncates at +-2, which is 100 standard deviations out), bias 0.
pub fn vit_linear_init(l: &Linear, seed: u64, dev: &Device) -> Result<()> {
    let w = l.weight.get();
    l.weight
        .set(Tensor::randn(w.dims().to_vec(), 0.0, 0.02, seed, dev)?);
    if let Some(b) = &l.bias {
        b.set(Tensor::zeros(b.get().dims().to_vec(), dev)?);
    }
    Ok(())
}

impl Module for VitBlock {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let a = self.attn.forward(&self.norm1.forward(x, mode)?, mode)?;
        let x = x.add(&self.drop_path.forward(&a, mode)?)?;
        let m = self.mlp.forward(&self.norm2.forward(&x, mode)?, mode)?;
        x.add(&self.drop_path.forward(&m, mode)?)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("norm1".into(), &self.norm1),
            ("attn".into(), &self.attn),
            ("norm2".into(), &self.norm2),
            ("mlp".into(), &self.mlp),
        ]
    }
    fn kind(&self) -> String {
        "Block".into()
    }
}
