# Shared by the server's shell tests: a small generated dataset, a trained artifact, and a
# `kiln serve` started on a free loopback port. Source it after setting KILN and tmp.
fail() { echo "FAIL: $*" >&2; [[ -f "$tmp/serve.err" ]] && tail -20 "$tmp/serve.err" >&2; exit 1; }

# make_artifact DIR SEED: three topics with distinct vocabularies, trained into DIR/model.
make_artifact() {
  local dir="$1" seed="${2:-3}"
  mkdir -p "$dir"
  /usr/bin/python3 - "$dir" "$seed" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(int(sys.argv[2]))
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 60), ("val", 15)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
with open(f"{sys.argv[1]}/texts.txt", "w") as f:
    for i in range(300):
        label = list(words)[i % 3]
        f.write(" ".join(random.sample(words[label], 3) + random.sample(common, 3)) + "\n")
PY
  "$KILN" -q train --train "$dir/train.csv" --val "$dir/val.csv" --model linear --epochs 5 --seed "$seed" \
    --out "$dir/run" >"$dir/train.out" 2>"$dir/train.err" || { cat "$dir/train.err"; fail "kiln train failed"; }
}

# start_server ARTIFACT [FLAGS...]: starts kiln serve on a free port; sets SERVER_PID and BASE.
start_server() {
  local artifact="$1"; shift
  rm -f "$tmp/port"
  "$KILN" serve "$artifact" --port 0 --port-file "$tmp/port" "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
  SERVER_PID=$!
  local i
  for i in $(seq 1 300); do
    if [[ -s "$tmp/port" ]] && curl -sf "http://127.0.0.1:$(cat "$tmp/port")/readyz" >/dev/null 2>&1; then
      BASE="http://127.0.0.1:$(cat "$tmp/port")"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || fail "kiln serve exited during startup"
    sleep 0.1
  done
  fail "kiln serve did not become ready in 30 s"
}

stop_server() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
