#!/usr/bin/python3
"""Writes a bio-stream of kind "predictions" (include/bio/stream.h) with controlled structure, for
the bio-eval tests: each identity has a random base embedding per modality, each sample adds
Gaussian noise (per-modality noise level), the fused embedding is the concatenation of the
L2-normalised modality embeddings, and pred/topk come from the nearest identity base of the fused
embedding. Options make degenerate and malformed streams (no embeddings, unknown labels,
quantised embeddings with exact score ties, missing trailer, bad tensors)."""
import argparse
import sys

import msgpack
import numpy as np


def tensor(arr, dtype):
    a = np.ascontiguousarray(arr, dtype={"f32": "<f4", "i64": "<i8"}[dtype])
    return {"dtype": dtype, "shape": list(a.shape), "data": a.tobytes()}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--ids", type=int, default=10)
    ap.add_argument("--samples", type=int, default=4, help="samples per identity")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample-seed", type=int,
                    help="seed of the per-sample noise only: same identities, other samples")
    ap.add_argument("--noise-iris", type=float, default=0.9)
    ap.add_argument("--noise-fingerprint", type=float, default=1.1)
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--unknown", type=int, default=0, help="extra records with label -1")
    ap.add_argument("--drop-ids", type=int, default=0,
                    help="no records for the last K identities (still in the label list)")
    ap.add_argument("--no-emb", action="store_true", help="no embeddings at all")
    ap.add_argument("--only", choices=["iris", "fingerprint", "fused"], help="one embedding only")
    ap.add_argument("--quantize", action="store_true",
                    help="embeddings rounded to integers in [-2, 2]: many exactly tied scores")
    ap.add_argument("--no-trailer", action="store_true")
    ap.add_argument("--bad-tensor", action="store_true", help="record 1's emb_iris data too short")
    ap.add_argument("--bad-pred", action="store_true", help="record 0 predicts a label out of range")
    ap.add_argument("--shuffle", action="store_true", help="records in random order")
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    names = ["id%03d" % i for i in range(a.ids)]
    base = {m: rng.standard_normal((a.ids, a.dim)) for m in ("iris", "fingerprint")}
    noise = {"iris": a.noise_iris, "fingerprint": a.noise_fingerprint}
    if a.sample_seed is not None:
        rng = np.random.default_rng(a.sample_seed)
    recs = []
    for i in range(a.ids - a.drop_ids):
        for s in range(a.samples):
            recs.append((i, "%s_%02d" % (names[i], s)))
    for u in range(a.unknown):
        recs.append((-1, "unknown_%02d" % u))
    if a.shuffle:
        order = rng.permutation(len(recs))
        recs = [recs[k] for k in order]

    def norm(v):
        n = np.linalg.norm(v, axis=-1, keepdims=True)
        return v / np.where(n > 0, n, 1)

    cent = np.concatenate([norm(base["iris"]), norm(base["fingerprint"])], axis=1)
    out = open(a.out, "wb")
    pk = msgpack.Packer(use_bin_type=True)
    meta = {"program": "make_predictions.py", "labels": names,
            "modalities": ["iris", "fingerprint"], "topk": a.topk}
    out.write(pk.pack({"bio-stream": 1, "kind": "predictions", "meta": meta}))
    for n, (lab, rid) in enumerate(recs):
        ident = lab if lab >= 0 else int(rng.integers(a.ids))
        emb = {}
        for m in ("iris", "fingerprint"):
            v = base[m][ident] + noise[m] * rng.standard_normal(a.dim)
            if lab < 0:
                v = rng.standard_normal(a.dim) * 1.5
            if a.quantize:
                v = np.clip(np.round(v), -2, 2)
            emb[m] = v.astype(np.float32)
        fused = np.concatenate([norm(emb["iris"].astype(np.float64)),
                                norm(emb["fingerprint"].astype(np.float64))]).astype(np.float32)
        if a.quantize:
            fused = np.concatenate([emb["iris"], emb["fingerprint"]])
        emb["fused"] = fused
        sc = cent @ norm(fused.astype(np.float64))
        order = np.argsort(-sc, kind="stable")[: a.topk]
        pred = int(order[0])
        if a.bad_pred and n == 0:
            pred = a.ids + 3
        r = {"id": rid, "label": int(lab), "pred": pred, "pred_name": names[pred % a.ids],
             "topk": tensor(order, "i64"), "topk_scores": tensor(sc[order], "f32")}
        if not a.no_emb:
            for m in ("iris", "fingerprint", "fused"):
                if a.only and m != a.only:
                    continue
                t = tensor(emb[m], "f32")
                if a.bad_tensor and n == 1 and m == "iris":
                    t["data"] = t["data"][:-4]
                r["emb_" + m] = t
        out.write(pk.pack(r))
    if not a.no_trailer:
        out.write(pk.pack({"end": len(recs)}))
    out.close()


if __name__ == "__main__":
    sys.exit(main())
