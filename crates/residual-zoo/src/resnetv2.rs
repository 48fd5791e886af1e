//! timm's ResNetV2 as the ViT hybrids build it (`resnetv2.py` with
//! `preact=False`, `stem_type="same"`, `StdConv2dSame(eps=1e-8)`,
//! `GroupNormAct(32)`): the stem and stages of non-pre-activation
//! bottlenecks, names as timm's (`stem.conv.weight`,
//! `stages.0.blocks.0.downsample.conv.weight`, `stages.1.blocks.2.norm3.bias`).

use crate::residual::residual_add;
use residual_nn::init::SeedSequence;
use residual_nn::*;
use residual_tensor::{Device, Result, Tensor};

/// The std-conv epsilon of timm's hybrids.
pub const STD_CONV_EPS: f32 = 1e-8;

/// A bottleneck's middle width for `out` channels: timm's
/// `make_div(out * 0.25)` (a multiple of 8, at least 8, rounded to nearest).
pub fn bottleneck_width(out: usize) -> usize {
    let v = out as f64 * 0.25;
    let rounded = ((v + 4.0) as usize / 8) * 8;
    let rounded = rounded.max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

/// A std-conv followed by GroupNorm (+ ReLU where `act`): timm's
/// `conv_layer` + `GroupNormAct` pairs.
struct ConvGn {
    conv: StdConv2dSame,
    norm: GroupNorm,
    act: bool,
}

impl ConvGn {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.norm.forward(&self.conv.forward(x, mode)?, mode)?;
        if self.act {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_gn(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    act: bool,
    seeds: &mut SeedSequence,
    dev: &Device,
) -> Result<ConvGn> {
    Ok(ConvGn {
        conv: StdConv2dSame::new(
            c_in,
            c_out,
            kernel,
            stride,
            STD_CONV_EPS,
            seeds.next_seed(),
            dev,
        )?,
        norm: GroupNorm::new(groups, c_out, dev)?,
        act,
    })
}

/// timm's non-pre-activation `Bottleneck`: 1x1, 3x3 (the stride), 1x1, each
/// followed by GroupNorm (with ReLU but for the last), the projection
/// shortcut (`downsample`: 1x1 std-conv + GroupNorm) in the first block of a
/// stage, then ReLU of the sum.
pub struct Bottleneck {
    downsample: Option<ConvGn>,
    layers: [ConvGn; 3],
    drop_path: DropPath,
}

impl Bottleneck {
    #[allow(clippy::too_many_arguments)]
    fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        project: bool,
        groups: usize,
        drop_path: f32,
        seeds: &mut SeedSequence,
        dev: &Device,
    ) -> Result<Self> {
        let mid = bottleneck_width(c_out);
        let downsample = project
            .then(|| conv_gn(c_in, c_out, 1, stride, groups, false, seeds, dev))
            .transpose()?;
        let layers = [
            conv_gn(c_in, mid, 1, 1, groups, true, seeds, dev)?,
            conv_gn(mid, mid, 3, stride, groups, true, seeds, dev)?,
            conv_gn(mid, c_out, 1, 1, groups, false, seeds, dev)?,
        ];
        Ok(Bottleneck {
            downsample,
            layers,
            drop_path: DropPath::new(drop_path, seeds.next_seed())?,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x, mode)?,
            None => x.clone(),
        };
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, mode)?;
        }
        let h = self.drop_path.forward(&h, mode)?;
        residual_add(&h, &shortcut)?.relu()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = Vec::new();
        if let Some(d) = &self.downsample {
            out.push(("downsample.conv".into(), &d.conv));
            out.push(("downsample.norm".into(), &d.norm));
        }
        for (i, l) in self.layers.iter().enumerate() {
            out.push((format!("conv{}", i + 1), &l.conv));
            out.push((format!("norm{}", i + 1), &l.norm));
        }
        out
    }
}

/// The backbone: `stem` (std-conv 7x7/2, GroupNorm, ReLU, SAME max pool 3x3/2)
/// and `stages`.
pub struct ResNetV2 {
    stem: ConvGn,
    pool: MaxPool2dSame,
    stages: Vec<ResNetStage>,
}

impl ResNetV2 {
    /// Builds the backbone: `layers` blocks per stage with `channels` outputs,
    /// stride 1 in the first stage and 2 in the others, GroupNorm of `groups`;
    /// stochastic depth rising linearly to `drop_path_rate` over the blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        stem_width: usize,
        layers: &[usize],
        channels: &[usize],
        groups: usize,
        drop_path_rate: f32,
        seeds: &mut SeedSequence,
        dev: &Device,
    ) -> Result<Self> {
        let stem = conv_gn(in_channels, stem_width, 7, 2, groups, true, seeds, dev)?;
        let total: usize = layers.iter().sum();
        let mut index = 0usize;
        let mut c_in = stem_width;
        let mut stages = Vec::new();
        for (s, (&n, &c_out)) in layers.iter().zip(channels).enumerate() {
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let dpr = drop_path_rate * index as f32 / (total.max(2) - 1) as f32;
                blocks.push(Bottleneck::new(
                    c_in,
                    c_out,
                    stride,
                    b == 0,
                    groups,
                    dpr,
                    seeds,
                    dev,
                )?);
                c_in = c_out;
                index += 1;
            }
            stages.push(ResNetStage { blocks });
        }
        Ok(ResNetV2 {
            stem,
            pool: MaxPool2dSame {
                kernel: 3,
                stride: 2,
            },
            stages,
        })
    }

    /// The blocks with their timm names (`stages.1.blocks.0`), input to output.
    pub fn named_blocks(&self) -> impl Iterator<Item = (String, &Bottleneck)> {
        self.stages.iter().enumerate().flat_map(|(i, stage)| {
            stage
                .blocks
                .iter()
                .enumerate()
                .map(move |(j, b)| (format!("stages.{i}.blocks.{j}"), b))
        })
    }

    /// The stem and the blocks, the output after the stem (before its pool)
    /// and after every block given to `tap` with its name.
    pub fn run(
        &self,
        x: &Tensor,
        mode: Mode,
        tap: &mut dyn FnMut(String, &Tensor),
    ) -> Result<Tensor> {
        let h = self.stem.forward(x, mode)?;
        tap("stem".into(), &h);
        let mut h = self.pool.forward(&h, mode)?;
        for (name, block) in self.named_blocks() {
            h = block.forward(&h, mode)?;
            tap(name, &h);
        }
        Ok(h)
    }
}

/// A stage: its blocks (`blocks.0`, ...), the first with the projection.
pub struct ResNetStage {
    /// The blocks, input to output.
    pub blocks: Vec<Bottleneck>,
}

impl Module for ResNetStage {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.blocks
            .iter()
            .try_fold(x.clone(), |h, b| b.forward(&h, mode))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(j, b)| (format!("blocks.{j}"), b as &dyn Module))
            .collect()
    }
}

impl ResNetV2 {
    /// Summary rows: the stem's convolution, norm and pool, then one row per
    /// stage (`stages.0`, ...).
    pub fn summary_rows(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("stem.conv".into(), &self.stem.conv),
            ("stem.norm".into(), &self.stem.norm),
            ("stem.pool".into(), &self.pool),
        ];
        for (i, stage) in self.stages.iter().enumerate() {
            out.push((format!("stages.{i}"), stage));
        }
        out
    }
}

impl Module for ResNetV2 {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.run(x, mode, &mut |_, _| {})
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.summary_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::bottleneck_width;

    #[test]
    fn bottleneck_widths_are_timms() {
        assert_eq!(bottleneck_width(256), 64);
        assert_eq!(bottleneck_width(2048), 512);
        assert_eq!(bottleneck_width(16), 8);
        assert_eq!(bottleneck_width(100), 24);
    }
}
