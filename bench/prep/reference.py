#!/usr/bin/python3
"""The reference preprocessing of bench/prep, in the Python design's style: PIL + numpy.

For each manifest record and modality: Image.open, convert("L"), resize to SIZE x SIZE with
Image.BILINEAR, numpy float32 (x / 255 - mean) / std; each sample is serialised with msgpack as a
bio-stream "samples" record (the same layout bio-prep writes) and written to OUT. With --workers
N > 1 the records are spread over a multiprocessing.Pool of N processes (imap, ordered, chunks of
--chunk records), the way the Python design parallelises preprocessing.

Usage: reference.py MANIFEST OUT [--workers N] [--size 64] [--mean 0.5] [--std 0.5]
Prints "<images> <seconds>" (time from reading the manifest to closing OUT; the interpreter's
start-up and imports are not counted).
"""
import argparse
import multiprocessing
import sys
import time

import msgpack
import numpy as np
from PIL import Image

CFG = {}


def init(cfg):
    CFG.update(cfg)


def prep_record(rec):
    size, mean, std = CFG["size"], np.float32(CFG["mean"]), np.float32(CFG["std"])
    out = {"id": rec["id"], "label": rec["label"], "identity": rec["identity"],
           "split": rec["split"]}
    for mod in CFG["modalities"]:
        im = Image.open(rec[mod]).convert("L").resize((size, size), Image.BILINEAR)
        x = (np.asarray(im, dtype=np.float32) / 255.0 - mean) / std
        out[mod] = {"dtype": "f32", "shape": [1, size, size], "data": x.astype("<f4").tobytes()}
    return msgpack.packb(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("out")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--mean", type=float, default=0.5)
    ap.add_argument("--std", type=float, default=0.5)
    a = ap.parse_args()

    t0 = time.perf_counter()
    with open(a.manifest, "rb") as f:
        objs = list(msgpack.Unpacker(f, raw=False))
    header, records = objs[0], [o for o in objs[1:] if "end" not in o]
    mods = header["meta"]["modalities"]
    cfg = {"size": a.size, "mean": a.mean, "std": a.std, "modalities": mods}
    meta = dict(header["meta"], program="reference.py", shape=[1, a.size, a.size],
                normalize={"mean": a.mean, "std": a.std})
    with open(a.out, "wb") as out:
        out.write(msgpack.packb({"bio-stream": 1, "kind": "samples", "meta": meta}))
        if a.workers > 1:
            with multiprocessing.Pool(a.workers, initializer=init, initargs=(cfg,)) as pool:
                for b in pool.imap(prep_record, records, chunksize=a.chunk):
                    out.write(b)
        else:
            init(cfg)
            for rec in records:
                out.write(prep_record(rec))
        out.write(msgpack.packb({"end": len(records), "failed": 0}))
    dt = time.perf_counter() - t0
    print("%d %.6f" % (len(records) * len(mods), dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
