#!/usr/bin/python3
"""Golden k-means and background summaries for kiln::explain::kmeans / summarize_background
(src/explain/kmeans.cpp), from Debian's python3-sklearn (1.2) and numpy.

    /usr/bin/python3 tests/golden/make_kmeans_golden.py

Writes tests/golden/explain/kmeans_golden.json:
  "lloyd":  overlapping random data; scikit-learn's KMeans(algorithm="lloyd", n_init=1) from given
            initial centres (the deterministic part of k-means) for two tolerances: its centres,
            labels, inertia and n_iter_; and shap.kmeans's summary of the same fit (shap's
            _legacy.kmeans: each centre coordinate replaced by the closest value of its column in
            the data, np.argmin so the first such row; weights = the share of rows per cluster);
  "blobs":  well separated clusters, KMeans(random_state=0) with k-means++ starts (n_init=10):
            every start ends in the same partition, so the centres (sorted) and the inertia do not
            depend on the random generator.
"""

import json
import os

import numpy as np
from sklearn.cluster import KMeans

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explain", "kmeans_golden.json")


def shap_summary(x, km):
    centers = km.cluster_centers_.copy()
    for i in range(centers.shape[0]):
        for j in range(centers.shape[1]):
            centers[i, j] = x[np.argmin(np.abs(x[:, j] - centers[i, j])), j]
    weights = np.bincount(km.labels_, minlength=centers.shape[0]) / x.shape[0]
    return centers, weights


def main():
    rng = np.random.default_rng(20)
    x = np.round(rng.uniform(0, 1, size=(80, 3)), 3)  # rounded: repeated values per column
    init = x[[0, 1, 2, 3]]
    lloyd = {"x": x.tolist(), "init": init.tolist(), "runs": []}
    for tol in (1e-4, 0.0, 0.05):
        km = KMeans(n_clusters=4, init=init, n_init=1, algorithm="lloyd", tol=tol, max_iter=300).fit(x)
        rows, weights = shap_summary(x, km)
        lloyd["runs"].append({"tol": tol, "centers": km.cluster_centers_.tolist(), "labels": km.labels_.tolist(),
                              "inertia": float(km.inertia_), "n_iter": int(km.n_iter_),
                              "summary_rows": rows.tolist(), "summary_weights": weights.tolist()})
    means = np.array([[0, 0, 0, 0], [10, 0, 5, 0], [0, 10, 0, -5]], dtype=float)
    blobs = np.concatenate([m + rng.normal(0, 0.5, size=(30, 4)) for m in means])
    rng.shuffle(blobs)
    km = KMeans(n_clusters=3, random_state=0, n_init=10).fit(blobs)
    order = np.lexsort(km.cluster_centers_.T[::-1])
    out = {"lloyd": lloyd,
           "blobs": {"x": blobs.tolist(), "k": 3, "centers_sorted": km.cluster_centers_[order].tolist(),
                     "inertia": float(km.inertia_)}}
    with open(OUT, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
