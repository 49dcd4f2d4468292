#!/usr/bin/python3
"""bench/eval: EER + DET on 10^7 genuine + impostor scores, libbio against a numpy/scikit-learn
reference on the same scores, side by side in one run.

Scores: N (default 10^7) doubles, 10% genuine ~ N(0.6, 0.15), 90% impostor ~ N(0.0, 0.2), drawn
by numpy (seed 1) and rounded to 1e-6 so that many scores tie (the realistic hard case for the
threshold sweep). Both sides get the same values (raw f64 files).

Timed (median of --repeat runs):
  libbio      bench/eval/eval_bench.c linked with BUILD/libbio.a: radix sort of both sets, EER
              (bob.measure's sweep), FNMR at FMR 1%/0.1%/0, ZeroFNMR, AUC, DET points + ppndf
  reference   numpy sort, a vectorised bob.measure eer_threshold + farfrr, sklearn roc_curve
              (drop_intermediate=False) for FNMR at FMR and the DET, roc_auc_score, ppndf
  bio-eval    (--end-to-end) the program on embeddings making about the same number of pairs:
              cosine scoring of every pair (-j2) plus all of the above, report and curves
The two sides' EER, thresholds and FNMR at FMR must agree exactly (AUC within 1e-9).

Usage: bench.py [--build build] [--n 10000000] [--repeat 3] [--end-to-end]
Target (issue 4): EER and DET for 10^7 scores in under 5 s on 2 cores.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from sklearn_compare import bob_eer_threshold_vec, farfrr  # noqa: E402


def ppndf(p):
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    q = p - 0.5
    out = np.empty_like(p)
    s = np.abs(q) <= 0.42
    r = q[s] ** 2
    out[s] = q[s] * (((-25.4410604963 * r + 41.3911977353) * r + -18.6150006252) * r
                     + 2.5066282388) / ((((3.1308290983 * r + -21.0622410182) * r
                                          + 23.0833674374) * r + -8.4735109309) * r + 1.0)
    b = ~s
    r = np.where(q[b] > 0, 1 - p[b], p[b])
    r = np.sqrt(-np.log(r))
    v = (((2.3212127685 * r + 4.8501412713) * r + -2.2979647913) * r + -2.7871893113) / \
        ((1.6370678189 * r + 3.5438892476) * r + 1.0)
    out[b] = np.where(q[b] < 0, -v, v)
    return out


def reference(gen_path, imp_path):
    from sklearn.metrics import roc_auc_score, roc_curve
    g = np.fromfile(gen_path, dtype="<f8")
    im = np.fromfile(imp_path, dtype="<f8")
    t0 = time.perf_counter()
    g.sort()
    im.sort()
    thr = bob_eer_threshold_vec(im, g)
    far, frr = farfrr(im, g, thr)
    y = np.r_[np.ones(len(g)), np.zeros(len(im))]
    sc = np.r_[g, im]
    fpr, tpr, _ = roc_curve(y, sc, drop_intermediate=False)
    fn = [float(np.min(1 - tpr[fpr <= t])) for t in (0.01, 0.001, 0.0)]
    auc = roc_auc_score(y, sc)
    det = ppndf(fpr) + ppndf(1 - tpr)
    dt = time.perf_counter() - t0
    return dt, {"eer": (far + frr) / 2, "eer_threshold": float(thr), "fnmr_at_fmr_1pct": fn[0],
                "fnmr_at_fmr_0_1pct": fn[1], "fnmr_at_fmr_0": fn[2], "auc": auc,
                "det_points": len(det)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--end-to-end", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    lib = os.path.join(build, "libbio.a")
    if not os.path.exists(lib):
        sys.exit("bench/eval: %s missing: run make BUILD=%s first" % (lib, a.build))
    exe = os.path.join(build, "bench", "eval_bench")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include"),
                    "-o", exe, os.path.join(HERE, "eval_bench.c"), lib, "-lm", "-lpthread"],
                   check=True)
    work = tempfile.mkdtemp(prefix="bench-eval.")
    rng = np.random.default_rng(1)
    ng = a.n // 10
    ni = a.n - ng
    gp, ip = os.path.join(work, "gen.f64"), os.path.join(work, "imp.f64")
    np.round(rng.normal(0.6, 0.15, ng), 6).astype("<f8").tofile(gp)
    np.round(rng.normal(0.0, 0.2, ni), 6).astype("<f8").tofile(ip)
    print("bench/eval: %d genuine + %d impostor scores (%d in all), %d CPUs, median of %d"
          % (ng, ni, a.n, os.cpu_count(), a.repeat))

    c_runs = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        c0 = os.times()
        out = subprocess.run([exe, gp, ip], check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - t0
        c1 = os.times()
        res = json.loads(out)
        res["wall_s"] = wall
        res["cpu_s"] = (c1.children_user - c0.children_user) + \
            (c1.children_system - c0.children_system)
        c_runs.append(res)
    c = c_runs[len(c_runs) // 2]
    c_time = statistics.median(r["total_s"] for r in c_runs)
    c_wall = statistics.median(r["wall_s"] for r in c_runs)
    r_times, r_cpu, ref = [], [], None
    for _ in range(a.repeat):
        c0 = time.process_time()
        dt, ref = reference(gp, ip)
        r_cpu.append(time.process_time() - c0)
        r_times.append(dt)
    r_time = statistics.median(r_times)

    print("%-34s %10s %10s" % ("", "libbio", "reference"))
    print("%-34s %9.3fs %9.3fs" % ("sort + EER + FNMR@FMR + AUC + DET", c_time, r_time))
    print("%-34s %9.3fs %10s" % ("  of which sort", statistics.median(r["sort_s"] for r in c_runs), ""))
    print("%-34s %9.3fs %9.3fs" % ("CPU time (libbio: whole process)",
                                    statistics.median(r["cpu_s"] for r in c_runs),
                                    statistics.median(r_cpu)))
    print("%-34s %9.3fs %10s" % ("libbio with file load (process)", c_wall, ""))
    print("%-34s %10s" % ("load average (1 min)", "%.1f" % os.getloadavg()[0]))
    for k in ("eer", "eer_threshold", "fnmr_at_fmr_1pct", "fnmr_at_fmr_0_1pct", "fnmr_at_fmr_0",
              "auc"):
        print("%-34s %10.6g %10.6g" % (k, c[k], ref[k]))
    print("%-34s %10d %10d" % ("DET points", c["det_points"], ref["det_points"]))
    tol = {"eer_threshold": 0.0, "fnmr_at_fmr_1pct": 1e-15, "fnmr_at_fmr_0_1pct": 1e-15,
           "fnmr_at_fmr_0": 1e-15, "eer": 1e-12, "auc": 1e-9}
    dev = {k: abs(c[k] - ref[k]) for k in tol}
    ok = all(dev[k] <= tol[k] for k in tol)
    print("results agree: %s (largest deviations: %s)"
          % ("yes" if ok else "NO", ", ".join("%s %.2g" % (k, dev[k]) for k in tol)))
    print("speed-up over the reference: %.1fx; target < 5 s: %s (%.2f s)"
          % (r_time / c_time, "met" if c_time < 5 else "MISSED", c_time))

    if a.end_to_end:
        bio_eval = os.path.join(build, "bin", "bio-eval")
        gen = os.path.join(ROOT, "tests", "python", "make_predictions.py")
        preds = os.path.join(work, "preds.bs")
        # 4472 samples -> 9.997e6 pairs
        subprocess.run(["/usr/bin/python3", gen, "-o", preds, "--ids", "559", "--samples", "8",
                        "--dim", "128", "--only", "fused"], check=True)
        t0 = time.perf_counter()
        ru0 = os.times()
        subprocess.run([bio_eval, "-q", "-j2", preds, "-o", os.path.join(work, "r.yaml"),
                        "--curves", os.path.join(work, "curves")], check=True)
        ru1 = os.times()
        print("bio-eval end to end, 4472 samples x 128-d fused embeddings (%.3g pairs), -j2: "
              "%.2f s wall, %.2f s CPU" % (4472 * 4471 / 2, time.perf_counter() - t0,
                                          (ru1.children_user - ru0.children_user)
                                          + (ru1.children_system - ru0.children_system)))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
