#!/usr/bin/python3
"""Kernel SHAP in numpy: the algorithm of shap's KernelExplainer (shap 0.41 _kernel.py: Shapley-kernel
weights, whole sizes enumerated while the budget lasts, paired sampling of the rest, efficiency by
eliminating the last feature), written straightforwardly as a user without the shap package would,
on the same model outputs as `kiln explain --method kernel`: a Kiln linear- or mlp-family artifact
(TF-IDF word features + softmax regression, or + the feed-forward network of src/nn/mlp_model.cpp)
read back into scikit-learn's TfidfVectorizer and numpy weight matrices, words masked by dropping
them (as Kiln does for bag models).

    kernel_shap.py ARTIFACT TEXTS.txt [NSAMPLES]  -> one JSON line per text: CPU seconds, M, phi
"""

import json
import math
import os
import re
import sys
import time
from itertools import combinations

import numpy as np
from scipy.special import erf
from sklearn.feature_extraction.text import TfidfVectorizer

WORD = re.compile(r"\w+")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(data[s:e], dtype=np.float32).reshape(info["shape"])
    return out


def load_model(artifact):
    manifest = json.load(open(os.path.join(artifact, "kiln.json")))
    pre = manifest["preprocessors"][0]
    state = json.load(open(os.path.join(artifact, pre["files"]["state"])))
    o = state["options"]
    vec = TfidfVectorizer(lowercase=o["lowercase"], ngram_range=tuple(o["ngram_range"]), norm=o["norm"],
                          use_idf=o["use_idf"], smooth_idf=o["smooth_idf"], sublinear_tf=o["sublinear_tf"],
                          binary=o["binary"], dtype=np.float32)
    vec.vocabulary_ = {t: i for i, t in enumerate(state["vocabulary"])}
    if o["use_idf"]:
        vec.idf_ = np.asarray(state["idf"], dtype=np.float64)
    w = {k: v.astype(np.float64) for k, v in load_safetensors(os.path.join(artifact, "model.safetensors")).items()}
    model = manifest["model"]
    if model["family"] != "mlp":
        table, bias = w["embedding.weight"], w["bias"]
        return vec, (lambda x: np.asarray(x @ table) + bias), vec.vocabulary_
    # The mlp family in eval mode: EmbeddingBag(sum) of the TF-IDF row + bias, then per layer
    # [LayerNorm,] activation, Linear (residual when the widths agree), and the output Linear.
    p = model["params"]
    act = {"relu": lambda h: np.maximum(h, 0), "tanh": np.tanh,
           "gelu": lambda h: 0.5 * h * (1 + erf(h / math.sqrt(2)))}[p["activation"]]

    def finish(h, k):
        if p["layer_norm"]:
            mu, var = h.mean(1, keepdims=True), h.var(1, keepdims=True)
            h = (h - mu) / np.sqrt(var + 1e-5) * w[f"norm{k}.weight"] + w[f"norm{k}.bias"]
        return act(h)

    def logits(x):
        h = finish(np.asarray(x @ w["embedding.weight"]) + w["embedding_bias"], 0)
        for k in range(1, len(p["hidden"])):
            f = finish(h @ w[f"hidden{k}.weight"].T + w[f"hidden{k}.bias"], k)
            h = h + f if p["residual"] and p["hidden"][k] == p["hidden"][k - 1] else f
        return h @ w["output.weight"].T + w["output.bias"]

    return vec, logits, vec.vocabulary_


def kernel_shap(m, f, nsamples=None, rng=None):
    """f(masks [n, m] of 0/1) -> outputs [n, C]."""
    rng = rng or np.random.default_rng(0)
    ends = f(np.array([np.zeros(m), np.ones(m)]))
    fnull, fx = ends[0], ends[1]
    if m == 1:
        return (fx - fnull)[None, :]
    nsamples = nsamples or 2 * m + 2048
    if m <= 30:
        nsamples = min(nsamples, 2 ** m - 2)
    num_subset_sizes = int(np.ceil((m - 1) / 2.0))
    num_paired = int(np.floor((m - 1) / 2.0))
    weight_vector = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, num_subset_sizes + 1)])
    weight_vector[:num_paired] *= 2
    weight_vector /= np.sum(weight_vector)
    masks, weights = [], []
    num_full = 0
    left = nsamples
    remaining = weight_vector.copy()
    for size in range(1, num_subset_sizes + 1):
        nsub = math.comb(m, size) * (2 if size <= num_paired else 1)
        if left * remaining[size - 1] / nsub < 1.0 - 1e-8:
            break
        num_full += 1
        left -= nsub
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight_vector[size - 1] / math.comb(m, size) / (2 if size <= num_paired else 1)
        for inds in combinations(range(m), size):
            mask = np.zeros(m)
            mask[list(inds)] = 1
            masks.append(mask); weights.append(w)
            if size <= num_paired:
                masks.append(1 - mask); weights.append(w)
    nfixed = len(masks)
    samples_left = nsamples - nfixed
    if num_full != num_subset_sizes and samples_left > 0:
        rw = weight_vector.copy()
        rw[:num_paired] /= 2
        rw = rw[num_full:]
        rw /= rw.sum()
        ind_set = rng.choice(len(rw), 4 * samples_left, p=rw)
        used = {}
        for ind in ind_set:
            if samples_left <= 0:
                break
            size = ind + num_full + 1
            mask = np.zeros(m)
            mask[rng.permutation(m)[:size]] = 1
            key = mask.tobytes()
            new = key not in used
            if new:
                used[key] = len(masks)
                samples_left -= 1
                masks.append(mask); weights.append(1.0)
            else:
                weights[used[key]] += 1.0
            if samples_left > 0 and size <= num_paired:
                if new:
                    samples_left -= 1
                    masks.append(1 - mask); weights.append(1.0)
                elif used[key] + 1 < len(weights):
                    weights[used[key] + 1] += 1.0
        weights = np.array(weights)
        weights[nfixed:] *= weight_vector[num_full:].sum() / weights[nfixed:].sum()
    z = np.array(masks)
    kw = np.asarray(weights, dtype=float)
    ey = f(z)
    delta = fx - fnull
    y = ey - fnull - z[:, -1:] * delta
    x = z[:, :-1] - z[:, -1:]
    wx = x.T * kw
    w = np.linalg.solve(wx @ x, wx @ y)
    return np.vstack([w, delta - w.sum(0)])


def main():
    artifact, texts_path = sys.argv[1], sys.argv[2]
    nsamples = int(sys.argv[3]) if len(sys.argv) > 3 else None
    vec, logits, vocab = load_model(artifact)
    analyzer = vec.build_analyzer()
    for text in open(texts_path).read().splitlines():
        t0 = time.process_time()
        # Words a feature covers (as Kiln): runs of \w that contain a vocabulary unigram or sit in a
        # vocabulary n-gram's span.
        tokens = [(mt.start(), mt.end()) for mt in re.finditer(r"(?u)\b\w\w+\b", text.lower())]
        covered = set()
        toks = [text.lower()[s:e] for s, e in tokens]
        for n in range(vec.ngram_range[0], vec.ngram_range[1] + 1):
            for i in range(len(toks) - n + 1):
                if " ".join(toks[i:i + n]) in vocab:
                    covered.update(range(tokens[i][0], tokens[i + n - 1][1]))
        words = [(mt.start(), mt.end()) for mt in WORD.finditer(text)
                 if any(k in covered for k in range(mt.start(), mt.end()))]

        def f(masks):
            docs = []
            for mask in masks:
                out, at = [], 0
                for keep, (s, e) in zip(mask, words):
                    if not keep:
                        out.append(text[at:s]); at = e
                out.append(text[at:])
                docs.append("".join(out))
            return logits(vec.transform(docs))

        phi = kernel_shap(len(words), f, nsamples)
        print(json.dumps({"seconds": time.process_time() - t0, "m": len(words), "phi": phi.tolist()}), flush=True)


if __name__ == "__main__":
    main()
