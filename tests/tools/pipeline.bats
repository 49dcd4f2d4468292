#!/usr/bin/env bats
# pipelines/experiment.mk: the make DAG from raw images to a report on a tiny configuration:
# every stage's output appears, a second make does nothing, changing one key re-runs only the
# stages it affects, and a failing stage fails the pipeline and leaves no half-made target.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	export W="$BATS_FILE_TMPDIR/runs"
	export CFG="$BATS_FILE_TMPDIR/tiny.yaml"
	tiny_experiment "$CFG"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
}

# Runs the experiment with the test build's programs; extra arguments go to make.
run_make() {
	make --no-print-directory EXP_STAGE=1 BUILD="$BIO_BUILD" WORK="$W" \
		MLRUNS="$BATS_FILE_TMPDIR/mlruns" CONFIG="$CFG" experiment-run "$@"
}

@test "the DAG runs from raw images to a report, then make does nothing" {
	run run_make
	assert_success
	run_dir=$(ls -d "$W"/tiny-* | grep -E '/tiny-[0-9a-f]{16}$')
	[ -s "$run_dir/report.yaml" ]
	[ -s "$run_dir/manifest.bs" ] && [ -s "$run_dir/samples.bs" ] && [ -s "$run_dir/predictions.bs" ]
	[ -s "$run_dir/model/best.ckpt" ] && [ -s "$run_dir/plots/det.png" ]
	[ -s "$run_dir/curves/roc_fused.csv" ]
	grep -q "^fused:" "$run_dir/report.yaml"
	run run_make
	assert_success
	refute_output --partial "bio-"
	run run_make -q
	assert_success
}

@test "changing one key re-runs only the stages it affects" {
	run_make >/dev/null
	run run_make SET="eval.histogram_bins=7"
	assert_success
	assert_output --partial "bio-eval"
	refute_output --partial "bio-train"
	refute_output --partial "bio-prep"
	refute_output --partial "bio-synth"
	run run_make SET="training.lr=0.002"
	assert_success
	assert_output --partial "bio-train"
	assert_output --partial "bio-infer"
	refute_output --partial "bio-prep"
	refute_output --regexp "bio-scan [^>]* -o "
	# the earlier configuration's outputs are still there: going back does nothing
	run run_make
	assert_success
	refute_output --partial "bio-"
}

@test "a failing stage fails the pipeline and leaves no half-made target" {
	# bio-train refuses the fusion mode at the far end of the bio-batch pipe: pipefail
	run run_make SET="model.fusion=bogus"
	assert_failure
	assert_output --partial "model.fusion"
	# the failed stage left no folder under its final name, and nothing downstream ran
	for d in "$W"/train-*; do
		case "$d" in *.tmp) continue ;; esac
		[ -e "$d/.done" ] && [ -s "$d/best.ckpt" ]
	done
	n_done=$(ls -d "$W"/train-* | grep -vc '\.tmp$')
	[ "$n_done" -eq "$(ls "$W"/train-*/.done | wc -l)" ]
	# a failing first stage of a pipe fails it too
	run run_make SET="batch.batch_size=0"
	assert_failure
}

@test "an invalid configuration stops before any stage" {
	run make --no-print-directory EXP_STAGE=1 BUILD="$BIO_BUILD" WORK="$W" CONFIG="$CFG" \
		SET="training.lrr=1" experiment-run
	assert_failure
	assert_output --partial "training.lrr"
	assert_output --partial "unknown key"
}

@test "make compare: the fusion modes and single modalities in one table" {
	run make --no-print-directory BUILD="$BIO_BUILD" WORK="$W" MLRUNS="$BATS_FILE_TMPDIR/mlruns" \
		CONFIG="$CFG" compare
	assert_success
	assert_output --regexp "run +accuracy +EER"
	for r in concat attention weighted iris fingerprint; do
		assert_output --regexp "$r +[0-9.]+% +[0-9.]+%"
	done
	ls -d "$W"/tiny-attention-* "$W"/tiny-iris-*
	grep -q "fusion: attention" "$W"/tiny-attention-*/config.yaml
	grep -q "modalities: \[iris\]" "$W"/tiny-iris-*/config.yaml
}

@test "make infer-sharded joins shards into the same predictions as one run" {
	run_make >/dev/null
	run_dir=$(ls -d "$W"/tiny-* | grep -E '/tiny-[0-9a-f]{16}$' | head -1)
	out="$BATS_TEST_TMPDIR/p.bs"
	run make --no-print-directory BUILD="$BIO_BUILD" MODEL="$run_dir/model/best.ckpt" \
		SAMPLES="$run_dir/samples.bs" OUT="$out" SHARDS=3 infer-sharded
	assert_success
	"$BIO_BUILD/bin/bio-infer" -m "$run_dir/model/best.ckpt" -o "$BATS_TEST_TMPDIR/one.bs" \
		"$run_dir/samples.bs"
	"$PYTHON" - "$out" "$BATS_TEST_TMPDIR/one.bs" <<'PY'
import sys, msgpack
def recs(p):
    return sorted((o for o in msgpack.Unpacker(open(p, "rb"), raw=False) if "id" in o),
                  key=lambda o: o["id"])
a, b = recs(sys.argv[1]), recs(sys.argv[2])
assert len(a) == len(b) > 0 and a == b
PY
	run make --no-print-directory BUILD="$BIO_BUILD" MODEL=/nonexistent SAMPLES="$run_dir/samples.bs" \
		OUT="$BATS_TEST_TMPDIR/bad.bs" SHARDS=2 infer-sharded
	assert_failure
	[ ! -e "$BATS_TEST_TMPDIR/bad.bs" ]
}

@test "a fresh tree: make builds once; a second experiment runs no stage, after a rebuild or make unit too; a changed tool re-runs only its stages" {
	[ -d .git ] || skip "not a git checkout: no way to make a fresh tree of it"
	[ -z "${BIO_ASAN:-}" ] || skip "rebuilds a tree without sanitizers: covered by the plain test run"
	# a user's shell: nothing inherited from the make that runs the tests
	unset MAKEFLAGS MFLAGS MAKELEVEL
	t="$BATS_FILE_TMPDIR/fresh"
	mkdir -p "$t"
	git ls-files -co --exclude-standard | while read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
		tar -c -T - | tar -x -C "$t"
	cd "$t"
	exp() { make --no-print-directory WORK="$t/runs" MLRUNS="$t/mlruns" CONFIG="$CFG" experiment; }
	run make -j2 all
	assert_success
	assert_output --partial "-o build/bin/bio-train"
	run make all
	assert_success
	refute_output --regexp "(cc|ar) "
	make -q all
	run exp
	assert_success
	assert_output --partial "build/bin/bio-synth"
	assert_output --partial "build/bin/bio-eval"
	run exp
	assert_success
	refute_output --partial "build/bin/bio-"
	# the same programs relinked from scratch: same content, same stamps, no stage re-runs
	rm -rf build/bin build/tools build/lib build/libbio.a
	run make -j2 all
	assert_success
	assert_output --partial "-o build/bin/bio-train"
	run make -j2 unit
	assert_success
	run exp
	assert_success
	refute_output --partial "build/bin/bio-"
	# a libbio change that leaves the programs as they were: relinked, make -q still true, no stage
	touch lib/rng.c
	make all >/dev/null
	make -q all
	run exp
	assert_success
	refute_output --partial "build/bin/bio-"
	# a change of behaviour in one program re-runs its stage and what follows, nothing before
	printf 'extern const char bio_eval_changed[];\nconst char bio_eval_changed[] = "x";\n' >> tools/bio-eval.c
	run exp
	assert_success
	assert_output --partial "build/bin/bio-eval"
	refute_output --partial "build/bin/bio-train"
	refute_output --partial "build/bin/bio-prep"
}

@test "two experiments at once in one tree: both succeed, the same tree and report as one run" {
	# mk WORK LOG: one experiment in WORK (one tracking store for all), output in LOG
	mk() { make --no-print-directory EXP_STAGE=1 BUILD="$BIO_BUILD" WORK="$1" \
		MLRUNS="$BATS_TEST_TMPDIR/mlruns" CONFIG="$CFG" experiment-run >"$2" 2>&1; }
	d="$BATS_TEST_TMPDIR"
	mk "$d/seq" "$d/seq.log"
	# simultaneous, then staggered (the second starts while the first is at work)
	mk "$d/sim" "$d/sim1.log" & a=$!
	mk "$d/sim" "$d/sim2.log" & b=$!
	wait $a && wait $b
	mk "$d/stag" "$d/stag1.log" & a=$!
	sleep 1
	mk "$d/stag" "$d/stag2.log" & b=$!
	wait $a && wait $b
	seq_dir=$(ls -d "$d/seq"/tiny-* | grep -E '/tiny-[0-9a-f]{16}$')
	for w in sim stag; do
		run_dir=$(ls -d "$d/$w"/tiny-* | grep -E '/tiny-[0-9a-f]{16}$')
		[ "$(basename "$run_dir")" = "$(basename "$seq_dir")" ]
		# the same report but for the work folder it names (gallery_from) and its provenance
		# (when, from which files)
		diff <(sed "/^provenance:/,\$d; s|$d/seq/|W/|g" "$seq_dir/report.yaml") \
			<(sed "/^provenance:/,\$d; s|$d/$w/|W/|g" "$run_dir/report.yaml")
		cmp "$seq_dir/model/best.ckpt" "$run_dir/model/best.ckpt"
		"$PYTHON" -c 'import sys, msgpack
a, b = ([o for o in msgpack.Unpacker(open(p, "rb"), raw=False)][1:] for p in sys.argv[1:])
assert len(a) > 1 and a == b, "predictions differ"' "$seq_dir/predictions.bs" "$run_dir/predictions.bs"
		# the same folders, and no temp folders left
		[ "$(cd "$d/seq" && ls)" = "$(cd "$d/$w" && ls)" ]
		! ls -d "$d/$w"/*.tmp 2>/dev/null || false
		# one of the two trained; the other waited and found every stage made
		[ "$(grep -l 'bio-train ' "$d/$w"[12].log | wc -l)" -eq 1 ]
	done
}

# check_latest_run < PY: the Python PY run with d (the newest run folder of $W), r (its
# report.yaml) and recs (the records of its samples.bs that carry a split)
check_latest_run() {
	local run_dir
	run_dir=$(ls -td "$W"/tiny-* | grep -E '/tiny-[0-9a-f]{16}$' | head -1)
	"$PYTHON" -c 'import sys, yaml, msgpack
d = sys.argv[1]
r = yaml.safe_load(open(d + "/report.yaml"))
u = msgpack.Unpacker(open(d + "/samples.bs", "rb"), raw=False)
next(u)
recs = [o for o in u if isinstance(o, dict) and "split" in o]
exec(sys.stdin.read())' "$run_dir"
}

@test "closed-set with a test split: best.ckpt on val, the report on test, thresholds set on val" {
	run run_make SET="scan.split.val=0.34 scan.split.test=0.34"
	assert_success
	assert_output --partial "bio-train: each epoch: loss, acc on the training batches; val_loss, val_acc on --val"
	assert_output --regexp "bio-infer .*--split val .*-o [^ ]*/dev.bs"
	assert_output --regexp "bio-infer .*--split test .*-o [^ ]*/predictions.bs"
	assert_output --regexp "bio-eval .*--enrol [^ ]*/enrol.bs"
	assert_output --regexp "--dev [^ ]*/dev.bs"
	check_latest_run <<'PY'
splits = [o["split"] for o in recs]
assert r["records"] == splits.count("test") == 12, (r["records"], splits.count("test"))
assert r["dev"]["path"].endswith("/dev.bs"), r["dev"]
assert "dev_threshold" in r["fused"]["verification"], r["fused"]["verification"]
assert r["fused"]["verification"]["dev_threshold"]["hter"] is not None, r["fused"]
assert r["fused"]["verification"]["eer_ci95"] is not None
PY
}

@test "open-set (scan.split.mode disjoint): new identities enrolled as templates, best.ckpt by the dev identities' EER" {
	run run_make SET="scan.split.mode=disjoint scan.split.val=0.34 scan.split.test=0.34 eval.template=mean eval.gallery=2"
	assert_success
	assert_output --partial "* = best so far by val_eer (best.ckpt)"
	assert_output --regexp "epoch 1/[0-9]+ .* val_eer [0-9.]+ "
	refute_output --partial "enrol.bs"
	assert_output --regexp "bio-infer .*--split test .*-o [^ ]*/predictions.bs"
	check_latest_run <<'PY'
train = {o["label"] for o in recs if o["split"] == "train"}
test = {o["label"] for o in recs if o["split"] == "test"}
assert train and test and not (train & test), (train, test)
assert r["template"] == "mean" and r["gallery_from"] == "input", r
idf = r["fused"]["identification"]
assert idf["n_templates"] == len(test) and idf["n_unmated_probes"] == 0, idf
assert r["bootstrap"]["subjects"] == len(test)
assert r["dev"]["path"].endswith("/dev.bs")
PY
}
