#!/usr/bin/python3
"""Writes bio-streams with Python's msgpack + numpy, independently of libbio, so that the C reader
is tested on foreign-written data (tests/tools/stream.bats).

Usage:
  write_stream.py OUT [--kind samples|manifest|batches|predictions|checkpoint] [--records N]
                  [--size H,W] [--seed S] [--failed F] [--expect FILE]
  write_stream.py --bad-corpus DIR      regenerate the bad-input corpus (tests/bad/stream)
  write_stream.py --seed-corpus DIR     write small valid streams of every kind (fuzz seeds)

OUT "-" is standard output. --expect FILE writes the lines tests/helpers/stream_dump prints for the
records ("record N: key=value ..."; tensors as dtype[shape]#fnv1a64 of the data bytes), so that
the C reading can be compared line by line. Values are deterministic for a seed.
"""
import argparse
import os
import sys

import msgpack
import numpy as np

DTYPES = {"u8": "<u1", "i32": "<i4", "i64": "<i8", "f16": "<f2", "f32": "<f4", "f64": "<f8"}
MODALITIES = ["iris", "fingerprint"]


def tensor(arr, dtype):
    a = np.ascontiguousarray(arr, dtype=DTYPES[dtype])
    return {"dtype": dtype, "shape": list(a.shape), "data": a.tobytes()}


def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def dump_value(v):
    """The text tests/helpers/stream_dump.c prints for a value."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "%.9g" % v
    if isinstance(v, str):
        return '"%s"' % v[:60]
    if isinstance(v, bytes):
        return "bin(%d)" % len(v)
    if isinstance(v, list):
        return "[%d]" % len(v)
    if isinstance(v, dict):
        if set(v) >= {"dtype", "shape", "data"}:
            return "%s[%s]#%016x" % (v["dtype"], ",".join(str(d) for d in v["shape"]),
                                     fnv1a64(v["data"]))
        return "{%d}" % len(v)
    raise TypeError(type(v))


def make_stream(kind, n, size, seed):
    """Returns (header, records, trailer extras) of a valid stream of the given kind."""
    rng = np.random.RandomState(seed)
    h, w = size
    labels = ["%03d_%s" % (i // 2 + 1, "LR"[i % 2]) for i in range(4)]
    meta = {"producer": "write_stream.py", "version": "1", "labels": labels,
            "modalities": MODALITIES}
    recs = []
    if kind == "manifest":
        meta["root"] = "data"
        for i in range(n):
            lab = i % len(labels)
            recs.append({"id": "s%04d" % i, "label": lab, "identity": labels[lab],
                         "split": ["train", "val", "test"][i % 3],
                         "iris": "iris/%s_%02d.bmp" % (labels[lab], i),
                         "fingerprint": "fingerprint/%s_thumb_%02d.BMP" % (labels[lab], i)})
    elif kind == "samples":
        meta["shape"] = [1, h, w]
        meta["normalize"] = {"mean": 0.5, "std": 0.25}
        for i in range(n):
            lab = i % len(labels)
            r = {"id": "s%04d" % i, "label": lab, "identity": labels[lab],
                 "split": ["train", "val", "test"][i % 3]}
            for m in MODALITIES:
                r[m] = tensor(rng.standard_normal((1, h, w)), "f32")
            recs.append(r)
    elif kind == "batches":
        bs = 3
        meta.update({"batch_size": bs, "seed": seed, "epochs": 1, "start_epoch": 0,
                     "batches_per_epoch": (n + bs - 1) // bs, "split": "train"})
        for i in range(n):
            b = bs if i + 1 < n else 2  # a short last batch
            r = {"epoch": 0, "index": i, "ids": ["s%04d" % (i * bs + k) for k in range(b)],
                 "label": tensor(rng.randint(0, len(labels), size=b), "i64")}
            for m in MODALITIES:
                r[m] = tensor(rng.standard_normal((b, 1, h, w)), "f32")
            recs.append(r)
    elif kind == "predictions":
        for i in range(n):
            scores = np.sort(rng.random_sample(3))[::-1]
            top = rng.permutation(len(labels))[:3]
            recs.append({"id": "s%04d" % i, "label": int(i % len(labels)) if i % 5 else -1,
                         "pred": int(top[0]), "pred_name": labels[top[0]],
                         "topk": tensor(top, "i64"), "topk_scores": tensor(scores, "f32"),
                         "emb_iris": tensor(rng.standard_normal(8), "f32"),
                         "emb_fused": tensor(rng.standard_normal(8), "f32")})
    elif kind == "checkpoint":
        meta.update({"epoch": 3, "step": 120, "config": {"model": {"fusion": "concat"}}})
        shapes = [("iris.conv1.weight", (4, 1, 3, 3), "f32"), ("iris.conv1.bias", (4,), "f32"),
                  ("iris.bn1.num_batches_tracked", (), "i64"), ("half.weight", (2, 3), "f16"),
                  ("mask", (5,), "u8"), ("counts", (2, 2), "i32"), ("precise", (3,), "f64")]
        for i in range(n):
            name, shape, dt = shapes[i % len(shapes)]
            vals = rng.standard_normal(shape) * 4 if dt[0] == "f" else rng.randint(0, 200, shape)
            recs.append({"name": "%s.%d" % (name, i), "tensor": tensor(vals, dt)})
    else:
        raise SystemExit("write_stream.py: unknown kind %r" % kind)
    header = {"bio-stream": 1, "kind": kind, "meta": meta}
    return header, recs


def pack_stream(header, recs, extras=None, end=None):
    out = [msgpack.packb(header)]
    out += [msgpack.packb(r) for r in recs]
    trailer = {"end": len(recs) if end is None else end}
    trailer.update(extras or {})
    out.append(msgpack.packb(trailer))
    return b"".join(out)


def bad_corpus(d):
    os.makedirs(d, exist_ok=True)
    header, recs = make_stream("samples", 3, (4, 4), 1)
    good = pack_stream(header, recs, {"failed": 0})
    hdr = msgpack.packb(header)
    files = {}
    files["truncated-mid-record.bin"] = good[: len(good) - 40]
    files["truncated-in-header.bin"] = hdr[: len(hdr) // 2]
    files["missing-trailer.bin"] = hdr + b"".join(msgpack.packb(r) for r in recs)
    files["header-only.bin"] = hdr
    files["empty.bin"] = b""
    files["wrong-count.bin"] = pack_stream(header, recs, end=5)
    files["negative-count.bin"] = pack_stream(header, recs, end=-1)
    files["header-not-map.bin"] = msgpack.packb([1, "samples", {}]) + good[len(hdr):]
    files["header-kind-not-str.bin"] = msgpack.packb(
        {"bio-stream": 1, "kind": 7, "meta": {}}) + msgpack.packb({"end": 0})
    files["header-version-2.bin"] = msgpack.packb(
        {"bio-stream": 2, "kind": "samples", "meta": {}}) + msgpack.packb({"end": 0})
    files["header-meta-not-map.bin"] = msgpack.packb(
        {"bio-stream": 1, "kind": "samples", "meta": [1]}) + msgpack.packb({"end": 0})
    files["record-not-map.bin"] = hdr + msgpack.packb([1, 2]) + msgpack.packb({"end": 1})
    files["record-int-key.bin"] = hdr + msgpack.packb({1: 2}, strict_types=False) + \
        msgpack.packb({"end": 1})
    files["trailer-end-str.bin"] = hdr + msgpack.packb({"end": "3"})
    files["kind-mismatch-concat.bin"] = good + pack_stream(
        {"bio-stream": 1, "kind": "batches", "meta": {}}, [])
    files["concat-no-trailer.bin"] = good[: len(good) - len(msgpack.packb({"end": 3, "failed": 0}))] + good
    files["garbage-after-trailer.bin"] = good + b"\x93\x01"
    files["invalid-byte-c1.bin"] = hdr + b"\x81\xa1x\xc1" + msgpack.packb({"end": 1})
    # huge declared lengths in tiny files
    files["huge-bin32.bin"] = hdr + b"\x81\xa4data\xc6\xff\xff\xff\xff\x00"
    files["huge-str32.bin"] = hdr + b"\x81\xa2id\xdb\x7f\xff\xff\xf0abc"
    files["huge-array32.bin"] = hdr + b"\x81\xa3ids\xdd\xff\xff\xff\xff\xc0"
    files["huge-map32.bin"] = hdr + b"\xdf\x7f\xff\xff\xff\xa1a\x01"
    files["huge-header-map.bin"] = b"\xdf\xff\xff\xff\xff"
    files["deep-nesting.bin"] = hdr + b"\x81\xa1x" + b"\x91" * 200 + b"\xc0" + \
        msgpack.packb({"end": 1})
    files["deep-nesting-header.bin"] = b"\x91" * 100000
    # tensors: the reader accepts the record; stream_dump prints it, the getters reject it
    def rec_with(t):
        return hdr + msgpack.packb({"id": "x", "label": 0, "iris": t}) + msgpack.packb({"end": 1})
    files["tensor-negative-dim.bin"] = rec_with({"dtype": "f32", "shape": [-1, 4], "data": b""})
    files["tensor-size-mismatch.bin"] = rec_with({"dtype": "f32", "shape": [1, 4, 4],
                                                 "data": b"\0" * 60})
    files["tensor-unknown-dtype.bin"] = rec_with({"dtype": "f128", "shape": [1],
                                                 "data": b"\0" * 16})
    files["tensor-shape-overflow.bin"] = rec_with({"dtype": "f64", "shape": [2**40, 2**40, 2**40],
                                                  "data": b""})
    files["tensor-rank-9.bin"] = rec_with({"dtype": "u8", "shape": [1] * 9, "data": b"\0"})
    files["tensor-shape-not-array.bin"] = rec_with({"dtype": "u8", "shape": 4, "data": b"\0" * 4})
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def seed_corpus(d):
    os.makedirs(d, exist_ok=True)
    for kind in ["manifest", "samples", "batches", "predictions", "checkpoint"]:
        header, recs = make_stream(kind, 4, (3, 3), 7)
        with open(os.path.join(d, kind + ".bin"), "wb") as f:
            f.write(pack_stream(header, recs, {"failed": 1} if kind == "samples" else None))
    header, recs = make_stream("samples", 2, (2, 2), 8)
    one = pack_stream(header, recs, {"failed": 0})
    with open(os.path.join(d, "samples-concat.bin"), "wb") as f:
        f.write(one + pack_stream(header, [], {"failed": 2}) + one)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--kind", default="samples")
    ap.add_argument("--records", type=int, default=5)
    ap.add_argument("--size", default="4,4")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--failed", type=int, default=0)
    ap.add_argument("--expect")
    ap.add_argument("--bad-corpus")
    ap.add_argument("--seed-corpus")
    a = ap.parse_args()
    if a.bad_corpus:
        bad_corpus(a.bad_corpus)
        return
    if a.seed_corpus:
        seed_corpus(a.seed_corpus)
        return
    if not a.out:
        ap.error("OUT is required")
    size = tuple(int(x) for x in a.size.split(","))
    header, recs = make_stream(a.kind, a.records, size, a.seed)
    data = pack_stream(header, recs, {"failed": a.failed})
    if a.out == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(a.out, "wb") as f:
            f.write(data)
    if a.expect:
        with open(a.expect, "w") as f:
            for i, r in enumerate(recs):
                f.write("record %d:%s\n" % (i, "".join(" %s=%s" % (k, dump_value(v))
                                                        for k, v in r.items())))


if __name__ == "__main__":
    main()
