#!/usr/bin/env bash
# Forgetting benchmark of kiln learn (continual learning with a replay buffer), two settings:
#   DATASET=brown (default; class-incremental): a --model linear artifact is trained on half of
#     Brown's genres (the "old" classes), then the other half (the "new" classes, --allow-new-labels)
#     is streamed to kiln learn as feedback.
#   DATASET=spamassassin (domain-incremental): the same labels, ham and spam, throughout; the model
#     is trained on the corpus's early groups (easy-ham-1, spam-1: the "old" data) and the later
#     groups (easy-ham-2, spam-2, hard-ham-1: the "new" data) are streamed. "Old" and "new"
#     accuracies below are then over the test rows of the early and of the later groups.
# Compared:
#   none       no replay (--replay-ratio 0: fine-tune on the new items only)
#   flow       the flow's buffer (--buffer seed: the last 1,000 items, batches of 32)
#   reservoir  reservoir sampling, 1,000 items (uniform over the stream and the replayed old data)
#   balanced   class-balanced reservoir, 1,000 items
#   scratch    retraining from scratch on everything (old training rows + the whole stream): the ceiling
# The buffers start with the old classes' training rows (kiln learn --history: put in the buffer, not
# scored or trained on), so replay has old items to draw from. Reported on
# a held-out test split of every genre after the stream: accuracy on the old and on the new classes,
# average accuracy (mean of the two) and forgetting (old-class accuracy before the stream minus after),
# with wall and CPU seconds each used and the ratio to retraining from scratch.
# The gate is relaxed (--max-regression 100) so each strategy's own forgetting is measured, not the
# gate's veto.
#
#   bash bench/forgetting.sh [build/kiln]
# Environment: DATASET (brown | spamassassin), PER_CLASS (Brown: 700 stream/training rows per genre;
#   science_fiction has 748 after its test and validation rows), TEST_PER_CLASS (Brown: 100 per
#   genre; SpamAssassin's groups, 10x apart in size, are split 15% test, 10% validation for the old
#   groups, the rest training or stream), UPDATE_EVERY (400), EPOCHS (4 per update), THREADS (2),
#   REPEAT (3: each learning run and the retraining are timed this many times, and the medians
#   reported; one retraining's time varied 1.5-2.2 s between runs on the 2-core machine),
#   OUT (bench/out/forgetting_DATASET).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KILN="$(realpath "${1:-${KILN:-build/kiln}}")"
DATASET="${DATASET:-brown}"
PER_CLASS="${PER_CLASS:-700}" TEST_PER_CLASS="${TEST_PER_CLASS:-100}" UPDATE_EVERY="${UPDATE_EVERY:-400}"
EPOCHS="${EPOCHS:-4}" THREADS="${THREADS:-2}" REPEAT="${REPEAT:-3}"
OUT="$(realpath -m "${OUT:-bench/out/forgetting_$DATASET}")"
command -v /usr/bin/python3 >/dev/null || { echo "forgetting: needs /usr/bin/python3" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "forgetting: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT"
say() { printf '[forgetting] %s\n' "$*" >&2; }

case "$DATASET" in brown|spamassassin) ;; *) echo "forgetting: DATASET must be brown or spamassassin" >&2; exit 2;; esac
csv="$("$KILN" -q data fetch "$DATASET")"
/usr/bin/python3 - "$csv" "$OUT" "$PER_CLASS" "$TEST_PER_CLASS" "$DATASET" <<'PY'
import csv, json, random, sys, collections
csv.field_size_limit(1 << 30)
src, out, per, test_per, dataset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = list(csv.DictReader(open(src, newline="", encoding="utf-8")))
by = collections.defaultdict(list)
for r in rows: by[r["label"]].append(r["text"])
groups = sorted(by)
if dataset == "spamassassin":  # groups easy-ham-1 ... spam-2; the label is ham or spam
    old, new = ["easy-ham-1", "spam-1"], ["easy-ham-2", "hard-ham-1", "spam-2"]
    label_of = lambda g: "spam" if g.startswith("spam") else "ham"
else:
    old, new = groups[: len(groups) // 2], groups[len(groups) // 2 :]
    label_of = lambda g: g
rng = random.Random(42)
split = {k: [] for k in ("base_train", "base_val", "stream", "test")}
test_groups = []
for g in groups:
    texts = by[g][:]; rng.shuffle(texts)
    if dataset == "spamassassin":  # groups differ 10x in size: 15% test, 10% validation (old groups), the rest
        n_test, n_val = round(0.15 * len(texts)), round(0.10 * len(texts)) if g in old else 0
        test, val, train = texts[:n_test], texts[n_test : n_test + n_val], texts[n_test + n_val :]
    else:
        test, val, train = texts[:test_per], texts[test_per : test_per + test_per], texts[2 * test_per : 2 * test_per + per]
    split["test"] += [(t, label_of(g)) for t in test]
    test_groups += [g] * len(test)
    if g in old:
        split["base_train"] += [(t, label_of(g)) for t in train]; split["base_val"] += [(t, label_of(g)) for t in val]
    else:
        split["stream"] += [(t, label_of(g)) for t in train]
for k in ("base_train", "base_val", "test"):
    with open(f"{out}/{k}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f); w.writerow(["text", "label"]); w.writerows(split[k])
rng.shuffle(split["stream"])
with open(f"{out}/stream.jsonl", "w") as f:
    for t, g in split["stream"]: f.write(json.dumps({"text": t, "label": g}) + "\n")
with open(f"{out}/history.jsonl", "w") as f:  # the old training rows, as the buffer's history
    for t, g in split["base_train"]: f.write(json.dumps({"text": t, "label": g}) + "\n")
with open(f"{out}/all_train.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f); w.writerow(["text", "label"]); w.writerows(split["base_train"] + split["stream"])
with open(f"{out}/test.txt", "w") as f:
    for t, g in split["test"]: f.write(t.replace("\n", " ") + "\n")
json.dump({"old": old, "new": new, "test_labels": [g for _, g in split["test"]], "test_groups": test_groups},
          open(f"{out}/classes.json", "w"))
print(f"[forgetting] old {old}, new {new}; base train {len(split['base_train'])}, stream "
      f"{len(split['stream'])}, test {len(split['test'])}", file=sys.stderr)
PY

timed() {  # name cmd...: runs cmd, appends "name wall user sys" to times.txt
  local name="$1"; shift
  /usr/bin/time -f "$name %e %U %S" -a -o "$OUT/times.txt" "$@"
}
predict() {  # artifact out
  "$KILN" -q --threads "$THREADS" predict "$1" --input "$OUT/test.txt" >"$2"
}

say "training the base model on the old genres"
timed base "$KILN" -q --threads "$THREADS" train --model linear --train "$OUT/base_train.csv" --val "$OUT/base_val.csv" \
  --out "$OUT/base" >/dev/null
predict "$OUT/base/model" "$OUT/pred_base.jsonl"

run_learn() {  # name flags...
  local name="$1"; shift
  local dir="$OUT/learn_$name" r
  # --history: the old training rows go into the buffer first (already learnt: not scored, not
  # trained on), so replay has old items to draw from. Repeats (REPEAT) time the same seeded run
  # again in learn_NAME.rK; the accuracies are the first run's (the runs are deterministic).
  for ((r = 1; r <= REPEAT; r++)); do
    local d="$dir"; ((r > 1)) && d="$dir.r$r"
    timed "$name" "$KILN" -q --threads "$THREADS" learn "$OUT/base/model" --history "$OUT/history.jsonl" \
      --stream "$OUT/stream.jsonl" --out "$d" --allow-new-labels --update-every "$UPDATE_EVERY" --epochs "$EPOCHS" \
      --max-regression 100 --seed 1 "$@" >"$d.summary.json"
  done
  local v; v="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$dir.summary.json")"
  if [[ -n "$v" ]]; then predict "$dir/versions/$v" "$OUT/pred_$name.jsonl"; else cp "$OUT/pred_base.jsonl" "$OUT/pred_$name.jsonl"; fi
}

say "streaming the new genres: no replay"
run_learn none --buffer reservoir --capacity 1000 --replay-ratio 0
say "streaming: the flow's buffer (recent 1,000, batch 32)"
run_learn flow --buffer seed
say "streaming: reservoir 1,000"
run_learn reservoir --buffer reservoir --capacity 1000 --replay-ratio 1
say "streaming: class-balanced reservoir 1,000"
run_learn balanced --buffer balanced --capacity 1000 --replay-ratio 1
say "retraining from scratch on everything"
for ((r = 1; r <= REPEAT; r++)); do
  d="$OUT/scratch"; ((r > 1)) && d="$OUT/scratch.r$r"
  timed scratch "$KILN" -q --threads "$THREADS" train --model linear --train "$OUT/all_train.csv" --val "$OUT/base_val.csv" \
    --out "$d" >/dev/null
done
predict "$OUT/scratch/model" "$OUT/pred_scratch.jsonl"

echo "machine load: $(uptime)"
/usr/bin/python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
c = json.load(open(f"{out}/classes.json"))
truth, groups, old = c["test_labels"], c["test_groups"], set(c["old"])
runs = {}  # name -> [(wall, cpu)] over the repeats
for line in open(f"{out}/times.txt"):
    p = line.split()
    if len(p) == 4 and p[0] != "Command":
        runs.setdefault(p[0], []).append((float(p[1]), float(p[2]) + float(p[3])))
times = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
def dirs(name):  # the run's directories, the first one's and its repeats'
    first = f"{out}/scratch" if name == "scratch" else f"{out}/learn_{name}"
    return [first] + sorted((d for d in glob.glob(first + ".r*") if d[len(first) + 2 :].isdigit()),
                            key=lambda d: int(d[len(first) + 2 :]))
def acc(name):
    pred = [json.loads(l)["label"] for l in open(f"{out}/pred_{name}.jsonl")]
    o = [p == t for p, t, g in zip(pred, truth, groups) if g in old]
    n = [p == t for p, t, g in zip(pred, truth, groups) if g not in old]
    return 100 * sum(o) / len(o), 100 * sum(n) / len(n)
base_old, _ = acc("base")
sw, sc = times["scratch"]
def run_seconds(d, name):  # (train s, of it featurizing) of one run: the updates' (curve.jsonl: each
    # warm start, its featurizing included) or the retraining's (kiln.json: fitting the featurizer and training)
    if name == "scratch":
        t = json.load(open(f"{d}/model/kiln.json"))["training"]
        return t["train_seconds"] + t.get("featurize_seconds", 0), t.get("featurize_seconds", 0)
    recs = [json.loads(l) for l in open(f"{d}/curve.jsonl")]
    return sum(r.get("train_seconds", 0) for r in recs), sum(r.get("featurize_seconds", 0) for r in recs)
def train_seconds(name):  # the median over the repeats
    return statistics.median(run_seconds(d, name)[0] for d in dirs(name))
def featurize_seconds(name):
    return statistics.median(run_seconds(d, name)[1] for d in dirs(name))
def train_ratios(name):  # each repeat's train s over the retraining's of the same repeat
    return [run_seconds(d, name)[0] / run_seconds(s, "scratch")[0] for d, s in zip(dirs(name), dirs("scratch"))]
st = train_seconds("scratch")
print(f"old: {', '.join(c['old'])}; new: {', '.join(c['new'])}; old test accuracy before the stream {base_old:.2f}")
print(f"{'strategy':<10} {'old acc':>8} {'new acc':>8} {'avg acc':>8} {'forget':>7} {'wall s':>7} {'cpu s':>7} {'train s':>8} {'of it feat':>10} {'wall/scratch':>12} {'cpu/scratch':>11} {'train/scratch':>13}")
for name in ("none", "flow", "reservoir", "balanced", "scratch"):
    o, n = acc(name)
    w, cpu = times[name]
    t = train_seconds(name)
    print(f"{name:<10} {o:8.2f} {n:8.2f} {(o + n) / 2:8.2f} {base_old - o:7.2f} {w:7.1f} {cpu:7.1f} {t:8.2f} {featurize_seconds(name):10.2f} {w / sw:12.2f} {cpu / sc:11.2f} {t / st:13.2f}")
print(f"train/scratch of each of the {len(dirs('scratch'))} repeats: " +
      "; ".join(f"{n} {', '.join(f'{x:.2f}' for x in train_ratios(n))}" for n in ("none", "flow", "reservoir", "balanced")))
print("forget = old-class accuracy before the stream minus after (points); avg acc = mean of old and new;")
print("wall/cpu s = the whole kiln learn / kiln train process (start-up, scoring, gates included); train s = inside training;")
print("(the updates' warm starts, or the retraining's featurizer fit and training); of it feat = encoding rows (and fitting);")
print("times are medians over the repeats")
PY
