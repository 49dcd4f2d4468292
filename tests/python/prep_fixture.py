#!/usr/bin/python3
"""Writes a small, deterministic prep fixture: images in several formats and a manifest stream.

Usage: prep_fixture.py DIR [--records N] [--formats bmp,png,tif,jpg,bmp24,png_rgb]
                           [--sizes WxH,...] [--abs]

DIR/img/<modality>_<k>.<ext> are gray or RGB images (smooth gradients plus a seeded pattern, so
resizing has something to average) and DIR/manifest.bs is a bio-stream of kind "manifest" with
modalities [iris, fingerprint], labels, and one record per sample (id, label, identity, split
train/val/test, one path per modality, relative to DIR unless --abs). Formats and sizes cycle
over the records.
"""
import argparse
import os

import msgpack
import numpy as np
from PIL import Image

FORMATS = {
    "bmp": ("L", "bmp", {}),
    "bmp24": ("RGB", "bmp", {}),
    "png": ("L", "png", {}),
    "png_rgb": ("RGB", "png", {}),
    "tif": ("L", "tif", {}),
    "jpg": ("L", "jpg", {"quality": 90}),
}


def image(seed, w, h, mode):
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 127 + 80 * np.sin(x / (3 + seed % 5)) * np.cos(y / (4 + seed % 3))
    base += rs.randint(-40, 41, size=(h, w))
    if mode == "L":
        return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "L")
    rgb = np.stack([base, base[::-1, :] * 0.8 + 20, base[:, ::-1] * 0.6 + 40], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--records", type=int, default=12)
    ap.add_argument("--formats", default="bmp,png,tif,bmp24,png_rgb,jpg")
    ap.add_argument("--sizes", default="96x80,37x41,64x64,200x150,20x16")
    ap.add_argument("--abs", action="store_true")
    a = ap.parse_args()

    formats = a.formats.split(",")
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    os.makedirs(os.path.join(a.dir, "img"), exist_ok=True)
    mods = ["iris", "fingerprint"]
    n_ident = max(1, a.records // 3)
    labels = ["%03d_L" % i for i in range(n_ident)]
    out = bytearray()
    out += msgpack.packb({"bio-stream": 1, "kind": "manifest",
                          "meta": {"program": "prep_fixture", "labels": labels,
                                   "modalities": mods}})
    for k in range(a.records):
        label = k % n_ident
        rec = {"id": "s%04d" % k, "label": label, "identity": labels[label],
               "split": ("train", "train", "val", "test")[k % 4]}
        for mi, mod in enumerate(mods):
            fmt = formats[(k + mi) % len(formats)]
            mode, ext, opts = FORMATS[fmt]
            w, h = sizes[(k + 2 * mi) % len(sizes)]
            rel = os.path.join("img", "%s_%04d.%s" % (mod, k, ext))
            image(1000 * mi + k, w, h, mode).save(os.path.join(a.dir, rel), **opts)
            rec[mod] = os.path.abspath(os.path.join(a.dir, rel)) if a.abs else rel
        out += msgpack.packb(rec)
    out += msgpack.packb({"end": a.records})
    with open(os.path.join(a.dir, "manifest.bs"), "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
