#!/usr/bin/python3
"""Checks a bio-train checkpoint against PyTorch (tests/python/bio_torch.py's BioModel).

  check_checkpoint.py names CKPT
      the model records are exactly the PyTorch state_dict keys, with the same shapes, and
      load_state_dict(strict=True) accepts them.
  check_checkpoint.py logits CKPT SAMPLES OURS [TOL]
      PyTorch's eval-mode logits for every record of SAMPLES equal the logits in OURS (written by
      nn_parity --logits) within TOL (default 1e-4) relative to the largest logit."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bio_torch import model_from_checkpoint, read_stream, untensor  # noqa: E402


def main():
    cmd, ckpt = sys.argv[1], sys.argv[2]
    model, meta = model_from_checkpoint(ckpt)
    head, recs = read_stream(ckpt)
    sd = model.state_dict()
    names = [r["name"] for r in recs if not r["name"].startswith("optimizer.")]
    if cmd == "names":
        if names != list(sd.keys()):
            print("names differ:", sorted(set(names) ^ set(sd.keys())))
            return 1
        for r in recs:
            if r["name"] in sd and list(sd[r["name"]].shape) != r["tensor"]["shape"]:
                print("shape differs:", r["name"])
                return 1
        print("ok %d tensors" % len(names))
        return 0
    samples, ours = sys.argv[3], sys.argv[4]
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    sh, srecs = read_stream(samples)
    model.eval()
    with torch.no_grad():
        xs = [torch.from_numpy(np.stack([untensor(r[m]).astype(np.float32) for r in srecs]))
              for m in model.modalities]
        ref = model(xs).numpy()
    _, orecs = read_stream(ours)
    got = untensor(orecs[0]["tensor"])
    err = np.abs(got - ref).max() / np.abs(ref).max()
    print("logits: %d samples, relative error %.3g" % (len(srecs), err))
    return 0 if err <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
