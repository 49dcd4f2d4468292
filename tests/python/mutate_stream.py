#!/usr/bin/python3
"""Rewrites a bio-stream with one change, for bad-input tests: reads IN with Python's msgpack,
runs the Python statement CODE with `meta` (the header's meta map), `recs` (the records, a list
of dicts), `hdr`, `np` and the helpers below in scope, and writes OUT with a trailer counting the
records (unless CODE sets `trailer`).

Usage: mutate_stream.py IN OUT CODE
  e.g. mutate_stream.py s.bs bad.bs 'set_f32(recs[3]["iris"], 5, float("nan"))'
"""
import sys

import msgpack
import numpy as np


def set_f32(t, i, v):
    """Sets element i of an f32 tensor map t to v."""
    a = np.frombuffer(t["data"], "<f4").copy()
    a[i] = v
    t["data"] = a.tobytes()


def set_i64(t, i, v):
    a = np.frombuffer(t["data"], "<i8").copy()
    a[i] = v
    t["data"] = a.tobytes()


def tensor(values, dtype):
    a = np.ascontiguousarray(values, dtype={"f32": "<f4", "i64": "<i8"}[dtype])
    return {"dtype": dtype, "shape": list(a.shape), "data": a.tobytes()}


def main():
    src, dst, code = sys.argv[1:4]
    objs = list(msgpack.Unpacker(open(src, "rb"), raw=False, max_buffer_size=1 << 30,
                                 strict_map_key=False))
    hdr, recs = objs[0], objs[1:-1]
    env = {"hdr": hdr, "meta": hdr["meta"], "recs": recs, "np": np, "set_f32": set_f32,
           "set_i64": set_i64, "tensor": tensor, "trailer": None}
    exec(code, env)
    recs = env["recs"]
    trailer = env["trailer"] if env["trailer"] is not None else {"end": len(recs)}
    with open(dst, "wb") as f:
        for o in [env["hdr"]] + recs + [trailer]:
            f.write(msgpack.packb(o, use_bin_type=True))


if __name__ == "__main__":
    main()
