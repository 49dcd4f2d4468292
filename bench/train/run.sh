#!/bin/bash
# bench/train: bio-train against PyTorch 1.13 (Debian python3-torch, bench/train/torch_train.py:
# the same canonical model, DESIGN.md: 2 x [3 conv blocks 32/64/128, 8192->256->128], concat,
# batch 32, 64x64 inputs, Adam) on the same batches stream, in one run, with the same thread count:
# training samples/s (steady state), inference samples/s (eval forward, batch 32), peak RSS,
# start to the end of the first training step, and the ratios; bio-train's achieved GFLOP/s
# against the fp32 FMA peak measured here and now (bench/kernels/layer_bench --peak), and its
# per-layer time breakdown.
#   [BIO_CPU=avx512|avx2|generic] [BIO_BLAS=own|openblas] bench/train/run.sh [BUILD_DIR] [THREADS] [SUBJECTS]
# (the kernel path it ran is printed first)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
B=$BUILD/bin
J=${2:-2}
SUBJ=${3:-16}
PY=${PYTHON:-/usr/bin/python3}
HELPER=$BUILD/tests/helpers/nn_parity
W=$(mktemp -d /tmp/bench-train.XXXXXX)
trap 'rm -rf "$W"' EXIT
make --no-print-directory BUILD="$BUILD" "$HELPER" >/dev/null

# data: SUBJ subjects x 2 sides x 10 samples, 128 px images prepared to 64x64; two epochs
"$B/bio-synth" --subjects "$SUBJ" --samples 10 -o "$W/data" >/dev/null 2>&1
"$B/bio-scan" --set scan.root="$W/data" --set scan.split.val=0 >"$W/m.bs" 2>/dev/null
"$B/bio-prep" "$W/m.bs" >"$W/s.bs"
"$B/bio-batch" --batch-size 32 --epochs 2 "$W/s.bs" >"$W/b.bs"
"$B/bio-batch" --batch-size 32 --epochs 1 "$W/s.bs" >"$W/b1.bs"
cat "$W/b.bs" "$W/b1.bs" >/dev/null # page cache

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

make --no-print-directory BUILD="$BUILD" "$BUILD/bench/layer_bench" >/dev/null
peak=$("$BUILD/bench/layer_bench" --peak "$J")

# bio-train: epoch 2's samples/s is the steady state (epoch 1 includes the warm-up)
/usr/bin/time -f "%M" -o "$W/rss" "$B/bio-train" -v -j "$J" --set tracking.enabled=false \
	--layer-times -o "$W/ck" "$W/b.bs" 2>"$W/train.err"
c_train=$(sed -n 's/.*epoch 2\/2 .* samples\/s \([0-9.]*\).*/\1/p' "$W/train.err")
c_first=$(sed -n 's/.*first step began \([0-9.]*\) ms and ended \([0-9.]*\) ms.*/\2/p' "$W/train.err")
c_begin=$(sed -n 's/.*first step began \([0-9.]*\) ms.*/\1/p' "$W/train.err")
c_rss=$(cat "$W/rss")
c_infer=$("$HELPER" --bench-infer "$W/ck/last.ckpt" 32 20 "$J")
flops=$("$PY" -c '
s, c, k = 64, [32, 64, 128], 3
f, cin = 0.0, 1
for i, co in enumerate(c):
    conv = 2.0 * s * s * co * cin * k * k
    f += conv * (2 if i == 0 else 3)
    cin, s = co, s // 2
f += 3 * 2 * (cin * s * s * 256 + 256 * 128)
print(f * 2 / 1e9)')

launch=$(date +%s.%N)
read -r p_train p_infer p_first p_rss _ <<<"$("$PY" bench/train/torch_train.py "$W/b1.bs" "$J" "$launch")"

# CPU time per training sample on one thread (robust to other load on the machine): bio-train's
# whole run (start-up and validation-free epochs included) against PyTorch's steady-state loop
/usr/bin/time -f "%U %S" -o "$W/cpu" "$B/bio-train" -j 1 --set tracking.enabled=false \
	-o "$W/ck1" "$W/b.bs" 2>/dev/null
n_samples=$("$PY" -c 'import sys, msgpack
print(sum(len(o["ids"]) for o in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False,
          max_buffer_size=1 << 30) if "ids" in o))' "$W/b.bs")
c_cpu=$(awk -v n="$n_samples" '{ printf "%.5f", ($1 + $2) / n }' "$W/cpu")
read -r _ _ _ _ p_cpu <<<"$("$PY" bench/train/torch_train.py "$W/b1.bs" 1 "$(date +%s.%N)")"

echo "bench/train: canonical model, batch 32, 64x64, Adam, $J threads, $(nproc) cores," \
	"$((SUBJ * 20)) samples"
grep -m1 'kernels ' "$W/train.err" | sed 's/^bio-train: /path: /'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (BIO_CPU=${BIO_CPU:-} BIO_BLAS=${BIO_BLAS:-})"
printf "%-28s %12s %12s %8s\n" "" "bio-train" "PyTorch" "ratio"
printf "%-28s %12s %12s %8s\n" "training samples/s" "$c_train" "$p_train" "$(calc "$c_train / $p_train")x"
printf "%-28s %12s %12s %8s\n" "inference samples/s" "$c_infer" "$p_infer" "$(calc "$c_infer / $p_infer")x"
printf "%-28s %12s %12s %8s\n" "peak RSS MiB" "$(calc "$c_rss / 1024" 1)" "$(calc "$p_rss / 1024" 1)" \
	"$(calc "$p_rss / $c_rss" 1)x less"
printf "%-28s %12s %12s %8s\n" "start to end of 1st step ms" "$c_first" "$(calc "$p_first * 1000" 1)" \
	"$(calc "$p_first * 1000 / $c_first" 0)x"
printf "%-28s %12s %12s %8s\n" "CPU ms/sample, 1 thread" "$(calc "$c_cpu * 1000" 2)" \
	"$(calc "$p_cpu * 1000" 2)" "$(calc "$p_cpu / $c_cpu" 2)x"
echo "bio-train start to the beginning of its first step: $c_begin ms"
echo "training: $(calc "$flops" 3) GFLOP/sample -> bio-train $(calc "$flops * $c_train" 1) GFLOP/s" \
	"= $(calc "100 * $flops * $c_train / $peak" 0)% of the fp32 FMA peak $peak GFLOP/s measured now ($J threads)"
echo "bio-train per-layer time (both epochs):"
sed -n 's/^bio-train: layer time /  /p' "$W/train.err"
