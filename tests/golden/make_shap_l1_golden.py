#!/usr/bin/python3
"""Golden Kernel SHAP values with L1 feature selection (shap's l1_reg) for kiln::explain::kernel_shap,
from Debian's python3-sklearn (1.2) and numpy; the shap package is not needed.

On the value tables of make_shap_golden.py (tests/golden/explain/shap_golden.json, M = 8 and 10,
two outputs), every coalition is enumerated in Kiln's order (sizes 1, 2, ... from the most
weighted, itertools.combinations order, each with its complement) with the Shapley-kernel weights
of shap's KernelExplainer; then, per output, the selection of shap 0.41's KernelExplainer.solve:

    w_aug = [w (M - |z|), w |z|];  y_aug = sqrt(w_aug) [y, y - (f(x) - f(0))];  X_aug = sqrt(w_aug) [Z; Z - 1]
    num_features(k): sklearn.linear_model.lars_path(X_aug, y_aug, max_iter=k)[1]
    aic / bic:       make_pipeline(StandardScaler(with_mean=False), LassoLarsIC(criterion)).fit(...) non-zero coefs

and the efficiency-constrained weighted least squares on the selected features (the others 0).

    /usr/bin/python3 tests/golden/make_shap_l1_golden.py

Writes tests/golden/explain/shap_l1_golden.json: {"cases": [{"m", "l1", "selected": [[...] per output],
"phi": [[...] per feature]}]}.
"""

import json
import math
import os
from itertools import combinations

import numpy as np
from sklearn.linear_model import LassoLarsIC, lars_path
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))


def enumerate_coalitions(m):
    sizes = int(np.ceil((m - 1) / 2.0))
    paired = int(np.floor((m - 1) / 2.0))
    wv = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, sizes + 1)])
    wv[:paired] *= 2
    wv /= wv.sum()
    masks, weights = [], []
    for size in range(1, sizes + 1):
        w = wv[size - 1] / math.comb(m, size) / (2 if size <= paired else 1)
        for inds in combinations(range(m), size):
            mask = np.zeros(m)
            mask[list(inds)] = 1
            masks.append(mask); weights.append(w)
            if size <= paired:
                masks.append(1 - mask); weights.append(w)
    return np.array(masks), np.array(weights)


def solve(z, kw, y, delta, l1):
    """shap's KernelExplainer.solve for one output: y = f(z) - f(0), delta = f(x) - f(0)."""
    m = z.shape[1]
    s = z.sum(1)
    w_aug = np.hstack((kw * (m - s), kw * s))
    root = np.sqrt(w_aug)
    y_aug = np.hstack((y, y - delta)) * root
    x_aug = np.transpose(root * np.transpose(np.vstack((z, z - 1))))
    if l1.startswith("num_features("):
        selected = list(lars_path(x_aug, y_aug, max_iter=int(l1[len("num_features("):-1]))[1])
    else:
        model = make_pipeline(StandardScaler(with_mean=False), LassoLarsIC(criterion=l1))
        selected = list(np.nonzero(model.fit(x_aug, y_aug)[1].coef_)[0])
    phi = np.zeros(m)
    if not selected:
        return selected, phi
    last = selected[-1]
    y2 = y - z[:, last] * delta
    x2 = np.transpose(np.transpose(z[:, selected[:-1]]) - z[:, last])
    wx = np.transpose(np.transpose(x2) * kw)
    w = np.linalg.solve(wx.T @ x2, wx.T @ y2)
    phi[selected[:-1]] = w
    phi[last] = delta - w.sum()
    return [int(i) for i in selected], phi


def main():
    tables = json.load(open(os.path.join(HERE, "explain", "shap_golden.json")))["tables"]
    cases = []
    for t in tables:
        m = t["m"]
        if m not in (8, 10):
            continue
        v = np.array(t["values"])
        z, kw = enumerate_coalitions(m)
        index = (z * (2 ** np.arange(m))).sum(1).astype(int)
        ey = v[index]
        fnull, fx = v[0], v[2 ** m - 1]
        for l1 in ("num_features(3)", "aic", "bic"):
            selected, phi = [], np.zeros((m, v.shape[1]))
            for k in range(v.shape[1]):
                sel, p = solve(z, kw, ey[:, k] - fnull[k], fx[k] - fnull[k], l1)
                selected.append(sel)
                phi[:, k] = p
            cases.append({"m": m, "l1": l1, "selected": selected, "phi": phi.tolist()})
    with open(os.path.join(HERE, "explain", "shap_l1_golden.json"), "w") as f:
        json.dump({"cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
