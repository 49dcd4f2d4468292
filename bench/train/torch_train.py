#!/usr/bin/python3
"""PyTorch reference for bench/train: the canonical model (tests/python/bio_torch.py's BioModel,
the same architecture and state_dict as bio-train's), Adam, on the same batches stream, with
torch.set_num_threads(THREADS). The stream is decoded into memory before the clock starts.

Usage: torch_train.py BATCHES THREADS LAUNCH_TIME
Prints one line: train_samples_per_s infer_samples_per_s first_step_s peak_rss_kib
train_cpu_s_per_sample (first_step_s: from LAUNCH_TIME, the shell's clock before it started
python, to the end of the first optimizer step; CPU time: user + system of the process over the
steady-state training loop)."""
import os
import resource
import sys
import time

import msgpack
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "python"))
from bio_torch import BioModel, untensor  # noqa: E402


def main():
    path, threads, launch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(path, "rb") as f:
        objs = list(msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31))
    meta = objs[0]["meta"]
    mods = meta["modalities"]
    batches = []
    for r in objs[1:-1]:
        xs = [torch.from_numpy(untensor(r[m]).copy()) for m in mods]
        batches.append((xs, torch.from_numpy(untensor(r["label"]).copy())))
    model = BioModel(mods, len(meta["labels"]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    first = None
    n = 0
    t0 = None
    for i, (xs, y) in enumerate(batches):
        opt.zero_grad()
        loss = F.cross_entropy(model(xs), y)
        loss.backward()
        opt.step()
        if first is None:
            first = time.time() - launch
            t0 = time.perf_counter()  # steady state: from the end of the first step
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
        else:
            n += len(y)
    train_sps = n / (time.perf_counter() - t0)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / n
    model.eval()
    with torch.no_grad():
        model(batches[0][0])
        t1 = time.perf_counter()
        m = 0
        for xs, y in batches:
            model(xs)
            m += len(y)
        infer_sps = m / (time.perf_counter() - t1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("%.2f %.2f %.3f %d %.5f" % (train_sps, infer_sps, first, rss, cpu))


if __name__ == "__main__":
    main()
