#!/usr/bin/python3
"""How hard is bio-synth data for the most naive recogniser? Leave-one-out 1-nearest-neighbour
identification on raw pixels: every image, downsampled to 64x64 (PIL bilinear, as the model's
input), is matched against every other image of its modality by Euclidean distance, and counts
as correct when its nearest neighbour has the same identity (subject + side, as bio-scan's
default). Prints one line per modality, "iris 0.512 (800 images, 80 identities)", and with
--min/--max exits 1 when a modality's accuracy falls outside the band.

Usage: synth_difficulty.py DIR [--size 64] [--min A] [--max B]
DIR is a bio-synth output root (iris/NNN_S_KK.ext, fingerprint/NNN_S_finger_KK.ext)."""
import argparse
import os
import re
import sys

import numpy as np
from PIL import Image

PATTERNS = {
    "iris": re.compile(r"^([0-9]+)_([LR])_([0-9]+)\.(bmp|png|BMP|PNG)$"),
    "fingerprint": re.compile(r"^([0-9]+)_([LR])_([a-z]+)_([0-9]+)\.(bmp|png|BMP|PNG)$"),
}


def load(root, modality, size):
    d = os.path.join(root, modality)
    feats, labels = [], []
    for name in sorted(os.listdir(d)):
        m = PATTERNS[modality].match(name)
        if not m:
            continue
        ident = m.group(1) + "_" + m.group(2)
        if modality == "fingerprint":
            ident += "_" + m.group(3)
        img = Image.open(os.path.join(d, name)).convert("L").resize((size, size), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32).ravel() / 255.0
        feats.append(x)
        labels.append(ident)
    return np.stack(feats), np.array(labels)


def loo_1nn(x, y):
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    nn = d.argmin(1)
    return float((y[nn] == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--min", type=float, default=None)
    ap.add_argument("--max", type=float, default=None)
    a = ap.parse_args()
    ok = True
    for modality in ("iris", "fingerprint"):
        x, y = load(a.root, modality, a.size)
        if len(x) < 2:
            print(f"{modality}: fewer than 2 images", file=sys.stderr)
            return 1
        acc = loo_1nn(x, y)
        print(f"{modality} {acc:.3f} ({len(x)} images, {len(set(y))} identities)")
        if (a.min is not None and acc < a.min) or (a.max is not None and acc > a.max):
            print(f"{modality}: 1-NN accuracy {acc:.3f} outside [{a.min}, {a.max}]",
                  file=sys.stderr)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
