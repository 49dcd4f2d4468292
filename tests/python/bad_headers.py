#!/usr/bin/python3
"""Writes the bad-header corpus (tests/bad/header): small samples streams that are well-formed
bio-streams but lie in what a reader relies on and passes on -- non-finite pixels, labels outside
the header's names, a modality listed twice or named like a record key, a header shape its
records do not have, missing label names or shape. Every program reading samples refuses each
with one line naming the file (and the record); fuzz_header replays them under ASan.

Usage: bad_headers.py OUTDIR
"""
import os
import sys

import msgpack
import numpy as np


def tensor(a, dtype="<f4", name="f32"):
    a = np.ascontiguousarray(a, dtype=dtype)
    return {"dtype": name, "shape": list(a.shape), "data": a.tobytes()}


def stream(meta_change=None, rec_change=None, n=4, h=4, w=4):
    meta = {"program": "bad_headers.py", "labels": ["a", "b", "c"],
            "modalities": ["iris", "fingerprint"], "shape": [1, h, w]}
    recs = []
    for i in range(n):
        r = {"id": "s%d" % i, "label": i % 3, "identity": "abc"[i % 3], "split": "train"}
        for m in ("iris", "fingerprint"):
            r[m] = tensor(np.full((1, h, w), 0.5 + i))
        recs.append(r)
    if meta_change:
        meta_change(meta)
    if rec_change:
        rec_change(recs)
    objs = [{"bio-stream": 1, "kind": "samples", "meta": meta}] + recs + [{"end": len(recs)}]
    return b"".join(msgpack.packb(o, use_bin_type=True) for o in objs)


def set_px(recs, i, m, v):
    a = np.frombuffer(recs[i][m]["data"], "<f4").copy()
    a[3] = v
    recs[i][m]["data"] = a.tobytes()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "nan-pixel.bs": stream(rec_change=lambda r: set_px(r, 2, "iris", np.nan)),
        "inf-pixel.bs": stream(rec_change=lambda r: set_px(r, 1, "fingerprint", -np.inf)),
        "label-minus-one.bs": stream(rec_change=lambda r: r[1].update(label=-1)),
        "label-past-names.bs": stream(rec_change=lambda r: r[3].update(label=3)),
        "label-2-40.bs": stream(rec_change=lambda r: r[0].update(label=2 ** 40)),
        "modality-twice.bs": stream(lambda m: m.update(modalities=["iris", "fingerprint", "iris"])),
        "modality-reserved.bs": stream(lambda m: m.update(modalities=["iris", "label"])),
        "modality-empty-name.bs": stream(lambda m: m.update(modalities=["iris", ""])),
        "modalities-empty.bs": stream(lambda m: m.update(modalities=[])),
        "modalities-not-list.bs": stream(lambda m: m.update(modalities="iris")),
        "labels-missing.bs": stream(lambda m: m.pop("labels")),
        "labels-not-names.bs": stream(lambda m: m.update(labels=["a", 7, "c"])),
        "shape-missing.bs": stream(lambda m: m.pop("shape")),
        "shape-zero.bs": stream(lambda m: m.update(shape=[1, 0, 4])),
        "shape-channels-2.bs": stream(lambda m: m.update(shape=[2, 4, 4])),
        "shape-lies.bs": stream(lambda m: m.update(shape=[1, 4, 5])),
        "record-shape-differs.bs": stream(
            rec_change=lambda r: r[2].update(iris=tensor(np.zeros((1, 5, 4))))),
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("bad_headers: wrote %d files to %s" % (len(files), out))


if __name__ == "__main__":
    main()
