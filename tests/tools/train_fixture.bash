# Shared by the training, inference and pipeline tests (bio-train.bats, bio-infer.bats,
# recorded.bats, tracking-http.bats, mpi.bats, slurm.bats, pipeline.bats, ...): `load train_fixture`.

# small_model FILE: the small model's config (16 px, channels [4, 8]) written to FILE
small_model() {
	cat >"$1" <<'EOF2'
model:
  input_size: 16
  channels: [4, 8]
  hidden: 16
  embedding: 8
EOF2
}

# small_fixture: a small prepared set and a small model (5 subjects x 4 samples, 16 px) in
# $BATS_FILE_TMPDIR/fx; exports PYTHON, FX, C (the config option) and SS (the samples stream).
small_fixture() {
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FX="$BATS_FILE_TMPDIR/fx"
	mkdir -p "$FX"
	bio-synth -o "$FX/synth" --set synth.subjects=5 --set synth.samples=4 --set synth.size=32 \
		>/dev/null 2>&1
	bio-scan --set scan.root="$FX/synth" >"$FX/manifest.bs" 2>/dev/null
	bio-prep --set prep.size=16 "$FX/manifest.bs" >"$FX/samples.bs"
	small_model "$FX/small.yaml"
	cat >>"$FX/small.yaml" <<'EOF2'
batch:
  batch_size: 8
tracking:
  enabled: false
EOF2
	export C="-c $FX/small.yaml"
	export SS="$FX/samples.bs"
}

# prepared_fixture DIR PX SET...: 3 subjects x 4 samples drawn at PX pixels into DIR/data,
# scanned with a quarter of each identity held out (DIR/manifest.bs) and prepared with the --set
# options SET... (also written to DIR/sets) into DIR/samples.bs
prepared_fixture() {
	local dir=$1 px=$2
	shift 2
	mkdir -p "$dir"
	echo "$*" >"$dir/sets"
	bio-synth --subjects 3 --samples 4 --size "$px" -o "$dir/data" 2>/dev/null
	bio-scan --set scan.split.val=0.25 -o "$dir/manifest.bs" "$dir/data" 2>/dev/null
	bio-prep "$@" -o "$dir/samples.bs" "$dir/manifest.bs"
}

# The --set options of a 32-pixel model (channels [8, 16]) and of its samples.
MODEL32_SETS="--set prep.size=32 --set model.input_size=32 --set model.channels=[8,16] --set model.hidden=32 --set model.embedding=16"

# fixture32: exports PYTHON and FIX ($BATS_FILE_TMPDIR/fx), goes to the tree's root and prepares
# 48-pixel images for the 32-pixel model into $FIX (prepared_fixture "$FIX" 48 $MODEL32_SETS)
fixture32() {
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FIX="$BATS_FILE_TMPDIR/fx"
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	prepared_fixture "$FIX" 48 $MODEL32_SETS
}

# ckpt_epoch FILE: the "epoch" of a checkpoint's meta
ckpt_epoch() {
	"$PYTHON" -c 'import sys, msgpack; u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
print(next(u)["meta"]["epoch"])' "$1"
}

# tiny_experiment FILE: a whole-pipeline config small enough for make experiment in a test
tiny_experiment() {
	cat >"$1" <<'YAML'
synth:
  subjects: 3
  samples: 6
  size: 40
scan:
  split:
    val: 0.34
prep:
  size: 16
batch:
  batch_size: 8
  epochs: 2
model:
  input_size: 16
  channels: [4, 8]
  hidden: 16
  embedding: 8
YAML
}

# need_mpi: skips the test unless mpirun is installed and bio-train is built with MPI
need_mpi() {
	if ! command -v mpirun >/dev/null; then
		skip "mpirun not installed (openmpi-bin)"
	fi
	if ! ldd "$(command -v bio-train)" | grep -q libmpi; then
		skip "bio-train built without MPI (libopenmpi-dev)"
	fi
}

# experiment_run VAR=VALUE...: make experiment-run (EXP_STAGE=1) of the config $T/tiny.yaml
# (tiny_experiment) with the build under test and the make variables VAR=VALUE...
experiment_run() {
	make --no-print-directory EXP_STAGE=1 BUILD="$BIO_BUILD" CONFIG="$T/tiny.yaml" "$@" experiment-run
}

# same_trained_model ONE TWO: the experiments in the work folders ONE and TWO trained the same
# model: the same stage digest, and the same weights and optimizer state (the checkpoints' metas
# differ only by the tracking run each was logged to); TWO's batches were not kept
same_trained_model() {
	local a b
	a=$(ls -d "$1"/train-*)
	b=$(ls -d "$2"/train-*)
	[ "$(basename "$a")" = "$(basename "$b")" ]
	[ ! -e "$b/batches.bs" ]
	same_tensors "$a/last.ckpt" "$b/last.ckpt"
}

# same_tensors A B: the two checkpoints hold the same tensors, bit for bit (their metas may
# differ, e.g. by the tracking run each was logged to)
same_tensors() {
	"$PYTHON" - "$1" "$2" <<'PY'
import sys, msgpack
def records(p):
    u = msgpack.Unpacker(open(p, "rb"), raw=False)
    head = next(u)
    return [o for o in u if isinstance(o, dict) and "name" in o]
ra, rb = records(sys.argv[1]), records(sys.argv[2])
assert len(ra) == len(rb) and len(ra) > 10, (len(ra), len(rb))
for x, y in zip(ra, rb):
    assert x["name"] == y["name"] and x["tensor"] == y["tensor"], x["name"]
print(len(ra), "tensors equal")
PY
}
