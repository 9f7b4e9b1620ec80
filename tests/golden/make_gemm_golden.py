#!/usr/bin/python3
"""Golden values for a matmul-heavy forward and backward pass (two linear layers, ReLU, cross-entropy),
the arithmetic every dense Kiln model runs through the BLAS: the C++ test checks it under the kernels
kiln's process start-up chose (OPENBLAS_CORETYPE, threads), against Debian's python3-torch 1.13.

Regenerate from the repository root:

    /usr/bin/python3 tests/golden/make_gemm_golden.py

Writes tests/golden/nn/gemm.json. Inputs are not stored: every element is float32(sin(a*i + b*j)) or
float32(cos(...)) with the constants below, which the C++ test recomputes with the same libm.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn")
BATCH, IN, HIDDEN, CLASSES = 64, 256, 512, 16


def matrix(rows, cols, a, b, scale, fn=math.sin):
    return torch.tensor([[scale * fn(a * i + b * j) for j in range(cols)] for i in range(rows)], dtype=torch.float32)


def main():
    torch.set_num_threads(1)
    x = matrix(BATCH, IN, 0.37, 0.11, 1.0)
    w1 = matrix(HIDDEN, IN, 0.013, 0.029, 0.0625).requires_grad_()
    b1 = matrix(1, HIDDEN, 0.0, 0.07, 0.01, math.cos).reshape(HIDDEN).requires_grad_()
    w2 = matrix(CLASSES, HIDDEN, 0.031, 0.017, 0.05, math.cos).requires_grad_()
    b2 = torch.zeros(CLASSES, requires_grad=True)
    y = torch.tensor([(7 * i + 3) % CLASSES for i in range(BATCH)])
    h = F.relu(x @ w1.t() + b1)
    logits = h @ w2.t() + b2
    loss = F.cross_entropy(logits, y)
    loss.backward()
    payload = {
        "generator": "tests/golden/make_gemm_golden.py",
        "torch_version": torch.__version__,
        "sizes": {"batch": BATCH, "in": IN, "hidden": HIDDEN, "classes": CLASSES},
        "loss": loss.item(),
        "logits": logits.detach().to(torch.float64).tolist(),
        "grad_w1_row_sums": w1.grad.to(torch.float64).sum(1).tolist(),
        "grad_w1_norm": w1.grad.to(torch.float64).norm().item(),
        "grad_b1": b1.grad.to(torch.float64).tolist(),
        "grad_w2_col_sums": w2.grad.to(torch.float64).sum(0).tolist(),
        "grad_w2_norm": w2.grad.to(torch.float64).norm().item(),
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "gemm.json"), "w") as f:
        json.dump(payload, f)
        f.write("\n")


if __name__ == "__main__":
    main()
