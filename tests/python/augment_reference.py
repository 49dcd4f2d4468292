#!/usr/bin/python3
"""The reference of bio-batch's augmentation (include/bio/augment.h) in numpy: for every batch
record carrying aug_<modality> parameters, the sample's image is warped from the samples stream
with those parameters (bilinear, coordinates clamped: the border replicated; a circular shift
along x first; then gain and bias) and compared with the batch's image. Also checks that the
parameters are a similarity transform about the image centre inside the header's ranges.

Usage: augment_reference.py SAMPLES BATCHES [TOL]   prints one summary line; exit 1 on a mismatch"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bio_torch import read_stream, untensor  # noqa: E402


def warp(img, row):
    """img [h][w] warped by one row of parameters (m[0..5], gain, bias, shift), in float64."""
    h, w = img.shape
    m = row[:6]
    rolled = np.roll(img.astype(np.float64), int(row[8]), axis=1)  # [:, x] = img[:, x - shift]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = m[0] * x + m[1] * y + m[2]
    sy = m[3] * x + m[4] * y + m[5]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    xa, xb = np.clip(x0, 0, w - 1).astype(int), np.clip(x0 + 1, 0, w - 1).astype(int)
    ya, yb = np.clip(y0, 0, h - 1).astype(int), np.clip(y0 + 1, 0, h - 1).astype(int)
    v = ((1 - fy) * ((1 - fx) * rolled[ya, xa] + fx * rolled[ya, xb]) +
         fy * ((1 - fx) * rolled[yb, xa] + fx * rolled[yb, xb]))
    return row[6] * v + row[7]


def check_params(row, rng, h, w):
    """The row is a rotation + scale about the centre + translation inside the ranges."""
    m = row[:6]
    assert abs(m[1] + m[3]) < 1e-12 and abs(m[4] - m[0]) < 1e-12, row
    s = 1.0 / math.hypot(m[0], m[3])
    angle = math.degrees(math.atan2(-m[3], m[0]))
    assert abs(angle) <= rng["rotate"] + 1e-9, (angle, rng)
    assert abs(s - 1.0) <= rng["scale"] + 1e-9, (s, rng)
    # src = c + A (dst - c - t): the translation t from m[2], m[5]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a = np.array([[m[0], m[1]], [m[3], m[4]]])
    t = np.linalg.solve(a, np.array([cx - m[2], cy - m[5]])) - np.array([cx, cy])
    assert abs(t[0]) <= rng["translate"] * w + 1e-6 and abs(t[1]) <= rng["translate"] * h + 1e-6
    assert abs(row[6] - 1.0) <= rng["contrast"] + 1e-12 and abs(row[7]) <= rng["brightness"] + 1e-12
    assert abs(row[8]) <= round(rng["shift"] * w) and row[8] == int(row[8])


def main():
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
    _, samples = read_stream(sys.argv[1])
    bh, batches = read_stream(sys.argv[2])
    ranges = bh["meta"].get("augment", {})
    by_id = {r["id"]: r for r in samples}
    worst, n = 0.0, 0
    for b in batches:
        for mod, rng in ranges.items():
            imgs, rows = untensor(b[mod]), untensor(b["aug_" + mod])
            for k, sid in enumerate(b["ids"]):
                src = untensor(by_id[sid][mod])[0]
                check_params(rows[k], rng, *src.shape)
                ref = warp(src, rows[k])
                worst = max(worst, float(np.abs(imgs[k, 0] - ref).max()))
                n += 1
    print("augment: %d images of %s, worst |C - numpy| %.3g" % (n, ",".join(ranges), worst))
    return 0 if n > 0 and worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
