#!/bin/sh
# torch_unused_libs.sh LIBTORCH_CPU CXX OUT_DIR
#
# Debian's libtorch_cpu lists OpenCV, FFmpeg, ZeroMQ, LevelDB, LMDB and Snappy as needed (for Caffe2
# operators) but calls none of them. Loading them and the ~230 libraries they pull in (GTK, X11,
# GStreamer, codecs) took about 0.2 s of the 0.5 s each LibTorch process spends starting here.
#
# For every such library that LIBTORCH_CPU needs and imports no symbol from, this writes an empty
# shared library with the same SONAME into OUT_DIR. A program that links those first loads them
# instead, and the loader matches libtorch_cpu's needs by SONAME. Nothing can call into them: the
# check below links a program against LibTorch and the empty libraries, and the linker fails if any
# library in the closure needs a symbol from one. Prints the files written, one per line; prints
# nothing (and writes nothing) when a tool is missing or the check fails.
set -u
lib=$1
cxx=$2
out=$3
rm -rf "$out"
command -v readelf >/dev/null 2>&1 && command -v nm >/dev/null 2>&1 || exit 0
[ -f "$lib" ] || exit 0
tmp=$(mktemp -d) || exit 0
trap 'rm -rf "$tmp"' EXIT

nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u > "$tmp/imports"
mkdir -p "$tmp/stubs"
printf '' > "$tmp/empty.cpp"
for soname in $(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
  case $soname in
    libopencv_*|libavcodec.so.*|libavformat.so.*|libavutil.so.*|libswscale.so.*|libswresample.so.*) ;;
    libzmq.so.*|libleveldb.so.*|liblmdb.so.*|libsnappy.so.*) ;;
    *) continue ;;
  esac
  path=$("$cxx" -print-file-name="$soname")
  [ -f "$path" ] || continue
  nm -D --defined-only "$path" | awk '{print $NF}' | sed 's/@.*//' | sort -u > "$tmp/exports"
  [ -z "$(comm -12 "$tmp/imports" "$tmp/exports")" ] || continue
  "$cxx" -shared -fPIC -nostdlib -o "$tmp/stubs/$soname" "$tmp/empty.cpp" -Wl,-soname,"$soname" || exit 0
done
ls "$tmp/stubs" | grep -q . || exit 0

# The check: every library LibTorch loads still finds every symbol it needs.
printf 'int main() { return 0; }\n' > "$tmp/main.cpp"
"$cxx" -o "$tmp/check" "$tmp/main.cpp" -Wl,--no-as-needed "$tmp"/stubs/* "$lib" -Wl,-rpath,"$tmp/stubs" \
  >"$tmp/link.log" 2>&1 || exit 0
LD_BIND_NOW=1 "$tmp/check" >/dev/null 2>&1 || exit 0

mkdir -p "$out"
for f in "$tmp"/stubs/*; do
  cp "$f" "$out/" && echo "$out/$(basename "$f")"
done
