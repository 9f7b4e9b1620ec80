"""Tables for the training benchmarks, from the JSON-lines result files the scripts write.

  anchors RESULTS.jsonl      one table per dataset + Kiln-vs-anchor comparisons
  schedules RESULTS.json     warmup+cosine vs constant: steps to target val loss, test macro-F1
  imbalance RESULTS.jsonl    cross-entropy vs class weighting vs focal: macro-F1, rare-class recall

A result line holds "dataset", "system" and the fields of `metrics.py score` plus, where measured,
"train_s" (wall seconds, CSV in to saved model) and "predict_s" (wall seconds, test file in to
predictions out, process start-up included).
"""
import json
import sys
from collections import OrderedDict


def load_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(headers, rows, aligns):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, aligns))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def by_system(results):
    return {r["system"]: r for r in results}


def diff(a, b, key):
    if a is None or b is None or a.get(key) is None or b.get(key) is None:
        return None
    return a[key] - b[key]


def ratio(a, b, key):
    if a is None or b is None or not a.get(key) or not b.get(key):
        return None
    return a[key] / b[key]


def anchors(path):
    datasets = OrderedDict()
    for r in load_lines(path):
        datasets.setdefault(r["dataset"], []).append(r)
    for name, results in datasets.items():
        first = results[0]
        print(f"\n== {name}: {first.get('n_train', '?')} training rows (train+val), "
              f"{first['n_test']} test rows, {first['classes']} classes; "
              f"rarest quarter = {', '.join(first['rare_classes'])}")
        rows = []
        for r in results:
            tput = r["n_test"] / r["predict_s"] if r.get("predict_s") else None
            rows.append([r["system"], fmt(r["accuracy"], ".4f"), fmt(r["macro_f1"], ".4f"),
                         fmt(r["rare_recall"], ".4f"), fmt(r.get("train_s"), ".1f"),
                         fmt(r.get("predict_s"), ".2f"), fmt(tput, ",.0f")])
        print_table(["system", "accuracy", "macro-F1", "rare-q recall", "train s", "predict s", "texts/s"],
                    rows, "lrrrrrr")
        s = by_system(results)
        kd, ks, sk, ft = (s.get(k) for k in ("kiln-default", "kiln-seed-recipe", "sklearn", "fasttext"))
        out = []
        d = diff(kd, ft, "macro_f1")
        if d is not None:
            out.append(f"kiln default vs fastText: macro-F1 {d:+.4f}, "
                       f"train time x{ratio(kd, ft, 'train_s'):.2f} (kiln/fastText), "
                       f"predict throughput x{ratio(ft, kd, 'predict_s'):.2f} (kiln/fastText)")
        d = diff(ks, sk, "macro_f1")
        if d is not None:
            out.append(f"kiln seed recipe vs scikit-learn: macro-F1 {d:+.4f}, "
                       f"train time x{ratio(ks, sk, 'train_s'):.2f} (kiln/sklearn), "
                       f"predict throughput x{ratio(sk, ks, 'predict_s'):.2f} (kiln/sklearn)")
        for line in out:
            print("  " + line)


def schedules(path):
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    sched, wc, const = r["schedule"], r["warmup_cosine"], r["constant"]

    def steps(v):
        return "not reached" if v is None else str(v)

    print(f"\n== {r['dataset']}: seed recipe, {r['epochs']} epochs, --patience 0, "
          f"{sched['a']['steps'] // max(sched['a']['epochs'], 1)} steps/epoch "
          f"(validation loss is measured once per epoch: step counts are epoch ends)")
    t = sched["to_b_best"]
    c = sched["to_common"]
    rows = [
        ["warmup_cosine (warmup 0.1)", fmt(sched["a"]["best_val_loss"], ".4f"), steps(t["a_steps"]),
         steps(c["a_steps"]), fmt(wc["macro_f1"], ".4f"), fmt(wc["accuracy"], ".4f"),
         str(wc.get("best_epoch", "-")), fmt(sched["a"]["seconds"], ".0f")],
        ["constant (warmup 0)", fmt(sched["b"]["best_val_loss"], ".4f"), steps(t["b_steps"]),
         steps(c["b_steps"]), fmt(const["macro_f1"], ".4f"), fmt(const["accuracy"], ".4f"),
         str(const.get("best_epoch", "-")), fmt(sched["b"]["seconds"], ".0f")],
    ]
    print_table(["schedule", "best val loss", "steps to const best", "steps to common",
                 "test macro-F1", "test acc", "saved epoch", "train s"], rows, "lrrrrrrr")
    print(f"  target A = constant's best val loss {t['target_val_loss']:.4f}; "
          f"target B (common) = the worse of the two bests {c['target_val_loss']:.4f}")
    for label, tgt in (("A", t), ("B", c)):
        a, b = tgt["a_steps"], tgt["b_steps"]
        if a is None:
            print(f"  target {label}: warmup_cosine never reached it in {sched['a']['steps']} steps")
        elif b:
            print(f"  target {label}: warmup_cosine needs {a} steps vs constant {b}: "
                  f"{(a - b) / b:+.1%} steps")
    d = wc["macro_f1"] - const["macro_f1"]
    print(f"  test macro-F1: warmup_cosine {wc['macro_f1']:.4f} vs constant {const['macro_f1']:.4f}: "
          f"{d:+.4f} absolute, {d / const['macro_f1']:+.1%} relative" if const["macro_f1"] else "")
    print("  val loss per epoch, warmup_cosine: " + " ".join(f"{v:.3f}" for v in sched["a"]["val_loss"]))
    print("  val loss per epoch, constant:      " + " ".join(f"{v:.3f}" for v in sched["b"]["val_loss"]))


def imbalance(path):
    results = load_lines(path)
    first = results[0]
    base = by_system(results).get("cross_entropy")
    print(f"\n== {first['dataset']}: {first['classes']} classes in test, rarest quarter "
          f"({len(first['rare_classes'])}): " +
          ", ".join(f"{c} ({v['train_count']})" for c, v in first["rare_classes"].items()))
    rows = []
    for r in results:
        rel = None
        if base and base["rare_recall"]:
            rel = (r["rare_recall"] - base["rare_recall"]) / base["rare_recall"]
        rows.append([r["system"], fmt(r["accuracy"], ".4f"), fmt(r["macro_f1"], ".4f"),
                     fmt(r["rare_recall"], ".4f"),
                     "-" if rel is None or r is base else f"{rel:+.1%}",
                     fmt(r.get("train_s"), ".0f")])
    print_table(["loss", "accuracy", "macro-F1", "rare-q recall", "rare-q vs CE", "train s"], rows, "lrrrrr")
    if base and not base["rare_recall"]:
        print("  (cross-entropy's rare-quarter recall is 0: relative change undefined)")


def main(argv):
    if len(argv) == 3 and argv[1] in ("anchors", "schedules", "imbalance"):
        {"anchors": anchors, "schedules": schedules, "imbalance": imbalance}[argv[1]](argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
