"""Tables for the training benchmarks, from the JSON-lines result files the scripts write.

  anchors RESULTS.jsonl      one table per dataset (mean ± std over split seeds) + paired comparisons
  schedules RESULTS.json     warmup+cosine vs constant: steps to target val loss, test macro-F1
  imbalance RESULTS.jsonl    cross-entropy vs class weighting vs focal: macro-F1, rare-class recall

A result line holds "dataset", "system" and the fields of `metrics.py score` plus, where measured,
"seed" (the split seed; `anchors` prints mean ± sample std over seeds), "train_s" (wall seconds, CSV
in to saved model), "predict_s" (wall seconds, test file in to predictions out, process start-up
included) and "load1" (the 1-minute load average when the run ended).
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


def mean_std(values):
    """(mean, sample standard deviation) of the non-None values; std is None under two values."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def fmt_ms(values, spec):
    m, s = mean_std(values)
    if m is None:
        return "-"
    return format(m, spec) + ("" if s is None else " ± " + format(s, spec))


def paired(a_runs, b_runs, f):
    """f(a, b) over the seeds both systems ran, as (mean, std)."""
    a, b = {r.get("seed"): r for r in a_runs}, {r.get("seed"): r for r in b_runs}
    return mean_std([f(a[k], b[k]) for k in a if k in b])


def anchors(path):
    datasets = OrderedDict()
    for r in load_lines(path):
        datasets.setdefault(r["dataset"], OrderedDict()).setdefault(r["system"], []).append(r)
    for name, systems in datasets.items():
        first = next(iter(systems.values()))[0]
        seeds = sorted({r.get("seed") for runs in systems.values() for r in runs}, key=str)
        print(f"\n== {name}: {first.get('n_train', '?')} training rows (train+val), "
              f"{first['n_test']} test rows, {first['classes']} classes; split seeds "
              f"{', '.join(map(str, seeds))} (mean ± sample std over them)")
        rows = []
        for system, runs in systems.items():
            tput = [r["n_test"] / r["predict_s"] if r.get("predict_s") else None for r in runs]
            rows.append([system, str(len(runs)), fmt_ms([r["accuracy"] for r in runs], ".4f"),
                         fmt_ms([r["macro_f1"] for r in runs], ".4f"),
                         fmt_ms([r["rare_recall"] for r in runs], ".4f"),
                         fmt_ms([r.get("train_s") for r in runs], ".1f"),
                         fmt_ms(tput, ",.0f")])
        print_table(["system", "seeds", "accuracy", "macro-F1", "rare-q recall", "train s", "predict texts/s"],
                    rows, "lrrrrrr")
        loads = [r["load1"] for runs in systems.values() for r in runs if r.get("load1") is not None]
        if loads:
            print(f"  1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f}")

        def compare(a, b, label):
            if a not in systems or b not in systems:
                return
            d = paired(systems[a], systems[b], lambda x, y: x["macro_f1"] - y["macro_f1"])
            t = paired(systems[a], systems[b], lambda x, y: x["train_s"] / y["train_s"])
            p = paired(systems[a], systems[b], lambda x, y: y["predict_s"] / x["predict_s"])
            if d[0] is None:
                return
            sd = lambda v, spec: "" if v is None else " ± " + format(v, spec)
            print(f"  {label}: macro-F1 {d[0]:+.4f}{sd(d[1], '.4f')}, train time x{t[0]:.2f}{sd(t[1], '.2f')}, "
                  f"predict throughput x{p[0]:.2f}{sd(p[1], '.2f')} (paired by seed; first/second)")

        compare("kiln-default", "fasttext-tuned", "kiln-default vs fasttext-tuned")
        compare("kiln-default", "fasttext", "kiln-default vs fasttext")
        compare("kiln-linear", "sklearn-balanced", "kiln-linear vs sklearn-balanced")
        compare("kiln-linear", "sklearn", "kiln-linear vs sklearn")
        compare("kiln-seed-recipe", "sklearn", "kiln-seed-recipe vs sklearn")


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
