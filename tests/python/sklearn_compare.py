#!/usr/bin/python3
"""Checks a bio-eval run against independent references on the same data: scikit-learn
(accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_curve, roc_auc_score),
numpy (cosine scores, histogram) and numpy reimplementations of bob.measure (eer_threshold and
farfrr; cmc / recognition_rate with the rank = number of negatives >= best positive), and the
score-level fusion (z-norm sums of the iris and fingerprint pair scores) against numpy.

Usage: sklearn_compare.py PREDICTIONS REPORT.yaml CURVES_DIR [ENROLMENT_PREDICTIONS]
CURVES_DIR must come from `bio-eval --curves DIR --scores --set eval.curve_resolution=0`.
Prints the largest deviation of each figure and exits 1 when one exceeds its tolerance."""
import csv
import os
import sys

import msgpack
import numpy as np
import yaml
from sklearn.metrics import (accuracy_score, confusion_matrix, precision_recall_fscore_support,
                             roc_auc_score, roc_curve)

MODS = ("iris", "fingerprint", "fused")
TOL_RATE = 1e-9      # rates: the report prints %.10g
TOL_SCORE = 1e-12    # cosine scores: C accumulates in double in another order than numpy
failures = []
checked = []


def check(name, got, want, tol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        failures.append("%s: shape %s vs %s" % (name, got.shape, want.shape))
        return
    dev = float(np.max(np.abs(got - want))) if got.size else 0.0
    checked.append((name, dev, tol))
    if not dev <= tol:
        failures.append("%s: deviation %.3g > %.3g" % (name, dev, tol))


def report():
    """Prints each check's largest deviation and every mismatch; the exit status (1: a mismatch)."""
    width = max(len(c[0]) for c in checked) if checked else 10
    for name, dev, tol in checked:
        print("%-*s  max dev %-9.3g (tol %g)" % (width, name, dev, tol))
    for f in failures:
        print("MISMATCH " + f, file=sys.stderr)
    print("%d checks, %d mismatches" % (len(checked), len(failures)))
    return 1 if failures else 0


def read_stream(path):
    with open(path, "rb") as f:
        objs = list(msgpack.Unpacker(f, raw=False))
    head, recs, trailer = objs[0], objs[1:-1], objs[-1]
    assert head["kind"] == "predictions" and trailer["end"] == len(recs)
    return head["meta"], recs


def tensor(t):
    dt = {"f32": "<f4", "i64": "<i8"}[t["dtype"]]
    return np.frombuffer(t["data"], dtype=dt).reshape(t["shape"])


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def pair_masks(lab, protocol):
    """The pairs i < j of the labels lab, as bio-eval orders them: (iu, ju, genuine mask, impostor
    mask); with protocol fvc only the first samples of two identities make an impostor pair."""
    iu, ju = np.triu_indices(len(lab), 1)
    same = lab[iu] == lab[ju]
    if protocol != "fvc":
        return iu, ju, same, ~same
    first = np.zeros(len(lab), bool)
    seen = set()
    for i, l in enumerate(lab):
        if l not in seen:
            first[i] = True
            seen.add(l)
    return iu, ju, same, ~same & first[iu] & first[ju]


def pair_scores(emb, labels, protocol):
    """Genuine/impostor cosine scores in bio-eval's pair order (i < j over labelled samples)."""
    keep = labels >= 0
    e = emb[keep].astype(np.float64)
    lab = labels[keep]
    n2 = np.einsum("ij,ij->i", e, e)
    dots = e @ e.T
    den = np.outer(n2, n2)
    cos = np.where(den > 0, dots / np.sqrt(np.where(den > 0, den, 1)), 0.0)
    iu, ju, same, imp_mask = pair_masks(lab, protocol)
    gen = cos[iu[same], ju[same]]
    return gen, cos[iu[imp_mask], ju[imp_mask]]


def farfrr(neg, pos, t):
    return np.mean(neg >= t), np.mean(pos < t)


def bob_eer_threshold_loop(neg, pos):
    """bob.measure _minimizing_threshold ("absolute-difference"), rates from counts."""
    neg, pos = np.sort(neg), np.sort(pos)
    nn, npos = len(neg), len(pos)
    min_pred, min_thr = 1e8, 1e8
    far, frr = 1.0, 0.0
    pi = ni = 0
    cur = min(neg[0], pos[0])
    while pi < npos and ni < nn:
        pred = abs(far - frr)
        if pred <= min_pred:
            min_pred, min_thr = pred, cur
        if pos[pi] >= neg[ni]:
            cur = neg[ni]
            ni += 1
        else:
            cur = pos[pi]
            pi += 1
        while ni < nn and cur == neg[ni]:
            ni += 1
        while pi < npos and cur == pos[pi]:
            pi += 1
        far, frr = (nn - ni) / nn, pi / npos
        if ni < nn or pi < npos:
            if ni < nn and pi < npos:
                cur += min(neg[ni], pos[pi])
            elif ni < nn:
                cur += neg[ni]
            else:
                cur += pos[pi]
            cur /= 2
    pred = abs(far - frr)
    if pred < min_pred:
        min_pred, min_thr = pred, cur
    return min_thr


def bob_eer_threshold_vec(neg, pos):
    """The same sweep, vectorised: candidate thresholds are the lowest score and the midpoints
    after each distinct score until one set is exhausted."""
    neg, pos = np.sort(neg), np.sort(pos)
    u = np.unique(np.concatenate([neg, pos]))
    far = (len(neg) - np.searchsorted(neg, u, side="right")) / len(neg)
    frr = np.searchsorted(pos, u, side="right") / len(pos)
    pred = np.abs(far - frr)
    K = int(np.searchsorted(u, min(neg[-1], pos[-1])))  # the step that exhausts a set
    mids = (u[:-1] + u[1:]) / 2
    thr = np.concatenate([[u[0]], mids[:K]])
    cands = np.concatenate([[1.0], pred[:K]])
    i = len(cands) - 1 - int(np.argmin(cands[::-1]))   # last minimum (<=)
    best, bt = cands[i], thr[i]
    last_thr = mids[K] if K < len(mids) else u[K]
    if pred[K] < best:
        bt = last_thr
    return bt


def bob_cmc(emb, labels, gallery):
    keep = labels >= 0
    e = emb[keep].astype(np.float64)
    lab = labels[keep]
    count = {}
    is_gal = np.zeros(len(lab), bool)
    for i, l in enumerate(lab):
        count[l] = count.get(l, 0) + 1
        is_gal[i] = count[l] <= gallery
    g, gl = e[is_gal], lab[is_gal]
    p, pl = e[~is_gal], lab[~is_gal]
    if len(p) == 0:
        return None
    ng = np.einsum("ij,ij->i", g, g)
    ranks, max_neg = [], 0
    for x, l in zip(p, pl):
        den = ng * (x @ x)
        s = np.where(den > 0, (g @ x) / np.sqrt(np.where(den > 0, den, 1)), 0.0)
        pos, neg = s[gl == l], s[gl != l]
        ranks.append(int(np.sum(neg >= pos.max())))
        max_neg = max(max_neg, len(neg))
    hist = np.bincount(ranks, minlength=max_neg + 1)
    return np.cumsum(hist) / len(ranks)


def bob_cmc_enrol(gemb, glab, gallery, pemb, plab):
    """CMC with the gallery from another set (its first `gallery` samples per identity); probes
    of identities without a gallery sample are left out."""
    count, keep = {}, []
    for l in glab:
        count[l] = count.get(l, 0) + 1
        keep.append(l >= 0 and count[l] <= gallery)
    keep = np.array(keep, bool)
    g, gl = gemb[keep].astype(np.float64), glab[keep]
    ng = np.einsum("ij,ij->i", g, g)
    ranks, max_neg, unmated = [], 0, 0
    for x, l in zip(pemb.astype(np.float64), plab):
        if l < 0:
            continue
        if not (gl == l).any():
            unmated += 1
            continue
        den = ng * (x @ x)
        s = np.where(den > 0, (g @ x) / np.sqrt(np.where(den > 0, den, 1)), 0.0)
        pos, neg = s[gl == l], s[gl != l]
        ranks.append(int(np.sum(neg >= pos.max())))
        max_neg = max(max_neg, len(neg))
    if not ranks:
        return None, unmated
    hist = np.bincount(ranks, minlength=max_neg + 1)
    return np.cumsum(hist) / len(ranks), unmated


def main():
    pred_path, report_path, curves = sys.argv[1:4]
    enrol = read_stream(sys.argv[4])[1] if len(sys.argv) > 4 else None
    meta, recs = read_stream(pred_path)
    rep = yaml.safe_load(open(report_path))
    labels = np.array([r["label"] for r in recs], dtype=np.int64)
    preds = np.array([r["pred"] for r in recs], dtype=np.int64)
    n_classes = len(meta["labels"])
    protocol = rep["protocol"]
    gallery = rep["gallery_per_identity"]
    known = labels >= 0

    # closed set
    if known.any():
        y, p = labels[known], preds[known]
        check("accuracy", rep["fused"]["accuracy"], accuracy_score(y, p), TOL_RATE)
        k = rep["fused"]["topk"]
        topk = np.array([tensor(r["topk"])[:k] for r in recs])[known]
        check("top%d" % k, rep["fused"]["top%d" % k], np.mean((topk == y[:, None]).any(1)),
              TOL_RATE)
        cm = confusion_matrix(y, p, labels=list(range(n_classes)))
        _, rows = read_csv(os.path.join(curves, "confusion.csv"))
        check("confusion matrix", np.array([[int(v) for v in r[1:]] for r in rows]), cm, 0)
        pr, rc, _, sup = precision_recall_fscore_support(y, p, labels=list(range(n_classes)),
                                                         zero_division=0)
        _, rows = read_csv(os.path.join(curves, "per_class.csv"))
        check("per-class precision", [float(r[4]) for r in rows], pr, 1e-15)
        check("per-class recall", [float(r[5]) for r in rows], rc, 1e-15)
        check("per-class support", [int(r[2]) for r in rows], sup, 0)

    for m in MODS:
        key = "emb_" + m
        sec = rep[m]
        if key not in recs[0]:
            assert sec["verification"]["eer"] is None, m
            continue
        emb = np.stack([tensor(r[key]).astype(np.float64) for r in recs])
        gen, imp = pair_scores(emb, labels, protocol)
        ver = sec["verification"]
        check(m + " n_genuine", ver["n_genuine"], len(gen), 0)
        check(m + " n_impostor", ver["n_impostor"], len(imp), 0)
        if len(gen) == 0 or len(imp) == 0:
            if ver["eer"] is not None or not ver.get("reason"):
                failures.append(m + ": degenerate scores but eer is not null with a reason")
            continue
        _, rows = read_csv(os.path.join(curves, "scores_%s.csv" % m))
        cg = np.array([float(r[1]) for r in rows if r[0] == "1"])
        ci = np.array([float(r[1]) for r in rows if r[0] == "0"])
        check(m + " genuine scores (numpy cosine)", np.sort(cg), np.sort(gen), TOL_SCORE)
        check(m + " impostor scores (numpy cosine)", np.sort(ci), np.sort(imp), TOL_SCORE)
        # From here on the references use bio-eval's own scores: same inputs, exact comparisons.
        y_true = np.r_[np.ones(len(cg)), np.zeros(len(ci))]
        y_score = np.r_[cg, ci]
        fpr, tpr, thr = roc_curve(y_true, y_score, drop_intermediate=False)
        _, rows = read_csv(os.path.join(curves, "roc_%s.csv" % m))
        roc = np.array([[float(v) for v in r] for r in rows])[::-1]  # descending thresholds
        check(m + " ROC fpr (sklearn roc_curve)", roc[:, 1], fpr, 1e-15)
        check(m + " ROC tpr (sklearn roc_curve)", roc[:, 3], tpr, 1e-15)
        check(m + " ROC thresholds (sklearn roc_curve)", roc[1:, 0], thr[1:], 0)
        check(m + " AUC (sklearn roc_auc_score)", ver["auc"], roc_auc_score(y_true, y_score),
              TOL_RATE)
        t_loop = bob_eer_threshold_loop(ci, cg)
        t_vec = bob_eer_threshold_vec(ci, cg)
        check(m + " bob eer_threshold loop == vectorised", t_loop, t_vec, 0)
        check(m + " EER threshold (bob.measure)", ver["eer_threshold"], t_loop, 0)
        far, frr = farfrr(ci, cg, t_loop)
        check(m + " EER (bob.measure farfrr)", ver["eer"], (far + frr) / 2, TOL_RATE)
        for name, target in (("fnmr_at_fmr_1pct", 0.01), ("fnmr_at_fmr_0_1pct", 0.001),
                             ("fnmr_at_fmr_0", 0.0)):
            want = np.min(1 - tpr[fpr <= target])
            check("%s %s (sklearn ROC)" % (m, name), ver[name], want, TOL_RATE)
        check(m + " zero_fnmr (sklearn ROC)", ver["zero_fnmr"], np.min(fpr[tpr >= 1.0]),
              TOL_RATE)
        _, rows = read_csv(os.path.join(curves, "hist_%s.csv" % m))
        bins = len(rows)
        lo, hi = min(cg.min(), ci.min()), max(cg.max(), ci.max())
        check(m + " genuine histogram (numpy)", [int(r[2]) for r in rows],
              np.histogram(cg, bins=bins, range=(lo, hi))[0], 0)
        check(m + " impostor histogram (numpy)", [int(r[3]) for r in rows],
              np.histogram(ci, bins=bins, range=(lo, hi))[0], 0)
        idf = sec["identification"]
        if enrol is not None:
            gemb = np.stack([tensor(r[key]) for r in enrol])
            glab = np.array([r["label"] for r in enrol], dtype=np.int64)
            cmc, unmated = bob_cmc_enrol(gemb, glab, gallery, emb, labels)
            check(m + " unmated probes", idf["n_unmated_probes"], unmated, 0)
        else:
            cmc = bob_cmc(emb, labels, gallery)
        if cmc is None:
            if idf["rank1"] is not None:
                failures.append(m + ": no probes but rank1 is not null")
            continue
        _, rows = read_csv(os.path.join(curves, "cmc_%s.csv" % m))
        check(m + " CMC (bob.measure cmc)", [float(r[1]) for r in rows], cmc, 1e-15)
        check(m + " rank1", idf["rank1"], cmc[0], TOL_RATE)
        check(m + " rank5", idf["rank5"], cmc[min(4, len(cmc) - 1)], TOL_RATE)

    # score-level fusion: z-norm of each modality by its impostor scores (numpy mean and
    # population std), the sum per pair; bob.measure's EER and sklearn's AUC on the sums
    sf = rep["score_fusion"]["verification"]
    if "emb_iris" in recs[0] and "emb_fingerprint" in recs[0]:
        zs = []
        for k, m in enumerate(("iris", "fingerprint")):
            emb = np.stack([tensor(r["emb_" + m]).astype(np.float64) for r in recs])
            gen, imp = pair_scores(emb, labels, protocol)
            if len(gen) == 0 or len(imp) == 0 or np.std(imp) == 0:
                zs = None
                break
            mean, std = np.mean(imp), np.std(imp)
            check(m + " z-norm mean, std", rep["score_fusion"][m + "_znorm"], [mean, std], 1e-12)
            zs.append(((gen - mean) / std, (imp - mean) / std))
        if zs is None:
            if sf["eer"] is not None or not sf.get("reason"):
                failures.append("score_fusion: degenerate scores but eer is not null with a reason")
        else:
            ng, ni = zs[0][0] + zs[1][0], zs[0][1] + zs[1][1]
            check("score_fusion n_genuine", sf["n_genuine"], len(ng), 0)
            check("score_fusion n_impostor", sf["n_impostor"], len(ni), 0)
            _, rows = read_csv(os.path.join(curves, "scores_score_fusion.csv"))
            fg = np.array([float(r[1]) for r in rows if r[0] == "1"])
            fi = np.array([float(r[1]) for r in rows if r[0] == "0"])
            check("score_fusion genuine sums (numpy z-norm)", np.sort(fg), np.sort(ng), 1e-9)
            check("score_fusion impostor sums (numpy z-norm)", np.sort(fi), np.sort(ni), 1e-9)
            # from here on bio-eval's own sums (ties must break as they do there)
            t = bob_eer_threshold_loop(fi, fg)
            far, frr = farfrr(fi, fg, t)
            check("score_fusion EER (bob.measure on numpy z-norm sums)", sf["eer"],
                  (far + frr) / 2, TOL_RATE)
            check("score_fusion EER threshold", sf["eer_threshold"], t, 0)
            y_true = np.r_[np.ones(len(fg)), np.zeros(len(fi))]
            check("score_fusion AUC (sklearn roc_auc_score)", sf["auc"],
                  roc_auc_score(y_true, np.r_[fg, fi]), TOL_RATE)
            fpr, tpr, _ = roc_curve(y_true, np.r_[fg, fi], drop_intermediate=False)
            check("score_fusion fnmr_at_fmr_1pct (sklearn ROC)", sf["fnmr_at_fmr_1pct"],
                  np.min(1 - tpr[fpr <= 0.01]), TOL_RATE)
    elif sf["eer"] is not None or not sf.get("reason"):
        failures.append("score_fusion: a modality is missing but eer is not null with a reason")

    return report()


if __name__ == "__main__":
    sys.exit(main())
