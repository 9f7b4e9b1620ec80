#!/usr/bin/python3
"""Golden values for temperature scaling (kiln::train::fit_temperature).

Reference: Debian's python3-torch 1.13, the way temperature scaling is usually fitted in PyTorch:
LBFGS (strong Wolfe line search) on log T minimising F.cross_entropy(logits / T, y), run to
convergence in float64. Regenerate from the repository root:

    /usr/bin/python3 tests/golden/make_temperature_golden.py

Writes tests/golden/train/temperature.json: each case stores its logits, labels, the fitted T and
the NLL before and after.
"""

import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train", "temperature.json")


def fit(logits, y):
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    t = float(log_t.exp())
    return t, float(F.cross_entropy(logits, y)), float(F.cross_entropy(logits / t, y))


def case(name, n, c, scale, seed, noise):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * noise
    logits[torch.arange(n), y] += 1.0
    logits = logits * scale
    t, before, after = fit(logits, y)
    return {"name": name, "classes": c, "logits": logits.flatten().tolist(), "labels": y.tolist(),
            "temperature": t, "nll_before": before, "nll_after": after}


cases = [
    case("overconfident", 200, 3, 6.0, 1, 1.0),   # T > 1
    case("underconfident", 300, 5, 0.3, 2, 0.5),  # T < 1
    case("two_classes", 150, 2, 2.0, 3, 1.5),
    case("many_classes", 400, 15, 4.0, 4, 1.2),
]
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"generator": "tests/golden/make_temperature_golden.py", "torch_version": torch.__version__,
               "cases": cases}, f)
    f.write("\n")
print("wrote", OUT)
