#!/bin/bash
# bench/infer: bio-infer against the PyTorch reference (Debian python3-torch, the same checkpoint
# loaded into the equivalent nn.Module) on the same samples in one run: throughput at batch 64 on
# 2 threads, latency at batch 1 on 1 thread, start-up to the first prediction, peak RSS, ratios.
#   bench/infer/run.sh [BUILD_DIR] [N_SAMPLES]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}/bin
N=${2:-640}
PY=${PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/bench-infer.XXXXXX)
trap 'rm -rf "$W"' EXIT
subjects=$(( (N + 19) / 20 ))
"$B/bio-synth" --subjects "$subjects" --samples 10 --size 96 -o "$W/data" 2>/dev/null
"$B/bio-scan" --set scan.split.val=0 -o "$W/m.bs" "$W/data" 2>/dev/null
"$B/bio-prep" -o "$W/s.bs" "$W/m.bs"
# A canonical-model checkpoint (DESIGN.md: 64x64, channels 32/64/128, concat), one short epoch.
"$B/bio-batch" --batch-size 32 --epochs 1 "$W/s.bs" |
	"$B/bio-train" --set tracking.enabled=false -o "$W/ck" 2>/dev/null
CK="$W/ck/last.ckpt"
n=$("$PY" -c "import msgpack,sys; print(sum(1 for o in msgpack.Unpacker(open(sys.argv[1],'rb'),raw=False,max_buffer_size=1<<30) if 'id' in o))" "$W/s.bs")
"$PY" -c "
import sys, msgpack
objs=list(msgpack.Unpacker(open(sys.argv[1],'rb'),raw=False,max_buffer_size=1<<30))
h,r=objs[0],objs[1]
open(sys.argv[2],'wb').write(msgpack.packb(h)+msgpack.packb(r)+msgpack.packb({'end':1}))" "$W/s.bs" "$W/one.bs"

calc() { awk "BEGIN { print $* }"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); calc "$t1 - $t0"; }
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

echo "bench/infer: $n samples, canonical model, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$B/bio-infer" -v -m "$CK" "$W/one.bs" 2>&1 >/dev/null | grep -m1 'kernels ' | sed 's/^bio-infer: /path: /'
t64=$(secs "$B/bio-infer" -j 2 -b 64 -m "$CK" "$W/s.bs")
t1=$(secs "$B/bio-infer" -j 1 -b 1 -m "$CK" "$W/s.bs")
tstart=$(secs "$B/bio-infer" -j 1 -b 1 -m "$CK" "$W/one.bs")
rss_c=$(rss "$B/bio-infer" -j 2 -b 64 -m "$CK" "$W/s.bs")
read -r p64 _ pfirst prss <<<"$("$PY" bench/infer/reference.py "$CK" "$W/s.bs" 64 2)"
read -r _ p1ms _ _ <<<"$("$PY" bench/infer/reference.py "$CK" "$W/s.bs" 1 1)"
c64=$(calc "$n / $t64")
c1ms=$(calc "1000 * $t1 / $n")
printf '%-34s %12s %12s %8s\n' "" bio-infer pytorch ratio
printf '%-34s %12.1f %12.1f %7.2fx\n' "samples/s, batch 64, 2 threads" "$c64" "$p64" "$(calc "$c64 / $p64")"
printf '%-34s %12.2f %12.2f %7.2fx\n' "ms/sample, batch 1, 1 thread" "$c1ms" "$p1ms" "$(calc "$p1ms / $c1ms")"
printf '%-34s %12.3f %12.3f %7.2fx\n' "s from start to first prediction" "$tstart" "$pfirst" "$(calc "$pfirst / $tstart")"
printf '%-34s %12.0f %12.0f %7.2fx\n' "peak RSS MiB (batch 64)" "$(calc "$rss_c / 1024")" "$prss" "$(calc "$prss * 1024 / $rss_c")"
