#!/usr/bin/env python3
"""PyTorch references for the ResNet zoo (run from the repository root).

    pip install torch torchvision safetensors
    python3 scripts/parity/make_parity.py           # small fixtures, committed
    python3 scripts/parity/make_parity.py --full    # full-size checkpoints, not committed

Small (CI, no Python): torchvision resnet18 and resnet50 with *formula weights*:
every tensor of the state_dict is filled by `formula(name, shape)` below, which
the Rust test implements too, so only the logits need committing
(crates/residual-zoo/fixtures/parity_small.safetensors).

Full (`--full`): torchvision resnet18/34/50/101/152 with seeded random weights
and randomised BatchNorm statistics and affine terms (eval-mode BN with fresh
statistics is nearly the identity and would hide bugs), saved with torchvision's
own key names to target/parity/<model>.safetensors, with an input batch and
the logits in target/parity/<model>_io.safetensors. The ignored Rust test
`full_size_parity` reads them:

    cargo test --release -p residual-zoo --test parity -- --ignored --nocapture
"""
import math
import os
import sys

import torch
import torchvision
from safetensors.torch import save_file

SMALL_OUT = os.path.join("crates", "residual-zoo", "fixtures", "parity_small.safetensors")
FULL_DIR = os.path.join("target", "parity")


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


M32 = 0xFFFFFFFF


def fmix32(h):
    """murmur3's finaliser on an int64 tensor of 32-bit values (wrapping products)."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def unit(seed, n):
    """n values of variance 1, uniform in [-sqrt(3), sqrt(3)), from 32-bit integer hashing only."""
    i = torch.arange(n, dtype=torch.int64)
    h = fmix32(((i * 0x9E3779B9) & M32) ^ seed)
    u = (h >> 8).double() / 2**24
    return (2.0 * u - 1.0) * math.sqrt(3.0)


def formula(name, shape):
    """Deterministic weights both sides compute from the tensor's name and index."""
    n = math.prod(shape)
    s = unit(fnv1a32(name), n)
    if name.endswith("num_batches_tracked"):
        v = torch.zeros(n, dtype=torch.float64)
    elif name.endswith("running_var"):
        v = 1.0 + 0.25 * s
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = 0.1 * s
    elif len(shape) == 1:  # norm scale
        v = 1.0 + 0.1 * s
    else:  # conv / linear weight: He scale sqrt(2 / fan_in)
        fan_in = math.prod(shape[1:])
        v = math.sqrt(2.0 / fan_in) * s
    return v.reshape(shape)


def formula_input(shape):
    return unit(12345, math.prod(shape)).reshape(shape)


def small():
    out = {}
    for name in ("resnet18", "resnet50"):
        model = getattr(torchvision.models, name)(num_classes=10).double().eval()
        sd = {k: formula(k, list(v.shape)).to(v.dtype) for k, v in model.state_dict().items()}
        model.load_state_dict(sd)
        x = formula_input([2, 3, 64, 64])
        with torch.no_grad():
            out[f"{name}.logits"] = model(x).float()
        print(name, "max |logit|", out[f"{name}.logits"].abs().max().item())
    os.makedirs(os.path.dirname(SMALL_OUT), exist_ok=True)
    save_file(out, SMALL_OUT)
    print("wrote", SMALL_OUT)


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(1.0 + 0.2 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.num_batches_tracked.fill_(7)


def full():
    os.makedirs(FULL_DIR, exist_ok=True)
    for k, name in enumerate(("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")):
        torch.manual_seed(1000 + k)
        model = getattr(torchvision.models, name)().eval()
        with torch.no_grad():
            randomise(model, 2000 + k)
        sd = {key: v.contiguous() for key, v in model.state_dict().items()}
        save_file(sd, os.path.join(FULL_DIR, f"{name}.safetensors"))
        # Eight samples: enough 4x4 output tiles that residual's Winograd
        # convolutions (cpu/winograd.rs) run in the first three stages, as
        # at batch 8 in deployment, not only in the first.
        x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(3000 + k))
        with torch.no_grad():
            y = model.double()(x.double()).float()
        save_file({"input": x, "output": y}, os.path.join(FULL_DIR, f"{name}_io.safetensors"))
        print(name, "max |logit|", y.abs().max().item())


if __name__ == "__main__":
    full() if "--full" in sys.argv else small()
