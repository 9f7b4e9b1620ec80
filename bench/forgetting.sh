#!/usr/bin/env bash
# Forgetting benchmark of kiln learn (continual learning with a replay buffer) on the Brown corpus:
# a --model linear artifact is trained on half of Brown's genres (the "old" classes), then the other
# half (the "new" classes, --allow-new-labels) is streamed to kiln learn as feedback. Compared:
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
# Environment: PER_CLASS (700 stream/training rows per genre; science_fiction has 748 after its test and
#   validation rows), TEST_PER_CLASS (100), UPDATE_EVERY (400), EPOCHS (4 per update), THREADS (2),
#   OUT (bench/out/forgetting).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KILN="$(realpath "${1:-${KILN:-build/kiln}}")"
PER_CLASS="${PER_CLASS:-700}" TEST_PER_CLASS="${TEST_PER_CLASS:-100}" UPDATE_EVERY="${UPDATE_EVERY:-400}"
EPOCHS="${EPOCHS:-4}" THREADS="${THREADS:-2}"
OUT="$(realpath -m "${OUT:-bench/out/forgetting}")"
command -v /usr/bin/python3 >/dev/null || { echo "forgetting: needs /usr/bin/python3" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "forgetting: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT"
say() { printf '[forgetting] %s\n' "$*" >&2; }

csv="$("$KILN" -q data fetch brown)"
/usr/bin/python3 - "$csv" "$OUT" "$PER_CLASS" "$TEST_PER_CLASS" <<'PY'
import csv, json, random, sys, collections
csv.field_size_limit(1 << 30)
src, out, per, test_per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = list(csv.DictReader(open(src, newline="", encoding="utf-8")))
by = collections.defaultdict(list)
for r in rows: by[r["label"]].append(r["text"])
genres = sorted(by)
old, new = genres[: len(genres) // 2], genres[len(genres) // 2 :]
rng = random.Random(42)
split = {k: [] for k in ("base_train", "base_val", "stream", "test")}
for g in genres:
    texts = by[g][:]; rng.shuffle(texts)
    test, val, train = texts[:test_per], texts[test_per : test_per + test_per], texts[2 * test_per : 2 * test_per + per]
    split["test"] += [(t, g) for t in test]
    if g in old:
        split["base_train"] += [(t, g) for t in train]; split["base_val"] += [(t, g) for t in val]
    else:
        split["stream"] += [(t, g) for t in train]
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
json.dump({"old": old, "new": new, "test_labels": [g for _, g in split["test"]]}, open(f"{out}/classes.json", "w"))
print(f"[forgetting] old genres {old}, new genres {new}; base train {len(split['base_train'])}, stream "
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
  local dir="$OUT/learn_$name"
  # --history: the old training rows go into the buffer first (already learnt: not scored, not
  # trained on), so replay has old items to draw from.
  timed "$name" "$KILN" -q --threads "$THREADS" learn "$OUT/base/model" --history "$OUT/history.jsonl" \
    --stream "$OUT/stream.jsonl" --out "$dir" --allow-new-labels --update-every "$UPDATE_EVERY" --epochs "$EPOCHS" \
    --max-regression 100 --seed 1 "$@" >"$dir.summary.json"
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
timed scratch "$KILN" -q --threads "$THREADS" train --model linear --train "$OUT/all_train.csv" --val "$OUT/base_val.csv" \
  --out "$OUT/scratch" >/dev/null
predict "$OUT/scratch/model" "$OUT/pred_scratch.jsonl"

echo "machine load: $(uptime)"
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
c = json.load(open(f"{out}/classes.json"))
truth, old = c["test_labels"], set(c["old"])
times = {}
for line in open(f"{out}/times.txt"):
    p = line.split()
    if len(p) == 4 and p[0] != "Command":
        times[p[0]] = (float(p[1]), float(p[2]) + float(p[3]))
def acc(name):
    pred = [json.loads(l)["label"] for l in open(f"{out}/pred_{name}.jsonl")]
    o = [p == t for p, t in zip(pred, truth) if t in old]
    n = [p == t for p, t in zip(pred, truth) if t not in old]
    return 100 * sum(o) / len(o), 100 * sum(n) / len(n)
base_old, _ = acc("base")
sw, sc = times["scratch"]
def train_seconds(name):  # seconds inside training: the updates' (curve.jsonl) or the retraining's (kiln.json)
    if name == "scratch":
        return json.load(open(f"{out}/scratch/model/kiln.json"))["training"]["train_seconds"]
    return sum(json.loads(l).get("train_seconds", 0) for l in open(f"{out}/learn_{name}/curve.jsonl"))
st = train_seconds("scratch")
print(f"old genres {len(c['old'])}, new genres {len(c['new'])}; old-class test accuracy before the stream {base_old:.2f}")
print(f"{'strategy':<10} {'old acc':>8} {'new acc':>8} {'avg acc':>8} {'forget':>7} {'wall s':>7} {'cpu s':>7} {'train s':>8} {'wall/scratch':>12} {'cpu/scratch':>11} {'train/scratch':>13}")
for name in ("none", "flow", "reservoir", "balanced", "scratch"):
    o, n = acc(name)
    w, cpu = times[name]
    t = train_seconds(name)
    print(f"{name:<10} {o:8.2f} {n:8.2f} {(o + n) / 2:8.2f} {base_old - o:7.2f} {w:7.1f} {cpu:7.1f} {t:8.2f} {w / sw:12.2f} {cpu / sc:11.2f} {t / st:13.2f}")
print("forget = old-class accuracy before the stream minus after (points); avg acc = mean of old and new;")
print("wall/cpu s = the whole kiln learn / kiln train process (start-up, scoring, gates included); train s = inside training")
PY
