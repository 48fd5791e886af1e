"""Writes scikit-learn's 1,797 handwritten digits (8x8, 0-16) as a torchvision
ImageFolder of 32x32 grayscale PNGs (bilinear upscaling), the small-image
folder docs/training.md trains on with `residual train`'s defaults:

    OUT/train/<digit>/<index>.png   1,437 images (80%, stratified, seed 0)
    OUT/val/<digit>/<index>.png       360 images

Usage: python3 scripts/data/make_digits_folder.py OUT   (pip install scikit-learn pillow)
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main(out: Path) -> None:
    digits = load_digits()
    idx = np.arange(len(digits.target))
    train, val = train_test_split(idx, test_size=0.2, random_state=0, stratify=digits.target)
    for split, part in (("train", train), ("val", val)):
        for i in part:
            pixels = (digits.images[i] / 16.0 * 255.0).round().astype(np.uint8)
            img = Image.fromarray(pixels, mode="L").resize((32, 32), Image.BILINEAR)
            folder = out / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{i:04d}.png")
    print(f"{len(train)} training and {len(val)} held-out images in {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
