#!/usr/bin/python3
"""Writes metrics_golden.json: classification metrics from scikit-learn for Kiln's metrics tests.

Run with Debian's python3-sklearn (1.2):  /usr/bin/python3 tests/golden/make_metrics_golden.py

Every case holds its inputs (y_true, y_pred, row-major float64 probabilities [n, C]) and the values
scikit-learn returns with labels=range(C) and its defaults (zero_division="warn", i.e. 0.0):
precision_recall_fscore_support (per class and macro / weighted / micro), accuracy_score,
confusion_matrix, top_k_accuracy_score (for C = 2 scikit-learn takes the class-1 column and predicts
class 1 iff its score > 0.5), log_loss (eps="auto" = float64 eps, rows clipped then renormalised) and
classification_report(digits=4).

Expected calibration error has no scikit-learn function; the reference is ece() below: confidence =
max row probability, correct = (first argmax == y_true), B equal-width bins with edges e_i = i / B,
bin 0 = [e_0, e_1], bin b > 0 = (e_b, e_{b+1}]; ECE = sum_b (n_b / n) * |acc_b - conf_b|.
"""
import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_golden.json")
SEED = 20240611


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ece(y_true, probs, bins):
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.arange(bins + 1, dtype=np.float64) / bins
    total = 0.0
    reliability = []
    for b in range(bins):
        lo, hi = edges[b], edges[b + 1]
        if b == 0:
            mask = (conf >= lo) & (conf <= hi)
        else:
            mask = (conf > lo) & (conf <= hi)
        if b == bins - 1:
            mask |= conf > hi
        count = int(mask.sum())
        if count == 0:
            reliability.append({"count": 0, "mean_confidence": 0.0, "accuracy": 0.0})
            continue
        acc_b = correct[mask].mean()
        conf_b = conf[mask].mean()
        total += (count / len(y_true)) * abs(acc_b - conf_b)
        reliability.append({"count": count, "mean_confidence": float(conf_b), "accuracy": float(acc_b)})
    return float(total), reliability


def reference(name, y_true, y_pred, probs, top_k, ece_bins, note):
    c = probs.shape[1]
    labels = list(range(c))
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None)
        avg = {}
        for average in ("macro", "weighted", "micro"):
            ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average)
            avg[average] = (float(ap), float(ar), float(af))
        topk = {}
        for k in top_k:
            score = probs[:, 1] if c == 2 else probs
            topk[str(k)] = float(top_k_accuracy_score(y_true, score, k=k, labels=labels))
        names = [f"class_{i}" for i in labels]
        report = classification_report(y_true, y_pred, labels=labels, target_names=names, digits=4)
        ll = float(log_loss(y_true, probs, labels=labels))
    e, reliability = ece(y_true, probs, ece_bins)
    return {
        "name": name,
        "note": note,
        "num_classes": c,
        "top_k": list(top_k),
        "ece_bins": ece_bins,
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
        "probabilities": probs.reshape(-1).tolist(),
        "expected": {
            "n": int(len(y_true)),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "precision": [float(v) for v in p],
            "recall": [float(v) for v in r],
            "f1": [float(v) for v in f],
            "support": [int(v) for v in s],
            "macro": avg["macro"],
            "weighted": avg["weighted"],
            "micro": avg["micro"],
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "top_k_accuracy": topk,
            "log_loss": ll,
            "ece": e,
            "reliability": reliability,
            "report_names": names,
            "report": report,
        },
    }


def main():
    rng = np.random.default_rng(SEED)
    cases = []

    # Balanced: 5 classes, logits favour the true class; y_pred = argmax.
    c, n = 5, 300
    y = rng.integers(0, c, n)
    logits = rng.normal(0.0, 1.0, (n, c))
    logits[np.arange(n), y] += 1.5
    probs = softmax(logits)
    cases.append(reference("balanced", y, probs.argmax(1), probs, [1, 2, 3, 5], 15,
                           "uniform classes, y_pred = argmax(probabilities)"))

    # Long tail: 8 classes with geometric frequencies; classes 5..7 are never predicted.
    c, n = 8, 400
    freq = 0.5 ** np.arange(c)
    y = rng.choice(c, size=n, p=freq / freq.sum())
    y[:3] = [5, 6, 7]
    logits = rng.normal(0.0, 1.2, (n, c))
    logits[np.arange(n), y] += 1.0
    logits[:, 5:] -= 50.0
    probs = softmax(logits)
    cases.append(reference("long_tail", y, probs.argmax(1), probs, [1, 3, 5, 8], 15,
                           "geometric class frequencies; classes 5, 6, 7 never predicted"))

    # Zero support: class 3 never true (but predicted), class 5 neither true nor predicted.
    c, n = 6, 250
    y = rng.choice([0, 1, 2, 4], size=n)
    logits = rng.normal(0.0, 1.0, (n, c))
    logits[np.arange(n), y] += 1.0
    logits[:, 5] -= 40.0
    probs = softmax(logits)
    pred = probs.argmax(1)
    assert (pred == 3).any() and not (pred == 5).any()
    cases.append(reference("zero_support", y, pred, probs, [1, 2, 3], 10,
                           "class 3 has zero support but is predicted; class 5 is neither true nor predicted"))

    # Binary, with some rows at exactly 0.5 / 0.5 and some saturated at 0 / 1.
    c, n = 2, 200
    y = rng.integers(0, c, n)
    p1 = 1.0 / (1.0 + np.exp(-(rng.normal(0.0, 1.5, n) + np.where(y == 1, 1.0, -1.0))))
    p1[:10] = 0.5
    p1[10:14] = [0.0, 1.0, 0.0, 1.0]
    probs = np.stack([1.0 - p1, p1], axis=1)
    pred = (p1 > 0.5).astype(np.int64)
    cases.append(reference("binary", y, pred, probs, [1, 2], 15,
                           "C = 2; rows 0..9 tie at 0.5, rows 10..13 saturated at 0 or 1"))

    # Ties for top-k: probabilities from small integer logits so rows repeat values; some uniform rows
    # (confidence exactly 0.2 = a bin edge) and one-hot rows (confidence 1, and log loss clipping).
    c, n = 5, 240
    y = rng.integers(0, c, n)
    logits = rng.integers(0, 3, (n, c)).astype(np.float64)
    probs = softmax(logits)
    probs[:12] = 1.0 / c
    onehot = rng.integers(0, c, 12)
    probs[12:24] = 0.0
    probs[np.arange(12, 24), onehot] = 1.0
    pred = probs.argmax(1)
    cases.append(reference("ties", y, pred, probs, [1, 2, 3, 4, 5, 6], 15,
                           "many tied probabilities (scikit-learn ranks the higher class id first among ties); "
                           "uniform and one-hot rows"))

    # y_pred not equal to argmax(probabilities): metrics from y_pred, ECE from the probabilities.
    c, n = 4, 120
    y = rng.integers(0, c, n)
    probs = softmax(rng.normal(0.0, 2.0, (n, c)))
    pred = rng.integers(0, c, n)
    cases.append(reference("independent_pred", y, pred, probs, [1, 2], 7,
                           "y_pred drawn independently of the probabilities"))

    doc = {
        "generator": "tests/golden/make_metrics_golden.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
