#!/bin/bash
# bench/scale: bio-train as one process against MPI ranks on this machine, same batches, same
# command: 1 process x THREADS threads, RANKS ranks x 1 thread over Open MPI's default transport
# (shared memory on one host), and RANKS ranks x 1 thread over loopback TCP (--mca btl tcp,self:
# what a second machine would pay, less the wire). Samples/s of the steady-state epoch, the
# time per step the gradient exchange still blocks after backward (it is overlapped with
# backward: each range of gradients starts moving when backward has finished it; the rows
# "exchange after backward" turn that off, BIO_DIST_NO_OVERLAP=1), the batch-norm statistics
# sums' time, and the gradient bytes each rank sends per step (bio-train -v) against the
# gradient's size; and whether the checkpoints are bit-identical to the one-process run.
# The machine is shared and noisy: the three runs are repeated REPEAT times, interleaved, and each
# figure is the median of its repeats.
#   bench/scale/run.sh [BUILD_DIR] [RANKS] [SUBJECTS] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
B=$BUILD/bin
NP=${2:-2}
SUBJ=${3:-32}
REP=${4:-5}
if ! command -v mpirun >/dev/null || ! ldd "$B/bio-train" | grep libmpi >/dev/null; then
	echo "bench/scale: needs mpirun and a bio-train built with Open MPI (libopenmpi-dev)" >&2
	exit 1
fi
W=$(mktemp -d /tmp/bench-scale.XXXXXX)
trap 'rm -rf "$W"' EXIT
MPIRUN="mpirun --oversubscribe --allow-run-as-root --bind-to none"

"$B/bio-synth" --subjects "$SUBJ" --samples 10 -o "$W/data" >/dev/null 2>&1
"$B/bio-scan" --set scan.root="$W/data" --set scan.split.val=0 >"$W/m.bs" 2>/dev/null
"$B/bio-prep" "$W/m.bs" >"$W/s.bs"
"$B/bio-batch" --batch-size 32 --epochs 2 "$W/s.bs" >"$W/b.bs"
cat "$W/b.bs" >/dev/null

T="--set tracking.enabled=false"
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# per repeat: the samples/s of the steady-state epoch; the largest rank's gradient and
# statistics ms/step (a leaf rank sends its gradient once per step)
rate() { sed -n 's/.*epoch 2\/2 .* samples\/s \([0-9.]*\).*/\1/p' "$1"; }
field() { sed -n "s/.*$2 \([0-9.]*\) ms\/step.*/\1/p" "$1" | sort -g | tail -1; }
for i in $(seq "$REP"); do
	"$B/bio-train" $T -v -j "$NP" -o "$W/one" "$W/b.bs" 2>"$W/one.err"
	rate "$W/one.err" >>"$W/one.rate"
	TCP="--mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
	$MPIRUN -np "$NP" "$B/bio-train" $T -v -j1 -o "$W/shm" "$W/b.bs" 2>"$W/shm.err"
	$MPIRUN -np "$NP" $TCP "$B/bio-train" $T -v -j1 -o "$W/tcp" "$W/b.bs" 2>"$W/tcp.err"
	# the same without overlapping the exchange with backward (all of it after backward)
	$MPIRUN -np "$NP" -x BIO_DIST_NO_OVERLAP=1 "$B/bio-train" $T -v -j1 -o "$W/shm0" \
		"$W/b.bs" 2>"$W/shm0.err"
	$MPIRUN -np "$NP" $TCP -x BIO_DIST_NO_OVERLAP=1 "$B/bio-train" $T -v -j1 -o "$W/tcp0" \
		"$W/b.bs" 2>"$W/tcp0.err"
	for k in shm tcp shm0 tcp0; do
		rate "$W/$k.err" >>"$W/$k.rate"
		field "$W/$k.err" "gradient sums" >>"$W/$k.grad"
		field "$W/$k.err" "statistics sums" >>"$W/$k.stat"
	done
done
grad=$(sed -n 's/.*(the gradient: \([0-9]*\) bytes).*/\1/p' "$W/shm.err" | head -1)
echo "bench/scale: canonical model, batch 32, 64x64, Adam, $((SUBJ * 20)) samples, $(nproc) cores"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median of $REP interleaved repeats"
one=$(median <"$W/one.rate")
printf "%-36s %10s %8s %13s %13s %16s %10s\n" run samples/s ratio "wait ms/step" \
	"stats ms/step" "grad bytes/step" identical
printf "%-36s %10s %8s %13s %13s %16s %10s\n" "1 process x $NP threads" "$one" "1.00x" - - - -
for k in shm shm0 tcp tcp0; do
	r=$(median <"$W/$k.rate")
	ms=$(median <"$W/$k.grad")
	st=$(median <"$W/$k.stat")
	by=$(sed -n "s/.*ms\/step, \([0-9]*\) bytes sent\/step (the gradient.*/\1/p" "$W/$k.err" | sort -g | tail -1)
	same=no
	cmp -s "$W/one/last.ckpt" "$W/$k/last.ckpt" && same=yes
	case $k in
	shm) name="$NP ranks x 1 thread, shared memory" ;;
	shm0) name="  the same, exchange after backward" ;;
	tcp) name="$NP ranks x 1 thread, loopback TCP" ;;
	tcp0) name="  the same, exchange after backward" ;;
	esac
	printf "%-36s %10s %8s %13s %13s %16s %10s\n" "$name" "$r" \
		"$(awk "BEGIN { printf \"%.2f\", $r / $one }")x" "$ms" "$st" "$by" "$same"
done
echo "gradient: $grad bytes (float32 parameters)"
