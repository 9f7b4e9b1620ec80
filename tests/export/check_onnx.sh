#!/usr/bin/env bash
# check_onnx.sh MODEL.onnx EXAMPLES.json: Debian python3-onnx's checker on the model (full check,
# shape inference included), then ONNX Runtime (onnxruntime-node@1.30.0) against the logits Kiln
# wrote beside the inputs; prints run_onnx.js's JSON. Exit 77 (skipped) when a reference is missing,
# unless CI or KILN_REQUIRE_TOOLS=1 (then exit 1).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/require_tools.sh"
/usr/bin/python3 -c "import onnx" 2>/dev/null || { missing_tool "python3 onnx" python3-onnx "the ONNX checker"; exit 77; }
/usr/bin/python3 - "$1" <<'PY' || { echo "FAIL: the ONNX checker rejects $1" >&2; exit 1; }
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
PY
command -v node >/dev/null || { missing_tool node nodejs "ONNX Runtime outputs"; exit 77; }
ORT="$(bash "$HERE/../golden/onnxruntime_node.sh" 2>"${TMPDIR:-/tmp}/ort.err.$$")" || {
  msg="$(cat "${TMPDIR:-/tmp}/ort.err.$$")"; rm -f "${TMPDIR:-/tmp}/ort.err.$$"
  if tools_required; then echo "FAIL: onnxruntime-node unavailable: $msg" >&2; exit 1; fi
  echo "SKIP: onnxruntime-node@1.30.0 unavailable: $msg" >&2; exit 77; }
rm -f "${TMPDIR:-/tmp}/ort.err.$$"
node "$HERE/run_onnx.js" "$ORT" "$1" "$2"
