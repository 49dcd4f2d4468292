#!/usr/bin/env bats
# bio-train and the nn core: PyTorch parity of every layer, the whole model (3 fusion modes,
# train/eval), optimizers and schedulers; checkpoints loadable by PyTorch with the same logits;
# bit-identical results for -j1/-j2, for a split run resumed from a checkpoint and for a run killed
# with SIGKILL at a random moment and resumed; SIGTERM; early stopping; bad input (shape, NaN,
# empty, single class, corrupt/mismatched checkpoint, wrong start epoch); --half; options.
# Runtime: about 20-30 s on 2 cores (Python/torch start-up dominates).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'
load 'mutate'
bats_require_minimum_version 1.5.0

setup_file() {
	small_fixture
	bio-batch $C --epochs 6 "$SS" >"$FX/b6.bs"
	export HELPER="$BIO_BUILD/tests/helpers/nn_parity"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
}

@test "help, version and usage errors" {
	run bio-train --help
	assert_success
	assert_output --partial "Usage: bio-train"
	run bio-train --version
	assert_success
	run bio-train --no-such-option
	assert_failure 2
	assert_output --partial "Try 'bio-train --help'"
}

@test "PyTorch parity: layers, whole model in 3 fusion modes train/eval, the margin heads (CosFace, ArcFace), optimizers, schedulers" {
	"$PYTHON" tests/python/torch_parity.py "$T/cases"
	run "$HELPER" "$T"/cases/*.bs
	echo "$output"
	assert_success
	[ "$(grep -c '^ok ' <<<"$output")" -eq 37 ]
	refute_output --partial FAIL
}

@test "PyTorch parity, finite differences and -j determinism on every kernel path, OpenBLAS, direct, im2col" {
	"$PYTHON" tests/python/torch_parity.py "$T/cases"
	# the paths this CPU runs, as bio-train -v names them: "(cpu: avx512 avx2 generic)"
	paths=$(bio-train -v $C -o "$T/none" </dev/null 2>&1 | sed -n 's/.*(cpu: \([a-z0-9 ]*\)).*/\1/p')
	[ -n "$paths" ]
	bio-batch $C --epochs 2 "$SS" >"$T/b2.bs"
	# each ISA path (Winograd convolutions where they fit), OpenBLAS, the direct convolutions
	# only, and every convolution by im2col + GEMM
	for p in $paths openblas direct gemm; do
		case $p in
		openblas) env="BIO_BLAS=openblas" ;;
		direct) env="BIO_CONV=direct" ;;
		gemm) env="BIO_CONV=gemm" ;;
		*) env="BIO_CPU=$p" ;;
		esac
		run env $env "$HELPER" "$T"/cases/*.bs
		[ "$status" -eq 0 ] || { echo "$p: $output"; false; }
		[ "$(grep -c '^ok ' <<<"$output")" -eq 37 ] || { echo "$p: $output"; false; }
		env $env "$BIO_BUILD/tests/test_nn" >/dev/null
		env $env bio-train $C -o "$T/$p-1" -j1 "$T/b2.bs" 2>/dev/null
		env $env bio-train $C -o "$T/$p-2" -j2 "$T/b2.bs" 2>/dev/null
		cmp "$T/$p-1/last.ckpt" "$T/$p-2/last.ckpt"
	done
	# the paths agree within rounding, not bit for bit: they differ (FMA) where the CPU has more
	# than one path
	n=$(wc -w <<<"$paths")
	[ "$n" -lt 2 ] || ! cmp -s "$T/generic-1/last.ckpt" "$T/$(set -- $paths; echo "$1")-1/last.ckpt"
}

@test "bad kernel environment: BIO_CPU, BIO_BLAS, BIO_CONV give one error line naming the value" {
	bio-batch $C --epochs 1 "$SS" >"$T/b1.bs"
	for e in BIO_CPU=avx9 BIO_BLAS=mkl BIO_CONV=fft; do
		run env $e bio-train $C -o "$T/bad-env" "$T/b1.bs"
		[ "$status" -eq 1 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ "$output" == "bio-train: $e: unknown (expected "* ]]
		[ ! -e "$T/bad-env/last.ckpt" ]
	done
	run env BIO_CONV=gemm bio-train -v $C -o "$T/gemm" </dev/null
	[[ "$output" == *"3x3 convolutions by im2col + GEMM (BIO_CONV=gemm)"* ]]
	run env BIO_CONV=direct bio-train -v $C -o "$T/direct" </dev/null
	[[ "$output" == *"3x3 convolutions direct (BIO_CONV=direct)"* ]]
	run bio-train -v $C -o "$T/auto" </dev/null
	[[ "$output" == *"3x3 convolutions Winograd F(4x4,3x3) or F(2x2,3x3) where the shape fits, else direct"* ]]
}

@test "parity check can fail: a perturbed reference is caught" {
	"$PYTHON" tests/python/torch_parity.py "$T/cases"
	"$PYTHON" - "$T/cases/model_concat_train.bs" <<'EOF'
import sys, msgpack, numpy as np
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
for o in objs:
    if o.get("name") == "grad:iris.fc1.weight":
        a = np.frombuffer(o["tensor"]["data"], "<f4").copy()
        a[3] += 1e-3 * np.abs(a).max()
        o["tensor"]["data"] = a.tobytes()
open(sys.argv[1], "wb").write(b"".join(msgpack.packb(o) for o in objs))
EOF
	run "$HELPER" "$T/cases/model_concat_train.bs"
	assert_failure
	assert_output --partial "grad:iris.fc1.weight"
}

@test "trains: checkpoints with PyTorch state_dict names, PyTorch gets the same logits" {
	run bio-train $C --val "$SS" -o "$T/ck" -j1 "$FX/b6.bs"
	assert_success
	train_out="$output"
	[ "$(grep -c '^bio-train: epoch ' <<<"$output")" -eq 6 ]
	assert_output --partial "val_acc"
	[ -f "$T/ck/last.ckpt" ] && [ -f "$T/ck/best.ckpt" ]
	[ "$(ckpt_epoch "$T/ck/last.ckpt")" -eq 6 ]
	run "$PYTHON" tests/python/check_checkpoint.py names "$T/ck/last.ckpt"
	assert_success
	"$HELPER" --logits "$T/ck/last.ckpt" "$SS" "$T/logits.bs"
	run "$PYTHON" tests/python/check_checkpoint.py logits "$T/ck/last.ckpt" "$SS" "$T/logits.bs"
	echo "$output"
	assert_success
	# the training loss goes down
	first=$(sed -n 's/.*epoch 1\/6 loss \([0-9.]*\).*/\1/p' <<<"$train_out")
	last=$(sed -n 's/.*epoch 6\/6 loss \([0-9.]*\).*/\1/p' <<<"$train_out")
	"$PYTHON" -c "import sys; sys.exit(0 if $last < $first else 1)"
}

@test "all fusion modes and a single modality train and load in PyTorch" {
	for f in attention weighted; do
		bio-train $C --set model.fusion=$f -o "$T/$f" "$FX/b6.bs" 2>/dev/null
		"$HELPER" --logits "$T/$f/last.ckpt" "$SS" "$T/l.bs"
		"$PYTHON" tests/python/check_checkpoint.py logits "$T/$f/last.ckpt" "$SS" "$T/l.bs"
	done
	bio-train $C --set 'model.modalities=[fingerprint]' -o "$T/fp" "$FX/b6.bs" 2>/dev/null
	run "$PYTHON" tests/python/check_checkpoint.py names "$T/fp/last.ckpt"
	assert_success
	"$PYTHON" -c 'import sys, msgpack; u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
m = next(u)["meta"]["model"]; assert m["modalities"] == ["fingerprint"], m' "$T/fp/last.ckpt"
}

@test "same checkpoints with -j1 and -j2 (bit-identical)" {
	bio-train $C --val "$SS" -o "$T/a" -j1 "$FX/b6.bs" 2>/dev/null
	bio-train $C --val "$SS" -o "$T/b" -j2 "$FX/b6.bs" 2>/dev/null
	cmp "$T/a/last.ckpt" "$T/b/last.ckpt"
	cmp "$T/a/best.ckpt" "$T/b/best.ckpt"
	# and a different seed gives different weights
	bio-train $C --set experiment.seed=7 -o "$T/c" -j1 "$FX/b6.bs" 2>/dev/null
	! cmp -s "$T/a/last.ckpt" "$T/c/last.ckpt" || false
}

@test "resume from an epoch checkpoint equals the uninterrupted run" {
	cfg="$C --set training.optimizer=sgd --set training.scheduler=cosine --set training.lr=0.05"
	bio-train $cfg --val "$SS" -o "$T/full" "$FX/b6.bs" 2>/dev/null
	# the first 2 epochs, stopped by SIGTERM after epoch 2 is impossible to time here: instead
	# take the run's own checkpoint at epoch 2 by running 2 epochs of the 6-epoch stream
	bio-batch $C --epochs 6 "$SS" | "$PYTHON" -c '
import sys, msgpack
u = msgpack.Unpacker(sys.stdin.buffer, raw=False)
objs = [o for o in u if "epoch" not in o or o["epoch"] < 2]
objs[-1] = {"end": len(objs) - 2}
sys.stdout.buffer.write(b"".join(msgpack.packb(o) for o in objs))' >"$T/first2.bs"
	bio-train $cfg --val "$SS" -o "$T/part" "$T/first2.bs" 2>/dev/null
	[ "$(ckpt_epoch "$T/part/last.ckpt")" -eq 2 ]
	run bash -c "bio-batch $C --epochs 6 --start-epoch 2 '$SS' |
		bio-train $cfg --val '$SS' -o '$T/part' -j2 --resume '$T/part/last.ckpt'"
	assert_success
	assert_output --partial "epoch 3/6"
	refute_output --partial "epoch 2/6"
	cmp "$T/full/last.ckpt" "$T/part/last.ckpt"
	cmp "$T/full/best.ckpt" "$T/part/best.ckpt"
}

@test "killed with SIGKILL at a random moment and resumed: bit-identical to the uninterrupted run" {
	cfg="-c $FX/small.yaml --set model.input_size=16 --set model.channels=[8,16] --set model.hidden=32"
	bio-batch $C --epochs 30 "$SS" >"$T/b30.bs"
	bio-train $cfg --val "$SS" -o "$T/ref" -j1 "$T/b30.bs" 2>/dev/null
	delay=$("$PYTHON" -c 'import random; print("%.3f" % random.uniform(0.05, 0.6))')
	echo "kill after $delay s"
	bio-batch $C --epochs 30 "$SS" | bio-train $cfg --val "$SS" -o "$T/k" -j2 2>/dev/null &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
	if [ -f "$T/k/last.ckpt" ]; then
		e=$(ckpt_epoch "$T/k/last.ckpt")
		echo "resuming at epoch $e"
		if [ "$e" -lt 30 ]; then
			bio-batch $C --epochs 30 --start-epoch "$e" "$SS" |
				bio-train $cfg --val "$SS" -o "$T/k" -j1 --resume "$T/k/last.ckpt" 2>/dev/null
		fi
	else
		bio-train $cfg --val "$SS" -o "$T/k" -j1 "$T/b30.bs" 2>/dev/null
	fi
	cmp "$T/ref/last.ckpt" "$T/k/last.ckpt"
	cmp "$T/ref/best.ckpt" "$T/k/best.ckpt"
	! ls "$T"/k/*.tmp.* 2>/dev/null || true
}

@test "SIGTERM finishes the epoch, checkpoints and says how to resume" {
	cfg="$C --set model.channels=[8,16] --set model.hidden=32"
	bio-batch $C --epochs 200 "$SS" >"$T/b200.bs"
	bio-train $cfg -o "$T/s" -j1 "$T/b200.bs" 2>"$T/err" &
	pid=$!
	sleep 0.5
	kill -TERM "$pid"
	wait "$pid"
	run cat "$T/err"
	assert_output --partial "stopped by signal"
	assert_output --partial "--start-epoch"
	e=$(ckpt_epoch "$T/s/last.ckpt")
	[ "$e" -ge 1 ] && [ "$e" -lt 200 ]
}

@test "early stopping: stops after patience epochs without improvement, best marked" {
	bio-batch $C --epochs 25 "$SS" >"$T/b25.bs"
	run bio-train $C --set training.lr=0.03 --set training.early_stopping.patience=2 \
		--set training.early_stopping.metric=val_loss --val "$SS" -o "$T/es" "$T/b25.bs"
	assert_success
	printf '%s\n' "$output" >"$T/es.out"
	# recompute the improvements from the printed val_loss values; check the marks, the stop
	# and the epochs of both checkpoints
	"$PYTHON" - "$T/es" "$T/es.out" <<'EOF'
import re, sys, msgpack
out = open(sys.argv[2]).read()
lines = [l for l in out.splitlines() if re.search(r" epoch [0-9]+/[0-9]+ loss", l)]
vl = [float(re.search(r"val_loss ([0-9.]+)", l).group(1)) for l in lines]
marks = [l.endswith("*") for l in lines]
best, bad, stop, best_epoch = None, 0, None, None
for e, v in enumerate(vl):
    imp = best is None or v < best
    assert imp == marks[e], (e, v, best)
    if imp:
        best, bad, best_epoch = v, 0, e
    else:
        bad += 1
    if bad >= 2:
        stop = e
        break
assert len(vl) == (stop + 1 if stop is not None else 25), (len(vl), stop)
if stop is not None:
    assert "early stopping after epoch %d" % (stop + 1) in out
ep = lambda f: next(msgpack.Unpacker(open(f, "rb"), raw=False))["meta"]["epoch"]
assert ep(sys.argv[1] + "/last.ckpt") == len(vl)
assert ep(sys.argv[1] + "/best.ckpt") == best_epoch + 1
print("stopped at", stop, "best", best_epoch)
EOF
}

@test "--half stores f16 weights that PyTorch loads with close logits" {
	bio-train $C --half -o "$T/h" "$FX/b6.bs" 2>/dev/null
	"$PYTHON" -c 'import sys, msgpack; u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
h = next(u); r = next(u); assert h["meta"]["half"] and r["tensor"]["dtype"] == "f16", r' "$T/h/last.ckpt"
	"$HELPER" --logits "$T/h/last.ckpt" "$SS" "$T/l.bs"
	run "$PYTHON" tests/python/check_checkpoint.py logits "$T/h/last.ckpt" "$SS" "$T/l.bs"
	assert_success
	[ "$(stat -c %s "$T/h/last.ckpt")" -gt 0 ]
}

@test "best.ckpt holds the weights only (a third of last.ckpt), --full keeps the optimizer; resuming from a weights-only one names last.ckpt" {
	bio-train $C -o "$T/w" "$FX/b6.bs" 2>/dev/null
	records() {
		"$PYTHON" -c 'import sys, msgpack
u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
head = next(u)
names = [o["name"] for o in u if isinstance(o, dict) and "name" in o]
print(len(names), sum(n.startswith("optimizer.") for n in names), head["meta"]["optimizer"] is None)' "$1"
	}
	run records "$T/w/best.ckpt"
	assert_output --regexp '^[0-9]+ 0 True$'
	run records "$T/w/last.ckpt"
	assert_output --regexp '^[0-9]+ [1-9][0-9]* False$'
	best=$(stat -c %s "$T/w/best.ckpt") last=$(stat -c %s "$T/w/last.ckpt")
	[ $((best * 2)) -lt "$last" ]
	# PyTorch and bio-infer read the weights-only checkpoint as before
	bio-infer -m "$T/w/best.ckpt" -o "$T/p.bs" "$SS"
	# resuming from it: one line naming last.ckpt, nothing written
	bio-batch $C --epochs 7 --start-epoch 6 "$SS" >"$T/b7.bs"
	run bio-train $C --resume "$T/w/best.ckpt" -o "$T/r" "$T/b7.bs"
	assert_failure 1
	assert_output --partial "best.ckpt: checkpoint has no optimizer state"
	assert_output --partial "resume from last.ckpt"
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "$T/r/last.ckpt" ]
	# --full (training.best_full): the optimizer state in best.ckpt too, one file for both
	# names when the last epoch was the best; the config records it
	bio-train $C --full -o "$T/f" "$FX/b6.bs" 2>/dev/null
	run records "$T/f/best.ckpt"
	assert_output --regexp '^[0-9]+ [1-9][0-9]* False$'
	run bio-train $C --full --print-config
	assert_output --partial "best_full: true"
	# the weights are the same either way
	"$PYTHON" - "$T/w/best.ckpt" "$T/f/best.ckpt" <<'PY'
import sys, msgpack
def weights(p):
    u = msgpack.Unpacker(open(p, "rb"), raw=False)
    next(u)
    return {o["name"]: o["tensor"] for o in u
            if isinstance(o, dict) and "name" in o and not o["name"].startswith("optimizer.")}
a, b = weights(sys.argv[1]), weights(sys.argv[2])
assert a == b and len(a) > 10, (len(a), len(b))
PY
}

@test "bad input: shape mismatch, wrong modality, wrong start epoch" {
	run bio-train $C --set model.input_size=32 -o "$T/x" "$FX/b6.bs"
	assert_failure 1
	assert_output --regexp "the batches hold 1x16x16 samples \\(prep.size 16 upstream\\) but the model takes 1x32x32|the model takes 32x32 \\(model.input_size, prep.size\\)"
	[ "${#lines[@]}" -eq 1 ]
	run bio-train $C --set 'model.modalities=[iris,face]' -o "$T/x" "$FX/b6.bs"
	assert_failure 1
	assert_output --partial "no modality 'face'"
	bio-batch $C --epochs 6 --start-epoch 2 "$SS" >"$T/s2.bs"
	run bio-train $C -o "$T/x" "$T/s2.bs"
	assert_failure 1
	assert_output --partial "start at epoch 2"
}

@test "bad input: NaN in the data stops with one line and keeps the last good checkpoint" {
	bio-batch $C --epochs 2 "$SS" >"$T/b2.bs"
	bio-train $C -o "$T/n" "$T/b2.bs" 2>/dev/null
	cp "$T/n/last.ckpt" "$T/good.ckpt"
	bio-batch $C --epochs 4 --start-epoch 2 "$SS" | "$PYTHON" -c '
import sys, msgpack, numpy as np
objs = list(msgpack.Unpacker(sys.stdin.buffer, raw=False))
t = objs[7]["iris"]
a = np.frombuffer(t["data"], "<f4").copy(); a[5] = np.nan; t["data"] = a.tobytes()
sys.stdout.buffer.write(b"".join(msgpack.packb(o) for o in objs))' >"$T/nan.bs"
	run bio-train $C -o "$T/n" --resume "$T/n/last.ckpt" "$T/nan.bs"
	assert_failure 1
	assert_output --partial "non-finite"
	[ "${#lines[@]}" -eq 3 ] # the legend, the line of epoch 3, then the error
	# epoch 3 completed and was checkpointed; the NaN batch is in epoch 4: nothing after it
	[ "$(ckpt_epoch "$T/n/last.ckpt")" -eq 3 ]
	# a diverging run (SGD, lr 1000) reaches a non-finite loss: stop; the good checkpoint
	# already in the directory is not touched
	cp "$T/good.ckpt" "$T/n/last.ckpt"
	run bio-train $C --set training.optimizer=sgd --set training.lr=1000 -o "$T/n" "$FX/b6.bs"
	assert_failure 1
	assert_output --partial "the loss is not finite"
	[ "${#lines[@]}" -eq 1 ]
	cmp "$T/good.ckpt" "$T/n/last.ckpt"
}

@test "bad input: empty and single-class training sets" {
	"$PYTHON" - "$T" <<'EOF'
import sys, msgpack
d = sys.argv[1]
meta = {"labels": ["a", "b"], "modalities": ["iris", "fingerprint"], "batch_size": 8,
        "epochs": 1, "start_epoch": 0, "batches_per_epoch": 0, "split": "train", "seed": 1,
        "shape": [1, 16, 16]}
open(d + "/empty.bs", "wb").write(msgpack.packb({"bio-stream": 1, "kind": "batches", "meta": meta})
                                  + msgpack.packb({"end": 0}))
meta = dict(meta, labels=["only"])
open(d + "/one.bs", "wb").write(msgpack.packb({"bio-stream": 1, "kind": "batches", "meta": meta})
                                + msgpack.packb({"end": 0}))
EOF
	run bio-train $C -o "$T/e" "$T/empty.bs"
	assert_failure 1
	assert_output --partial "no training batches"
	run bio-train $C -o "$T/e" "$T/one.bs"
	assert_failure 1
	assert_output --partial "1 class"
	[ ! -e "$T/e/last.ckpt" ]
	# two label names, but every batch of the single-label class
	bio-batch $C --epochs 1 "$SS" | "$PYTHON" -c '
import sys, msgpack, numpy as np
objs = list(msgpack.Unpacker(sys.stdin.buffer, raw=False))
for o in objs[1:-1]:
    a = np.zeros(len(o["ids"]), "<i8"); o["label"]["data"] = a.tobytes()
sys.stdout.buffer.write(b"".join(msgpack.packb(o) for o in objs))' >"$T/single.bs"
	run bio-train $C -o "$T/e" "$T/single.bs"
	assert_failure 1
	assert_output --partial "single class"
	[ ! -e "$T/e/last.ckpt" ]
}

# resumable N: 2 epochs trained into $T/r (its batches $T/b2.bs), its last.ckpt kept as
# $T/keep.ckpt, and the batches of epochs 2 to N to resume with in $T/rest.bs
resumable() {
	bio-batch $C --epochs 2 "$SS" >"$T/b2.bs"
	bio-train $C -o "$T/r" "$T/b2.bs" 2>/dev/null
	cp "$T/r/last.ckpt" "$T/keep.ckpt"
	bio-batch $C --epochs "$1" --start-epoch 2 "$SS" >"$T/rest.bs"
}

@test "bad --resume: corrupt, truncated or mismatched checkpoints fail and overwrite nothing" {
	resumable 4
	head -c 3000 "$T/keep.ckpt" >"$T/trunc.ckpt"
	run bio-train $C -o "$T/r" --resume "$T/trunc.ckpt" "$T/rest.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	printf 'garbage' >"$T/junk.ckpt"
	run bio-train $C -o "$T/r" --resume "$T/junk.ckpt" "$T/rest.bs"
	assert_failure 1
	run bio-train $C --set model.hidden=32 -o "$T/r" --resume "$T/keep.ckpt" "$T/rest.bs"
	assert_failure 1
	assert_output --partial "differs from the configured one: model.hidden 16 in the checkpoint, 32 configured"
	run bio-train $C --set 'model.channels=[4,16]' -o "$T/r" --resume "$T/keep.ckpt" "$T/rest.bs"
	assert_failure 1
	assert_output --partial "model.channels [4, 8] in the checkpoint, [4, 16] configured"
	run bio-train $C --set training.optimizer=sgd -o "$T/r" --resume "$T/keep.ckpt" "$T/rest.bs"
	assert_failure 1
	assert_output --partial "optimizer"
	run bio-train $C -o "$T/r" --resume "$T/keep.ckpt" "$FX/b6.bs"
	assert_failure 1
	assert_output --partial "--start-epoch 2"
	# a weight tensor with another shape
	"$PYTHON" - "$T/keep.ckpt" "$T/shape.ckpt" <<'EOF'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
objs[0]["meta"].pop("checksum")  # an unchecked (pre-checksum) checkpoint: the shape check speaks
objs[-1].pop("meta_crc32c")
for o in objs:
    o.pop("crc32c", None)
    if o.get("name") == "iris.fc2.bias":
        o["tensor"]["shape"] = [4, 2]
open(sys.argv[2], "wb").write(b"".join(msgpack.packb(o) for o in objs))
EOF
	run bio-train $C -o "$T/r" --resume "$T/shape.ckpt" "$T/rest.bs"
	assert_failure 1
	assert_output --partial "wrong shape"
	cmp "$T/keep.ckpt" "$T/r/last.ckpt"
	! ls "$T"/r/*.tmp.* 2>/dev/null || false
}

@test "unwritable checkpoint directory is one error line" {
	run bio-train $C -o /proc/nonexistent/x "$FX/b6.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
}

@test "tracking: MLflow run with params, per-epoch metrics, artifacts; resume continues it; --register" {
	tr="--set tracking.enabled=true --set tracking.uri=$T/mlruns --set tracking.experiment=nn"
	bio-batch $C --epochs 4 "$SS" >"$T/b4.bs"
	"$PYTHON" -c '
import sys, msgpack
objs = [o for o in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
        if "epoch" not in o or o["epoch"] < 2]
objs[-1] = {"end": len(objs) - 2}
open(sys.argv[2], "wb").write(b"".join(msgpack.packb(o) for o in objs))' "$T/b4.bs" "$T/first2.bs"
	bio-train $C $tr --val "$SS" -o "$T/ck" "$T/first2.bs" 2>/dev/null
	run bash -c "bio-batch $C --epochs 4 --start-epoch 2 '$SS' |
		bio-train $C $tr --val '$SS' -o '$T/ck' --resume '$T/ck/last.ckpt' --register irisnet"
	assert_success
	assert_output --partial "registered model irisnet version 1"
	"$PYTHON" - "$T/mlruns" "$(cat "$T/ck/run_id")" <<'EOF'
import os, sys
root, rid = sys.argv[1], sys.argv[2]
exps = [d for d in os.listdir(root) if d not in (".trash", "models", "0")]
assert len(exps) == 1, exps
run = os.path.join(root, exps[0], rid)
meta = dict(l.split(": ", 1) for l in open(os.path.join(run, "meta.yaml")).read().splitlines()
            if ": " in l)
assert meta["status"] == "3", meta
assert open(os.path.join(run, "params", "model.fusion")).read() == "concat"
assert open(os.path.join(run, "params", "training.optimizer")).read() == "adam"
for k in ("train_loss", "val_loss", "val_accuracy", "lr", "data_load_time", "forward_time",
          "backward_time", "samples_per_s", "peak_rss"):
    lines = open(os.path.join(run, "metrics", k)).read().splitlines()
    assert [int(l.split()[2]) for l in lines] == [0, 1, 2, 3], (k, lines)
    float(lines[0].split()[1])
for a in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
    assert os.path.getsize(os.path.join(run, "artifacts", a)) > 0, a
assert open(os.path.join(run, "tags", "mlflow.source.name")).read() == "bio-train"
vdir = os.path.join(root, "models", "irisnet", "version-1")
assert rid in open(os.path.join(vdir, "meta.yaml")).read()
print("ok")
EOF
}

@test "gradient accumulation: one optimizer step per N batches, and one at each epoch's end" {
	bio-train $C --set training.accumulate=3 --set training.clip_grad_norm=1.0 -o "$T/acc" \
		"$FX/b6.bs" 2>/dev/null
	"$PYTHON" - "$FX/b6.bs" "$T/acc/last.ckpt" <<'EOF'
import sys, msgpack, collections
per_epoch = collections.Counter(o["epoch"] for o in msgpack.Unpacker(open(sys.argv[1], "rb"),
                                raw=False) if "epoch" in o)
want = sum((n + 2) // 3 for n in per_epoch.values())
meta = next(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False))["meta"]
assert meta["step"] == want and meta["optimizer"]["step"] == want, (meta["step"], want)
print("steps", want)
EOF
}

@test "bad input it would train on is refused: ids longer than the batch, a modality twice, labels out of range, --val header shape" {
	bio-batch $C --epochs 1 "$SS" >"$T/b1.bs"
	mutated "$T/b1.bs" 'meta["modalities"] = ["iris", "fingerprint", "iris"]'
	run bio-train $C -o "$T/x" "$T/bad.bs"
	assert_failure 1
	assert_output --partial "'iris' is listed twice"
	[ "${#lines[@]}" -eq 1 ]
	refuses_each "$T/b1.bs" bio-train $C -o "$T/x" "$T/bad.bs" <<'EOF'
recs[1]["ids"].append("extra")|regexp|bad.bs: record 1: key 'ids': [0-9]+ ids for a batch of [0-9]+ labels
set_i64(recs[0]["label"], 2, len(meta["labels"]))|partial|record 0: key 'label': item 2: label 10 outside the 10 label names
EOF
	# a validation stream whose header shape lies about its records
	refuses_each "$SS" bio-train $C -o "$T/x" --val "$T/bad.bs" "$T/b1.bs" <<'EOF'
meta["shape"] = [1, 16, 17]|partial|the validation samples are 17x16
import copy; t = recs[3]["iris"]; t["shape"] = [1, 8, 32]|partial|record 3: key 'iris': shape [1,8,32], expected [1,16,16] (header shape)
EOF
	[ ! -e "$T/x/last.ckpt" ]
}

@test "checkpoints are checksummed: a flipped byte is refused by --resume; old ones load unchecked" {
	resumable 3
	size=$(stat -c %s "$T/keep.ckpt")
	flip() { "$PYTHON" -c "
import sys
b = bytearray(open('$T/keep.ckpt', 'rb').read())
b[$1] ^= 0x01
open('$T/flip.ckpt', 'wb').write(b)"; }
	for off in 200 $((size / 2)) $((size - 40)); do
		flip "$off"
		run bio-train $C -o "$T/r" --resume "$T/flip.ckpt" "$T/rest.bs"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ]
		assert_output --regexp "^bio-train: $T/flip.ckpt: "
		cmp "$T/keep.ckpt" "$T/r/last.ckpt"
	done
	# the middle of the file is tensor data: the message names the tensor
	flip $((size / 2))
	run bio-train $C -o "$T/r" --resume "$T/flip.ckpt" "$T/rest.bs"
	assert_output --regexp "tensor '[^']+': checksum mismatch \(CRC-32C [0-9a-f]{8}, stored [0-9a-f]{8}\): the file is corrupt"
	# a checkpoint written before checksums: loads, and -v says it was not checked
	"$PYTHON" tests/python/mutate_stream.py "$T/keep.ckpt" "$T/old.ckpt" 'del meta["checksum"]
for r in recs: del r["crc32c"]'
	run bio-train $C -v -o "$T/o" --resume "$T/old.ckpt" "$T/rest.bs"
	assert_success
	assert_output --partial "old.ckpt: no checksums (written before checkpoints had them): loaded unchecked"
	# stripping the marker alone does not turn the checks off
	"$PYTHON" tests/python/mutate_stream.py "$T/keep.ckpt" "$T/nomark.ckpt" 'del meta["checksum"]'
	run bio-train $C -o "$T/o" --resume "$T/nomark.ckpt" "$T/rest.bs"
	assert_failure 1
	assert_output --partial "a checksummed record in a checkpoint whose meta has no 'checksum'"
}

@test "after a kill: temp checkpoints of dead processes are removed, the RUNNING tracking run is marked KILLED" {
	tr="--set tracking.enabled=true --set tracking.uri=$T/mlruns --set tracking.experiment=k"
	bio-batch $C --epochs 2 "$SS" >"$T/b2.bs"
	bio-train $C $tr -o "$T/ck" "$T/b2.bs" 2>/dev/null
	id=$(cat "$T/ck/run_id")
	meta=$(ls "$T"/mlruns/*/"$id"/meta.yaml)
	grep -qx 'status: 3' "$meta"
	# what kill -9 during a first save leaves: the run still RUNNING, a temp of a dead PID
	sed -i 's/^status: 3$/status: 1/' "$meta"
	dead=$(sh -c 'echo $$')
	touch "$T/ck/last.ckpt.tmp.$dead" "$T/ck/best.ckpt.tmp.$dead" "$T/ck/last.ckpt.tmp.$$"
	run bio-train $C $tr -v -o "$T/ck" "$T/b2.bs"
	assert_success
	assert_output --partial "tracking: the earlier run $id was left RUNNING: marked KILLED"
	grep -qx 'status: 5' "$meta"
	grep -q '^end_time: [0-9]' "$meta"
	[ ! -e "$T/ck/last.ckpt.tmp.$dead" ] && [ ! -e "$T/ck/best.ckpt.tmp.$dead" ]
	[ -e "$T/ck/last.ckpt.tmp.$$" ] # a live process's temp file is left alone
	# the new run finished; a run that ended is not touched again
	new=$(cat "$T/ck/run_id")
	[ "$new" != "$id" ]
	grep -qx 'status: 3' "$T"/mlruns/*/"$new"/meta.yaml
	run bio-train $C $tr -v -o "$T/ck" "$T/b2.bs"
	refute_output --partial "marked KILLED"
	grep -qx 'status: 3' "$T"/mlruns/*/"$new"/meta.yaml
}

@test "attention fusion cannot collapse: after training, every sample's weights lie inside (0.05, 0.95), as PyTorch computes them" {
	# both modalities carry signal (bio-synth); a high learning rate and many epochs, which drove
	# the unbounded attention to weights of exactly 0 and 1
	bio-batch $C --epochs 40 "$SS" >"$T/b40.bs"
	bio-train $C --set model.fusion=attention --set training.lr=0.01 -o "$T/att" "$T/b40.bs" \
		2>/dev/null
	bio-infer $C --embeddings -m "$T/att/last.ckpt" -o "$T/p.bs" "$SS"
	run "$PYTHON" - "$T/att/last.ckpt" "$SS" "$T/p.bs" <<'PY'
import sys
sys.path.insert(0, "tests/python")
import numpy as np, torch
from bio_torch import model_from_checkpoint, read_stream, untensor
m, _ = model_from_checkpoint(sys.argv[1])
m.eval()
_, samples = read_stream(sys.argv[2])
_, preds = read_stream(sys.argv[3])
a = np.stack([untensor(r["fusion_weights"]) for r in preds])
assert a.shape == (len(samples), 2), a.shape
assert np.allclose(a.sum(1), 1.0, atol=1e-5)
print("weights: iris %.4f..%.4f fingerprint %.4f..%.4f" % (a[:, 0].min(), a[:, 0].max(),
                                                             a[:, 1].min(), a[:, 1].max()))
assert (a > 0.05).all() and (a < 0.95).all(), "fusion weights outside (0.05, 0.95)"
x = [torch.from_numpy(np.stack([untensor(r[md]).astype(np.float32) for r in samples]))
     for md in m.modalities]
with torch.no_grad():
    ref = m.fusion.weights_of(m.embeddings(x)).numpy()
err = np.abs(ref - a).max()
print("max |C - PyTorch| %.2e" % err)
assert err < 1e-4, err
PY
	echo "$output"
	assert_success
}

# bad_setting KEY=VALUE OPTION...: bio-train with the OPTIONs and --set KEY=VALUE on $FX/b6.bs
# fails with one line on stderr naming KEY, and writes no checkpoint
bad_setting() {
	local kv=$1
	shift
	run --separate-stderr bio-train $C "$@" --set "$kv" -o "$T/bad" "$FX/b6.bs"
	[ "$status" -ne 0 ]
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "$kv: $stderr"
	[[ "$stderr" == "bio-train: "*"${kv%%=*}"* ]] || fail "$kv: $stderr"
	[ ! -e "$T/bad/last.ckpt" ]
}

@test "model.attention_temperature: a bad value is one error line naming the key" {
	for v in 0 -1 1000 abc; do
		bad_setting "model.attention_temperature=$v" --set model.fusion=attention
	done
}

@test "--val reads the val split only, never test" {
	# the same samples with the train records relabelled test, and with val relabelled test
	"$PYTHON" - "$SS" "$T" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
def write(name, change):
    with open("%s/%s.bs" % (sys.argv[2], name), "wb") as f:
        for o in objs:
            if isinstance(o, dict) and o.get("split") == change:
                o = dict(o, split="test")
            f.write(msgpack.packb(o, use_bin_type=True))
write("train_as_test", "train")
write("val_as_test", "val")
PY
	bio-batch $C --epochs 2 "$SS" >"$T/b2.bs"
	a=$(bio-train $C --val "$SS" -o "$T/a" -j1 "$T/b2.bs" 2>&1 | grep -o "val_loss [0-9.]* val_acc [0-9.]*")
	b=$(bio-train $C --val "$T/train_as_test.bs" -o "$T/b" -j1 "$T/b2.bs" 2>&1 |
		grep -o "val_loss [0-9.]* val_acc [0-9.]*")
	[ -n "$a" ] && [ "$a" = "$b" ]
	run bio-train $C --val "$T/val_as_test.bs" -o "$T/c" -j1 "$T/b2.bs"
	assert_failure 1
	assert_output "bio-train: $T/val_as_test.bs: no validation samples"
}

@test "margin heads: cosface and arcface train, load in PyTorch with the same logits (s cos, no margin), bio-infer reads them; an old checkpoint without 'loss' is softmax" {
	for loss in cosface arcface; do
		bio-train $C --set training.loss=$loss --set training.scale=16 -o "$T/$loss" -j1 \
			"$FX/b6.bs" 2>/dev/null
		run "$PYTHON" tests/python/check_checkpoint.py names "$T/$loss/last.ckpt"
		assert_success
		"$HELPER" --logits "$T/$loss/last.ckpt" "$SS" "$T/logits.bs"
		run "$PYTHON" tests/python/check_checkpoint.py logits "$T/$loss/last.ckpt" "$SS" \
			"$T/logits.bs"
		echo "$output"
		assert_success
		# inference: no margin, logits inside [-s, s], the meta records the loss
		run "$PYTHON" - "$T/logits.bs" "$T/$loss/last.ckpt" "$loss" <<'PY'
import sys, msgpack
sys.path.insert(0, "tests/python")
import numpy as np
from bio_torch import read_stream, untensor
_, r = read_stream(sys.argv[1])
z = untensor(r[0]["tensor"])
assert np.abs(z).max() <= 16 * (1 + 1e-6), np.abs(z).max()
h = next(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False))
ms = h["meta"]["model"]
assert ms["loss"] == sys.argv[3] and ms["scale"] == 16.0 and abs(ms["margin"] - 0.35) < 1e-7, ms
PY
		assert_success
		run bio-infer $C -m "$T/$loss/last.ckpt" -o "$T/p.bs" "$SS"
		assert_success
		bio-train $C --set training.loss=$loss --set training.scale=16 -o "$T/$loss-2" -j2 \
			"$FX/b6.bs" 2>/dev/null
		cmp "$T/$loss/last.ckpt" "$T/$loss-2/last.ckpt"
	done
	# resuming with another head is refused
	run bio-train $C -o "$T/cosface" --resume "$T/cosface/last.ckpt" "$FX/b6.bs"
	assert_failure
	# a softmax checkpoint of before margin losses (no loss, margin, scale keys) loads as softmax
	bio-train $C -o "$T/sm" "$FX/b6.bs" 2>/dev/null
	"$PYTHON" tests/python/mutate_stream.py "$T/sm/last.ckpt" "$T/old.ckpt" 'del meta["checksum"]
for k in ("loss", "margin", "scale", "fusion_normalized"): del meta["model"][k]
for r in recs: del r["crc32c"]'
	bio-infer $C -m "$T/sm/last.ckpt" -o "$T/new.csv" --csv "$SS"
	bio-infer $C -m "$T/old.ckpt" -o "$T/old.csv" --csv "$SS"
	cmp "$T/new.csv" "$T/old.csv"
}

@test "training.loss, .margin, .scale: bad values are one error line naming the key" {
	for kv in training.loss=sphereface training.loss= training.margin=-0.1 training.margin=2 \
		training.margin=abc training.scale=0 training.scale=-30; do
		bad_setting "$kv" --set training.loss=arcface
	done
}

@test "weighted fusion sums L2-normalised embeddings; a weighted checkpoint of the raw sum is refused with one line" {
	bio-train $C --set model.fusion=weighted -o "$T/w" "$FX/b6.bs" 2>/dev/null
	bio-infer $C --embeddings -m "$T/w/last.ckpt" -o "$T/p.bs" "$SS"
	run "$PYTHON" - "$T/p.bs" <<'PY'
import sys
sys.path.insert(0, "tests/python")
import numpy as np
from bio_torch import read_stream, untensor
_, preds = read_stream(sys.argv[1])
for r in preds:
    a = untensor(r["fusion_weights"])
    u = [untensor(r[k]) / np.linalg.norm(untensor(r[k])) for k in ("emb_iris", "emb_fingerprint")]
    f = untensor(r["emb_fused"])
    assert np.abs(f - (a[0] * u[0] + a[1] * u[1])).max() < 1e-5
print("ok")
PY
	assert_success
	"$PYTHON" tests/python/mutate_stream.py "$T/w/last.ckpt" "$T/old.ckpt" 'del meta["checksum"]
del meta["model"]["fusion_normalized"]
for r in recs: del r["crc32c"]'
	run --separate-stderr bio-infer $C -m "$T/old.ckpt" -o "$T/o.bs" "$SS"
	assert_failure 1
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == *"old.ckpt: checkpoint meta: weighted fusion without fusion_normalized"*"retrain"* ]]
}

@test "augmented batches (bio-batch augment.enabled) train bit-identically with -j1 and -j2, with a margin head too" {
	bio-batch $C --epochs 3 --set augment.enabled=true "$SS" >"$T/aug.bs"
	bio-batch $C --epochs 3 --set augment.enabled=true "$SS" >"$T/aug2.bs"
	cmp "$T/aug.bs" "$T/aug2.bs"
	for loss in softmax arcface; do
		bio-train $C --set training.loss=$loss -o "$T/$loss-1" -j1 "$T/aug.bs" 2>/dev/null
		bio-train $C --set training.loss=$loss -o "$T/$loss-2" -j2 "$T/aug2.bs" 2>/dev/null
		cmp "$T/$loss-1/last.ckpt" "$T/$loss-2/last.ckpt"
	done
	# and they are not the plain batches' training
	bio-batch $C --epochs 3 "$SS" >"$T/plain.bs"
	bio-train $C -o "$T/plain" -j1 "$T/plain.bs" 2>/dev/null
	! same_tensors "$T/plain/last.ckpt" "$T/softmax-1/last.ckpt" 2>/dev/null || false
}

@test "training.early_stopping.metric val_eer: best.ckpt is the epoch of the lowest EER of the fused embeddings on --val, which is bio-eval's EER of them; no --val or no genuine pair: one error line" {
	# half of each identity's samples for validation: two per identity, so genuine pairs
	bio-scan --set scan.root="$FX/synth" --set scan.split.val=0.5 >"$T/m.bs" 2>/dev/null
	bio-prep --set prep.size=16 "$T/m.bs" >"$T/s.bs"
	bio-batch $C --epochs 5 "$T/s.bs" >"$T/b.bs"
	run bio-train $C --set training.lr=0.01 --set training.early_stopping.metric=val_eer \
		--val "$T/s.bs" -o "$T/ck" "$T/b.bs"
	assert_success
	printf '%s\n' "$output" >"$T/out"
	assert_output --partial "best so far by val_eer"
	bio-infer --set infer.split=val --set infer.embeddings=true -m "$T/ck/best.ckpt" \
		"$T/s.bs" >"$T/p.bs" 2>/dev/null
	bio-eval -o "$T/report.yaml" "$T/p.bs" 2>/dev/null
	"$PYTHON" - "$T/out" "$T/ck" "$T/report.yaml" <<'PY'
import re, sys, msgpack, yaml
lines = [l for l in open(sys.argv[1]).read().splitlines()
         if re.search(r" epoch [0-9]+/[0-9]+ loss", l)]
eer = [float(re.search(r"val_eer ([0-9.]+)", l).group(1)) for l in lines]
marks = [l.endswith("*") for l in lines]
best, best_epoch = None, None
for e, v in enumerate(eer):
    imp = best is None or v < best
    assert imp == marks[e], (e, v, best, marks)
    if imp:
        best, best_epoch = v, e
meta = next(msgpack.Unpacker(open(sys.argv[2] + "/best.ckpt", "rb"), raw=False))["meta"]
assert meta["epoch"] == best_epoch + 1, (meta["epoch"], best_epoch)
fused = yaml.safe_load(open(sys.argv[3]))["fused"]["verification"]["eer"]
assert abs(fused - best) < 5.1e-5, (fused, best)
print("best epoch", best_epoch + 1, "val_eer", best, "bio-eval", fused)
PY
	run --separate-stderr bio-train $C --set training.early_stopping.metric=val_eer \
		-o "$T/bad" "$T/b.bs"
	assert_failure
	[ "$stderr" = "bio-train: --set: training.early_stopping.metric val_eer needs validation samples (--val)" ] ||
		fail "$stderr"
	# the fixture's own split: one validation sample per identity
	run --separate-stderr bio-train $C --set training.early_stopping.metric=val_eer \
		--val "$SS" -o "$T/bad" "$T/b.bs"
	assert_failure
	[ "$stderr" = "bio-train: $SS: val_eer (training.early_stopping.metric): no identity has two validation samples" ] ||
		fail "$stderr"
	# validation samples of one identity: no impostor pair
	"$PYTHON" - "$T/s.bs" "$T/one.bs" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
first = next(o["label"] for o in objs if isinstance(o, dict) and o.get("split") == "val")
with open(sys.argv[2], "wb") as f:
    for o in objs:
        if isinstance(o, dict) and o.get("split") == "val" and o["label"] != first:
            o = dict(o, split="train")
        f.write(msgpack.packb(o, use_bin_type=True))
PY
	run --separate-stderr bio-train $C --set training.early_stopping.metric=val_eer \
		--val "$T/one.bs" -o "$T/bad" "$T/b.bs"
	assert_failure
	[ "$stderr" = "bio-train: $T/one.bs: val_eer (training.early_stopping.metric): the validation samples are of one identity" ] ||
		fail "$stderr"
	[ ! -e "$T/bad/last.ckpt" ]
}
