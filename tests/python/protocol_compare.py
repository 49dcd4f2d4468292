#!/usr/bin/python3
"""Checks bio-eval's evaluation protocols against independent numpy reimplementations on the same
predictions: probe-versus-template scores (eval.template mean: the mean of the k L2-normalised
enrolled embeddings; all: the best score over the k), their verification figures (bob.measure's
EER, the FVC FNMR at FMR) and the CMC over the templates; the subjects bootstrap (the draws of
lib/rng.c's xoshiro256** reproduced here, each replicate's comparisons repeated by the drawn
subjects' weights, bob.measure's EER and FNMR@FMR on them, numpy.percentile for the 95% interval)
of EER, FNMR@FMR and rank-1 for every section and the score-level fusion; and, with --dev, the
threshold set at eval.dev_fmr on the dev predictions with the FMR, FNMR and HTER it gives.

Usage: protocol_compare.py PREDICTIONS REPORT.yaml [--dev DEV_PREDICTIONS]
The report must come from bio-eval without --enrol. Prints the largest deviation of each figure
and exits 1 when one exceeds its tolerance."""
import argparse
import os
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklearn_compare import (bob_eer_threshold_vec, check, farfrr,  # noqa: E402
                             pair_masks, pair_scores, read_stream, report, tensor)

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
TOL = 1e-9  # the report prints rates with %.10g


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Xoshiro:
    """lib/rng.c: xoshiro256** seeded by splitmix64, keyed streams, Lemire's bounded draw."""

    def __init__(self, seed, keys=()):
        seed &= M64
        if keys:
            h = mix64((seed + GOLDEN) & M64)
            for i, k in enumerate(keys):
                kk = mix64((k + (i + 1) * 0xD1B54A32D192ED03) & M64)
                h = (mix64(h ^ kk) + GOLDEN) & M64
            seed = mix64(h ^ ((len(keys) * 0x8CB92BA72F3D8DD7) & M64))
        sm, self.s = seed, []
        for _ in range(4):
            sm = (sm + GOLDEN) & M64
            self.s.append(mix64(sm))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        m = self.next() * n
        if (m & M64) < n:
            thr = ((1 << 64) - n) % n
            while (m & M64) < thr:
                m = self.next() * n
        return m >> 64


def weights(units, n_labels, seed, b):
    w = np.zeros(n_labels, np.int64)
    r = Xoshiro(seed, (b,))
    for _ in range(len(units)):
        w[units[r.below(len(units))]] += 1
    return w


def fnmr_at(gen, imp, target):
    """FVC: the lowest FNMR over thresholds whose FMR <= target (thresholds: every score and one
    above all)."""
    cands = np.r_[np.unique(np.r_[gen, imp]), np.inf]
    fmr = np.array([np.mean(imp >= t) for t in cands])
    fnmr = np.array([np.mean(gen < t) for t in cands])
    return np.min(fnmr[fmr <= target])


def threshold_at(gen, imp, target):
    """The lowest threshold among the scores (or just above the largest impostor) whose FMR is
    <= target."""
    cands = np.unique(np.r_[gen, imp])
    ok = [t for t in cands if np.mean(imp >= t) <= target]
    return min(ok) if ok else np.nextafter(imp.max(), np.inf)


def eer(gen, imp):
    t = bob_eer_threshold_vec(imp, gen)
    far, frr = farfrr(imp, gen, t)
    return (far + frr) / 2


def template_scores(emb, labels, k, kind):
    """(genuine, gen_ids, impostor, imp_ids, ranks, rank_ids) in bio-eval's (probe, template)
    order; templates in ascending label order."""
    count, gal = {}, np.zeros(len(labels), bool)
    for i, l in enumerate(labels):
        if l < 0:
            continue
        count[l] = count.get(l, 0) + 1
        gal[i] = count[l] <= k
    tl = sorted(set(labels[gal].tolist()))
    rows = []
    for l in tl:
        g = emb[gal & (labels == l)].astype(np.float64)
        if kind == "mean":
            inv = 1.0 / np.sqrt(np.sum(g * g, axis=1))
            m = np.zeros(g.shape[1])
            for x, v in zip(g, inv):
                m += x * v
            rows.append((m / len(g)).astype(np.float32).astype(np.float64)[None, :])
        else:
            rows.append(g)

    def cos(a, b):
        den = np.sqrt(np.sum(a * a) * np.sum(b * b, axis=1))
        return np.where(den > 0, (b @ a) / np.where(den > 0, den, 1), 0.0)

    gen, gid, imp, iid, ranks, rid = [], [], [], [], [], []
    for i in np.nonzero((labels >= 0) & ~gal)[0]:
        p = emb[i].astype(np.float64)
        sc = np.array([cos(p, r).max() for r in rows])
        own = None
        for t, l in enumerate(tl):
            if l == labels[i]:
                own = sc[t]
                gen.append(sc[t])
                gid.append(l)
            else:
                imp.append(sc[t])
                iid.append((labels[i], l))
        if own is not None:
            ranks.append(int(np.sum((np.array(tl) != labels[i]) & (sc >= own))))
            rid.append(labels[i])
    return (np.array(gen), np.array(gid), np.array(imp), np.array(iid).reshape(-1, 2),
            np.array(ranks), np.array(rid))


def section_scores(emb, labels, rep):
    if rep["template"] == "pairs":
        keep = labels >= 0
        lab = labels[keep]
        gen, imp = pair_scores(emb, labels, rep["protocol"])
        iu, ju, same, imask = pair_masks(lab, rep["protocol"])
        return (gen, lab[iu[same]], imp, np.stack([lab[iu[imask]], lab[ju[imask]]], 1),
                None, None)
    return template_scores(emb, labels, rep["gallery_per_identity"], rep["template"])


def ci95(vals):
    vals = np.array([v for v in vals if not np.isnan(v)])
    return np.percentile(vals, [2.5, 97.5])


def boot_verif(gen, gid, imp, iid, ws):
    out = []
    for w in ws:
        gw, iw = w[gid], w[iid[:, 0]] * w[iid[:, 1]]
        g, i = np.repeat(gen, gw), np.repeat(imp, iw)
        if len(g) == 0 or len(i) == 0:
            out.append([np.nan] * 4)
            continue
        out.append([eer(g, i)] + [fnmr_at(g, i, t) for t in (0.01, 0.001, 0.0)])
    return np.array(out)


KEYS = ("eer", "fnmr_at_fmr_1pct", "fnmr_at_fmr_0_1pct", "fnmr_at_fmr_0")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("predictions")
    ap.add_argument("report")
    ap.add_argument("--dev")
    a = ap.parse_args()
    meta, recs = read_stream(a.predictions)
    rep = yaml.safe_load(open(a.report))
    labels = np.array([r["label"] for r in recs], dtype=np.int64)
    mods = list(meta["modalities"]) + ["fused"]
    boot = rep["bootstrap"]
    units = sorted(set(labels[labels >= 0].tolist()))
    check("bootstrap subjects", boot["subjects"], len(units), 0)
    n_labels = len(meta["labels"])
    ws = [weights(units, n_labels, boot["seed"], b) for b in range(boot["replicates"])]
    dev = None
    if a.dev:
        dmeta, drecs = read_stream(a.dev)
        dlab = np.array([r["label"] for r in drecs], dtype=np.int64)
    raw = {}
    for m in mods:
        key = "emb_" + m
        if key not in recs[0]:
            continue
        sec = rep[m]
        ver, idf = sec["verification"], sec["identification"]
        emb = np.stack([tensor(r[key]) for r in recs])
        gen, gid, imp, iid, ranks, rid = section_scores(emb, labels, rep)
        raw[m] = (gen, gid, imp, iid)
        check(m + " n_genuine", ver["n_genuine"], len(gen), 0)
        check(m + " n_impostor", ver["n_impostor"], len(imp), 0)
        if len(gen) == 0 or len(imp) == 0:
            continue
        check(m + " EER (bob.measure)", ver["eer"], eer(gen, imp), TOL)
        check(m + " FNMR@FMR=1% (FVC)", ver["fnmr_at_fmr_1pct"], fnmr_at(gen, imp, 0.01), TOL)
        if ranks is not None:
            check(m + " rank1 over the templates", idf["rank1"], np.mean(ranks == 0), TOL)
            check(m + " templates", idf["n_templates"], len(set(gid.tolist()) | set(iid[:, 1].tolist())), 0)
        if boot["replicates"] > 0:
            vals = boot_verif(gen, gid, imp, iid, ws)
            for k, name in enumerate(KEYS):
                check(m + " %s_ci95 (numpy bootstrap)" % name, ver[name + "_ci95"],
                      ci95(vals[:, k]), TOL)
            if ranks is not None:
                r1 = [np.sum(w[rid] * (ranks == 0)) / np.sum(w[rid]) if np.sum(w[rid]) else np.nan
                      for w in ws]
                check(m + " rank1_ci95 (numpy bootstrap)", idf["rank1_ci95"], ci95(r1), TOL)
        if a.dev:
            demb = np.stack([tensor(r[key]) for r in drecs])
            dg, _, di, _, _, _ = section_scores(demb, dlab, rep)
            t = threshold_at(dg, di, rep["dev"]["target_fmr"])
            dt = ver["dev_threshold"]
            check(m + " dev threshold", dt["threshold"], t, 1e-15)
            fmr, fnmr = farfrr(imp, gen, t)
            check(m + " FMR at the dev threshold", dt["fmr"], fmr, TOL)
            check(m + " FNMR at the dev threshold", dt["fnmr"], fnmr, TOL)
            check(m + " HTER at the dev threshold", dt["hter"], (fmr + fnmr) / 2, TOL)
            dfmr, dfnmr = farfrr(di, dg, t)
            check(m + " dev FMR <= target", float(dfmr <= rep["dev"]["target_fmr"]), 1.0, 0)
            check(m + " dev FMR, FNMR", [dt["dev_fmr"], dt["dev_fnmr"]], [dfmr, dfnmr], TOL)
    # score-level fusion: z-norm sums of the modalities, the first modality's ids
    sf = rep["score_fusion"]["verification"]
    ms = [m for m in meta["modalities"] if m in raw]
    if len(ms) >= 2 and sf["eer"] is not None and boot["replicates"] > 0:
        z = [((raw[m][0] - raw[m][2].mean()) / raw[m][2].std(),
              (raw[m][2] - raw[m][2].mean()) / raw[m][2].std()) for m in ms]
        fg, fi = sum(x[0] for x in z), sum(x[1] for x in z)
        check("score_fusion EER", sf["eer"], eer(fg, fi), TOL)
        vals = boot_verif(fg, raw[ms[0]][1], fi, raw[ms[0]][3], ws)
        for k, name in enumerate(KEYS):
            check("score_fusion %s_ci95 (numpy bootstrap)" % name, sf[name + "_ci95"],
                  ci95(vals[:, k]), TOL)
    return report()


if __name__ == "__main__":
    sys.exit(main())
