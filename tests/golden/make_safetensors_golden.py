#!/usr/bin/env python3
"""Golden safetensors files for tests/core/safetensors_test.cpp, written per the format spec with
the standard library only (struct, json).

    make_safetensors_golden.py generate [OUTDIR]   # default: safetensors/ next to this script
    make_safetensors_golden.py check FILE          # validate FILE per the spec, compare to SAMPLE

Files written:
  reference.safetensors  metadata first, tensors laid out by decreasing element size then in
                         SAMPLE order, compact JSON padded with spaces to a multiple of 8 bytes
                         (the layout Kiln's writer promises: Kiln's output must equal it byte for byte)
  foreign_layout.safetensors  same tensors, unpadded header, keys in reverse data order, data in
                         name order (another valid writer's choices; readers must not depend on them)

`check` exits 0 if FILE is a valid safetensors file holding exactly SAMPLE and its metadata, else
prints the first problem and exits 1. If the `safetensors` Python package is importable, `check`
also loads FILE with it and compares.
"""
import json
import os
import struct
import sys

# (name, dtype, shape, struct format per element, values). Keep in sync with kSample in the test.
SAMPLE = [
    ("embed.weight", "F32", [2, 3], "f", [0.5, -1.25, 3.0, 0.0, 100.0, -0.0625]),
    ("head.bias", "F64", [2], "d", [1.5, -2.25]),
    ("half", "F16", [3], "e", [1.0, -2.0, 0.5]),
    ("brain", "BF16", [2], "H", [0x3F80, 0xC060]),  # bfloat16 bits of 1.0, -3.5
    ("ids", "I64", [3], "q", [-1, 0, 1 << 40]),
    ("i32", "I32", [2, 2], "i", [1, -2, 3, -4]),
    ("i16", "I16", [2], "h", [-300, 300]),
    ("i8", "I8", [3], "b", [-128, 0, 127]),
    ("u8", "U8", [2], "B", [0, 255]),
    ("mask", "BOOL", [3], "?", [True, False, True]),
    ("scale", "F32", [], "f", [2.5]),
    ("empty", "F32", [0, 4], "f", []),
]
METADATA = {"format": "pt", "kiln.note": "h\u00e9llo"}
SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def tensor_bytes(dtype, fmt, values):
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def encode(entries, metadata, pad=True):
    """entries: list of (name, dtype, shape, bytes) in data order."""
    header, data, offset = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    order = sorted(range(len(SAMPLE)), key=lambda i: (-SIZES[SAMPLE[i][1]], i))
    entries = [(n, d, s, tensor_bytes(d, f, v)) for n, d, s, f, v in (SAMPLE[i] for i in order)]
    with open(os.path.join(outdir, "reference.safetensors"), "wb") as fh:
        fh.write(encode(entries, METADATA))

    by_name = sorted(entries, key=lambda e: e[0])
    blob = encode(by_name, METADATA, pad=False)
    # Re-serialize the header with keys in reverse data order (same offsets).
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    keys = ["__metadata__"] + [e[0] for e in reversed(by_name)]
    text = json.dumps({k: header[k] for k in keys}, ensure_ascii=False).encode("utf-8")
    with open(os.path.join(outdir, "foreign_layout.safetensors"), "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])


def fail(msg):
    print("check failed: " + msg)
    sys.exit(1)


def check(path):
    blob = open(path, "rb").read()
    if len(blob) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail("header size %d beyond file size %d" % (n, len(blob)))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    if metadata != METADATA:
        fail("metadata %r != %r" % (metadata, METADATA))
    spans = sorted((e["data_offsets"][0], e["data_offsets"][1], k) for k, e in header.items())
    end = 0
    for b, e, k in spans:
        if b != end:
            fail("tensor %s: begins at %d, expected %d (hole or overlap)" % (k, b, end))
        end = e
    if end != len(data):
        fail("tensors cover %d bytes of a %d-byte buffer" % (end, len(data)))
    expected = {n: (d, s, tensor_bytes(d, f, v)) for n, d, s, f, v in SAMPLE}
    if set(header) != set(expected):
        fail("tensor names %s != %s" % (sorted(header), sorted(expected)))
    for name, (dtype, shape, raw) in expected.items():
        e = header[name]
        b, end = e["data_offsets"]
        if e["dtype"] != dtype or e["shape"] != shape or data[b:end] != raw:
            fail("tensor %s: got %s %s %r, expected %s %s %r" % (
                name, e["dtype"], e["shape"], data[b:end], dtype, shape, raw))
    try:
        from safetensors import safe_open  # optional: the reference implementation
    except ImportError:
        print("ok (spec check; safetensors package not installed)")
        return
    with safe_open(path, framework="numpy") as fh:
        if sorted(fh.keys()) != sorted(expected) or fh.metadata() != METADATA:
            fail("reference implementation sees different names or metadata")
    print("ok (spec check and reference implementation)")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "generate":
        generate(sys.argv[2] if len(sys.argv) > 2 else
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors"))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
