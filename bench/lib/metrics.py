"""Metrics for the training benchmarks, computed the same way for every system from its predictions.

  score TEST.csv PREDICTIONS FORMAT TRAIN.csv [TRAIN.csv ...]  -> one JSON object on stdout
      FORMAT: kiln (JSON lines with "label", from `kiln predict`), fasttext (`__label__X` lines,
      from `fasttext predict`), or plain (one label per line).
      accuracy, macro_f1, weighted_f1 (sklearn.metrics over the classes present in TEST.csv: a class
      with no test rows has no recall to average), rare_recall: mean recall of the rarest quarter of
      those classes by training count (the ceil(C/4) smallest counts in TRAIN.csv, ties broken by
      name), rare_classes: that list.
  schedule RUNDIR_A RUNDIR_B  -> JSON comparing two `kiln train` runs' metrics.jsonl: steps to reach
      run B's best validation loss (and the worse of the two bests), steps counted from the step
      records (validation loss exists once per epoch, so the resolution is one epoch).
  manifest MODEL_DIR  -> the artifact's own test metrics (kiln.json), for a consistency check.
"""
import csv
import json
import math
import os
import sys
from collections import Counter


def read_labels(paths):
    csv.field_size_limit(sys.maxsize)
    labels = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            labels.extend(row["label"] for row in csv.DictReader(f))
    return labels


def read_predictions(path, fmt):
    preds = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if fmt == "kiln":
                if not line.strip():
                    continue
                preds.append(str(json.loads(line)["label"]))
            elif fmt == "fasttext":
                # `fasttext predict` with k=1 prints one label per input line (empty if none).
                # Labels with whitespace were written with U+2581 in its place (anchors.py).
                preds.append(line.split(" ")[0][len("__label__"):].replace("\u2581", " ")
                             if line.startswith("__label__") else "")
            elif fmt == "plain":
                preds.append(line)
            else:
                sys.exit(f"metrics.py: unknown predictions format {fmt!r} (kiln|fasttext|plain)")
    return preds


def rarest_quarter(train_labels, classes):
    counts = Counter(train_labels)
    ranked = sorted(classes, key=lambda c: (counts.get(c, 0), c))
    return ranked[: math.ceil(len(ranked) / 4)], counts


def score(test_csv, pred_path, fmt, train_csvs):
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    y_true = read_labels([test_csv])
    y_pred = read_predictions(pred_path, fmt)
    if len(y_pred) != len(y_true):
        sys.exit(f"metrics.py: {pred_path} holds {len(y_pred)} predictions for {len(y_true)} rows of {test_csv}")
    classes = sorted(set(y_true))
    rare, counts = rarest_quarter(read_labels(train_csvs), classes)
    rare_recalls = recall_score(y_true, y_pred, labels=rare, average=None, zero_division=0)
    return {
        "n_test": len(y_true),
        "classes": len(classes),
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0),
        "rare_recall": float(sum(rare_recalls) / len(rare)),
        "rare_classes": {c: {"train_count": counts.get(c, 0), "recall": float(r)} for c, r in zip(rare, rare_recalls)},
    }


def read_run(rundir):
    steps_by_epoch, epochs = Counter(), []
    with open(os.path.join(rundir, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("type") == "step":
                steps_by_epoch[rec["epoch"]] += 1
            elif rec.get("type") == "epoch":
                epochs.append(rec)
    if not epochs:
        sys.exit(f"metrics.py: {rundir}/metrics.jsonl has no epoch records")
    if any(e.get("val_loss") is None for e in epochs):
        sys.exit(f"metrics.py: {rundir}/metrics.jsonl has epochs without val_loss (train with --val)")
    done = 0
    for e in epochs:
        done += steps_by_epoch[e["epoch"]]
        e["steps_done"] = done
    return epochs


def first_reaching(epochs, target):
    for e in epochs:
        if e["val_loss"] <= target:
            return e
    return None


def schedule(run_a, run_b):
    a, b = read_run(run_a), read_run(run_b)
    best_a = min(e["val_loss"] for e in a)
    best_b = min(e["val_loss"] for e in b)

    def reach(target):
        ea, eb = first_reaching(a, target), first_reaching(b, target)
        return {
            "target_val_loss": target,
            "a_steps": ea and ea["steps_done"], "a_epoch": ea and ea["epoch"],
            "b_steps": eb and eb["steps_done"], "b_epoch": eb and eb["epoch"],
        }

    return {
        "a": {"best_val_loss": best_a, "epochs": len(a), "steps": a[-1]["steps_done"],
              "seconds": sum(e.get("seconds", 0.0) for e in a),
              "val_loss": [e["val_loss"] for e in a]},
        "b": {"best_val_loss": best_b, "epochs": len(b), "steps": b[-1]["steps_done"],
              "seconds": sum(e.get("seconds", 0.0) for e in b),
              "val_loss": [e["val_loss"] for e in b]},
        "to_b_best": reach(best_b),
        "to_common": reach(max(best_a, best_b)),
    }


def manifest(model_dir):
    with open(os.path.join(model_dir, "kiln.json"), encoding="utf-8") as f:
        m = json.load(f)
    test = (m.get("metrics") or {}).get("test") or {}
    return {k: test.get(k) for k in ("accuracy", "macro_f1", "weighted_f1")}


def main(argv):
    if len(argv) >= 6 and argv[1] == "score":
        out = score(argv[2], argv[3], argv[4], argv[5:])
    elif len(argv) == 4 and argv[1] == "schedule":
        out = schedule(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "manifest":
        out = manifest(argv[2])
    else:
        sys.exit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
