#!/usr/bin/env bash
# kiln learn end to end: a small linear model keeps learning from a feedback stream that brings a new
# class (--allow-new-labels), promoted versions are complete artifacts with lineage, the learning curve
# records every update; every bad-input message; kill -9 mid-run leaves complete versions only and the
# directory resumes.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, json, random, sys
random.seed(7)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split(),
         "music": "song guitar drum piano choir tune chord melody band concert".split()}
common = "the a of and to in is it was for".split()
allwords = [w for ws in words.values() for w in ws]
def text(label):
    toks = random.sample(words[label], 4) + random.sample(common, 3) + [random.choice(allwords)]
    random.shuffle(toks); return " ".join(toks)
old = ["sports", "cooking", "finance"]
for name, n in (("train", 60), ("val", 20)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3): w.writerow([text(old[i % 3]), old[i % 3]])
with open(f"{sys.argv[1]}/stream.jsonl", "w") as f:
    for i in range(400):
        label = random.choice(old + ["music", "music"])
        f.write(json.dumps({"text": text(label), "label": label, "id": i}) + "\n")
with open(f"{sys.argv[1]}/long.jsonl", "w") as f:
    for i in range(6000):
        label = random.choice(old + ["music"])
        f.write(json.dumps({"text": text(label), "label": label}) + "\n")
PY

"$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --epochs 5 --out "$tmp/run" \
  >"$tmp/train.out" 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "kiln train failed"; }
art="$tmp/run/model"

# --help lists every flag with its default.
"$KILN" learn --help >"$tmp/help.txt" || fail "learn --help"
for flag in --stream --out --buffer --capacity --batch --replay-ratio --update-every --max-regression --seed \
            --allow-new-labels --gate-fraction --improvement-alpha; do
  grep -q -- "$flag" "$tmp/help.txt" || fail "learn --help lacks $flag"
done

# The run: a new class arrives, updates are gated, versions promoted.
"$KILN" learn "$art" --stream "$tmp/stream.jsonl" --out "$tmp/learn" --allow-new-labels --update-every 60 \
  --capacity 200 --batch 16 --epochs 3 --gate-fraction 0.2 >"$tmp/learn.out" 2>"$tmp/learn.err" \
  || { cat "$tmp/learn.err"; fail "kiln learn failed"; }
grep -q "update 1: " "$tmp/learn.err" || { cat "$tmp/learn.err"; fail "no update log line"; }
/usr/bin/python3 - "$tmp/learn" "$tmp/learn.out" <<'PY' || fail "learn outputs"
import json, os, sys
out = sys.argv[1]
s = json.loads(open(sys.argv[2]).read())
assert s["items"] == 400 and s["updates"] >= 4, s
assert s["promoted"] >= 1, s
assert s["promoted"] + sum(s["rejected"].values()) + s["failed"] == s["updates"], s
recs = [json.loads(l) for l in open(f"{out}/curve.jsonl")]
ups = [r for r in recs if r["event"] == "update"]
assert len(ups) == s["updates"], (len(ups), s)
for r in ups:
    for k in ("items_seen", "online_accuracy", "gate", "recent", "promoted", "buffer_items"):
        assert k in r, (k, r)
assert recs[-1]["event"] == "end"
v = sorted(os.listdir(f"{out}/versions"))
assert v[0] == "v0001", v
m = json.load(open(f"{out}/versions/v0001/kiln.json"))
assert m["lineage"]["parent_version"] == "original" and m["lineage"]["items_seen"] > 0, m["lineage"]
assert "music" in json.load(open(f"{out}/versions/{v[-1]}/kiln.json"))["labels"]
st = json.load(open(f"{out}/state.json"))
assert st["current"] == s["version"] == v[-1], (st, s, v)
PY
"$KILN" -q evaluate "$tmp/learn/versions/v0001" --data "$tmp/val.csv" >/dev/null 2>"$tmp/eval.err" \
  || { cat "$tmp/eval.err"; fail "a promoted version does not evaluate"; }

# stdin works, and the preset buffer.
head -80 "$tmp/stream.jsonl" | grep -v music | "$KILN" -q learn "$art" --stream - --out "$tmp/stdin" --buffer seed \
  >"$tmp/stdin.out" 2>"$tmp/stdin.err" || { cat "$tmp/stdin.err"; fail "kiln learn --stream -"; }
grep -q '"items":' "$tmp/stdin.out" || fail "no summary for stdin"

# Bad input: each message names the place and the fix; exit 2 for flags, 1 for data.
expect_error() {  # code message args...
  local code="$1" msg="$2"; shift 2
  set +e; "$KILN" learn "$@" >"$tmp/err.out" 2>"$tmp/err.txt"; local rc=$?; set -e
  [[ $rc == "$code" ]] || { cat "$tmp/err.txt"; fail "expected exit $code, got $rc for: $*"; }
  grep -qF -- "$msg" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "expected '$msg' for: $*"; }
}
n=0
bad_stream() { n=$((n + 1)); printf '%s' "$1" >"$tmp/bad$n.jsonl"; echo "$tmp/bad$n.jsonl"; }
good='{"text": "goal match team", "label": "sports"}'
f="$(bad_stream "$good"$'\n'"$good"$'\n''{"text": "oops", "label": '$'\n')"
expect_error 1 "$f:3: not valid JSON" "$art" --stream "$f" --out "$tmp/e1"
f="$(bad_stream "$good"$'\n''{"text": "goal"}'$'\n')"
expect_error 1 "$f:2: missing \"label\"" "$art" --stream "$f" --out "$tmp/e2"
f="$(bad_stream '{"label": "sports"}'$'\n')"
expect_error 1 "$f:1: missing \"text\" (or \"image\")" "$art" --stream "$f" --out "$tmp/e3"
f="$(bad_stream "$good"$'\n''{"text": "song", "label": "music"}'$'\n')"
expect_error 1 "$f:2: label 'music' is not one of the model's 3 labels (cooking, finance, sports); fix the label, or pass --allow-new-labels" \
  "$art" --stream "$f" --out "$tmp/e4"
expect_error 2 "--buffer (or seed) must be reservoir, balanced or recent, got 'fifo'" "$art" --stream "$f" --out "$tmp/e5" --buffer fifo
expect_error 2 "replay ratio must be in [0, 100] replayed items per new item, got -1" "$art" --stream "$f" --out "$tmp/e6" --replay-ratio -1
expect_error 2 "--update-every must be >= 1 item, got 0" "$art" --stream "$f" --out "$tmp/e7" --update-every 0
expect_error 2 "replay buffer capacity must be >= 1 item, got 0" "$art" --stream "$f" --out "$tmp/e8" --capacity 0
expect_error 2 "max regression must be in [0, 100] macro-F1 points, got -2" "$art" --stream "$f" --out "$tmp/e9" --max-regression -2
expect_error 2 "--gate-fraction must be in [0, 1), got 1" "$art" --stream "$f" --out "$tmp/e10" --gate-fraction 1
expect_error 2 "improvement alpha must be in (0, 1] (1 = off), got 0" "$art" --stream "$f" --out "$tmp/e12" --improvement-alpha 0
expect_error 1 "$tmp/missing.jsonl" "$art" --stream "$tmp/missing.jsonl" --out "$tmp/e11"
mkdir -p "$tmp/foreign" && echo mine >"$tmp/foreign/notes.txt"
expect_error 2 "is not empty and holds no kiln learn state" "$art" --stream "$tmp/stream.jsonl" --out "$tmp/foreign"
expect_error 2 "holds a reservoir buffer of capacity 200, but the flags ask for recent of 1000" \
  "$art" --stream "$tmp/stream.jsonl" --out "$tmp/learn" --allow-new-labels --buffer seed

# Crash safety: kill -9 while updates train and promote, twice; only complete versions remain, and the
# directory resumes.
crash="$tmp/crash"
for round in 1 2; do
  "$KILN" -q learn "$art" --stream "$tmp/long.jsonl" --out "$crash" --allow-new-labels --update-every 30 --capacity 100 \
    --batch 16 --epochs 2 >/dev/null 2>"$tmp/crash$round.err" &
  pid=$!; pids+=("$pid")
  want=$((round * 2))
  for _ in $(seq 1 3000); do  # wait (up to ~300 s, however loaded the machine) until updates are under way
    ups="$(grep -c '"event":"update"' "$crash/curve.jsonl" 2>/dev/null || true)"
    [[ "${ups:-0}" -ge "$want" ]] && compgen -G "$crash/versions/v*" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/crash$round.err"; fail "kiln learn ended before it was killed"; }
    sleep 0.1
  done
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  last=""
  for v in "$crash"/versions/v*; do
    [[ -e "$v" ]] || continue
    test -s "$v/kiln.json" && test -s "$v/model.safetensors" && test -s "$v/heldout.jsonl" \
      || fail "incomplete version $v after kill -9"
    /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))["lineage"]["items_seen"]' "$v/kiln.json" \
      || fail "$v/kiln.json is not a complete manifest after kill -9"
    last="$v"
  done
  [[ -n "$last" ]] || fail "no version was promoted before the kill"
  "$KILN" -q evaluate "$last" --data "$tmp/val.csv" >/dev/null 2>"$tmp/ev.err" || { cat "$tmp/ev.err"; fail "$last does not load after kill -9"; }
done
head -40 "$tmp/long.jsonl" | "$KILN" -q learn "$art" --stream - --out "$crash" --allow-new-labels --update-every 30 --capacity 100 \
  --batch 16 >"$tmp/resume.out" 2>"$tmp/resume.err" || { cat "$tmp/resume.err"; fail "resume after kill -9"; }
ls -A "$crash/versions" | grep -q '\.tmp-' && fail "a half-written version survived the resume"
/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["items"] >= 40, s' "$tmp/resume.out" \
  || fail "resume summary"
echo "learn_test: ok"
