#!/usr/bin/python3
"""Goldens for the "multimodal" family with a BERT text side (tests/nn/multimodal_model_test.cpp), from
Debian's python3-torch 1.13 and python3-torchvision 0.14: the reference BERT of make_bert_golden.py
(Hugging Face's BertModel math) without its classifier, under "text."; the "small" CNN trunk
(torchvision BasicBlocks, 3x3 stem, no max-pool, no head) under "image."; the patch grid projected
(image_proj) and the hidden states projected (text_proj) to `dim`; then
  cross_attention, heads 1:  softmax(q·kᵀ/√dim)·v (q = Wq·tokens, k = Wk·patches, v = Wv·patches, no biases)
  cross_attention, heads 4:  LayerNorm(tokens + MultiheadAttention(tokens, patches, patches))
  (both averaged over the attended tokens), concat: [text_proj(pooler) ; mean of the patches],
  gated: g = sigmoid(gate·[t ; i]), g·t + (1 − g)·i with t = text_proj(pooler), i = mean of the patches;
and the output Linear. Weights are not stored: every state_dict entry, by Kiln's name in sorted
order (index j), is filled by make_cnn_golden.py's formula, which the C++ test repeats. Inputs: the
"padded" token case of make_bert_golden.py and images sin(0.1 i) over the flat index.
Run: /usr/bin/python3 tests/golden/make_multimodal_golden.py > tests/golden/nn/multimodal_golden.json"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bert_golden import CONFIG, ReferenceBert, cases  # noqa: E402
from make_cnn_golden import fill  # noqa: E402

DIM, CLASSES, IMAGE = 16, 3, (4, 3, 16, 16)


class Trunk(nn.Module):
    """The "small" preset's features: conv1 3x3 + bn1 + ReLU, stages of BasicBlocks (32, 64, 128)."""

    def __init__(self, in_channels, widths=(32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for s, w in enumerate(widths):
            stride = 2 if s > 0 else 1
            down = None
            if stride != 1 or inplanes != w:
                down = nn.Sequential(nn.Conv2d(inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
            setattr(self, "layer%d" % (s + 1), nn.Sequential(BasicBlock(inplanes, w, stride, down)))
            inplanes = w

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


class Multimodal(nn.Module):
    def __init__(self, fusion, heads):
        super().__init__()
        self.fusion_kind, self.heads = fusion, heads
        self.bert = ReferenceBert(CONFIG, 2)
        self.trunk = Trunk(IMAGE[1])
        self.image_proj = nn.Linear(128, DIM)
        self.text_proj = nn.Linear(CONFIG["hidden_size"], DIM)
        if fusion == "cross_attention" and heads == 1:
            self.q_proj, self.k_proj, self.v_proj = (nn.Linear(DIM, DIM, bias=False) for _ in range(3))
        elif fusion == "cross_attention":
            self.attention = nn.MultiheadAttention(DIM, heads)
            self.norm = nn.LayerNorm(DIM)
        elif fusion == "gated":
            self.gate = nn.Linear(2 * DIM, DIM)
        self.output = nn.Linear(2 * DIM if fusion == "concat" else DIM, CLASSES)

    def kiln_state(self):
        """Kiln's names -> tensors (parameters and buffers)."""
        out = {}
        for name, t in self.bert.named_tensors().items():
            if name.startswith("bert."):
                out["text." + name[len("bert."):]] = t
        for name, t in self.trunk.state_dict(keep_vars=True).items():
            out["image." + name] = t
        for prefix, mod in (("image_proj", self.image_proj), ("text_proj", self.text_proj), ("output", self.output)):
            out[prefix + ".weight"], out[prefix + ".bias"] = mod.weight, mod.bias
        if self.fusion_kind == "cross_attention" and self.heads == 1:
            for p in ("q_proj", "k_proj", "v_proj"):
                out["fusion.%s.weight" % p] = getattr(self, p).weight
        elif self.fusion_kind == "cross_attention":
            for name, t in self.attention.named_parameters():
                out["fusion.attention." + name] = t
            out["fusion.norm.weight"], out["fusion.norm.bias"] = self.norm.weight, self.norm.bias
        elif self.fusion_kind == "gated":
            out["gate.weight"], out["gate.bias"] = self.gate.weight, self.gate.bias
        return out

    def forward(self, ids, mask, types, pixels):
        b = self.bert(ids, mask, types)
        patches = self.image_proj(self.trunk(pixels).flatten(2).transpose(1, 2))
        if self.fusion_kind == "cross_attention":
            tokens = self.text_proj(b["last_hidden_state"])
            if self.heads == 1:
                q, k, v = self.q_proj(tokens), self.k_proj(patches), self.v_proj(patches)
                fused = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(DIM), -1) @ v
            else:
                t, i = tokens.transpose(0, 1), patches.transpose(0, 1)
                a, _ = self.attention(t, i, i, need_weights=False)
                fused = self.norm(tokens + a.transpose(0, 1))
            w = mask.to(torch.float32).unsqueeze(-1)
            pooled = (fused * w).sum(1) / w.sum(1).clamp(min=1.0)
        else:
            text, image = self.text_proj(b["pooler_output"]), patches.mean(1)
            if self.fusion_kind == "concat":
                pooled = torch.cat([text, image], 1)
            else:
                g = torch.sigmoid(self.gate(torch.cat([text, image], 1)))
                pooled = g * text + (1 - g) * image
        return self.output(pooled)


ids, mask, types = cases()["padded"]
n = 1
for d in IMAGE:
    n *= d
pixels = torch.sin(0.1 * torch.arange(n, dtype=torch.float64)).to(torch.float32).view(*IMAGE)
out = []
for fusion, heads in (("cross_attention", 1), ("cross_attention", 4), ("concat", 1), ("gated", 1)):
    m = Multimodal(fusion, heads)
    names = fill(m.kiln_state())
    m.eval()
    with torch.no_grad():
        logits = m(ids, mask, types, pixels)
    out.append({"fusion": fusion, "heads": heads, "names": names,
                "logits": [round(float(v), 8) for v in logits.flatten()]})
print(json.dumps({"generator": "tests/golden/make_multimodal_golden.py", "torch": torch.__version__,
                  "bert": CONFIG, "dim": DIM, "classes": CLASSES, "image_shape": list(IMAGE),
                  "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": types.tolist(),
                  "cases": out}))
