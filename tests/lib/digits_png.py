#!/usr/bin/python3
"""Writes scikit-learn's 8x8 digits (python3-sklearn's digits.csv.gz) as gray PNGs, one folder per
digit, with a minimal PNG writer (zlib only). Every EVERY-th image is kept (default 3: 599 images).

    digits_png.py DIGITS_CSV_GZ OUT_DIR [EVERY]
"""
import gzip
import os
import struct
import sys
import zlib


def png(path, rows):
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


every = int(sys.argv[3]) if len(sys.argv) > 3 else 3
for i, line in enumerate(gzip.open(sys.argv[1], "rt")):
    if i % every:
        continue
    v = [int(float(x)) for x in line.split(",")]
    d = os.path.join(sys.argv[2], str(v[64]))
    os.makedirs(d, exist_ok=True)
    png(os.path.join(d, "%04d.png" % i), [[round(p * 255 / 16) for p in v[r * 8:r * 8 + 8]] for r in range(8)])
