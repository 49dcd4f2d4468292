#!/usr/bin/python3
"""The PyTorch equivalent of biopipe's model (lib/model.c, DESIGN.md) with the same state_dict
names and layouts, and small bio-stream helpers (msgpack + numpy). Used by the parity tests
(torch_parity.py), the checkpoint test (check_checkpoint.py) and bench/train."""
import math

import msgpack
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskDropout(nn.Module):
    """Dropout whose mask can be set from outside (for parity with masks drawn in C)."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.mask is not None:
            return x * self.mask
        return F.dropout(x, self.p, True)


class Branch(nn.Module):
    def __init__(self, input_size, channels, kernel, hidden, embedding, dropout):
        super().__init__()
        cin, side = 1, input_size
        self.n_blocks = len(channels)
        for i, c in enumerate(channels):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(cin, c, kernel, padding=kernel // 2))
            setattr(self, "bn%d" % (i + 1), nn.BatchNorm2d(c))
            cin, side = c, side // 2
        self.fc1 = nn.Linear(cin * side * side, hidden)
        self.drop = MaskDropout(dropout)
        self.fc2 = nn.Linear(hidden, embedding)

    def forward(self, x):
        for i in range(self.n_blocks):
            x = getattr(self, "conv%d" % (i + 1))(x)
            x = F.max_pool2d(F.relu(getattr(self, "bn%d" % (i + 1))(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class Fusion(nn.Module):
    """concat | attention | weighted. Attention is bounded (include/bio/nn.h): scores are the
    cosine between each L2-normalised embedding and the score vector, over a temperature, and the
    normalised embeddings are fused, so every weight stays inside
    [1 / (1 + (M-1) e^(2/T)), 1 / (1 + (M-1) e^(-2/T))]."""

    def __init__(self, kind, n_mod, dim, temperature=1.0):
        """weighted: softmax(weights) over the L2-normalised embeddings."""
        super().__init__()
        self.kind = kind
        self.temperature = temperature
        if kind == "attention":
            self.score = nn.Linear(dim, 1)
        elif kind == "weighted":
            self.weights = nn.Parameter(torch.zeros(n_mod))

    def forward(self, embs):
        if self.kind == "concat":
            return torch.cat(embs, 1)
        e = torch.stack(embs, 1)  # [N, M, D]
        if self.kind == "attention":
            return (self.weights_of(embs).unsqueeze(-1) * F.normalize(e, dim=-1)).sum(1)
        a = torch.softmax(self.weights, 0)
        return (a.view(1, -1, 1) * F.normalize(e, dim=-1)).sum(1)

    def weights_of(self, embs):
        """The attention weights [N, M] of a list of embeddings [N, D]."""
        u = F.normalize(torch.stack(embs, 1), dim=-1)
        w = F.normalize(self.score.weight, dim=-1)
        return torch.softmax(F.linear(u, w, self.score.bias).squeeze(-1) / self.temperature, 1)


class CosineHead(nn.Module):
    """The margin losses' classifier: logits s cos(theta) between the L2-normalised input and
    the L2-normalised class weights (no bias); the margin is the loss's (margin_loss)."""

    def __init__(self, dim, n_classes, scale):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


def margin_loss(logits, labels, loss="softmax", margin=0.0, scale=1.0):
    """Mean loss over plain logits (s cos(theta) for cosface/arcface): the target logit gets
    s (cos - m) (CosFace) or s cos(theta + m) (ArcFace, with insightface's fallback
    cos - m sin(pi - m) where cos <= cos(pi - m)), then cross-entropy."""
    if loss == "softmax":
        return F.cross_entropy(logits, labels)
    onehot = F.one_hot(labels, logits.shape[1]).bool()
    cos = logits / scale
    if loss == "cosface":
        phi = cos - margin
    else:
        sin = torch.sqrt((1.0 - cos * cos).clamp(0, 1))
        phi = torch.where(cos > math.cos(math.pi - margin),
                          cos * math.cos(margin) - sin * math.sin(margin),
                          cos - math.sin(math.pi - margin) * margin)
    return F.cross_entropy(torch.where(onehot, scale * phi, logits), labels)


class BioModel(nn.Module):
    def __init__(self, modalities, n_classes, input_size=64, channels=(32, 64, 128), kernel=3,
                 hidden=256, embedding=128, dropout=0.3, fusion="concat",
                 attention_temperature=1.0, loss="softmax", margin=0.0, scale=1.0):
        super().__init__()
        self.modalities = list(modalities)
        for m in self.modalities:
            setattr(self, m, Branch(input_size, channels, kernel, hidden, embedding, dropout))
        self.fusion = Fusion(fusion, len(self.modalities), embedding, attention_temperature)
        fused = embedding * len(self.modalities) if fusion == "concat" else embedding
        self.loss, self.margin, self.scale = loss, margin, scale
        self.classifier = (nn.Linear(fused, n_classes) if loss == "softmax"
                           else CosineHead(fused, n_classes, scale))

    def loss_of(self, logits, labels):
        return margin_loss(logits, labels, self.loss, self.margin, self.scale)

    def embeddings(self, inputs):
        return [getattr(self, m)(x) for m, x in zip(self.modalities, inputs)]

    def forward(self, inputs):
        return self.classifier(self.fusion(self.embeddings(inputs)))


# ---- bio-stream helpers ----

DT = {"f32": "<f4", "f64": "<f8", "i64": "<i8", "i32": "<i4", "u8": "u1", "f16": "<f2"}


def tensor(arr, dtype="f32"):
    a = np.ascontiguousarray(arr, dtype=DT[dtype])
    return {"dtype": dtype, "shape": list(a.shape), "data": a.tobytes()}


def untensor(t):
    return np.frombuffer(t["data"], dtype=DT[t["dtype"]]).reshape(t["shape"])


def write_stream(path, kind, meta, records):
    with open(path, "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": kind, "meta": meta}))
        for r in records:
            f.write(msgpack.packb(r))
        f.write(msgpack.packb({"end": len(records)}))


def read_stream(path):
    with open(path, "rb") as f:
        objs = list(msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31))
    assert objs[0].get("bio-stream") == 1, "not a bio-stream"
    assert objs[-1].get("end") == len(objs) - 2, "bad trailer"
    return objs[0], objs[1:-1]


def model_from_checkpoint(path):
    """Builds a BioModel from a bio-train checkpoint and loads its state_dict (strict)."""
    head, recs = read_stream(path)
    assert head["kind"] == "checkpoint"
    ms = head["meta"]["model"]
    model = BioModel(ms["modalities"], ms["n_classes"], ms["input_size"], ms["channels"],
                     ms["kernel"], ms["hidden"], ms["embedding"], ms["dropout"], ms["fusion"],
                     ms.get("attention_temperature", 1.0), ms.get("loss", "softmax"),
                     ms.get("margin", 0.0), ms.get("scale", 1.0))
    names = set(model.state_dict().keys())
    sd = {}
    for r in recs:
        if r["name"] in names:
            a = untensor(r["tensor"])
            sd[r["name"]] = torch.from_numpy(a.astype(np.float32) if a.dtype.kind == "f"
                                             else a.copy())
    sd = {k: (v.reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    return model, head["meta"]
