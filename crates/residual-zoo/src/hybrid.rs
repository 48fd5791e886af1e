//! The ResNet-stem Vision Transformer (timm's `vision_transformer_hybrid`):
//! a convolutional backbone's feature map, projected by a 1x1 convolution to
//! tokens (`HybridEmbed`), a class token and a learned position embedding,
//! transformer blocks, a final LayerNorm and a head on the class token (or,
//! with `global_pool = "avg"`, on the normed mean of the other tokens).
//! Parameter names are timm's, so a timm `state_dict` loads unchanged.

use crate::config::ResNetConfig;
use crate::hybrid_config::{BackboneConfig, GlobalPool, HybridConfig};
use crate::model::{Intermediates, Model};
use crate::model_config::ModelConfig;
use crate::resnet::ResNet;
use crate::resnetv2::ResNetV2;
use crate::vit::{vit_linear_init, VitBlock, VIT_LN_EPS};
use residual_nn::init::SeedSequence;
use residual_nn::resample::resize_bicubic_antialias;
use residual_nn::*;
use residual_tensor::{Error, Result, Tensor};

/// The convolutional backbone of a hybrid.
pub enum Backbone {
    /// timm's ResNetV2 (std-conv, GroupNorm, SAME padding).
    ResNetV2(ResNetV2),
    /// A zoo ResNet's stem and first stages (its pooling and classifier unused).
    ResNet(Box<ResNet>),
}

impl Backbone {
    fn run(&self, x: &Tensor, mode: Mode, tap: &mut dyn FnMut(String, &Tensor)) -> Result<Tensor> {
        match self {
            Backbone::ResNetV2(b) => b.run(x, mode, tap),
            Backbone::ResNet(r) => r.run(x, mode, tap),
        }
    }

    /// Summary rows: the stem's layers and one row per stage (a ResNet's: per block).
    fn summary_rows(&self) -> Vec<(String, &dyn Module)> {
        match self {
            Backbone::ResNetV2(b) => b.summary_rows(),
            Backbone::ResNet(r) => r.trunk_children(),
        }
    }
}

impl Module for Backbone {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.run(x, mode, &mut |_, _| {})
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        match self {
            Backbone::ResNetV2(b) => b.children(),
            Backbone::ResNet(r) => r.trunk_children(),
        }
    }
    fn kind(&self) -> String {
        match self {
            Backbone::ResNetV2(_) => "ResNetV2".into(),
            Backbone::ResNet(_) => "ResNet".into(),
        }
    }
}

/// timm's `HybridEmbed`: the backbone, then a 1x1 convolution with bias from
/// its feature channels to the token width.
pub struct HybridEmbed {
    /// The backbone (`patch_embed.backbone`).
    pub backbone: Backbone,
    /// `[embed_dim, feature_channels, 1, 1]` + bias (`patch_embed.proj`).
    pub proj: Conv2d,
}

impl HybridEmbed {
    /// `[B, C, H, W]` -> the projected feature map `[B, D, h, w]`, the
    /// backbone's stem and block outputs given to `tap` with their names.
    fn run(&self, x: &Tensor, mode: Mode, tap: &mut dyn FnMut(String, &Tensor)) -> Result<Tensor> {
        self.proj.forward(&self.backbone.run(x, mode, tap)?, mode)
    }
}

impl Module for HybridEmbed {
    /// `[B, C, H, W]` -> the projected feature map `[B, D, h, w]`.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.run(x, mode, &mut |_, _| {})
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("backbone".into(), &self.backbone),
            ("proj".into(), &self.proj),
        ]
    }
}

/// The class token and the learned position embedding: turns the projected
/// feature map `[B, D, h, w]` into tokens `[B, 1 + h*w, D]` (the class token
/// first), adding the position embedding, resampled when the grid is not the
/// trained one. Its tensors keep timm's top-level names (`cls_token`,
/// `pos_embed`).
pub struct TokenEmbed {
    /// `[1, 1, D]`.
    pub cls_token: Param,
    /// `[1, 1 + grid * grid, D]`, laid out for the trained input size.
    pub pos_embed: Param,
    /// The trained grid's side.
    pub grid: usize,
}

impl TokenEmbed {
    /// The position embedding for a `gh x gw` token grid: the stored one on
    /// the trained grid, else its grid part resampled bicubically with
    /// antialiasing and the class token's entry kept (timm's
    /// `resample_abs_pos_embed`, as its `dynamic_img_size` models do).
    /// `[1, 1 + gh * gw, D]`.
    pub fn pos_embed_for(&self, (gh, gw): (usize, usize)) -> Result<Tensor> {
        let pos = self.pos_embed.get();
        let g = self.grid;
        if (gh, gw) == (g, g) {
            return Ok(pos);
        }
        let d = pos.dims()[2];
        let prefix = pos.narrow(1, 0, 1)?;
        // [1, g*g, D] -> [1, D, g, g] -> [1, D, gh, gw] -> [1, gh*gw, D]
        let grid = pos
            .narrow(1, 1, g * g)?
            .reshape(&[1, g, g, d])?
            .permute(&[0, 3, 1, 2])?;
        let resized = resize_bicubic_antialias(&grid, (gh, gw))?
            .permute(&[0, 2, 3, 1])?
            .reshape(&[1, gh * gw, d])?;
        Tensor::concat(&[&prefix, &resized], 1)
    }
}

impl Module for TokenEmbed {
    /// `[B, D, h, w]` -> `[B, 1 + h*w, D]`.
    fn forward(&self, f: &Tensor, _mode: Mode) -> Result<Tensor> {
        let d = self.cls_token.get().dims()[2];
        if f.rank() != 4 || f.dims()[1] != d {
            return Err(Error::shape(
                "vit_hybrid",
                format!("expected a feature map [B, {d}, h, w], got {}", f.shape()),
            ));
        }
        let (b, h, w) = (f.dims()[0], f.dims()[2], f.dims()[3]);
        // [B, D, h, w] -> [B, D, h*w] -> [B, h*w, D]
        let tokens = f.reshape(&[b, d, h * w])?.transpose(1, 2)?;
        let cls = self.cls_token.get().broadcast_to(&[b, 1, d])?;
        let y = Tensor::concat(&[&cls, &tokens], 1)?.add(&self.pos_embed_for((h, w))?)?;
        residual_nn::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("cls_token", &self.cls_token);
        f("pos_embed", &self.pos_embed);
    }
    fn kind(&self) -> String {
        "ClassTokenPosEmbed".into()
    }
}

/// A ResNet-stem Vision Transformer built from a [`HybridConfig`].
pub struct HybridVit {
    config: HybridConfig,
    /// Backbone and projection (`patch_embed.*`).
    pub patch_embed: HybridEmbed,
    /// The class token and position embedding (`cls_token`, `pos_embed`).
    pub tokens: TokenEmbed,
    /// The transformer blocks (`blocks.0`, ...).
    pub blocks: Vec<VitBlock>,
    /// The final LayerNorm (eps 1e-6).
    pub norm: Option<LayerNorm>,
    /// The LayerNorm after average pooling (`fc_norm`, with `global_pool = "avg"`).
    pub fc_norm: Option<LayerNorm>,
    /// The classifier on the class token.
    pub head: Linear,
}

impl HybridVit {
    /// Builds and initialises a hybrid from `seed` (timm's ViT init: position
    /// embedding normal with std 0.02, class token with std 1e-6, linear
    /// layers normal with std 0.02 and zero bias; the backbone as its family's).
    pub fn new(config: &HybridConfig, seed: u64, dev: &Device) -> Result<Self> {
        config.validate()?;
        let c = config;
        let mut seeds = SeedSequence::new(seed);
        let backbone = match &c.backbone {
            BackboneConfig::Resnetv2 {
                layers,
                channels,
                stem_width,
                groups,
            } => Backbone::ResNetV2(ResNetV2::new(
                c.in_channels,
                *stem_width,
                layers,
                channels,
                *groups,
                0.0,
                &mut seeds,
                dev,
            )?),
            BackboneConfig::Resnet { resnet, stages } => {
                let trunk = ResNetConfig {
                    layers: resnet.layers[..*stages].to_vec(),
                    widths: resnet.widths[..*stages].to_vec(),
                    // The classifier is never used: keep it one unit wide.
                    num_classes: 1,
                    ..resnet.clone()
                };
                Backbone::ResNet(Box::new(ResNet::new(&trunk, seeds.next_seed(), dev)?))
            }
        };
        let d = c.embed_dim;
        let proj = Conv2dConfig::new(c.backbone.feature_channels(), d, 1)
            .bias(true)
            .init(seeds.next_seed(), dev)?;
        let tokens = 1 + c.grid() * c.grid();
        let cls_token =
            Param::parameter(Tensor::randn([1, 1, d], 0.0, 1e-6, seeds.next_seed(), dev)?);
        let pos_embed = Param::parameter(Tensor::randn(
            [1, tokens, d],
            0.0,
            0.02,
            seeds.next_seed(),
            dev,
        )?);
        let mut blocks = Vec::new();
        for i in 0..c.depth {
            let dpr = c.drop_path_rate * i as f32 / (c.depth.max(2) - 1) as f32;
            blocks.push(VitBlock::new(
                d,
                c.num_heads,
                c.mlp_hidden(),
                c.qkv_bias,
                dpr,
                seeds.next_seed(),
                dev,
            )?);
        }
        let head = Linear::new(d, c.num_classes, true, seeds.next_seed(), dev)?;
        vit_linear_init(&head, seeds.next_seed(), dev)?;
        Ok(HybridVit {
            config: c.clone(),
            patch_embed: HybridEmbed { backbone, proj },
            tokens: TokenEmbed {
                cls_token,
                pos_embed,
                grid: c.grid(),
            },
            blocks,
            norm: (c.global_pool == GlobalPool::Token)
                .then(|| LayerNorm::new(&[d], VIT_LN_EPS, dev))
                .transpose()?,
            fc_norm: (c.global_pool == GlobalPool::Avg)
                .then(|| LayerNorm::new(&[d], VIT_LN_EPS, dev))
                .transpose()?,
            head,
        })
    }

    /// The configuration it was built from.
    pub fn hybrid_config(&self) -> &HybridConfig {
        &self.config
    }

    /// The blocks, the final norm (`norm` or `fc_norm`) and the head, named,
    /// input to output.
    fn transformer_rows(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            out.push((format!("blocks.{i}"), b));
        }
        if let Some(n) = &self.norm {
            out.push(("norm".into(), n));
        }
        if let Some(n) = &self.fc_norm {
            out.push(("fc_norm".into(), n));
        }
        out.push(("head".into(), &self.head));
        out
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = self.config.in_channels;
        if x.rank() != 4 || x.dims()[1] != c {
            return Err(Error::shape(
                "vit_hybrid",
                format!("expected input [N, {c}, H, W], got {}", x.shape()),
            ));
        }
        Ok(())
    }

    /// Backbone, tokens, blocks and final norm, with the stem's, every
    /// backbone block's and every transformer block's output given to `tap`.
    /// Returns the tokens `[B, 1 + h*w, D]` (normed unless the head pools
    /// them first).
    fn run(&self, x: &Tensor, mode: Mode, tap: &mut dyn FnMut(String, &Tensor)) -> Result<Tensor> {
        self.check_input(x)?;
        let mut backbone_tap =
            |name: String, t: &Tensor| tap(format!("patch_embed.backbone.{name}"), t);
        let f = self.patch_embed.run(x, mode, &mut backbone_tap)?;
        let mut t = self.tokens.forward(&f, mode)?;
        for (i, block) in self.blocks.iter().enumerate() {
            t = block.forward(&t, mode)?;
            tap(format!("blocks.{i}"), &t);
        }
        match &self.norm {
            Some(n) => n.forward(&t, mode),
            None => Ok(t),
        }
    }
}

impl Module for HybridVit {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x, mode)?, mode)
    }

    /// `cls_token` and `pos_embed` first (a timm `state_dict`'s order), then
    /// `patch_embed`, the blocks, `norm` and `head`.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            (String::new(), &self.tokens),
            ("patch_embed".into(), &self.patch_embed),
        ];
        out.extend(self.transformer_rows());
        out
    }

    fn kind(&self) -> String {
        "VisionTransformer".into()
    }
}

impl Model for HybridVit {
    fn config(&self) -> ModelConfig {
        ModelConfig::Hybrid(self.config.clone())
    }

    /// The backbone's stem and stages, the projection, the tokens, the
    /// blocks, the norm and the head, input to output.
    fn summary_rows(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = self
            .patch_embed
            .backbone
            .summary_rows()
            .into_iter()
            .map(|(n, m)| (format!("patch_embed.backbone.{n}"), m))
            .collect();
        out.push(("patch_embed.proj".into(), &self.patch_embed.proj));
        out.push(("cls_token+pos_embed".into(), &self.tokens));
        out.extend(self.transformer_rows());
        out
    }

    /// The tokens, `[B, 1 + h*w, D]`, after the final norm (timm's
    /// `forward_features`; with average pooling the norm comes after the pool).
    fn forward_features(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.run(x, mode, &mut |_, _| {})
    }

    /// The head on the class token (timm's `global_pool="token"`) or on the
    /// normed mean of the other tokens (`"avg"`).
    fn forward_head(&self, features: &Tensor, mode: Mode) -> Result<Tensor> {
        if features.rank() != 3 || features.dims()[2] != self.config.embed_dim {
            return Err(Error::shape(
                "vit_hybrid",
                format!(
                    "forward_head expects tokens [B, N, {}], got {}",
                    self.config.embed_dim,
                    features.shape()
                ),
            ));
        }
        let (b, n, d) = (features.dims()[0], features.dims()[1], features.dims()[2]);
        let pooled = match &self.fc_norm {
            None => features.narrow(1, 0, 1)?.reshape(&[b, d])?,
            Some(norm) => {
                let mean = features
                    .narrow(1, 1, n.saturating_sub(1))?
                    .mean(&[1], false)?;
                norm.forward(&mean, mode)?
            }
        };
        self.head.forward(&pooled, mode)
    }

    fn forward_intermediates(&self, x: &Tensor, mode: Mode) -> Result<Intermediates> {
        let mut taps = Vec::new();
        let features = self.run(x, mode, &mut |name, t| taps.push((name, t.clone())))?;
        Ok(Intermediates { features, taps })
    }
}

impl std::fmt::Debug for HybridVit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridVit")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
