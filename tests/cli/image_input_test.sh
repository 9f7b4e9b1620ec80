#!/usr/bin/env bash
# Image inputs beyond folders: IDX files (MNIST format) through kiln prepare --idx-labels, with the
# error for each bad file; and images in POST /v1/predict ({"inputs": [{"text", "image": base64}]})
# and the v2 protocol's `image` input of a text+image model, with the 4xx answer for each bad input,
# and the image drift metrics (mean intensity, intensity and size PSI).
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"  # fail, start_server, stop_server

# Small IDX files: 90 8x8 images of three classes (a bright row, column or diagonal at a random place).
/usr/bin/python3 - "$tmp" <<'PY'
import os, random, struct, sys, zlib
random.seed(5)
d = sys.argv[1]
n, side = 90, 8
imgs, labels = bytearray(), bytearray()
for i in range(n):
    c = i % 3; k = random.randrange(side)
    px = [[random.randrange(40) for _ in range(side)] for _ in range(side)]
    for j in range(side):
        r, q = (k, j) if c == 0 else (j, k) if c == 1 else (j, j)
        px[r][q] = 255
    imgs += bytes(v for row in px for v in row); labels.append(c)
open(f"{d}/imgs-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, side, side) + imgs)
open(f"{d}/labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + labels)
open(f"{d}/short-labels", "wb").write(struct.pack(">II", 0x801, n - 1) + labels[:-1])
open(f"{d}/cut-imgs", "wb").write((struct.pack(">IIII", 0x803, n, side, side) + imgs)[:100])
PY
"$KILN" -q prepare --input "$tmp/imgs-idx3-ubyte" --idx-labels "$tmp/labels-idx1-ubyte" --val-size 0.2 \
  --out "$tmp/prep" >"$tmp/prep.out" 2>"$tmp/prep.err" || { cat "$tmp/prep.err"; fail "prepare IDX"; }
head -1 "$tmp/prep/train.csv" | grep -qx "image,label" || fail "IDX train.csv header: $(head -1 "$tmp/prep/train.csv")"
first="$(sed -n 2p "$tmp/prep/train.csv" | cut -d, -f1)"
[[ "$first" == images/*/*.png && -f "$tmp/prep/$first" ]] || fail "IDX image path '$first' does not resolve from the CSV"
grep -q '"idx_labels"' "$tmp/prep/report.json" || fail "report.json lacks options.idx_labels"

expect_error() {  # expect_error WHAT FRAGMENT COMMAND...
  local what="$1" frag="$2"; shift 2
  if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what: succeeded"; fi
  grep -qF -- "$frag" "$tmp/err" || fail "$what: expected '$frag' in: $(cat "$tmp/err")"
}
expect_error "IDX without labels" "is an IDX images file (MNIST format); pass its labels file too: --idx-labels FILE" \
  "$KILN" prepare --input "$tmp/imgs-idx3-ubyte" --out "$tmp/x"
expect_error "IDX count mismatch" "holds 90 images but $tmp/short-labels holds 89 labels" \
  "$KILN" prepare --input "$tmp/imgs-idx3-ubyte" --idx-labels "$tmp/short-labels" --out "$tmp/x"
expect_error "IDX truncated" "cut-imgs: truncated: the header declares 90 images of 8x8 (5776 bytes) but the file has 100 bytes" \
  "$KILN" prepare --input "$tmp/cut-imgs" --idx-labels "$tmp/labels-idx1-ubyte" --out "$tmp/x"
gzip -k -c "$tmp/imgs-idx3-ubyte" >"$tmp/imgs.gz"
expect_error "IDX gzip" "imgs.gz: the file is gzip-compressed; uncompress it first" \
  "$KILN" prepare --input "$tmp/imgs.gz" --idx-labels "$tmp/labels-idx1-ubyte" --out "$tmp/x"
expect_error "IDX labels as images" "not an IDX images file: magic number 0x00000801" \
  "$KILN" prepare --input "$tmp/labels-idx1-ubyte" --idx-labels "$tmp/labels-idx1-ubyte" --out "$tmp/x"
expect_error "IDX and --image-col" "--idx-labels reads IDX files; --image-col and --format apply to CSV/JSON input" \
  "$KILN" prepare --input "$tmp/imgs-idx3-ubyte" --idx-labels "$tmp/labels-idx1-ubyte" --image-col image --out "$tmp/x"

# A text+image model on the prepared IDX images (text: a word naming the class half the time).
for split in train val test; do
  /usr/bin/python3 - "$tmp/prep/$split.csv" "$tmp/prep/mm_$split.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "image", "label"])
    for i, (image, label) in enumerate(rows[1:]):
        w.writerow([(["row", "column", "diagonal"][int(label)] if i % 2 else "a line") + " drawn", image, label])
PY
done
"$KILN" -q train --train "$tmp/prep/mm_train.csv" --val "$tmp/prep/mm_val.csv" --model multimodal --epochs 2 \
  --out "$tmp/mm" >"$tmp/mm.out" 2>"$tmp/mm.err" || { cat "$tmp/mm.err"; fail "train multimodal on IDX images"; }

b64() { base64 -w0 "$1"; }
img="$(b64 "$tmp/prep/$first")"
start_server "$tmp/mm/model" --max-image-pixels 100 --max-image-bytes 4000 --model-name mm
post() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE/v1/predict" -H 'Content-Type: application/json' --data-binary "$1"; printf ' '; cat "$tmp/body"; }
expect() {  # expect WHAT STATUS CODE MESSAGE-FRAGMENT OUTPUT
  [[ "$5" == "$2 "* && "$5" == *"\"code\":\"$3\""* && "$5" == *"$4"* ]] || fail "$1: expected $2 $3 '$4', got: $5"
}
out="$(post "{\"inputs\": [{\"text\": \"row drawn\", \"image\": \"$img\"}, {\"text\": \"a line\", \"image\": \"data:image/png;base64,$img\"}], \"top_k\": 2}")"
[[ "$out" == "200 "* && "$out" == *'"predictions"'* ]] || fail "predict with images: $out"
[[ $(grep -o '"label"' "$tmp/body" | wc -l) -ge 2 ]] || fail "two predictions expected: $out"
expect "texts only" 400 missing_modality "inputs[0] has no 'image'; this model reads text and an image per input" \
  "$(post '{"texts": ["row drawn"]}')"
expect "no text" 400 missing_modality "inputs[0] has no 'text'" "$(post "{\"inputs\": [{\"image\": \"$img\"}]}")"
expect "bad base64" 400 invalid_base64 "inputs[1].image is not base64 at character 3" \
  "$(post "{\"inputs\": [{\"text\": \"a\", \"image\": \"$img\"}, {\"text\": \"b\", \"image\": \"abc!\"}]}")"
expect "not an image" 400 invalid_image "inputs[0].image: not a PNG or JPEG file" \
  "$(post "{\"inputs\": [{\"text\": \"a\", \"image\": \"$(printf 'hello world' | base64 -w0)\"}]}")"
/usr/bin/python3 - "$tmp/big.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
raw = b"".join(b"\x00" + bytes(20) for _ in range(20))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20, 20, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
expect "too many pixels" 413 image_too_large "inputs[0].image: PNG image is 20x20 = 400 pixels, more than the limit of 100" \
  "$(post "{\"inputs\": [{\"text\": \"a\", \"image\": \"$(b64 "$tmp/big.png")\"}]}")"
head -c 3500 /dev/urandom >"$tmp/rand.bin"
expect "too many bytes" 413 image_too_large "inputs[0].image holds more than 4000 bytes" \
  "$(post "{\"inputs\": [{\"text\": \"a\", \"image\": \"$(cat "$tmp/rand.bin" "$tmp/rand.bin" | base64 -w0)\"}]}")"

# The Open Inference Protocol: the model's metadata lists `image` (BYTES), JSON data holds base64.
curl -s "$BASE/v2/models/mm" >"$tmp/meta"
grep -qF '{"datatype":"BYTES","name":"image","shape":[-1]}' "$tmp/meta" || fail "v2 metadata lacks the image input: $(cat "$tmp/meta")"
v2() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE/v2/models/mm/infer" --data-binary "$1"; printf ' '; cat "$tmp/body"; }
text_in='{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["row drawn", "a line"]}'
out="$(v2 "{\"inputs\": [$text_in, {\"name\": \"image\", \"shape\": [2], \"datatype\": \"BYTES\", \"data\": [\"$img\", \"$img\"]}]}")"
[[ "$out" == "200 "* && "$out" == *'"name":"label"'* ]] || fail "v2 infer with images: $out"
out="$(v2 "{\"inputs\": [$text_in]}")"
[[ "$out" == "400 "* && "$out" == *"the request has no input 'image'; this model reads text and an image per input"* ]] \
  || fail "v2 without image: $out"
out="$(v2 "{\"inputs\": [$text_in, {\"name\": \"image\", \"shape\": [2], \"datatype\": \"BYTES\", \"data\": [\"$img\", \"a*b\"]}]}")"
[[ "$out" == "400 "* && "$out" == *"inputs[image].data[1] is not base64 at character 1"* ]] || fail "v2 bad base64: $out"
out="$(v2 "{\"inputs\": [$text_in, {\"name\": \"image\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"$img\"]}]}")"
[[ "$out" == "400 "* && "$out" == *"input 'image' has 1 elements but input 'text' has 2; send one image per text"* ]] \
  || fail "v2 count mismatch: $out"
# Image drift: the training profile's image statistics, and the window's on /metrics.
grep -q '"image_intensity"' "$tmp/mm/model/kiln.json" || fail "kiln.json data_profile lacks image_intensity"
# NAME or NAME{labels} of the one served model's series (its model label left out).
metric() {
  curl -s "$BASE/metrics" | awk -v m="$1" '{ k = $1; sub(/model="[^"]*",?/, "", k); sub(/\{\}$/, "", k); if (k == m) print $2 }'
}
wait_metric() {  # wait_metric NAME AWK-CONDITION: the drift worker measures off the request path
  local i v
  for i in $(seq 1 100); do
    v="$(metric "$1")"
    [[ -n "$v" ]] && awk -v v="$v" "BEGIN {exit !($2)}" && return 0
    sleep 0.1
  done
  fail "$1 = '${v:-absent}', expected $2"
}
wait_metric kiln_drift_image_mean_intensity 'v > 0'
[[ "$(metric 'kiln_drift_psi{signal="image_size"}')" == 0 ]] || fail "image_size PSI of same-size images: $(metric 'kiln_drift_psi{signal="image_size"}')"
/usr/bin/python3 - "$tmp/white.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
raw = b"".join(b"\x00" + bytes([255] * 8) for _ in range(8))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
white="$(b64 "$tmp/white.png")"
out="$(post "{\"inputs\": [$(for i in 1 2 3 4 5 6 7 8; do printf '{"text": "a line", "image": "%s"},' "$white"; done | sed 's/,$//')]}")"
[[ "$out" == "200 "* ]] || fail "predict white images: $out"
wait_metric 'kiln_drift_psi{signal="image_intensity"}' 'v > 0.2'
stop_server
echo "image_input_test: ok"
