#!/usr/bin/python3
"""Goldens for the "cnn" family's forward pass (tests/nn/cnn_model_test.cpp), from Debian's
python3-torch 1.13 and python3-torchvision 0.14: torchvision.models.resnet18 for the "resnet18"
preset and the same BasicBlock stack with a 3x3 stem and no max-pool for "small".
Weights are not random: every state_dict entry (sorted by name, index j) is filled by a formula the
C++ test repeats, so no weights are stored:
  running_var:          0.5 + 0.5 * sin(0.37 k + j)^2
  num_batches_tracked:  left as it is
  weights of rank >= 2: sin(0.37 k + 1.3 j) * sqrt(2 / fan_in)   (fan_in = numel / shape[0])
  everything else:      0.1 * sin(0.37 k + 1.3 j)
with k the flat index inside the tensor. Inputs: sin(0.1 i) over the flat index i.
Run: /usr/bin/python3 tests/golden/make_cnn_golden.py > tests/golden/nn/cnn_golden.json"""
import json
import math

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock


class Small(nn.Module):
    """The "small" preset: conv1 3x3 stride 1 + bn1 + ReLU, stages of BasicBlocks, GAP, fc."""

    def __init__(self, in_channels, num_classes, widths=(32, 64, 128), blocks=(1, 1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for s, (w, b) in enumerate(zip(widths, blocks)):
            layers = []
            for i in range(b):
                stride = 2 if (s > 0 and i == 0) else 1
                down = None
                if stride != 1 or inplanes != w:
                    down = nn.Sequential(nn.Conv2d(inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
                layers.append(BasicBlock(inplanes, w, stride, down))
                inplanes = w
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layers))
        self.nstages = len(widths)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        for s in range(self.nstages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return self.fc(x.mean((2, 3)))


def fill(model):
    """The formula above over a module's state_dict, or over a dict of name -> tensor."""
    sd = model.state_dict() if isinstance(model, nn.Module) else model
    names = sorted(sd.keys())
    with torch.no_grad():
        for j, name in enumerate(names):
            t = sd[name]
            if name.endswith("num_batches_tracked"):
                continue
            k = torch.arange(t.numel(), dtype=torch.float64)
            if name.endswith("running_var"):
                v = 0.5 + 0.5 * torch.sin(0.37 * k + j) ** 2
            elif t.dim() >= 2:
                v = torch.sin(0.37 * k + 1.3 * j) * math.sqrt(2.0 / (t.numel() / t.shape[0]))
            else:
                v = 0.1 * torch.sin(0.37 * k + 1.3 * j)
            t.copy_(v.view(t.shape).to(t.dtype))
    return names


def case(name, model, shape):
    names = fill(model)
    model.eval()
    n = 1
    for d in shape:
        n *= d
    x = torch.sin(0.1 * torch.arange(n, dtype=torch.float64)).to(torch.float32).view(*shape)
    with torch.no_grad():
        logits = model(x)
    return {"name": name, "input_shape": list(shape), "state_dict_names": names,
            "logits": [round(float(v), 8) for v in logits.flatten()], "classes": logits.shape[1]}


if __name__ == "__main__":  # importable: make_multimodal_golden.py uses fill()
    cases = [
        case("resnet18", torchvision.models.resnet18(num_classes=10), (2, 3, 32, 32)),
        case("small", Small(1, 10), (2, 1, 8, 8)),
        case("small_28", Small(3, 4), (2, 3, 28, 28)),
    ]
    print(json.dumps({"generator": "tests/golden/make_cnn_golden.py", "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "cases": cases}))
