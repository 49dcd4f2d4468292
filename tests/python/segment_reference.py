#!/usr/bin/python3
"""Checks bio-prep's fingerprint segmentation (prep.fingerprint.segment) against numpy + PIL.

For every sample record, the manifest's fingerprint image is opened with PIL ("L") and segmented
here as include/bio/segment.h defines it (block variances from exact integer sums, a foreground
threshold relative to the largest, a 3 x 3 opening, holes filled, the bounding box grown by the
margin and made square, contrast from the foreground's mean and deviation); the crop is then
resized with PIL (BILINEAR) and normalised as numpy does. The record's "segment" entry (foreground
share, crop, mean, std) must equal this exactly, and the tensor must match as prep_reference.py
asks of unsegmented images (every pixel within --tol-levels, --min-exact of them equal).

Usage: segment_reference.py MANIFEST SAMPLES [--size 64] [--block 16] [--threshold 0.3]
                            [--min-foreground 0.05] [--margin 1] [--min-exact 0.999]
Prints one line; exit 0 when everything matches, 1 otherwise.
"""
import argparse
import math
import sys

import numpy as np
from PIL import Image

from prep_reference import read_stream  # noqa: E402


def untensor(t):
    assert t["dtype"] == "f32", t["dtype"]
    return np.frombuffer(t["data"], dtype="<f4").reshape(t["shape"])


def morph3(m, erode):
    hb, wb = m.shape
    p = np.pad(m, 1, constant_values=False)
    out = np.ones_like(m) if erode else np.zeros_like(m)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            win = p[1 + dy:1 + dy + hb, 1 + dx:1 + dx + wb]
            out = (out & win) if erode else (out | win)
    return out


def fill_holes(m):
    hb, wb = m.shape
    reached = np.zeros_like(m)
    stack = [(y, x) for y in range(hb) for x in range(wb)
             if (y in (0, hb - 1) or x in (0, wb - 1)) and not m[y, x]]
    for y, x in stack:
        reached[y, x] = True
    while stack:
        y, x = stack.pop()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < hb and 0 <= nx < wb and not m[ny, nx] and not reached[ny, nx]:
                reached[ny, nx] = True
                stack.append((ny, nx))
    return ~reached


def segment(a, b, thr, min_fg, margin):
    """Returns (crop uint8 image, info dict) or (None, foreground share) when it fails."""
    h, w = a.shape
    hb, wb = h // b, w // b
    blk = a[:hb * b, :wb * b].astype(np.int64).reshape(hb, b, wb, b).transpose(0, 2, 1, 3)
    blk = blk.reshape(hb, wb, b * b)
    n = b * b
    s1, s2 = blk.sum(-1), (blk * blk).sum(-1)
    v = (n * s2 - s1 * s1).astype(np.float64)
    vmax = float(v.max())
    m = (v >= thr * thr * vmax) & (vmax > 0.0)
    m = fill_holes(morph3(morph3(m, True), False))
    n_fg = int(m.sum())
    fg = n_fg / float(hb * wb)
    if n_fg == 0 or fg < min_fg:
        return None, fg
    ys, xs = np.nonzero(m)
    x0, y0 = max((int(xs.min()) - margin) * b, 0), max((int(ys.min()) - margin) * b, 0)
    x1, y1 = min((int(xs.max()) + 1 + margin) * b, w), min((int(ys.max()) + 1 + margin) * b, h)
    side = max(x1 - x0, y1 - y0)
    cx, cy = x0 - (side - (x1 - x0)) // 2, y0 - (side - (y1 - y0)) // 2
    cnt = n_fg * n
    t1, t2 = int(s1[m].sum()), int(s2[m].sum())
    mean = t1 / cnt
    var = t2 / cnt - mean * mean
    sd = math.sqrt(var) if var > 0 else 0.0
    if not sd > 0:
        return None, fg
    # the foreground pixels of the crop (cells of foreground blocks inside the image)
    full = np.zeros((h, w), dtype=bool)
    full[:hb * b, :wb * b] = np.repeat(np.repeat(m, b, 0), b, 1)
    out = np.full((side, side), 128, dtype=np.uint8)
    yy, xx = np.mgrid[cy:cy + side, cx:cx + side]
    inside = (yy >= 0) & (xx >= 0) & (yy < h) & (xx < w)
    sel = np.zeros((side, side), dtype=bool)
    sel[inside] = full[yy[inside], xx[inside]]
    px = a[yy[sel], xx[sel]].astype(np.float64)
    val = np.floor(128.0 + 127.0 * ((px - mean) / (2.0 * sd)) + 0.5)
    out[sel] = np.clip(val, 0.0, 255.0).astype(np.uint8)
    return out, {"foreground": fg, "crop": [cx, cy, side], "mean": mean, "std": sd}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("samples")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--min-foreground", type=float, default=0.05)
    ap.add_argument("--margin", type=int, default=1)
    ap.add_argument("--tol-levels", type=float, default=1.0)
    ap.add_argument("--min-exact", type=float, default=0.999)
    a = ap.parse_args()
    _, man, _ = read_stream(a.manifest)
    paths = {r["id"]: r["fingerprint"] for r in man}
    _, recs, trailers = read_stream(a.samples)
    bad, exact, total = [], 0, 0
    for r in recs:
        img = np.asarray(Image.open(paths[r["id"]]).convert("L"))
        crop, info = segment(img, a.block, a.threshold, a.min_foreground, a.margin)
        if crop is None:
            bad.append("%s: segmentation fails here (foreground %.4f)" % (r["id"], info))
            continue
        got = r["segment"]["fingerprint"]
        for k in ("foreground", "crop", "mean", "std"):
            if got[k] != info[k]:
                bad.append("%s: %s %r, expected %r" % (r["id"], k, got[k], info[k]))
        ref = Image.fromarray(crop).resize((a.size, a.size), Image.BILINEAR)
        ref = (np.asarray(ref, dtype=np.float32) / 255.0 - np.float32(0.5)) / np.float32(0.5)
        x = untensor(r["fingerprint"])[0]
        levels = np.abs(x - ref) * 0.5 * 255.0
        if levels.max() > a.tol_levels + 1e-3:
            bad.append("%s: a pixel %.2f levels from PIL's" % (r["id"], levels.max()))
        exact += int((levels < 1e-3).sum())
        total += levels.size
    if total and exact / total < a.min_exact:
        bad.append("only %.4f of the pixels equal PIL's" % (exact / total))
    if bad:
        print("FAIL: " + "; ".join(bad[:5]))
        return 1
    print("ok: %d samples segmented as numpy does, %.4f of pixels exact" %
          (len(recs), exact / max(total, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
