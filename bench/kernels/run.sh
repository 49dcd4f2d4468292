#!/bin/bash
# bench/kernels: per layer of the canonical model's convolutions (forward, backward-weights,
# backward-data), biopipe's time, GFLOP/s and % of the fp32 FMA peak measured in the same run,
# beside PyTorch's (Debian python3-torch, oneDNN) for the same op with the same threads, for every
# kernel path this CPU runs and for OpenBLAS; then the single-thread GEMM table (gemm_bench).
#   bench/kernels/run.sh [BUILD_DIR] [THREADS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
J=${2:-2}
N=${3:-32}
PY=${PYTHON:-/usr/bin/python3}
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/layer_bench" "$BUILD/bench/gemm_bench" >/dev/null
echo "bench/kernels: batch $N, $J thread(s), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/kernels/torch_layers.py "$N" "$J" 7 >/tmp/bench-kernels-torch.$$
trap 'rm -f /tmp/bench-kernels-*.$$' EXIT
paths=$("$BUILD/bench/layer_bench" 1 1 1 | sed -n 's/.*(cpu: \([a-z0-9 ]*\)).*/\1/p')
for p in $paths openblas direct; do
	case $p in
	openblas) env="BIO_BLAS=openblas" ;;
	direct) env="BIO_CONV=direct" ;; # the direct kernels where Winograd would run: its reference
	*) env="BIO_CPU=$p" ;;
	esac
	env $env "$BUILD/bench/layer_bench" "$N" "$J" 7 >/tmp/bench-kernels-bio.$$
	head -2 /tmp/bench-kernels-bio.$$
	echo "(GFLOP/s and %peak count a direct convolution's FLOPs, 2 x 9 x c_in x c_out per pixel: for the Winograd layers they are effective rates and can pass 100%)"
	printf '%-24s %10s %8s %7s %10s %8s\n' "$p" "bio ms" "GFLOP/s" "%peak" "torch ms" "speedup"
	tail -n +3 /tmp/bench-kernels-bio.$$ | while read -r l op s g pct; do
		ts=$(awk -v k="$l $op" '$1" "$2 == k {print $3}' /tmp/bench-kernels-torch.$$)
		awk -v n="$l $op" -v s="$s" -v g="$g" -v p="$pct" -v t="$ts" \
			'BEGIN { printf "%-24s %10.3f %8.1f %6.1f%% %10.3f %7.2fx\n", n, s*1e3, g, p, t*1e3, t/s }'
	done
done
"$BUILD/bench/gemm_bench" 8 0.3
