#!/usr/bin/python3
"""Golden values for the L-BFGS solver (train.solver lbfgs, src/train/linear_lbfgs.h).

Reference: Debian's python3-sklearn 1.2, LogisticRegression(multinomial, solver="lbfgs", tol 1e-10),
on small sparse non-negative data shaped like TF-IDF rows (l2-normalised rows, a few nonzeros each).
scipy's L-BFGS-B stops scikit-learn's fit on its relative-reduction test with gradients near 1e-6,
so the solution is then polished on the same objective in float64 (scipy, gtol 1e-12) until
max |gradient| < 1e-8; the distance from scikit-learn's own coef_ is recorded ("sklearn_diff").
Kiln's solver minimises the same objective, so it must reach the same coef_ (its weight table is
coef_ transposed) and intercept_ (compared after removing the mean over
classes: the softmax is invariant to a common shift of the intercepts). Regenerate from the
repository root:

    /usr/bin/python3 tests/golden/make_logreg_golden.py

Writes tests/golden/train/logreg.json: per case the CSR rows (indices, offsets, values), labels,
C, class_weight, coef_ and intercept_, and the objective C·Σ s_i ℓ_i + ½‖W‖² divided by C·Σ s_i.
"""

import json
import os

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train", "logreg.json")


def case(name, n, features, classes, per_row, C, class_weight, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    # Imbalanced on purpose: class 0 gets extra rows, so "balanced" weights matter.
    y[: n // 3] = 0
    rows, cols, vals = [], [], []
    for i in range(n):
        k = rng.integers(1, per_row + 1)
        # Features correlate with the class (a class's own block) plus shared noise features.
        own = rng.choice(np.arange(y[i], features, classes), size=min(k, len(range(y[i], features, classes))), replace=False)
        noise = rng.choice(features, size=k, replace=False)
        f = np.unique(np.concatenate([own[: k // 2 + 1], noise[: k - k // 2]]))
        v = rng.random(len(f)) + 0.1
        v = v / np.linalg.norm(v)
        rows += [i] * len(f)
        cols += f.tolist()
        vals += v.tolist()
    X = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(n, features))
    X.sort_indices()
    model = LogisticRegression(C=C, class_weight=class_weight, tol=1e-10, max_iter=100000, multi_class="multinomial")
    model.fit(X.astype(np.float64), y)
    if classes == 2:  # scikit-learn keeps one row for two classes; the multinomial form has both
        raise SystemExit("use 3+ classes")
    counts = np.bincount(y, minlength=classes)
    s = np.ones(n) if class_weight is None else (n / (classes * counts))[y]
    X64 = X.astype(np.float64)

    def f(theta):
        W = theta[: classes * features].reshape(classes, features)
        b = theta[classes * features:]
        z = X64 @ W.T + b
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        data = -(s * logp[np.arange(n), y]).sum() / s.sum()
        R = np.exp(logp)
        R[np.arange(n), y] -= 1
        R *= (s / s.sum())[:, None]
        gW = (X64.T @ R).T + W / (C * s.sum())
        return data + (W ** 2).sum() / (2 * C * s.sum()), np.concatenate([gW.ravel(), R.sum(axis=0)]), data

    theta0 = np.concatenate([model.coef_.ravel(), model.intercept_])
    res = minimize(lambda t: f(t)[:2], theta0, jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 0, "maxiter": 100000, "maxcor": 30})
    objective, grad, data = f(res.x)
    assert np.abs(grad).max() < 1e-8, np.abs(grad).max()
    coef = res.x[: classes * features].reshape(classes, features)
    intercept = res.x[classes * features:]
    sklearn_diff = float(np.abs(coef - model.coef_).max())
    return {"name": name, "rows": n, "features": features, "classes": classes, "C": C,
            "class_weight": class_weight or "none", "indices": X.indices.tolist(),
            "offsets": X.indptr[:-1].tolist(), "values": X.data.astype(float).tolist(), "labels": y.tolist(),
            "coef": coef.flatten().tolist(), "intercept": intercept.tolist(), "data_loss": data,
            "objective": objective, "sklearn_diff": sklearn_diff}


def main():
    cases = [
        case("balanced_C1", 300, 60, 4, 8, 1.0, "balanced", 1),
        case("plain_C10", 240, 40, 3, 6, 10.0, None, 2),
        case("balanced_C0.1", 200, 80, 5, 10, 0.1, "balanced", 3),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/golden/make_logreg_golden.py", "cases": cases}, f)
        f.write("\n")
    for c in cases:
        print(c["name"], "objective", c["objective"], "max |coef - scikit-learn's coef_|", c["sklearn_diff"])


main()
