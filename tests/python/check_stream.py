#!/usr/bin/python3
"""Validates a bio-stream (v1, man5/bio-stream.5) with Python's msgpack + numpy, independently of
libbio. Run it with /usr/bin/python3 (Debian's, which has python3-msgpack and python3-numpy).

Usage:
  check_stream.py FILE... --kind K [--min-records N] [--max-records N]
                  [--tensor-keys iris,fingerprint] [--expect-shape 1,64,64] [--loose] [--quiet]

FILE "-" reads standard input; several FILEs (or concatenated streams in one file) are read as one
stream, as the C reader does. Streaming: one msgpack object in memory at a time.

Checks: the header is {"bio-stream": 1, "kind": K, "meta": {map}}; every record is a map with str
keys and no "end"/"bio-stream" key; every tensor ({"dtype","shape","data"} map, at any depth)
decodes with numpy.frombuffer(data, "<f4" etc.).reshape(shape) with the exact byte count and, for
float dtypes, only finite values; the trailer is {"end": N, ...int counters} with N = the records
of its part; a following part is a header of the same kind. Unless --loose, the record keys and
tensor dtypes/ranks of the kind (manifest, samples, batches, predictions, checkpoint) as listed in
man5/bio-stream.5. --tensor-keys: these keys must be tensors in every record; --expect-shape:
their shape, "*" matching any one dimension (e.g. "*,1,64,64" for batches).

Prints one summary line on success (exit 0); one line "check_stream.py: FILE: record N: problem"
on the first problem (exit 1); exit 2 on usage errors.
"""
import argparse
import math
import sys

import msgpack
import numpy as np

DTYPES = {"u8": "<u1", "i32": "<i4", "i64": "<i8", "f16": "<f2", "f32": "<f4", "f64": "<f8"}
MAX_DIMS = 8


class Bad(Exception):
    pass


def check_tensor(t, where):
    """Decodes a tensor map; returns the numpy array."""
    for k in ("dtype", "shape", "data"):
        if k not in t:
            raise Bad("%s: tensor without %r" % (where, k))
    dt = t["dtype"]
    if not isinstance(dt, str) or dt not in DTYPES:
        raise Bad("%s: unknown tensor dtype %r" % (where, dt))
    shape = t["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise Bad("%s: tensor shape %r is not a list of at most %d dims" % (where, shape, MAX_DIMS))
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise Bad("%s: tensor shape %r has a bad dimension %r" % (where, shape, d))
    data = t["data"]
    if not isinstance(data, bytes):
        raise Bad("%s: tensor data is %s, not bin" % (where, type(data).__name__))
    need = math.prod(shape) * np.dtype(DTYPES[dt]).itemsize
    if len(data) != need:
        raise Bad("%s: tensor data has %d bytes, %s%r needs %d" % (where, len(data), dt, shape, need))
    a = np.frombuffer(data, dtype=DTYPES[dt]).reshape(shape)
    if dt[0] == "f" and not np.isfinite(a).all():
        raise Bad("%s: tensor has %d non-finite values" % (where, int((~np.isfinite(a)).sum())))
    return a


def is_tensor(v):
    return isinstance(v, dict) and "dtype" in v and "data" in v


def walk_tensors(v, where, depth=0):
    if depth > 32:
        raise Bad("%s: nesting deeper than 32" % where)
    if is_tensor(v):
        check_tensor(v, where)
    elif isinstance(v, dict):
        for k, x in v.items():
            walk_tensors(x, "%s.%s" % (where, k), depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk_tensors(x, "%s[%d]" % (where, i), depth + 1)


def need(rec, key, types, where):
    if key not in rec:
        raise Bad("%s: missing key %r" % (where, key))
    v = rec[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _tuple(types)):
        raise Bad("%s: key %r is %s" % (where, key, type(v).__name__))
    return v


def _tuple(t):
    return t if isinstance(t, tuple) else (t,)


def need_tensor(rec, key, dtype, rank, where):
    v = need(rec, key, dict, where)
    if not is_tensor(v):
        raise Bad("%s: key %r is not a tensor" % (where, key))
    a = check_tensor(v, "%s: key %r" % (where, key))
    if dtype and v["dtype"] != dtype:
        raise Bad("%s: key %r has dtype %s, expected %s" % (where, key, v["dtype"], dtype))
    if rank is not None and a.ndim != rank:
        raise Bad("%s: key %r has rank %d, expected %d" % (where, key, a.ndim, rank))
    return a


def check_kind_record(kind, meta, rec, where):
    """The per-kind keys of man5/bio-stream.5."""
    mods = meta.get("modalities") or []
    if kind in ("manifest", "samples"):
        need(rec, "id", str, where)
        need(rec, "label", int, where)
        need(rec, "identity", str, where)
        split = need(rec, "split", str, where)
        if split not in ("train", "val", "test"):
            raise Bad("%s: split %r is not train, val or test" % (where, split))
        for m in mods:
            if kind == "manifest":
                need(rec, m, str, where)
            else:
                need_tensor(rec, m, "f32", 3, where)
    elif kind == "batches":
        need(rec, "epoch", int, where)
        need(rec, "index", int, where)
        ids = need(rec, "ids", list, where)
        lab = need_tensor(rec, "label", "i64", 1, where)
        if lab.shape[0] != len(ids):
            raise Bad("%s: %d ids but label has %d entries" % (where, len(ids), lab.shape[0]))
        for m in mods:
            a = need_tensor(rec, m, "f32", 4, where)
            if a.shape[0] != len(ids):
                raise Bad("%s: %d ids but %r has batch %d" % (where, len(ids), m, a.shape[0]))
    elif kind == "predictions":
        need(rec, "id", str, where)
        need(rec, "label", int, where)
        need(rec, "pred", int, where)
        need(rec, "pred_name", str, where)
        k = need_tensor(rec, "topk", "i64", 1, where)
        s = need_tensor(rec, "topk_scores", "f32", 1, where)
        if k.shape != s.shape:
            raise Bad("%s: topk %r and topk_scores %r differ" % (where, k.shape, s.shape))
        for key in rec:
            if key.startswith("emb_"):
                need_tensor(rec, key, "f32", 1, where)
    elif kind == "checkpoint":
        need(rec, "name", str, where)
        need_tensor(rec, "tensor", None, None, where)


def shape_ok(shape, pattern):
    return len(shape) == len(pattern) and all(p == "*" or int(p) == d
                                              for d, p in zip(shape, pattern))


def objects(paths):
    """Yields (name, object) for every msgpack object of every file, then (name, EOF); streaming:
    chunks are fed to an Unpacker, so one object (plus a chunk) is in memory at a time."""
    for path in paths:
        name = "<stdin>" if path == "-" else path
        f = sys.stdin.buffer if path == "-" else open(path, "rb")
        try:
            up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=512 << 20)
            fed = n = done = 0
            while True:
                chunk = f.read(1 << 16)
                if chunk:
                    up.feed(chunk)
                    fed += len(chunk)
                try:
                    for obj in up:
                        n += 1
                        done = up.tell()  # end of the last complete object
                        yield name, obj
                except (ValueError, msgpack.ExtraData, msgpack.FormatError,
                        msgpack.StackError, UnicodeDecodeError) as e:
                    raise Bad("%s: malformed msgpack after %d objects: %s" % (
                        name, n, str(e) or type(e).__name__))
                if not chunk:
                    break
            if done != fed:
                raise Bad("%s: truncated: the input ends inside a msgpack object (at byte %d of %d)"
                          % (name, done, fed))
            yield name, EOF
        finally:
            if path != "-":
                f.close()


EOF = object()


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1].split(":", 1)[1].strip())
    ap.add_argument("files", nargs="+")
    ap.add_argument("--kind", required=True)
    ap.add_argument("--min-records", type=int, default=0)
    ap.add_argument("--max-records", type=int)
    ap.add_argument("--tensor-keys", default="")
    ap.add_argument("--expect-shape")
    ap.add_argument("--loose", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    tkeys = [k for k in a.tensor_keys.split(",") if k]
    pattern = a.expect_shape.split(",") if a.expect_shape else None
    state = "header"  # header -> records -> after (trailer seen) -> header ...
    kind_meta = None
    n_total = n_part = parts = 0
    sums = {}
    shapes = {}
    where = a.files[0]
    try:
        for name, obj in objects(a.files):
            where = name
            if obj is EOF:
                if state == "records":
                    raise Bad("%s: truncated stream (no trailer after %d records)" % (name, n_part))
                if state == "header":
                    raise Bad("%s: no header (empty or cut stream)" % name)
                state = "header"
                continue
            if state in ("header", "after"):
                if not isinstance(obj, dict):
                    raise Bad("%s: header: not a map but %s" % (name, type(obj).__name__))
                if obj.get("bio-stream") != 1 or isinstance(obj.get("bio-stream"), bool):
                    raise Bad("%s: header: \"bio-stream\" is %r, not 1" % (name, obj.get("bio-stream")))
                if obj.get("kind") != a.kind:
                    raise Bad("%s: header: kind %r, expected %r" % (name, obj.get("kind"), a.kind))
                if not isinstance(obj.get("meta"), dict):
                    raise Bad("%s: header: \"meta\" is not a map" % name)
                for k in obj["meta"]:
                    if not isinstance(k, str):
                        raise Bad("%s: header: meta key %r is not a string" % (name, k))
                walk_tensors(obj["meta"], "%s: header: meta" % name)
                if kind_meta is None:
                    kind_meta = obj["meta"]
                state, n_part = "records", 0
                parts += 1
                continue
            if not isinstance(obj, dict):
                raise Bad("%s: record %d: not a map but %s" % (name, n_total, type(obj).__name__))
            if "end" in obj:
                end = obj["end"]
                if not isinstance(end, int) or isinstance(end, bool) or end != n_part:
                    raise Bad("%s: trailer: \"end\" is %r, the part had %d records" % (name, end, n_part))
                for k, v in obj.items():
                    if k != "end" and isinstance(v, int) and not isinstance(v, bool):
                        sums[k] = sums.get(k, 0) + v
                state = "after"
                continue
            w = "%s: record %d" % (name, n_total)
            if "bio-stream" in obj:
                raise Bad("%s: a header where a record or trailer must be (no trailer)" % w)
            for k in obj:
                if not isinstance(k, str):
                    raise Bad("%s: key %r is not a string" % (w, k))
            walk_tensors(obj, w)
            if not a.loose:
                check_kind_record(a.kind, kind_meta, obj, w)
            for k in tkeys:
                arr = need_tensor(obj, k, None, None, w)
                if pattern and not shape_ok(arr.shape, pattern):
                    raise Bad("%s: key %r has shape %s, expected %s" % (w, k, list(arr.shape),
                                                                        a.expect_shape))
                shapes[k] = "%s%s" % (obj[k]["dtype"], list(arr.shape))
            n_total += 1
            n_part += 1
        if state != "header":
            raise Bad("%s: stream not finished" % where)
        if n_total < a.min_records:
            raise Bad("%s: %d records, expected at least %d" % (where, n_total, a.min_records))
        if a.max_records is not None and n_total > a.max_records:
            raise Bad("%s: %d records, expected at most %d" % (where, n_total, a.max_records))
    except Bad as e:
        print("check_stream.py: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("check_stream.py: %s" % e, file=sys.stderr)
        return 1
    if not a.quiet:
        extra = "".join(" %s=%d" % kv for kv in sorted(sums.items()))
        ts = "".join(" %s:%s" % kv for kv in shapes.items())
        print("%s: ok: kind %s, %d records in %d part(s)%s%s" % (
            " ".join(a.files), a.kind, n_total, parts, ts and ", tensors" + ts,
            extra and ", trailer" + extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
