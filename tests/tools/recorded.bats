#!/usr/bin/env bats
# What ran is what is recorded: options stand for config keys (--print-config shows them), and
# bio-train records the batch.* values bio-batch used and the synth.* values bio-synth used, so the checkpoint's config, config.yaml
# and the MLflow params agree with the command lines, the env overlay and --set; a sample size
# that does not fit the model is refused at the header, naming both keys.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

setup_file() {
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FX="$BATS_FILE_TMPDIR/fx"
	mkdir -p "$FX"
	bio-synth -o "$FX/synth" --subjects 3 --samples 4 --size 32 >/dev/null 2>&1
	bio-scan -o "$FX/manifest.bs" "$FX/synth" 2>/dev/null
	bio-prep --set prep.size=16 -o "$FX/samples.bs" "$FX/manifest.bs"
	small_model "$FX/small.yaml"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
}

# yq FILE KEY.PATH: a value of a YAML file
yq() {
	"$PYTHON" -c 'import sys, yaml
v = yaml.safe_load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"
}

@test "options are config keys: --print-config shows them, in command-line order with --set" {
	run bio-batch --epochs 5 -b 8 --seed 3 --split val --drop-last --print-config
	assert_success
	printf '%s\n' "$output" >"$T/b.yaml"
	[ "$(yq "$T/b.yaml" batch.epochs)" = 5 ]
	[ "$(yq "$T/b.yaml" batch.batch_size)" = 8 ]
	[ "$(yq "$T/b.yaml" batch.seed)" = 3 ]
	[ "$(yq "$T/b.yaml" batch.split)" = val ]
	[ "$(yq "$T/b.yaml" batch.drop_last)" = True ]
	# the later of an option and a --set wins, as between two --set
	bio-batch --epochs 5 --set batch.epochs=7 --print-config >"$T/b2.yaml"
	[ "$(yq "$T/b2.yaml" batch.epochs)" = 7 ]
	bio-batch --set batch.epochs=7 --epochs 5 --print-config >"$T/b3.yaml"
	[ "$(yq "$T/b3.yaml" batch.epochs)" = 5 ]
	bio-synth --subjects 4 --samples 3 --seed 9 --fingers thumb,index --no-eyelashes \
		--print-config >"$T/s.yaml"
	[ "$(yq "$T/s.yaml" synth.subjects)" = 4 ]
	[ "$(yq "$T/s.yaml" synth.samples)" = 3 ]
	[ "$(yq "$T/s.yaml" experiment.seed)" = 9 ]
	[ "$(yq "$T/s.yaml" synth.fingers)" = "['thumb', 'index']" ]
	[ "$(yq "$T/s.yaml" synth.eyelashes)" = False ]
	bio-infer --topk 3 --embeddings --split val -b 16 --print-config >"$T/i.yaml"
	[ "$(yq "$T/i.yaml" infer.topk)" = 3 ] && [ "$(yq "$T/i.yaml" infer.embeddings)" = True ]
	[ "$(yq "$T/i.yaml" infer.split)" = val ] && [ "$(yq "$T/i.yaml" infer.batch_size)" = 16 ]
	bio-eval --gallery 2 --protocol fvc --print-config >"$T/e.yaml"
	[ "$(yq "$T/e.yaml" eval.gallery)" = 2 ] && [ "$(yq "$T/e.yaml" eval.protocol)" = fvc ]
}

@test "the checkpoint, config.yaml and the MLflow params record what bio-batch and bio-train ran" {
	bio-batch -c "$FX/small.yaml" --epochs 3 -b 8 --seed 5 "$FX/samples.bs" |
		bio-train -c "$FX/small.yaml" --env staging --set training.lr=0.002 \
			--set tracking.uri="$T/mlruns" -o "$T/ck" 2>"$T/train.err"
	cfg="$T/ck/config.yaml"
	[ "$(yq "$cfg" batch.epochs)" = 3 ]
	[ "$(yq "$cfg" batch.batch_size)" = 8 ]
	[ "$(yq "$cfg" batch.seed)" = 5 ]
	[ "$(yq "$cfg" prep.size)" = 16 ]
	[ "$(yq "$cfg" training.lr)" = 0.002 ]
	# the env overlay is in it too: every key the staging overlay sets has its value
	"$PYTHON" - "$cfg" "$T/ck/last.ckpt" "$T/mlruns" configs/env/staging.yaml <<'PY'
import sys, os, glob, yaml, msgpack
cfg = yaml.safe_load(open(sys.argv[1]))
env = yaml.safe_load(open(sys.argv[4])) or {}
def leaves(d, p=()):
    for k, v in d.items():
        if isinstance(v, dict): yield from leaves(v, p + (k,))
        else: yield p + (k,), v
def get(d, path):
    for k in path: d = d[k]
    return d
for path, v in leaves(env):
    if path[:2] != ("training", "lr") and path[0] != "synth":
        assert get(cfg, path) == v, (path, get(cfg, path), v)
# synth.*: how the images were made (bio-synth's synth.yaml through the headers), not the
# staging overlay's synth.subjects 50
assert cfg["synth"]["subjects"] == 3 and cfg["synth"]["samples"] == 4 and cfg["synth"]["size"] == 32, cfg["synth"]
# the checkpoint's own copy of the config is the same text
meta = next(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False))["meta"]
ck = [v for k, v in meta.items() if isinstance(v, str) and "batch:" in v]
assert ck and yaml.safe_load(ck[0]) == cfg, "checkpoint config differs from config.yaml"
# MLflow params: one file per flattened key, the same values
runs = [d for d in glob.glob(os.path.join(sys.argv[3], "*", "*")) if os.path.isdir(os.path.join(d, "params"))]
assert len(runs) == 1, runs
p = lambda k: open(os.path.join(runs[0], "params", k)).read()
assert p("batch.epochs") == "3" and p("batch.batch_size") == "8" and p("batch.seed") == "5", \
    (p("batch.epochs"), p("batch.batch_size"), p("batch.seed"))
assert p("training.lr") == "0.002" and p("prep.size") == "16"
PY
}

@test "a sample size that does not fit the model: one line naming both keys, before training" {
	bio-batch -c "$FX/small.yaml" -b 8 "$FX/samples.bs" >"$T/b.bs"
	run bio-train -c "$FX/small.yaml" --set model.input_size=32 --set tracking.enabled=false \
		-o "$T/ck" "$T/b.bs"
	assert_failure 1
	assert_output --partial "the batches hold 16x16 samples, the model takes 32x32"
	assert_output --partial "model.input_size"
	assert_output --partial "prep.size"
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "$T/ck/last.ckpt" ]
}
