#!/usr/bin/env bash
# Prints a node_modules directory holding npm onnxruntime-node@1.30.0 (ONNX Runtime's Node binding;
# its tarball ships libonnxruntime.so for linux-x64) and onnxruntime-common@1.30.0, the reference
# runtime for kiln export's ONNX files. Fetched with `npm pack` into a cache on first use:
# $KILN_CACHE_DIR/npm, else $XDG_CACHE_HOME/kiln/npm, else ~/.cache/kiln/npm. No install scripts run
# (the package's script fetches GPU libraries Kiln does not need).
# Exits 1 with a message on stderr when npm or node is missing or the registry is unreachable.
set -euo pipefail
version=1.30.0
if [[ -n "${KILN_CACHE_DIR:-}" ]]; then cache="$KILN_CACHE_DIR/npm"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache="$XDG_CACHE_HOME/kiln/npm"
else cache="$HOME/.cache/kiln/npm"; fi
dir="$cache/onnxruntime-$version/node_modules"
probe() { node -e "require('$dir/onnxruntime-node').InferenceSession" >/dev/null 2>&1; }
command -v node >/dev/null || { echo "node not found (Debian package nodejs)" >&2; exit 1; }
if [[ -d "$dir/onnxruntime-node" ]] && probe; then echo "$dir"; exit 0; fi
command -v npm >/dev/null || { echo "npm not found (Debian package npm)" >&2; exit 1; }
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.fetch-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for pkg in onnxruntime-node onnxruntime-common; do
  (cd "$tmp" && npm pack "$pkg@$version" --ignore-scripts --no-update-notifier --loglevel=error >/dev/null) ||
    { echo "npm pack $pkg@$version failed; is the npm registry reachable?" >&2; exit 1; }
  mkdir -p "$tmp/node_modules/$pkg" && tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp/node_modules/$pkg" --strip-components=1 --no-same-owner
done
rm -rf "$cache/onnxruntime-$version" && mkdir -p "$cache/onnxruntime-$version" && mv "$tmp/node_modules" "$dir"
probe || { echo "onnxruntime-node@$version does not load on this platform ($(uname -m))" >&2; exit 1; }
echo "$dir"
