#!/usr/bin/python3
"""Checks a bio-prep samples stream against the same pipeline in PIL + numpy.

For every sample record, the manifest record with the same id gives the image paths; each image
is opened with PIL, converted to "L", resized to SIZE x SIZE (BILINEAR or BOX), and normalised
as numpy does it on float32: (x / 255 - mean) / std. The bio-prep tensor must match:

  quantized output (prep.quantize true, the default): every pixel within --tol-levels gray
  levels (default 1) of PIL's, and at least --min-exact (default 0.99) of the pixels exactly
  equal (bio-prep rounds its float resize to 8-bit levels as PIL does; a float-vs-fixed-point
  tie may round the other way);
  unquantized output (--no-quantize): every pixel within --tol-levels of PIL's rounded result.

Usage: prep_reference.py MANIFEST SAMPLES [--size 64] [--mean 0.5] [--std 0.5]
                         [--filter bilinear|area] [--no-quantize] [--root DIR]
                         [--tol-levels 1] [--min-exact 0.99]
Prints a one-line summary; exit 0 when within tolerance, 1 otherwise.
"""
import argparse
import os
import sys

import msgpack
import numpy as np
from PIL import Image


def read_stream(path):
    """Returns (header, records, trailers) of a (possibly concatenated) bio-stream."""
    header, records, trailers = None, [], []
    with open(path, "rb") as f:
        expect_header = True
        for obj in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30):
            if expect_header:
                assert obj.get("bio-stream") == 1, "not a bio-stream header: %r" % (obj,)
                if header is None:
                    header = obj
                expect_header = False
            elif "end" in obj:
                trailers.append(obj)
                expect_header = True
            else:
                records.append(obj)
    return header, records, trailers


def reference(path, size, mean, std, filt):
    im = Image.open(path).convert("L").resize((size, size), filt)
    x = np.asarray(im, dtype=np.float32)
    return (x / 255.0 - np.float32(mean)) / np.float32(std)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("samples")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--mean", type=float, default=0.5)
    ap.add_argument("--std", type=float, default=0.5)
    ap.add_argument("--filter", choices=["bilinear", "area"], default="bilinear")
    ap.add_argument("--no-quantize", action="store_true")
    ap.add_argument("--root", default=None)
    ap.add_argument("--tol-levels", type=float, default=1.0)
    ap.add_argument("--min-exact", type=float, default=0.99)
    a = ap.parse_args()

    mh, mrecs, _ = read_stream(a.manifest)
    sh, srecs, _ = read_stream(a.samples)
    if sh["kind"] != "samples" or mh["kind"] != "manifest":
        print("wrong kinds: %s, %s" % (mh["kind"], sh["kind"]))
        return 1
    mods = mh["meta"]["modalities"]
    by_id = {r["id"]: r for r in mrecs}
    filt = Image.BILINEAR if a.filter == "bilinear" else Image.BOX
    max_levels, n_px, n_exact, n_checked = 0.0, 0, 0, 0
    for rec in srecs:
        m = by_id[rec["id"]]
        assert rec["label"] == m["label"] and rec["split"] == m["split"], rec["id"]
        for mod in mods:
            t = rec[mod]
            assert t["dtype"] == "f32" and t["shape"] == [1, a.size, a.size], t["shape"]
            got = np.frombuffer(t["data"], dtype="<f4").reshape(a.size, a.size)
            path = m[mod]
            if a.root and not os.path.isabs(path):
                path = os.path.join(a.root, path)
            want = reference(path, a.size, a.mean, a.std, filt)
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64)) * a.std * 255.0
            max_levels = max(max_levels, float(diff.max()))
            n_px += diff.size
            n_exact += int((diff < 1e-4).sum())
        n_checked += 1
    frac = n_exact / n_px if n_px else 0.0
    ok = n_checked > 0 and max_levels <= a.tol_levels + 1e-3
    if not a.no_quantize:
        ok = ok and frac >= a.min_exact
    print("%s: %d samples, %d pixels, max diff %.4f gray levels, %.4f%% exact"
          % ("ok" if ok else "FAIL", n_checked, n_px, max_levels, 100.0 * frac))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
