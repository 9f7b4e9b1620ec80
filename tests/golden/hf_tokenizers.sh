#!/usr/bin/env bash
# Prints the directory of npm tokenizers@0.23.2 (Hugging Face tokenizers' Node binding, the
# reference for Kiln's wordpiece tokenizer), fetching it with `npm pack` into a cache on first use:
# $KILN_CACHE_DIR/npm, else $XDG_CACHE_HOME/kiln/npm, else ~/.cache/kiln/npm. The package ships its
# prebuilt native module (tokenizers.linux-x64-gnu.node) in the tarball; no install scripts run.
# Exits 1 with a message on stderr when npm or node is missing or the registry is unreachable.
set -euo pipefail
version=0.23.2
if [[ -n "${KILN_CACHE_DIR:-}" ]]; then cache="$KILN_CACHE_DIR/npm"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache="$XDG_CACHE_HOME/kiln/npm"
else cache="$HOME/.cache/kiln/npm"; fi
dir="$cache/tokenizers-$version"
probe() { node -e "require('$dir/package').bertNormalizer()" >/dev/null 2>&1; }
command -v node >/dev/null || { echo "node not found (Debian package nodejs)" >&2; exit 1; }
if [[ -f "$dir/package/index.js" ]] && probe; then echo "$dir/package"; exit 0; fi
command -v npm >/dev/null || { echo "npm not found (Debian package npm)" >&2; exit 1; }
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.fetch-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "tokenizers@$version" --ignore-scripts --no-update-notifier --loglevel=error >/dev/null) ||
  { echo "npm pack tokenizers@$version failed; is the npm registry reachable?" >&2; exit 1; }
mkdir -p "$tmp/out" && tar -xzf "$tmp"/tokenizers-*.tgz -C "$tmp/out" --no-same-owner
rm -rf "$dir" && mv "$tmp/out" "$dir"
probe || { echo "tokenizers@$version's native module does not load on this platform ($(uname -m))" >&2; exit 1; }
echo "$dir/package"
