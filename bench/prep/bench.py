#!/usr/bin/python3
"""bench/prep: bio-prep against a PIL + numpy reference, side by side in one run.

Data: 1000 iris + 1000 fingerprint BMP files, made by bio-synth when the build has it, else by
a small PIL generator here (same kind of images: 8-bit gray, --side pixels square). A manifest
stream pairs iris i with fingerprint i (1000 records, 2000 images).

Timed, each --repeat times (the median is reported), page cache warm:
  reference seq    bench/prep/reference.py, one process (PIL decode, L, bilinear 64x64,
                   numpy normalise, msgpack serialise, write)
  reference 2 proc the same over multiprocessing.Pool(2)
  decode floor     libbio read + decode of every file, nothing else (build/bench/prep_decode)
  bio-prep -j1     the whole pipeline in C, one thread
  bio-prep -j2     two threads
Also: the bio-prep output checked against the reference output (max difference in gray levels),
and bio-prep's peak RSS (getrusage of the child) on manifests of 1,000 and 20,000 images.

Usage: bench.py [--build build] [--workdir DIR] [--images 1000] [--repeat 5] [--side 128]
(the work folder defaults to a temporary one on /dev/shm, removed at the end)
Targets (issue 2): bio-prep -j1 >= 10x reference seq (aim 20x); -j2 >= 1.8x -j1.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


CPU = {}  # command name -> list of CPU seconds (user + sys, the program and its children)


def run_child(cmd, env=None, stdout=subprocess.DEVNULL, tag=None):
    """Runs cmd (stdout: a file object, DEVNULL, or None to capture it); returns (wall seconds,
    stdout text). With tag, the run's CPU time is recorded under CPU[tag]."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if stdout is None else stdout)
    out = p.stdout.read().decode() if stdout is None else ""
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench: %s failed with %d" % (" ".join(cmd), os.waitstatus_to_exitcode(status)))
    if tag:
        CPU.setdefault(tag, []).append(ru.ru_utime + ru.ru_stime)
    return dt, out


def peak_rss(cmd, out_path):
    """Peak RSS (KiB) of cmd, measured by GNU time (%M) on the exec'd program itself."""
    with open(out_path, "wb") as out:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=out,
                           stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), p.stderr.decode()))
    return int(p.stderr.decode().split()[-1])


def gen_pil(root, n, side):
    """Iris-like (pupil, textured annulus) and fingerprint-like (ridges) gray BMPs."""
    rs = np.random.RandomState(7)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) - side / 2
    r = np.hypot(x, y)
    th = np.arctan2(y, x)
    paths = {"iris": [], "fingerprint": []}
    for mod in paths:
        os.makedirs(os.path.join(root, mod), exist_ok=True)
    for i in range(n):
        f = 3 + (i % 7)
        iris = 120 + 50 * np.sin(f * th + r / 5.0) * (r < side * 0.45)
        iris[r < side * (0.12 + 0.02 * (i % 3))] = 20
        iris += rs.normal(0, 8, iris.shape)
        ang = (i % 11) * 0.3
        fp = 128 + 90 * np.sin((x * np.cos(ang) + y * np.sin(ang)) / 2.5 + 0.002 * r * r)
        fp += rs.normal(0, 10, fp.shape)
        for mod, a in (("iris", iris), ("fingerprint", fp)):
            p = os.path.join(root, mod, "%04d_L_%02d.bmp" % (i // 8, i % 8))
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L").save(p)
            paths[mod].append(p)
    return paths


def gen_synth(build, root, n, side):
    """Uses bio-synth when the build has it; returns None when it is absent or fails."""
    synth = os.path.join(build, "bin", "bio-synth")
    if not os.access(synth, os.X_OK):
        return None
    subjects = (n + 15) // 16  # each subject: 2 eyes / 2 hands x 8 samples
    cmd = [synth, "-n", str(subjects), "-s", "8", "--size", str(side), "-f", "bmp", "-o", root]
    if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
        return None
    paths = {}
    for mod in ("iris", "fingerprint"):
        d = os.path.join(root, mod)
        if not os.path.isdir(d):
            return None
        files = sorted(os.path.join(d, f) for f in os.listdir(d)
                       if f.lower().endswith(".bmp"))
        if len(files) < n:
            return None
        paths[mod] = files[:n]
    return paths


def write_manifest(path, paths, n_records):
    n = len(paths["iris"])
    labels = ["id%04d" % i for i in range((n + 7) // 8)]
    with open(path, "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": "manifest",
                               "meta": {"labels": labels, "modalities": ["iris", "fingerprint"]}}))
        for k in range(n_records):
            i = k % n
            f.write(msgpack.packb({"id": "r%06d" % k, "label": i // 8, "identity": labels[i // 8],
                                   "split": "train", "iris": paths["iris"][i],
                                   "fingerprint": paths["fingerprint"][i]}))
        f.write(msgpack.packb({"end": n_records}))


def samples(path):
    objs = list(msgpack.Unpacker(open(path, "rb"), raw=False, max_buffer_size=1 << 30))
    return [o for o in objs[1:] if "end" not in o]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--images", type=int, default=1000, help="images per modality")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--side", type=int, default=128)
    a = ap.parse_args()

    build = os.path.abspath(a.build)
    prep = os.path.join(build, "bin", "bio-prep")
    decode = os.path.join(build, "bench", "prep_decode")
    # tmpfs by default: the disk's write-back (shared with whatever else runs) stays out of
    # the figures; both sides write their output the same way
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    work = a.workdir or tempfile.mkdtemp(prefix="bench-prep.", dir=shm)
    os.makedirs(work, exist_ok=True)
    try:
        n = a.images
        paths = gen_synth(build, os.path.join(work, "synth"), n, a.side)
        source = "bio-synth"
        if paths is None:
            paths = gen_pil(os.path.join(work, "pil"), n, a.side)
            source = "PIL generator"
        man = os.path.join(work, "manifest.bs")
        write_manifest(man, paths, n)
        with open(os.path.join(work, "list.txt"), "w") as f:
            for mod in ("iris", "fingerprint"):
                f.write("".join(p + "\n" for p in paths[mod]))
        n_img = 2 * n
        w0, h0 = Image.open(paths["iris"][0]).size
        w1, h1 = Image.open(paths["fingerprint"][0]).size
        print("bench/prep: %d iris (%dx%d) + %d fingerprint (%dx%d) BMP files from %s, "
              "median of %d runs, %d cores" % (n, w0, h0, n, w1, h1, source, a.repeat,
                                               os.cpu_count()))

        # numpy here runs element-wise code only; still unset the OpenBLAS overrides as
        # /work/.library/env/README.md advises for benchmarking numpy.
        env_ref = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        ref_out = os.path.join(work, "ref.bs")
        prep_out = os.path.join(work, "prep.bs")
        run_child(["cat", *paths["iris"], *paths["fingerprint"]])  # warm the page cache

        def ref_time(workers):
            ts = []
            for _ in range(a.repeat):
                _, out = run_child([PY, os.path.join(HERE, "reference.py"), man, ref_out,
                                    "--workers", str(workers)], env=env_ref, stdout=None,
                                   tag="ref%d" % workers)
                ts.append(float(out.split()[1]))
            return statistics.median(ts)

        def prep_time(j, manifest=man):
            # to a file through standard output, as the reference writes (no fsync either)
            ts = []
            for _ in range(a.repeat):
                with open(prep_out, "wb") as out:
                    dt, _ = run_child([prep, "-j%d" % j, manifest], stdout=out, tag="prep%d" % j)
                ts.append(dt)
            return statistics.median(ts)

        def decode_time():
            ts = []
            for _ in range(a.repeat):
                _, out = run_child([decode, os.path.join(work, "list.txt")], stdout=None,
                                   tag="decode")
                ts.append(float(out.split()[1]))
            return statistics.median(ts)

        t_ref1 = ref_time(1)
        t_ref2 = ref_time(2)
        t_dec = decode_time()
        t_p1 = prep_time(1)
        t_p2 = prep_time(2)

        # Same work? Compare bio-prep's tensors with the reference's.
        got, want = samples(prep_out), samples(ref_out)
        assert len(got) == len(want) == n
        max_lv = 0.0
        for g, w in zip(got, want):
            assert g["id"] == w["id"]
            for mod in ("iris", "fingerprint"):
                d = np.abs(np.frombuffer(g[mod]["data"], "<f4") -
                           np.frombuffer(w[mod]["data"], "<f4")) * 0.5 * 255
                max_lv = max(max_lv, float(d.max()))

        # Peak memory against the number of images.
        small = os.path.join(work, "manifest-1k.bs")
        big = os.path.join(work, "manifest-20k.bs")
        write_manifest(small, paths, 500)
        write_manifest(big, paths, 10000)
        rss = {}
        for name, m in (("1,000", small), ("20,000", big)):
            for j in (1, 2):
                rss[(name, j)] = peak_rss([prep, "-j%d" % j, m], os.devnull)

        rate = lambda t: n_img / t
        rows = [("reference seq (PIL+numpy)", t_ref1, "ref1"),
                ("reference 2 processes", t_ref2, "ref2"),
                ("decode floor (libbio read+decode)", t_dec, "decode"),
                ("bio-prep -j1", t_p1, "prep1"), ("bio-prep -j2", t_p2, "prep2")]
        cpu = {k: statistics.median(v) / n_img * 1e6 for k, v in CPU.items()}
        print("%-36s %10s %12s %14s" % ("", "seconds", "images/s", "CPU us/image"))
        for name, t, tag in rows:
            print("%-36s %10.4f %12.0f %14.1f" % (name, t, rate(t), cpu[tag]))
        r1 = t_ref1 / t_p1
        r2 = t_p1 / t_p2
        print("bio-prep -j1 / reference seq:   %6.1fx  (target >= 10x, aim 20x): %s"
              % (r1, "ok" if r1 >= 10 else "MISSED"))
        print("bio-prep -j2 / bio-prep -j1:    %6.2fx  (target >= 1.8x): %s"
              % (r2, "ok" if r2 >= 1.8 else "MISSED"))
        print("bio-prep -j2 / reference 2 proc: %6.1fx" % (t_ref2 / t_p2))
        print("CPU time per image, reference seq / bio-prep -j1: %.1fx (the reference's counts "
              "its interpreter start-up; less sensitive than wall time to a busy machine)"
              % (cpu["ref1"] / cpu["prep1"]))
        print("load average at the end: %.2f %.2f %.2f (timings need an idle machine)"
              % os.getloadavg())
        print("bio-prep -j1 / decode floor:    %6.2f  (time ratio; 1.0 = only read+decode)"
              % (t_p1 / t_dec))
        print("bio-prep vs reference values: max difference %.3f gray levels" % max_lv)
        print("issue 2's figure for the reference (850 images/s seq): bio-prep -j1 = %.1fx of it"
              % (rate(t_p1) / 850.0))
        for j in (1, 2):
            print("bio-prep -j%d peak RSS: %d KiB at 1,000 images, %d KiB at 20,000 images"
                  % (j, rss[("1,000", j)], rss[("20,000", j)]))
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
