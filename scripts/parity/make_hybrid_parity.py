#!/usr/bin/env python3
"""timm references for the ResNet-stem ViT hybrids (run from the repository root).

    pip install torch timm safetensors
    python3 scripts/parity/make_hybrid_parity.py           # small fixtures, committed
    python3 scripts/parity/make_hybrid_parity.py --full    # full-size checkpoints, not committed

Small (CI, no Python): a reduced hybrid built from timm's own classes
(ResNetV2 with preact=False, stem_type="same", StdConv2dSame(eps=1e-8),
GroupNormAct with 8 groups, two stages of 64 and 128 channels, a 32-wide stem;
a 48-wide, 2-block, 3-head VisionTransformer over HybridEmbed, img_size 32,
10 classes) with *formula weights* (make_parity.py's `formula`, which the Rust
test implements too; GroupNorm and LayerNorm scales and shifts are randomised
by it). Recorded in float64, stored as f32 in
crates/residual-zoo/fixtures/hybrid_small.safetensors:
  - `eval.input` [2, 3, 32, 32] and `eval.output`: evaluation-mode logits;
  - `resized.input` [1, 3, 30, 38] and `resized.output`: the same weights
    with dynamic_img_size=True, so SAME padding is asymmetric and odd and the
    position embedding is resampled (bicubic, antialiased) to a 4x5 grid;
  - `avg.input` [2, 3, 32, 32] and `avg.output`: global_pool="avg" (the mean
    of the patch tokens through `fc_norm`, no final `norm`);
  - `train.input` [2, 3, 32, 32], `train.output` and `grad.<name>` for every
    parameter: training-mode logits and the gradients of
    `sum(logits * formula_input(...))`.

Full (`--full`): timm's vit_small_r26_s32_224/384 and vit_base_r50_s16_224/384
(1000 classes) with timm's seeded random init and GroupNorm / LayerNorm affine
terms randomised, saved with timm's own key names to
target/parity/<model>.safetensors, with an input batch and float64 logits in
target/parity/<model>_io.safetensors. The ignored Rust test reads them:

    cargo test --release -p residual-zoo --test hybrid_parity -- --ignored --nocapture
"""
import os
import sys
from functools import partial

import torch
from safetensors.torch import save_file
from timm.layers import GroupNormAct, StdConv2dSame
from timm.layers.hybrid_embed import HybridEmbed
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity import formula, formula_input, unit  # noqa: E402

SMALL_OUT = os.path.join("crates", "residual-zoo", "fixtures", "hybrid_small.safetensors")
FULL_DIR = os.path.join("target", "parity")
FULL = ("vit_small_r26_s32_224", "vit_small_r26_s32_384", "vit_base_r50_s16_224", "vit_base_r50_s16_384")


def small_model(dynamic, pool="token"):
    backbone = ResNetV2(
        layers=(1, 1), channels=(64, 128), stem_chs=32, num_classes=0, global_pool="",
        preact=False, stem_type="same", conv_layer=partial(StdConv2dSame, eps=1e-8),
        norm_layer=partial(GroupNormAct, num_groups=8))
    return VisionTransformer(
        img_size=32, patch_size=1, embed_dim=48, depth=2, num_heads=3, num_classes=10,
        embed_layer=partial(HybridEmbed, backbone=backbone), dynamic_img_size=dynamic,
        global_pool=pool)


def seeded_input(seed, shape):
    return unit(seed, torch.Size(shape).numel()).reshape(shape)


def small():
    sd = {k: formula(k, list(v.shape)) for k, v in small_model(False).state_dict().items()}
    out = {}
    model = small_model(False).double().eval()
    model.load_state_dict(sd)
    x = formula_input([2, 3, 32, 32])
    with torch.no_grad():
        out["eval.input"] = x
        out["eval.output"] = model(x)
    dyn = small_model(True).double().eval()
    dyn.load_state_dict(sd)
    xr = seeded_input(777, [1, 3, 30, 38])
    with torch.no_grad():
        out["resized.input"] = xr
        out["resized.output"] = dyn(xr)
    avg = small_model(False, "avg").double().eval()
    avg.load_state_dict({k: formula(k, list(v.shape)) for k, v in avg.state_dict().items()})
    xa = seeded_input(555, [2, 3, 32, 32])
    with torch.no_grad():
        out["avg.input"] = xa
        out["avg.output"] = avg(xa)
    model.train()
    xt = seeded_input(4242, [2, 3, 32, 32])
    y = model(xt)
    r = seeded_input(99, list(y.shape))
    (y * r).sum().backward()
    out["train.input"] = xt
    out["train.output"] = y.detach()
    out["train.cotangent"] = r
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad
    for k in ("eval.output", "resized.output", "avg.output", "train.output"):
        print(k, "max |ref|", out[k].abs().max().item())
    out = {k: v.float().contiguous() for k, v in out.items()}
    os.makedirs(os.path.dirname(SMALL_OUT), exist_ok=True)
    save_file(out, SMALL_OUT)
    print("wrote", SMALL_OUT, len(out), "tensors")


def randomise_norms(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            n = m.weight.numel()
            m.weight.data.copy_(1.0 + 0.2 * torch.randn(n, generator=g).reshape(m.weight.shape))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g).reshape(m.bias.shape))


def full():
    import timm

    os.makedirs(FULL_DIR, exist_ok=True)
    for k, name in enumerate(FULL):
        torch.manual_seed(5000 + k)
        model = timm.create_model(name, pretrained=False, num_classes=1000).eval()
        with torch.no_grad():
            randomise_norms(model, 6000 + k)
        n_params = sum(p.numel() for p in model.parameters())
        sd = {key: v.contiguous() for key, v in model.state_dict().items()}
        save_file(sd, os.path.join(FULL_DIR, f"{name}.safetensors"))
        size = model.pretrained_cfg["input_size"][-1]
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(7000 + k))
        with torch.no_grad():
            y = model.double()(x.double()).float()
        save_file({"input": x, "output": y}, os.path.join(FULL_DIR, f"{name}_io.safetensors"))
        print(name, "parameters", n_params, "max |logit|", y.abs().max().item())


if __name__ == "__main__":
    full() if "--full" in sys.argv else small()
