#!/usr/bin/env bash
# kiln train --resume after a crash gives the run an uninterrupted one gives: the same weights, byte
# for byte, and the same metrics. Run A trains EPOCHS epochs; run B is killed (SIGKILL) once its
# checkpoint says epoch >= KILL_AFTER, then resumed with the same command plus --resume.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
EPOCHS=12
KILL_AFTER=3

# Three topics whose texts share words across topics, with 20% label noise: validation macro-F1
# moves from epoch to epoch, so the best epoch, early-stopping state and the LR schedule all matter.
/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(5)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
labels = list(words)
common = "the a of and to in is it was for".split()
for name, n in (("train", 1500), ("val", 100), ("test", 100)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = labels[i % 3]
            other = labels[random.randrange(3)]
            toks = random.sample(words[label], 2) + random.sample(words[other], 2) + random.sample(common, 4)
            if random.random() < 0.2:
                label = labels[random.randrange(3)]
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY

# MLP with dropout (RNG state), AdamW (moments), warmup + cosine (schedule state), no early stop.
args=(-q train --train "$tmp/train.csv" --val "$tmp/val.csv" --test "$tmp/test.csv" --model mlp
      --epochs "$EPOCHS" --patience 0 --lr 0.001 --schedule warmup_cosine --warmup-ratio 0.1)

"$KILN" "${args[@]}" --out "$tmp/A" >"$tmp/A.out" 2>"$tmp/A.err" || { cat "$tmp/A.err"; fail "uninterrupted run failed"; }

# Started directly (not in a subshell), so $! is the trainer itself (kiln execs kiln-ml in place).
"$KILN" "${args[@]}" --out "$tmp/B" >"$tmp/B.out" 2>"$tmp/B.err" &
pid=$!
# Poll the checkpoint (written atomically after each epoch) and kill the trainer once it is far enough.
killed=0
for _ in $(seq 1 6000); do
  if [[ -f "$tmp/B/checkpoint.json" && "$(<"$tmp/B/checkpoint.json")" =~ \"epoch\":\ *([0-9]+) ]] &&
     ((BASH_REMATCH[1] >= KILL_AFTER)); then
    kill -KILL "$pid" && killed=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
wait "$pid" 2>/dev/null && rc=0 || rc=$?
kill -0 "$pid" 2>/dev/null && fail "run B still runs after SIGKILL"
pid=""
[[ $killed -eq 1 && $rc -eq 137 ]] || { cat "$tmp/B.err"; fail "run B was not interrupted (exit $rc): it ended before its checkpoint reached epoch $KILL_AFTER"; }
[[ ! -e "$tmp/B/model" ]] || fail "run B wrote an artifact before it was interrupted"
stopped_at="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$tmp/B/checkpoint.json")"
((stopped_at < EPOCHS)) || fail "run B's checkpoint is already at the last epoch ($stopped_at)"

"$KILN" "${args[@]}" --out "$tmp/B" --resume >"$tmp/B2.out" 2>"$tmp/B2.err" || { cat "$tmp/B2.err"; fail "resume failed"; }

cmp "$tmp/A/model/model.safetensors" "$tmp/B/model/model.safetensors" \
  || fail "weights after resuming from epoch $stopped_at differ from the uninterrupted run's"
/usr/bin/python3 - "$tmp/A" "$tmp/B" "$stopped_at" "$EPOCHS" <<'PY' || fail "the resumed run's metrics differ from the uninterrupted run's"
import json, sys
A, B, stopped_at, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
a, b = (json.load(open(f"{d}/model/kiln.json")) for d in (A, B))
assert a["metrics"], "no metrics in kiln.json"
assert a["metrics"] == b["metrics"], ("kiln.json metrics", a["metrics"], b["metrics"])
for k in ("best_epoch", "epochs_run"):
    assert a["training"][k] == b["training"][k], ("kiln.json training." + k, a["training"][k], b["training"][k])

# Every step and epoch after the resume too (the kept weights may be an epoch from before it): the
# last record of each (the killed run may have logged part of the epoch it died in), timing aside.
def records(d):
    out = {}
    for line in open(f"{d}/metrics.jsonl"):
        r = json.loads(line)
        if r["type"] in ("step", "epoch"):
            r.pop("seconds", None)
            r.pop("train_seconds", None)
            out[(r["type"], r["step"] if r["type"] == "step" else r["epoch"])] = r
    return out
# B's log holds the killed run's epochs, then the resumed run's (appended): one record per epoch,
# two for the epoch the kill fell between its log record and its checkpoint. More: it started over.
logged = sum(json.loads(l)["type"] == "epoch" for l in open(f"{B}/metrics.jsonl"))
assert logged in (epochs, epochs + 1), f"{logged} epoch records in B/metrics.jsonl for {epochs} epochs: the resume did not continue from epoch {stopped_at}"
ra, rb = records(A), records(B)
assert sum(k[0] == "epoch" for k in ra) == epochs, sorted(ra)
assert ra.keys() == rb.keys(), sorted(set(ra) ^ set(rb))
for k in sorted(ra):
    assert ra[k] == rb[k], (k, ra[k], rb[k])
print(f"resumed after epoch {stopped_at}: same weights, metrics and {len(ra)} step/epoch records "
      f"(best epoch {a['training']['best_epoch']})")
PY
# train.stop_after_epochs: run C stops by itself after KILL_AFTER epochs of its first invocation
# (a YAML key, exit 0, an artifact of what it trained so far); resuming without the key finishes
# the run with the uninterrupted one's weights.
printf 'model: {family: mlp}\ntrain: {stop_after_epochs: %d}\n' "$KILL_AFTER" >"$tmp/stop.yaml"
"$KILN" "${args[@]}" --config "$tmp/stop.yaml" --out "$tmp/C" >"$tmp/C.out" 2>"$tmp/C.err" \
  || { cat "$tmp/C.err"; fail "the run with train.stop_after_epochs failed"; }
/usr/bin/python3 - "$tmp/C" "$KILL_AFTER" <<'PY' || fail "train.stop_after_epochs did not stop the run after $KILL_AFTER epochs"
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
assert json.load(open(f"{d}/checkpoint.json"))["epoch"] == n, open(f"{d}/checkpoint.json").read()
t = json.load(open(f"{d}/model/kiln.json"))["training"]
assert t["epochs_run"] == n, t["epochs_run"]
assert "stop_after_epochs" not in t["train"], "stop_after_epochs is recorded in the artifact's training config"
PY
"$KILN" "${args[@]}" --out "$tmp/C" --resume >"$tmp/C2.out" 2>"$tmp/C2.err" || { cat "$tmp/C2.err"; fail "resume after stop_after_epochs failed"; }
cmp "$tmp/A/model/model.safetensors" "$tmp/C/model/model.safetensors" \
  || fail "weights after stopping at epoch $KILL_AFTER (train.stop_after_epochs) and resuming differ from the uninterrupted run's"
printf 'model: {family: mlp}\ntrain: {stop_after_epochs: -1}\n' >"$tmp/bad.yaml"
bad=$("$KILN" "${args[@]}" --config "$tmp/bad.yaml" --out "$tmp/D" 2>&1 >/dev/null) && rc=0 || rc=$?
[[ $rc -eq 2 && "$bad" == *"train.stop_after_epochs must be >= 0 (0 = no limit), got -1"* ]] \
  || fail "stop_after_epochs -1: exit $rc, $bad"

echo "resume: all checks passed"
