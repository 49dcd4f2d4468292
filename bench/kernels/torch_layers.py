"""bench/kernels: PyTorch's time for the same convolutions as layer_bench.c (batch, threads):
forward (F.conv2d), backward-weights (torch.nn.grad.conv2d_weight) and backward-data
(torch.nn.grad.conv2d_input), median of REPS. One line per op: "name seconds"."""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

batch, threads, reps = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
torch.manual_seed(0)
for l, (ci, co, s) in enumerate([(1, 32, 64), (32, 64, 32), (64, 128, 16)]):
    x = torch.randn(batch, ci, s, s)
    w = torch.randn(co, ci, 3, 3)
    b = torch.randn(co)
    dy = torch.randn(batch, co, s, s)
    ops = [("forward", lambda: F.conv2d(x, w, b, padding=1)),
           ("backward-weights", lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=1)),
           ("backward-data", lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1))]
    for name, f in ops:
        if l == 0 and name == "backward-data":
            continue
        with torch.no_grad():
            f()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
        print("conv%d %s %.6f" % (l + 1, name, statistics.median(ts)))
