#!/usr/bin/python3
"""Golden thresholds for kiln::optimize's int8 calibrators (src/optimize/calibrator.cpp).

A numpy reference of TensorRT's entropy calibration, written from its description (the 8-bit
inference slides, Migacz 2017):
    for i in range(128, 2048):
        P = bins[:i]; P[i-1] += sum(bins[i:])            # clipped outliers fold into the last bin
        Q = bins[:i] merged into 128 levels, expanded over each level's non-empty bins
        divergence[i] = KL(P/sum P || Q/sum Q)           # inf where P > 0 and Q = 0
    threshold = (argmin(divergence) + 0.5) * bin_width
plus the percentile threshold (upper edge of the bin where the cumulative share reaches p).
Histograms come from |x| of seeded numpy samples; the C++ test reads the counts and must find the
same thresholds. Run: /usr/bin/python3 tests/golden/make_calibration_golden.py
"""
import json
import os

import numpy as np

BINS = 2048
LEVELS = 128


def entropy_threshold(bins, width):
    bins = np.asarray(bins, dtype=np.float64)
    if bins.sum() <= 0:
        return 0.5 * width
    divergences = np.full(BINS, np.inf)
    for i in range(LEVELS, BINS):
        p = bins[:i].copy()
        p[i - 1] += bins[i:].sum()
        kept = bins[:i]
        merged = i // LEVELS
        # level of each kept bin: j for bins [j*merged, (j+1)*merged), the last level to the end
        level = np.minimum(np.arange(i) // merged, LEVELS - 1)
        sums = np.bincount(level, weights=kept, minlength=LEVELS)
        nonzero = np.bincount(level, weights=(kept != 0).astype(np.float64), minlength=LEVELS)
        q = np.where(kept != 0, sums[level] / np.maximum(nonzero[level], 1), 0.0)
        if p.sum() <= 0 or q.sum() <= 0:
            continue
        p = p / p.sum()
        q = q / q.sum()
        mask = p > 0
        if np.any(q[mask] == 0):
            continue  # infinite divergence
        divergences[i] = np.sum(p[mask] * np.log(p[mask] / q[mask]))
    if not np.isfinite(divergences).any():
        return BINS * width
    best = int(np.argmin(divergences))  # first minimum
    return (best + 0.5) * width


def percentile_threshold(bins, width, pct):
    bins = np.asarray(bins, dtype=np.float64)
    cum = np.cumsum(bins)
    k = int(np.searchsorted(cum, cum[-1] * pct / 100.0, side="left"))
    return (k + 1) * width


def histogram(x):
    a = np.abs(x)
    top = float(a.max())
    counts, _ = np.histogram(a, bins=BINS, range=(0.0, top))
    return counts.astype(np.int64), top / BINS


def main():
    rng = np.random.default_rng(20261130)
    samples = {
        "gaussian": rng.normal(0, 1, 200000),
        "laplace_outliers": np.concatenate([rng.laplace(0, 0.5, 200000), rng.normal(0, 40, 20)]),
        "relu_like": np.maximum(rng.normal(0.2, 1, 200000), 0),
        "sparse_bins": np.round(rng.normal(0, 3, 50000) * 4) / 4,
        "heavy_tail": rng.standard_t(2, 100000),
    }
    cases = []
    for name, x in samples.items():
        counts, width = histogram(x)
        cases.append({
            "name": name,
            "bins": counts.tolist(),
            "bin_width": width,
            "entropy": entropy_threshold(counts, width),
            "percentile_99_99": percentile_threshold(counts, width, 99.99),
            "percentile_99": percentile_threshold(counts, width, 99.0),
        })
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimize", "calibration_golden.json")
    with open(out, "w") as f:
        json.dump({"generator": "tests/golden/make_calibration_golden.py", "cases": cases}, f)
        f.write("\n")
    for c in cases:
        print(c["name"], c["entropy"], c["percentile_99_99"])


if __name__ == "__main__":
    main()
