#!/usr/bin/python3
"""How hard is bio-synth data for the most naive recogniser? Leave-one-out 1-nearest-neighbour
identification on raw pixels: every image, downsampled to 64x64 (PIL bilinear, as the model's
input), is matched against every other image of its modality by Euclidean distance, and counts
as correct when its nearest neighbour has the same identity (subject + side, as bio-scan's
default). Prints one line per modality, "iris 0.512 (800 images, 80 identities)", and with
--min/--max exits 1 when a modality's accuracy falls outside the band.

With --cnn EPOCHS it also trains the canonical branch of DESIGN.md (3 conv blocks 32/64/128,
linear 8192->256->128, dropout 0.3; Adam 1e-3, batch 32; torch, CPU) per modality and fused
(concatenated embeddings), holding out the last fifth of each identity's samples, and prints the
held-out accuracy after each epoch: the learnability check (slow: minutes; not for tests).

Usage: synth_difficulty.py DIR [--size 64] [--min A] [--max B] [--cnn EPOCHS]
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
    feats, labels, samples = [], [], []
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
        samples.append(int(m.group(m.lastindex - 1)))
    return np.stack(feats), np.array(labels), np.array(samples)


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
    ap.add_argument("--cnn", type=int, default=0, metavar="EPOCHS")
    a = ap.parse_args()
    ok = True
    for modality in ("iris", "fingerprint"):
        x, y, _ = load(a.root, modality, a.size)
        if len(x) < 2:
            print(f"{modality}: fewer than 2 images", file=sys.stderr)
            return 1
        acc = loo_1nn(x, y)
        print(f"{modality} {acc:.3f} ({len(x)} images, {len(set(y))} identities)")
        if (a.min is not None and acc < a.min) or (a.max is not None and acc > a.max):
            print(f"{modality}: 1-NN accuracy {acc:.3f} outside [{a.min}, {a.max}]",
                  file=sys.stderr)
            ok = False
    if a.cnn:
        for mode in ("iris", "fingerprint", "fused"):
            train_cnn(a.root, a.size, a.cnn, mode)
    return 0 if ok else 1


def train_cnn(root, size, epochs, mode):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    xi, yi, si = load(root, "iris", size)
    xf, yf, sf = load(root, "fingerprint", size)
    # Pair iris and fingerprint by (identity subject_side, sample): both lists are sorted by name.
    key_i = [("_".join(y.split("_")[:2]), s) for y, s in zip(yi, si)]
    key_f = [("_".join(y.split("_")[:2]), s) for y, s in zip(yf, sf)]
    assert key_i == key_f, "iris and fingerprint files do not pair one to one"
    ids = sorted(set(k[0] for k in key_i))
    lab = torch.tensor([ids.index(k[0]) for k in key_i])
    held = si > si.max() - max(1, si.max() // 5)
    xi = torch.tensor(xi * 2 - 1).reshape(-1, 1, size, size)
    xf = torch.tensor(xf * 2 - 1).reshape(-1, 1, size, size)

    def branch():
        layers, c = [], 1
        for o in (32, 64, 128):
            layers += [nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
            c = o
        flat = 128 * (size // 8) ** 2
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(),
                             nn.Dropout(0.3), nn.Linear(256, 128))

    mods = ["iris", "fingerprint"] if mode == "fused" else [mode]
    branches = nn.ModuleList([branch() for _ in mods])
    head = nn.Linear(128 * len(mods), len(ids))
    params = list(branches.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, 1e-3)

    def forward(idx):
        e = [b(xi[idx] if m == "iris" else xf[idx]) for b, m in zip(branches, mods)]
        return head(torch.cat(e, 1))

    tr, va = np.where(~held)[0], np.where(held)[0]
    for ep in range(epochs):
        branches.train()
        head.train()
        perm = rng.permutation(tr)
        for i in range(0, len(perm), 32):
            b = perm[i:i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(forward(b), lab[b]).backward()
            opt.step()
        branches.eval()
        head.eval()
        with torch.no_grad():
            acc = (forward(va).argmax(1) == lab[va]).float().mean().item()
        print(f"cnn {mode} epoch {ep + 1} held-out accuracy {acc:.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
