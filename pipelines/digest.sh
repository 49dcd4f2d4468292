#!/bin/sh
# Reads an effective configuration (bio-* --print-config) on stdin and prints the SHA-256 of the
# previous stage's digest ($1) followed by the named parts of the config: top-level sections
# ("prep") or single keys ("experiment.seed"). Used by pipelines/experiment.mk to name each stage's
# output folder by what affects it.
set -eu
prev=$1
shift
awk -v want="$*" '
BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) sel[w[i]] = 1 }
/^[^ #]/ { sec = $1; sub(/:$/, "", sec) }
/^[^ #]/ && (sec in sel) { print; next }
/^  [^ #]/ { key = $1; sub(/:$/, "", key) }
(sec in sel) { print; next }
((sec "." key) in sel) && /^  / { print }
' | { printf '%s\n' "$prev"; cat; } | sha256sum | cut -c1-16
