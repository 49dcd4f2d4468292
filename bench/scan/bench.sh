#!/bin/sh
# bench/scan: bio-scan over 100,000 file names, beside a plain-Python reference scan (os.walk,
# re, msgpack) of the same files in the same run. Creates empty files in bio-synth's layout
# (3,125 subjects x 2 sides x 8 samples = 50,000 irises and as many fingerprints) in a temp dir
# under /tmp, scans once to warm the caches, then times three runs of each and prints the CPU
# time (user + sys) of the best; the target for bio-scan is under 1 s.
# Usage: bench/scan/bench.sh [BUILD_DIR]   (default $BUILD or build)
set -eu
BUILD=${1:-${BUILD:-build}}
SCAN="$BUILD/bin/bio-scan"
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$SCAN" ] || { echo "bench/scan: $SCAN: not built (make BUILD=$BUILD all)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/bench-scan.XXXXXX)
trap 'rm -rf "$DIR"' EXIT INT TERM

"$PYTHON" - "$DIR" <<'PY'
import os, sys
d = sys.argv[1]
for m in ('iris', 'fingerprint'):
    os.mkdir(os.path.join(d, m))
for s in range(1, 3126):
    for e in 'LR':
        for i in range(1, 9):
            for p in ('iris/%04d_%s_%02d.bmp' % (s, e, i),
                      'fingerprint/%04d_%s_thumb_%02d.BMP' % (s, e, i)):
                os.close(os.open(os.path.join(d, p), os.O_CREAT | os.O_WRONLY, 0o644))
PY
n=$(find "$DIR" -type f | wc -l)

# cpu CMD...: runs CMD, prints "cpu_seconds user_seconds peak_rss_mib" of that child
cpu() {
	"$PYTHON" - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print('%.3f %.3f %.1f' % (r.ru_utime + r.ru_stime, r.ru_utime, r.ru_maxrss / 1024))
PY
}

# best NAME CMD...: three timed runs, prints each and sets $best to the lowest CPU time
best() {
	name=$1
	shift
	best=
	for run in 1 2 3; do
		t=$(cpu "$@")
		set -- "$@" # keep the command for the next run
		c=${t%% *}
		echo "$name run $run: cpu $c s (user $(echo "$t" | cut -d' ' -f2) s), peak RSS $(echo "$t" | cut -d' ' -f3) MiB"
		if [ -z "$best" ] || awk "BEGIN { exit !($c < $best) }"; then best=$c; fi
	done
}

"$SCAN" -o "$DIR/warm.bs" "$DIR"
best bio-scan "$SCAN" -o "$DIR/out.bs" "$DIR"
scan_best=$best
best reference "$PYTHON" "$HERE/reference.py" "$DIR" "$DIR/ref.bs"
ref_best=$best
records=$("$PYTHON" -c "
import msgpack, sys
h = next(msgpack.Unpacker(open(sys.argv[1], 'rb'), raw=False))
print(h['meta']['counts']['records'])" "$DIR/out.bs")
echo "bio-scan: $n files, $records records: best CPU (user+sys) $scan_best s (target < 1 s)"
echo "reference (Python os.walk + re + msgpack): best CPU $ref_best s;" \
	"bio-scan uses $(awk "BEGIN { printf \"%.1f\", $ref_best / $scan_best }")x less"
