#!/usr/bin/env bash
# Data-parallel training across two "hosts": two network namespaces joined by a veth pair, with
# addresses this test picks, one `kiln train --nnodes 2 --node-rank I --nproc 1` in each. The two
# ranks must reach each other over the veth only (not loopback), take the steps one process takes
# (within 1e-6, SGD), and rank 1's host gets no run files. Cleans up its namespaces on every exit.
# Skipped (77) where namespaces cannot be made (not root, no CAP_SYS_ADMIN/NET_ADMIN, no iproute2).
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
id=$$
ns_a="kiln_dpa_$id" ns_b="kiln_dpb_$id" veth_a="kdpa$id" veth_b="kdpb$id"
veth_a=${veth_a:0:15} veth_b=${veth_b:0:15}
net="10.$((id % 200 + 20)).$((id / 200 % 250)).0"
addr_a="${net%.0}.1" addr_b="${net%.0}.2"
cleanup() {
  ip netns pids "$ns_a" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns pids "$ns_b" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $* (the two-namespace multi-host test needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN)" >&2; exit 77; }

command -v ip >/dev/null || skip "iproute2's ip is not installed"
[[ $(id -u) == 0 ]] || skip "not root"
ip netns add "$ns_a" 2>"$tmp/ns.err" || skip "ip netns add failed: $(cat "$tmp/ns.err")"
ip netns add "$ns_b" || skip "ip netns add failed"
ip link add "$veth_a" type veth peer name "$veth_b" 2>"$tmp/ns.err" || skip "no veth pair: $(cat "$tmp/ns.err")"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

/usr/bin/python3 "$(dirname "$0")/../lib/topic_csv.py" "$tmp/train.csv" 300 5 4 finance || fail "python3 is needed to generate the test data"
cat >"$tmp/sgd.yaml" <<'EOF'
featurizer: {type: hashed_ngrams, ngram_range: [1, 2], buckets: 4096}
model: {family: embedbag, params: {dim: 16}}
train: {epochs: 2, batch_size: 16, optimizer: {kind: sgd, lr: 0.5}, calibrate: none, loss: {class_weight: balanced}}
EOF
"$KILN" -q train --train "$tmp/train.csv" --config "$tmp/sgd.yaml" --out "$tmp/one" >/dev/null 2>"$tmp/one.err" \
  || { cat "$tmp/one.err"; fail "one-process run failed"; }

# One launcher per namespace; Gloo picks each side's veth address (the route to --master-addr).
pids=()
for node in 0 1; do
  ns=$ns_a
  [[ $node == 1 ]] && ns=$ns_b
  timeout 120 ip netns exec "$ns" "$KILN" -q --threads 1 train --train "$tmp/train.csv" --config "$tmp/sgd.yaml" \
    --nnodes 2 --node-rank "$node" --nproc 1 --master-addr "$addr_a" --master-port 29533 --dist-timeout 30 \
    --out "$tmp/node$node" >"$tmp/node$node.out" 2>"$tmp/node$node.err" &
  pids+=($!)
done
wait "${pids[0]}" || { cat "$tmp/node0.err" "$tmp/node1.err"; fail "node 0 (rank 0) failed"; }
wait "${pids[1]}" || { cat "$tmp/node1.err"; fail "node 1 (rank 1) failed"; }

d="$(/usr/bin/python3 - "$tmp/one/model/model.safetensors" "$tmp/node0/model/model.safetensors" <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys()
print(max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a))
PY
)"
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$d') <= 1e-6 else 1)" || fail "two hosts vs one process: max |diff| $d > 1e-6"
echo "ok: two network namespaces (ranks over $veth_a/$veth_b) == one process: max |diff| $d"
test -e "$tmp/node1/metrics.jsonl" && fail "rank 1's host should get no run files"
grep -q '"world_size":2' "$tmp/node0/metrics.jsonl" || fail "rank 0's metrics.jsonl does not record world_size 2"
echo "dist_netns_test: all passed"
