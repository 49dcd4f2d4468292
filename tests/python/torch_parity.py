#!/usr/bin/python3
"""Writes PyTorch reference cases for tests/helpers/nn_parity.c, one bio-stream per case in DIR.

Each case stream (kind "checkpoint"-like: records {name, tensor}) carries the inputs, the weights
(PyTorch state_dict names), and what PyTorch computed: forward outputs, loss, every gradient,
batch-norm buffers after the step, optimizer trajectories, scheduler learning rates. Cases:
  model_<fusion>_<train|eval>[...]  the whole model (BioModel in bio_torch.py), dropout masks fixed
  model_<cosface|arcface>_...       the same with a margin head (cosine classifier, margin loss)
  conv_<k>_<s>_<p>, conv_direct_<w>, conv_wino_<w> conv2d geometries, forward and all gradients
  optim_<name>                      torch.optim over 5 steps with given gradients (+ clipping)
  sched_<name>                      learning-rate sequences of the schedulers

Usage: torch_parity.py DIR"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bio_torch import BioModel, tensor, write_stream  # noqa: E402

torch.set_num_threads(1)


def rec(name, arr, dtype="f32"):
    return {"name": name, "tensor": tensor(arr, dtype)}


def model_case(out, fusion, training, mods=("iris", "fingerprint"), size=16, channels=(4, 8),
               hidden=16, emb=8, classes=5, batch=6, dropout=0.3, seed=0, name=None,
               temperature=0.7, loss="softmax", margin=0.0, scale=1.0):
    torch.manual_seed(seed)
    g = np.random.default_rng(seed)
    m = BioModel(mods, classes, size, channels, 3, hidden, emb, dropout, fusion, temperature,
                 loss, margin, scale)
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if k.endswith("running_mean"):
                v.copy_(torch.from_numpy(g.uniform(-0.3, 0.3, v.shape).astype(np.float32)))
            elif k.endswith("running_var"):
                v.copy_(torch.from_numpy(g.uniform(0.5, 2.0, v.shape).astype(np.float32)))
            elif ".bn" in k and (k.endswith("weight") or k.endswith("bias")):
                v.copy_(torch.from_numpy(g.uniform(0.5, 1.5, v.shape).astype(np.float32)
                                         if k.endswith("weight") else
                                         g.uniform(-0.3, 0.3, v.shape).astype(np.float32)))
            elif k == "fusion.weights":
                v.copy_(torch.from_numpy(g.uniform(-1, 1, v.shape).astype(np.float32)))
    recs = []
    for k, v in m.state_dict().items():
        recs.append(rec("param:" + k, v.numpy(), "i64" if v.dtype == torch.int64 else "f32"))
    inputs = [torch.from_numpy(g.standard_normal((batch, 1, size, size)).astype(np.float32))
              for _ in mods]
    labels = torch.from_numpy(g.integers(0, classes, batch).astype(np.int64))
    for md, x in zip(mods, inputs):
        recs.append(rec("input:" + md, x.numpy()))
    recs.append(rec("labels", labels.numpy(), "i64"))
    m.train(training)
    if training:
        keep = 1.0 - dropout
        for md in mods:
            br = getattr(m, md)
            mask = (torch.from_numpy(g.random((batch, hidden)) < keep).float()
                    .div_(1.0 - dropout))
            br.drop.mask = mask
            recs.append(rec("mask:" + md, mask.numpy()))
    logits = m(inputs)
    lv = m.loss_of(logits, labels)
    lv.backward()
    recs.append(rec("expect:logits", logits.detach().numpy()))
    recs.append(rec("expect:loss", np.array([lv.item()]), "f64"))
    for k, p in m.named_parameters():
        recs.append(rec("grad:" + k, p.grad.numpy()))
    for k, v in m.state_dict().items():
        if "running" in k or "num_batches" in k:
            recs.append(rec("after:" + k, v.numpy(), "i64" if v.dtype == torch.int64 else "f32"))
    meta = {"case": "model", "fusion": fusion, "training": int(training),
            "modalities": list(mods), "input_size": size, "channels": list(channels),
            "hidden": hidden, "embedding": emb, "n_classes": classes, "batch": batch,
            "dropout": dropout, "attention_temperature": temperature, "loss": loss,
            "margin": margin, "scale": scale}
    name = name or "model_%s_%s" % (fusion, "train" if training else "eval")
    write_stream(os.path.join(out, name + ".bs"), "checkpoint", meta, recs)


def conv_case(out, cin, cout, k, s, p, h, w, n, seed=1, name=None):
    g = np.random.default_rng(seed)
    conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p)
    x = torch.from_numpy(g.standard_normal((n, cin, h, w)).astype(np.float32)).requires_grad_()
    y = conv(x)
    r = torch.from_numpy(g.standard_normal(tuple(y.shape)).astype(np.float32))
    y.backward(r)
    recs = [rec("w", conv.weight.detach().numpy()), rec("b", conv.bias.detach().numpy()),
            rec("x", x.detach().numpy()), rec("dy", r.numpy()), rec("expect:y", y.detach().numpy()),
            rec("grad:w", conv.weight.grad.numpy()), rec("grad:b", conv.bias.grad.numpy()),
            rec("grad:x", x.grad.numpy())]
    meta = {"case": "conv", "c_in": cin, "c_out": cout, "k": k, "stride": s, "pad": p, "h": h,
            "w": w, "n": n}
    name = name or "conv_%d_%d_%d" % (k, s, p)
    write_stream(os.path.join(out, name + ".bs"), "checkpoint", meta, recs)


def optim_case(out, name, kind, steps=5, clip=0.0, **kw):
    g = np.random.default_rng(7)
    n = 50
    p0 = g.standard_normal(n).astype(np.float32)
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    if kind == "sgd":
        opt = torch.optim.SGD([p], **kw)
    elif kind == "adam":
        opt = torch.optim.Adam([p], **kw)
    else:
        opt = torch.optim.AdamW([p], **kw)
    recs = [rec("p0", p0)]
    for t in range(steps):
        gr = (g.standard_normal(n) * (3.0 if t % 2 else 0.5)).astype(np.float32)
        recs.append(rec("grad%d" % t, gr))
        p.grad = torch.from_numpy(gr.copy())
        if clip > 0:
            torch.nn.utils.clip_grad_norm_([p], clip)
        opt.step()
        recs.append(rec("expect:p%d" % t, p.detach().numpy().copy()))
    meta = {"case": "optim", "optimizer": kind, "steps": steps, "clip": clip,
            "lr": kw.get("lr", 1e-3), "momentum": kw.get("momentum", 0.0),
            "nesterov": int(kw.get("nesterov", False)),
            "weight_decay": kw.get("weight_decay", 0.0 if kind != "adamw" else 1e-2),
            "beta1": kw.get("betas", (0.9, 0.999))[0], "beta2": kw.get("betas", (0.9, 0.999))[1],
            "eps": kw.get("eps", 1e-8)}
    write_stream(os.path.join(out, "optim_%s.bs" % name), "checkpoint", meta, recs)


def sched_case(out, name, kind, epochs=12, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7][:epochs]
    if kind == "step":
        s = torch.optim.lr_scheduler.StepLR(opt, kw["step_size"], kw["gamma"])
    elif kind == "cosine":
        s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, kw["t_max"], kw["min_lr"])
    else:
        s = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, kw["mode"], kw["factor"],
                                                       kw["patience"], min_lr=kw["min_lr"])
    lrs = []
    for e in range(epochs):
        opt.step()
        if kind == "plateau":
            s.step(metrics[e])
        else:
            s.step()
        lrs.append(opt.param_groups[0]["lr"])
    meta = {"case": "sched", "scheduler": kind, "lr": 0.1, "epochs": epochs,
            "step_size": kw.get("step_size", 1), "gamma": kw.get("gamma", 0.1),
            "t_max": kw.get("t_max", epochs), "min_lr": kw.get("min_lr", 0.0),
            "factor": kw.get("factor", 0.1), "patience": kw.get("patience", 0),
            "mode_max": int(kw.get("mode", "min") == "max")}
    recs = [rec("metrics", np.array(metrics, dtype=np.float64), "f64"),
            rec("expect:lr", np.array(lrs, dtype=np.float64), "f64")]
    write_stream(os.path.join(out, "sched_%s.bs" % name), "checkpoint", meta, recs)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for fusion in ("concat", "attention", "weighted"):
        for training in (True, False):
            model_case(out, fusion, training)
    model_case(out, "attention", True, mods=("fingerprint",), name="model_single_train")
    model_case(out, "attention", True, emb=32, batch=9, temperature=2.5, seed=3,
               name="model_attention_t25_train")
    model_case(out, "concat", True, size=64, channels=(32, 64, 128), hidden=256, emb=128,
               classes=10, batch=4, name="model_canonical_train")
    model_case(out, "weighted", True, size=20, channels=(3, 5, 6), hidden=7, emb=6, classes=3,
               batch=5, dropout=0.5, name="model_odd_train")
    # the margin heads: both fusions that normalise and concat, train and eval; ArcFace with a
    # margin large enough that some targets take the fallback (theta + m > pi)
    model_case(out, "concat", True, loss="cosface", margin=0.35, scale=16.0,
               name="model_cosface_train")
    model_case(out, "weighted", False, loss="cosface", margin=0.2, scale=30.0,
               name="model_cosface_eval")
    model_case(out, "attention", True, loss="arcface", margin=0.5, scale=16.0,
               name="model_arcface_train")
    model_case(out, "weighted", True, loss="arcface", margin=0.5, scale=2.0, seed=2,
               name="model_arcface_weighted_train")
    model_case(out, "concat", True, loss="arcface", margin=1.4, scale=8.0, classes=7, batch=9,
               seed=5, name="model_arcface_fallback_train")
    for geo in ((3, 1, 1, 9, 8), (5, 2, 2, 11, 9), (1, 1, 0, 5, 5), (3, 2, 0, 8, 7),
                (4, 3, 1, 10, 10)):
        k, s, p, h, w = geo
        conv_case(out, 3, 4, k, s, p, h, w, 3)
    # the direct 3x3 kernels' shapes on every path (rows a multiple of 16 and 8, channels of 8),
    # odd heights, several tiles and row blocks, input-channel counts not a multiple of anything
    conv_case(out, 5, 16, 3, 1, 1, 7, 32, 3, name="conv_direct_32")
    conv_case(out, 3, 8, 3, 1, 1, 5, 16, 2, name="conv_direct_16")
    # Winograd F(4x4, 3x3) (planes a multiple of 4; channels of 8, so the input gradient takes it
    # too): tile vectors within a tile row and across rows; 32 input channels for the weight
    # gradient's F(2x2, 3x3); F(2x2, 3x3) forward on 6 rows
    conv_case(out, 8, 16, 3, 1, 1, 8, 32, 3, name="conv_wino_32")
    conv_case(out, 16, 8, 3, 1, 1, 16, 16, 2, name="conv_wino_16")
    conv_case(out, 32, 16, 3, 1, 1, 16, 16, 3, name="conv_wino_dw")
    conv_case(out, 8, 16, 3, 1, 1, 6, 32, 2, name="conv_wino2_6")
    optim_case(out, "sgd", "sgd", lr=0.1)
    optim_case(out, "sgd_momentum", "sgd", lr=0.05, momentum=0.9)
    optim_case(out, "sgd_nesterov_wd", "sgd", lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3)
    optim_case(out, "adam", "adam", lr=1e-2)
    optim_case(out, "adam_wd_clip", "adam", lr=1e-2, weight_decay=1e-2, betas=(0.8, 0.99),
               eps=1e-6, clip=1.0)
    optim_case(out, "adamw", "adamw", lr=1e-2, weight_decay=0.1)
    optim_case(out, "sgd_clip", "sgd", lr=0.1, momentum=0.5, clip=2.0)
    sched_case(out, "step", "step", step_size=3, gamma=0.5)
    sched_case(out, "cosine", "cosine", t_max=10, min_lr=1e-3)
    sched_case(out, "plateau_min", "plateau", mode="min", factor=0.5, patience=1, min_lr=0.02)
    sched_case(out, "plateau_max", "plateau", mode="max", factor=0.3, patience=2, min_lr=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
