#!/usr/bin/python3
"""Golden values for kiln::explain (src/explain): Shapley and Owen values from their definitions.

Reference: Debian's python3-numpy and python3-sklearn, brute force (no shap package). Regenerate
from the repository root:

    /usr/bin/python3 tests/golden/make_shap_golden.py

Writes tests/golden/explain/shap_golden.json with
  "tables": value tables v[mask] (mask bit i = feature i present) for M = 2..10 and 2 outputs, with
            their exact Shapley values (Σ over subsets of |S|!(M-|S|-1)!/M! [v(S∪i) - v(S)]) and
            their Owen values for Kiln's balanced binary hierarchy (contiguous spans, the left
            child takes ceil(n/2)), computed by the recursive definition with Shapley weights at
            every level of the tree (Owen 1977), not by Kiln's path formula;
  "mlp":    a small tanh network on 0/1 masks with M = 14 (2^M > the default 2M + 2048 budget, so
            Kernel SHAP samples), its weights and exact Shapley values;
  "linear": TF-IDF (scikit-learn's TfidfVectorizer, ngram_range (1, 2)) fitted on `train`, a
            weight per vocabulary term and class, the background's mean E[x], and for each text to
            explain the exact interventional SHAP values φ = w (x - E[x]) of its present features
            (with every [start, end) code-point span of the term in the original text), the sum
            over absent features, the base value b + Wᵀ E[x] and the logits.
"""

import json
import math
import os
import re
from itertools import combinations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explain", "shap_golden.json")


def shapley(m, v):
    """v: array [2^m, C]. Exact Shapley values [m, C] from the subset formula."""
    phi = np.zeros((m, v.shape[1]))
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for s in combinations(others, size):
                mask = sum(1 << j for j in s)
                phi[i] += w * (v[mask | (1 << i)] - v[mask])
    return phi


def tree(lo, hi):
    """Kiln's hierarchy over features lo..hi-1: a leaf index or a list of two subtrees."""
    if hi - lo == 1:
        return lo
    mid = lo + (hi - lo + 1) // 2
    return [tree(lo, mid), tree(mid, hi)]


def leaves(t):
    return [t] if isinstance(t, int) else [x for c in t for x in leaves(c)]


def owen(node, game, out):
    """Owen values of the players under `node` in `game` (a function of a frozenset of players):
    for each child B_k, average over coalitions R of the other children with Shapley weights of the
    quotient game, and recurse into B_k with the game T -> game(∪R ∪ T)."""
    if isinstance(node, int):
        out[node] += game(frozenset([node])) - game(frozenset())
        return
    k = len(node)
    for j, child in enumerate(node):
        others = [c for i, c in enumerate(node) if i != j]
        for size in range(k):
            w = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for r in combinations(range(len(others)), size):
                base = frozenset(x for idx in r for x in leaves(others[idx]))
                sub = np.zeros_like(out)
                owen(child, lambda t, base=base: game(base | t) - game(base), sub)
                out += w * sub


def owen_values(m, v):
    game = lambda s: v[sum(1 << j for j in s)]
    out = np.zeros((m, v.shape[1]))
    owen(tree(0, m), game, out)
    return out


def tables(rng):
    result = []
    for m in range(2, 11):
        v = rng.normal(size=(1 << m, 2))
        entry = {"m": m, "values": v.tolist(), "shapley": shapley(m, v).tolist()}
        if m <= 8:
            entry["owen"] = owen_values(m, v).tolist()
        result.append(entry)
    return result


def mlp(rng):
    m, hidden = 14, 8
    w1 = rng.normal(scale=0.6, size=(hidden, m))
    b1 = rng.normal(scale=0.3, size=hidden)
    w2 = rng.normal(scale=0.8, size=(2, hidden))
    b2 = rng.normal(scale=0.1, size=2)
    masks = ((np.arange(1 << m)[:, None] >> np.arange(m)[None, :]) & 1).astype(float)
    v = np.tanh(masks @ w1.T + b1) @ w2.T + b2
    return {"m": m, "w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(), "b2": b2.tolist(),
            "shapley": shapley(m, v).tolist()}


def linear(rng):
    train = ["the cat sat on the mat", "a dog sat on the log", "the cat chased the dog",
             "café au lait for the cat", "dogs and cats and birds", "the bird sang on the log"]
    background = ["the cat sat", "the dog ran on the mat", "birds sang"]
    explain = ["The cat sat on the mat, the cat!", "Café au lait for the dog", "nothing known here"]
    vec = TfidfVectorizer(ngram_range=(1, 2))
    vec.fit(train)
    vocab = vec.get_feature_names_out().tolist()
    classes = 3
    weights = rng.normal(size=(len(vocab), classes))
    bias = rng.normal(size=classes)
    mean = np.asarray(vec.transform(background).mean(axis=0)).ravel()
    out = []
    for text in explain:
        x = vec.transform([text]).toarray().ravel()
        present = np.nonzero(x)[0]
        phi = {vocab[j]: (weights[j] * (x[j] - mean[j])).tolist() for j in present}
        absent = -(weights[x == 0] * mean[x == 0][:, None]).sum(axis=0)
        # Spans: the analyzer's tokens (?u)\b\w\w+\b on the lowercased text (same length here).
        tokens = [(mt.group(), mt.start(), mt.end()) for mt in re.finditer(r"(?u)\b\w\w+\b", text.lower())]
        spans = {}
        for n in (1, 2):
            for i in range(len(tokens) - n + 1):
                term = " ".join(t[0] for t in tokens[i:i + n])
                if term in phi:
                    spans.setdefault(term, []).append([tokens[i][1], tokens[i + n - 1][2]])
        out.append({"text": text, "phi": phi, "spans": spans, "absent": absent.tolist(),
                    "base": (bias + mean @ weights).tolist(), "logits": (bias + x @ weights).tolist()})
    return {"train": train, "background": background, "classes": classes,
            "weights": {vocab[j]: weights[j].tolist() for j in range(len(vocab))}, "bias": bias.tolist(),
            "explanations": out}


def main():
    rng = np.random.default_rng(20)
    golden = {"tables": tables(rng), "mlp": mlp(rng), "linear": linear(rng)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f)
        f.write("\n")


if __name__ == "__main__":
    main()
