#!/usr/bin/python3
"""Goldens for CrossModalAttention (tests/nn/cross_attention_test.cpp), from Debian's python3-torch:
heads 1 is the flow's formula q = Wq·text, k = Wk·image, v = Wv·image, softmax(q·kᵀ/√d)·v with
bias-free Linear layers; heads > 1 is LayerNorm(text + torch.nn.MultiheadAttention(text, image, image)).
Weights follow the fill formula of make_cnn_golden.py over the sorted state_dict names; inputs are
sin(0.1 i) (text) and cos(0.07 i) (image) over the flat index.
Run: /usr/bin/python3 tests/golden/make_cross_attention_golden.py > tests/golden/nn/cross_attention_golden.json"""
import json
import math

import torch
import torch.nn as nn


class Single(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.d = d
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)

    def forward(self, text, image):
        q, k, v = self.q_proj(text), self.k_proj(image), self.v_proj(image)
        return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.d), -1) @ v


class Multi(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads)
        self.norm = nn.LayerNorm(d)

    def forward(self, text, image):
        t, i = text.transpose(0, 1), image.transpose(0, 1)
        out, _ = self.attention(t, i, i, need_weights=False)
        return self.norm(text + out.transpose(0, 1))


def fill(model):
    sd = model.state_dict()
    names = sorted(sd.keys())
    with torch.no_grad():
        for j, name in enumerate(names):
            t = sd[name]
            k = torch.arange(t.numel(), dtype=torch.float64)
            if t.dim() >= 2:
                v = torch.sin(0.37 * k + 1.3 * j) * math.sqrt(2.0 / (t.numel() / t.shape[0]))
            else:
                v = 0.1 * torch.sin(0.37 * k + 1.3 * j)
            t.copy_(v.view(t.shape).to(t.dtype))
    return names


def pattern(fn, scale, *shape):
    n = 1
    for d in shape:
        n *= d
    return fn(scale * torch.arange(n, dtype=torch.float64)).to(torch.float32).view(*shape)


cases = []
for heads, (b, lt, li, d) in [(1, (2, 1, 16, 8)), (1, (2, 3, 5, 8)), (4, (2, 3, 5, 8))]:
    m = Single(d) if heads == 1 else Multi(d, heads)
    names = fill(m)
    m.eval()
    text, image = pattern(torch.sin, 0.1, b, lt, d), pattern(torch.cos, 0.07, b, li, d)
    with torch.no_grad():
        out = m(text, image)
    cases.append({"heads": heads, "batch": b, "text_len": lt, "image_len": li, "dim": d, "names": names,
                  "output": [round(float(v), 8) for v in out.flatten()]})
print(json.dumps({"generator": "tests/golden/make_cross_attention_golden.py", "torch": torch.__version__,
                  "cases": cases}))
