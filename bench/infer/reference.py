#!/usr/bin/python3
"""PyTorch reference for bench/infer: loads a bio-train checkpoint into the equivalent PyTorch
model (tests/python/bio_torch.py) and predicts a samples stream in eval mode, at a given batch
size and thread count. Prints one line: samples/s, ms per sample, seconds from process start to the
first prediction, peak RSS (MiB)."""
import os
import resource
import sys
import time

T0 = time.time()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/python"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bio_torch import model_from_checkpoint, read_stream, untensor  # noqa: E402


def main():
    ckpt, samples, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    model, meta = model_from_checkpoint(ckpt)
    model.eval()
    _, recs = read_stream(samples)
    xs = [np.stack([untensor(r[m]) for r in recs]).astype(np.float32) for m in model.modalities]
    n = len(recs)
    first = None
    with torch.no_grad():
        t = time.time()
        for i in range(0, n, batch):
            inputs = [torch.from_numpy(x[i:i + batch]) for x in xs]
            p = torch.softmax(model(inputs), 1)
            torch.topk(p, 5, 1)
            if first is None:
                first = time.time() - T0
        dt = time.time() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("%.1f %.3f %.3f %.0f" % (n / dt, 1000 * dt / n, first, rss))


main()
