"""Prints bench/gradient_remedies.sh's table from its results.jsonl.

Usage: gradient_table.py RESULTS.jsonl

Per arm: test macro-F1, its delta to the family's `full` arm, seconds, and the per-layer gradient
norms of the run's metrics.jsonl (step records' layer_grad_norms, logged every 50 steps and at each
epoch's last step, before clipping), averaged over the last epoch's logged steps. Parameters are
grouped into layers: mlp `embedding*` = L0, `hidden<k>`/`norm<k>` = L<k>, `output` = head; bert
`embeddings.*` = emb, `encoder.layer.<i>.*` = L<i>, `pooler`/`classifier`/final `LayerNorm` = head. A
group's norm is the root of its parameters' summed squared norms.
"""
import json
import math
import re
import sys


def layer_of(name):
    m = re.match(r"encoder\.layer\.(\d+)\.", name)
    if m:
        return (1, int(m.group(1)), f"L{m.group(1)}")
    if name.startswith("embeddings."):
        return (0, 0, "emb")
    m = re.match(r"(?:hidden|norm)(\d+)\.", name)
    if m:
        k = int(m.group(1))
        return (0, 0, "L0") if k == 0 else (1, k, f"L{k}")
    if name.startswith("embedding"):
        return (0, 0, "L0")
    return (2, 0, "head")


def layer_norms(run):
    steps, last_epoch = [], 0
    with open(f"{run}/metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "step" and "layer_grad_norms" in r:
                steps.append(r)
                last_epoch = max(last_epoch, r["epoch"])
    steps = [s for s in steps if s["epoch"] == last_epoch]
    sums = {}
    for s in steps:
        groups = {}
        for name, norm in s["layer_grad_norms"].items():
            key = layer_of(name)
            groups[key] = groups.get(key, 0.0) + norm * norm
        for key, sq in groups.items():
            sums.setdefault(key, []).append(math.sqrt(sq))
    return [(key[2], sum(v) / len(v)) for key, v in sorted(sums.items())]


def main(path):
    rows = [json.loads(l) for l in open(path, encoding="utf-8")]
    for family in dict.fromkeys(r["family"] for r in rows):
        arms = [r for r in rows if r["family"] == family]
        full = next((r.get("macro_f1") for r in arms if r["arm"] == "full"), None)
        print(f"\n{family}: test macro-F1 and mean per-layer gradient norm over the last epoch (first layer .. head)")
        print(f"{'arm':<14}{'macro-F1':>9}{'delta':>8}{'seconds':>9}  {'first/last':>10}  per-layer norms")
        for r in arms:
            if r.get("failed"):
                print(f"{r['arm']:<14}{'failed':>9}{'':>8}{r['seconds']:>9.0f}  (training diverged or failed: {r['run']}.train.log)")
                continue
            norms = layer_norms(r["run"])
            body = [v for k, v in norms if k != "head"]
            ratio = body[0] / body[-1] if len(body) >= 2 and body[-1] > 0 else float("nan")
            delta = "" if full is None else f"{(full - r['macro_f1']) * 100:+.1f}"
            cells = " ".join(f"{k}={v:.2e}" for k, v in norms)
            print(f"{r['arm']:<14}{r['macro_f1'] * 100:>8.1f}%{delta:>8}{r['seconds']:>9.0f}  {ratio:>10.2e}  {cells}")
        print("delta = full arm's macro-F1 minus this arm's, in points: what the remedy(ies) switched off had bought")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
