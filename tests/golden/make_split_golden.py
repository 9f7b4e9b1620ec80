#!/usr/bin/python3
"""Writes split_golden.json: per-class split counts from scikit-learn for Kiln's stratified split tests.

Run with Debian's python3-sklearn (1.2):  /usr/bin/python3 tests/golden/make_split_golden.py

For train_test_split(..., stratify=y) the per-class counts are fixed by _approximate_mode except where
it breaks ties between equal remainders with numpy's generator. For every case this script computes
the lowest and highest count each class can get (equal where no tie decides it) with the same numpy
arithmetic, then checks them against scikit-learn itself over many random_states. Validation splits
are two calls: train_test_split(all, test_size) then train_test_split(rest, test_size=<val rows>).
StratifiedKFold(shuffle=True) per-fold per-class counts do not depend on the seed; they are recorded
as scikit-learn returns them (and checked to be the same for several seeds).
"""
import json
import math
import os
import warnings

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.model_selection._split import _validate_shuffle_split

SEEDS = range(40)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "split_golden.json")


def make_labels(counts, names, rng, order):
    """Label ids (into names) with the given per-class counts; order 'blocks' or 'shuffled'."""
    y = np.repeat(np.arange(len(counts)), counts)
    if order == "shuffled":
        rng.shuffle(y)
    return y


def rle(y):
    runs = []
    for v in y.tolist():
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return runs


def mode_bounds(counts, n_draws):
    """Lowest/highest per-class result of sklearn.utils._approximate_mode over all tie-breaks."""
    counts = np.asarray(counts, dtype=np.int64)
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    lo = floored.astype(int)
    hi = lo.copy()
    tie = False
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            if len(inds) <= need:
                lo[inds] += 1
                hi[inds] += 1
                need -= len(inds)
            else:
                hi[inds] += 1
                tie = True
                need = 0
            if need == 0:
                break
    return lo, hi, tie


def per_class(indices, y, n_classes):
    return np.bincount(y[np.asarray(indices, dtype=np.int64)], minlength=n_classes)


def split_case(name, counts, test_size, val_size=0, order="shuffled", rare=None, seed=0):
    rng = np.random.RandomState(seed)
    names = CLASS_NAMES(len(counts), rng)
    if sum(counts) > 2000:
        order = "blocks"  # split counts do not depend on row order; keeps the golden file small
    y = make_labels(counts, names, rng, order)
    counts = np.asarray(counts)
    n_classes = len(counts)
    kept = counts >= 2
    if rare is None:
        assert kept.all(), name
    kept_ids = np.where(kept)[0]
    idx = np.where(kept[y])[0]          # rows that are split
    n = len(idx)
    kcounts = counts[kept_ids]

    n_train1, n_test = _validate_shuffle_split(n, test_size, None, default_test_size=0.25)
    train1_lo, train1_hi, tie1 = mode_bounds(kcounts, n_train1)
    test_lo, test_hi = kcounts - train1_hi, kcounts - train1_lo
    val_lo = val_hi = np.zeros(len(kcounts), dtype=int)
    train_lo, train_hi, tie2 = train1_lo, train1_hi, False
    n_val = 0
    if val_size:
        assert not tie1, f"{name}: validation cases need a tie-free test stage"
        n_val = math.ceil(val_size * n) if isinstance(val_size, float) else val_size
        rest = train1_lo
        train_lo, train_hi, tie2 = mode_bounds(rest, int(rest.sum()) - n_val)
        val_lo, val_hi = rest - train_hi, rest - train_lo

    # Check the bounds against scikit-learn itself.
    seen_train = set()
    for s in SEEDS:
        rest_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=y[idx], random_state=s)
        got_test = per_class(test_idx, y, n_classes)[kept_ids]
        assert len(test_idx) == n_test
        assert (test_lo <= got_test).all() and (got_test <= test_hi).all(), (name, got_test, test_lo, test_hi)
        train_idx, val_idx = rest_idx, []
        if val_size:
            train_idx, val_idx = train_test_split(rest_idx, test_size=n_val, stratify=y[rest_idx], random_state=s)
            got_val = per_class(val_idx, y, n_classes)[kept_ids]
            assert (val_lo <= got_val).all() and (got_val <= val_hi).all(), (name, got_val, val_lo, val_hi)
        got_train = per_class(train_idx, y, n_classes)[kept_ids]
        assert (train_lo <= got_train).all() and (got_train <= train_hi).all(), (name, got_train)
        seen_train.add(tuple(got_train))
    ties = bool(tie1 or tie2)
    assert ties or len(seen_train) == 1, name

    def full(values, rare_value):
        out = np.full(n_classes, rare_value, dtype=int)
        out[kept_ids] = values
        return out.tolist()

    rare_train = 1 if rare == "train-only" else 0
    return {
        "name": name,
        "classes": names,
        "y_rle": rle(y),
        "test_size": test_size,
        "val_size": val_size,
        "rare_classes": rare or "error",
        "n_split": int(n),
        "n_test": int(n_test),
        "n_val": int(n_val),
        "ties": ties,
        "train_lo": full(train_lo, rare_train),
        "train_hi": full(train_hi, rare_train),
        "val_lo": full(val_lo, 0),
        "val_hi": full(val_hi, 0),
        "test_lo": full(test_lo, 0),
        "test_hi": full(test_hi, 0),
    }


def split_error(name, counts, test_size, val_size=0, seed=0):
    rng = np.random.RandomState(seed)
    names = CLASS_NAMES(len(counts), rng)
    y = make_labels(counts, names, rng, "shuffled")
    idx = np.arange(len(y))
    message = None
    try:
        rest, _ = train_test_split(idx, test_size=test_size, stratify=y, random_state=0)
        if val_size:
            n_val = math.ceil(val_size * len(y)) if isinstance(val_size, float) else val_size
            train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=0)
    except ValueError as e:
        message = str(e)
    assert message is not None, f"{name}: scikit-learn accepted it"
    return {"name": name, "classes": names, "y_rle": rle(y), "test_size": test_size, "val_size": val_size,
            "sklearn_error": message}


def kfold_case(name, counts, k, seed=0, order="shuffled"):
    rng = np.random.RandomState(seed)
    names = CLASS_NAMES(len(counts), rng)
    y = make_labels(counts, names, rng, order)
    X = np.zeros((len(y), 1))
    tables = []
    warned = False
    for s in range(5):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=s).split(X, y))
        warned = any("least populated class" in str(w.message) for w in caught)
        table = [per_class(test, y, len(counts)).tolist() for _, test in folds]
        tables.append(table)
        covered = np.sort(np.concatenate([test for _, test in folds]))
        assert (covered == np.arange(len(y))).all()
    assert all(t == tables[0] for t in tables), name
    return {"name": name, "classes": names, "y_rle": rle(y), "k": k, "warns": warned, "fold_counts": tables[0]}


def kfold_error(name, counts, k, seed=0):
    rng = np.random.RandomState(seed)
    names = CLASS_NAMES(len(counts), rng)
    y = make_labels(counts, names, rng, "shuffled")
    message = None
    try:
        list(StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(np.zeros((len(y), 1)), y))
    except ValueError as e:
        message = str(e)
    assert message is not None, name
    return {"name": name, "classes": names, "y_rle": rle(y), "k": k, "sklearn_error": message}


WORDS = ["sports", "politics", "tech", "Ünïcode", "business", "zeta", "alpha", "neg", "pos", "Neutral",
         "label with space", "b", "a", "10", "9", "health"]


def CLASS_NAMES(n, rng):
    """Class names whose byte order differs from their order of first appearance."""
    base = WORDS[:n] if n <= len(WORDS) else [f"class_{i:04d}" for i in range(n)]
    base = list(base)
    rng.shuffle(base)
    return base


def zipf_counts(n_classes, top, exponent, floor_count, rng):
    counts = [max(floor_count, int(top / (r + 1) ** exponent)) for r in range(n_classes)]
    return [c + int(rng.randint(0, 3)) for c in counts]


def main():
    rng = np.random.RandomState(1234)
    cases = []
    add = cases.append
    # Binary and small multi-class, float sizes.
    add(split_case("binary_balanced_0.2", [50, 50], 0.2))
    add(split_case("binary_imbalanced_0.2", [97, 13], 0.2))
    add(split_case("binary_imbalanced_0.25", [901, 99], 0.25))
    add(split_case("binary_odd_0.33", [41, 26], 0.33))
    add(split_case("three_0.1", [120, 45, 17], 0.1))
    add(split_case("three_0.5", [33, 21, 8], 0.5))
    add(split_case("four_0.15", [77, 52, 31, 9], 0.15))
    add(split_case("five_0.3", [101, 64, 39, 23, 11], 0.3))
    add(split_case("five_blocks_0.2", [101, 64, 39, 23, 11], 0.2, order="blocks"))
    add(split_case("six_0.05", [1000, 400, 170, 70, 33, 21], 0.05))
    add(split_case("seven_0.42", [55, 44, 37, 29, 18, 12, 7], 0.42))
    add(split_case("large_0.2", [6010, 2507, 1203, 611, 298, 97, 41], 0.2))
    add(split_case("large_0.125", [12345, 6789, 2345, 678, 91], 0.125))
    add(split_case("tiny_min_0.5", [2, 3], 0.5))
    add(split_case("one_class_0.2", [17], 0.2))
    add(split_case("near_full_0.9", [31, 19, 11], 0.9))
    # Integer sizes.
    add(split_case("int_binary_7", [23, 11], 7))
    add(split_case("int_five_12", [40, 27, 18, 9, 5], 12))
    add(split_case("int_three_exact_classes", [10, 7, 4], 3))
    add(split_case("int_large_1000", [5003, 2011, 997, 412], 1000))
    add(split_case("int_train_equals_classes", [3, 5, 4], 9))
    # Long tails (Zipf-like counts with a floor of 2-4 rows).
    for i, (n_classes, top, exp, floor_count, ts) in enumerate(
            [(20, 800, 1.1, 3, 0.2), (35, 2000, 1.3, 4, 0.25), (50, 500, 0.9, 3, 0.15),
             (12, 300, 1.5, 2, 0.3), (80, 3000, 1.2, 4, 0.1)]):
        add(split_case(f"longtail_{n_classes}_{ts}", zipf_counts(n_classes, top, exp, floor_count, rng), ts, seed=i))
    # Validation splits (test first, then validation from the rest, size relative to the whole).
    add(split_case("val_binary_0.1_0.1", [97, 13], 0.1, 0.1))
    add(split_case("val_five_0.2_0.1", [101, 64, 39, 23, 11], 0.2, 0.1))
    add(split_case("val_six_0.15_0.15", [1000, 400, 170, 70, 33, 21], 0.15, 0.15))
    add(split_case("val_large_0.1_0.2", [6010, 2507, 1203, 611, 298, 97, 41], 0.1, 0.2))
    add(split_case("val_int_20_15", [60, 31, 17, 8], 20, 15))
    add(split_case("val_mixed_0.2_25", [77, 52, 31, 9], 0.2, 25))
    add(split_case("val_mixed_30_0.1", [77, 52, 31, 9], 30, 0.1))
    add(split_case("val_longtail", zipf_counts(15, 400, 1.2, 5, rng), 0.2, 0.1, seed=7))
    # Ties decided at random by scikit-learn: equal remainders at the cut-off.
    add(split_case("tie_equal_counts", [5, 5, 5, 5], 0.3))
    add(split_case("tie_three_equal", [7, 7, 7], 0.5))
    add(split_case("tie_mixed", [9, 6, 6, 6, 3], 0.2))
    add(split_case("tie_val_stage", [10, 10, 10, 10, 20], 0.2, 0.125))
    add(split_case("tie_longtail_twos", [40, 12, 2, 2, 2, 2, 2, 2], 0.25))
    # Rare classes set aside, the rest split as scikit-learn would split it.
    add(split_case("rare_drop", [40, 22, 1, 9, 1], 0.25, rare="drop"))
    add(split_case("rare_train_only", [40, 22, 1, 9, 1], 0.25, rare="train-only"))
    add(split_case("rare_train_only_val", [60, 31, 1, 17], 0.2, 0.1, rare="train-only"))

    errors = [
        split_error("test_fewer_than_classes", [100, 80, 60, 40, 20], 0.01),
        split_error("train_fewer_than_classes", [4, 3, 3, 2, 2], 0.9),
        split_error("one_row_class", [10, 8, 1], 0.2),
        split_error("int_test_too_large", [10, 8], 18),
        split_error("int_test_too_small", [10, 8, 6], 2),
        split_error("val_fewer_than_classes", [100, 80, 60, 40, 20], 0.2, 0.01),
        split_error("val_leaves_class_short", [20, 10, 2], 0.2, 0.1),
    ]

    kfolds = [
        kfold_case("k2_binary", [10, 7], 2),
        kfold_case("k3_balanced", [30, 30, 30], 3),
        kfold_case("k5_three", [23, 17, 9], 5),
        kfold_case("k5_blocks", [23, 17, 9], 5, order="blocks"),
        kfold_case("k10_longtail", zipf_counts(25, 400, 1.1, 10, rng), 10, seed=3),
        kfold_case("k4_odd", [13, 11, 7, 5, 4], 4),
        kfold_case("k7_large", [1003, 517, 251, 61, 13], 7),
        kfold_case("k5_warns", [40, 20, 3], 5),
        kfold_case("k3_one_row_class_warns", [12, 9, 1], 3),
        kfold_case("k6_many_classes", [25 + 3 * i for i in range(16)], 6, seed=5),
    ]
    kfold_errors = [
        kfold_error("k_above_every_class", [3, 2, 4], 5),
        kfold_error("k_above_rows", [2, 1], 4),
    ]

    n_ties = sum(c["ties"] for c in cases)
    golden = {
        "generator": "tests/golden/make_split_golden.py",
        "sklearn_version": sklearn.__version__,
        "split_cases": cases,
        "split_errors": errors,
        "kfold_cases": kfolds,
        "kfold_errors": kfold_errors,
    }
    with open(OUT, "w") as f:
        json.dump(golden, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} split cases ({n_ties} with ties), {len(errors)} split errors, "
          f"{len(kfolds)} k-fold cases, {len(kfold_errors)} k-fold errors")


if __name__ == "__main__":
    main()
