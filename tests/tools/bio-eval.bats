#!/usr/bin/env bats
# bio-eval: help and exit codes; every figure of the report checked against scikit-learn, numpy and
# a numpy reimplementation of bob.measure on generated predictions (plain, exactly tied scores,
# FVC protocol with a 2-sample gallery, unknown labels, shuffled order); the fusion gain visible in
# the summary; degenerate inputs (one class, no embeddings, one sample per identity, no labels)
# reported as null with a reason; bad input (one line, exit 1, no output); plots readable as PNG;
# thread-count invariance; the man page's EXAMPLES; the protocols (probe-versus-template scores,
# the subjects bootstrap, thresholds set on a dev set) against numpy (protocol_compare.py) and a
# hand-computed case; modalities taken from the input.

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	PYTHON="${PYTHON:-/usr/bin/python3}"
	T="$BATS_TEST_TMPDIR"
	GEN="tests/python/make_predictions.py"
}

# compare GEN_ARGS EVAL_ARGS: generate, evaluate, check against the references
compare() {
	"$PYTHON" "$GEN" -o "$T/p.bs" $1
	run bio-eval -q "$T/p.bs" -o "$T/r.yaml" --curves "$T/c" --scores \
		--set eval.curve_resolution=0 $2
	assert_success
	run "$PYTHON" tests/python/sklearn_compare.py "$T/p.bs" "$T/r.yaml" "$T/c"
	assert_success
	assert_output --partial " 0 mismatches"
}

@test "bio-eval --help, --version, usage errors" {
	run bio-eval --help
	assert_success
	assert_output --partial "Usage: bio-eval"
	run bio-eval --version
	assert_success
	run bio-eval --no-such-option
	assert_failure 2
	assert_output --partial "Try 'bio-eval --help'."
	run bio-eval --protocol nope x.bs
	assert_failure 2
	run bio-eval --scores x.bs
	assert_failure 2
	assert_output --partial "--scores needs --curves"
	run bio-eval --set eval.protocol=nope x.bs
	assert_failure 1
	assert_output --partial "eval.protocol"
}

@test "report matches scikit-learn and bob.measure: 20 identities" {
	compare "--ids 20 --samples 6 --dim 32 --seed 3" ""
}

@test "report matches the references with exact score ties (quantised embeddings)" {
	compare "--ids 8 --samples 5 --dim 3 --quantize --seed 4" ""
	# the tie case must really have ties
	run "$PYTHON" -c "
import csv, sys
s = [r[1] for r in csv.reader(open('$T/c/scores_fused.csv'))][1:]
sys.exit(0 if len(set(s)) < len(s) / 2 else 1)"
	assert_success
}

@test "report matches the references: FVC protocol, gallery 2, unknown labels, shuffled" {
	compare "--ids 12 --samples 5 --unknown 4 --shuffle --seed 9" "--protocol fvc --gallery 2"
	run grep -c "n_impostor: 66$" "$T/r.yaml"
	assert_output 4 # the three modalities and the score-level fusion
}

@test "--enrol: gallery from another predictions stream, unmated probes left out" {
	"$PYTHON" "$GEN" -o "$T/in.bs" --ids 12 --samples 3 --seed 5 --sample-seed 77 --unknown 2
	"$PYTHON" "$GEN" -o "$T/enr.bs" --ids 12 --drop-ids 2 --samples 4 --seed 5
	run bio-eval -q "$T/in.bs" --enrol "$T/enr.bs" --gallery 3 -o "$T/r.yaml" --curves "$T/c" \
		--scores --set eval.curve_resolution=0
	assert_success
	run "$PYTHON" tests/python/sklearn_compare.py "$T/in.bs" "$T/r.yaml" "$T/c" "$T/enr.bs"
	assert_success
	assert_output --partial " 0 mismatches"
	run grep -c "n_unmated_probes: 6$" "$T/r.yaml"
	assert_output 3
	# another label set is refused before any output
	"$PYTHON" "$GEN" -o "$T/other.bs" --ids 7
	run bio-eval -q "$T/in.bs" --enrol "$T/other.bs" -o "$T/x.yaml"
	assert_failure 1
	assert_output --partial "label names differ"
	[ ! -e "$T/x.yaml" ]
}

@test "the summary shows the modalities side by side and fusion wins" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 30 --samples 5 --dim 24 --seed 11
	run bio-eval "$T/p.bs" -o "$T/r.yaml"
	assert_success
	assert_line --regexp '^ +iris +fingerprint +fused$'
	assert_line --regexp '^EER +[0-9.]+% +[0-9.]+% +[0-9.]+%$'
	run "$PYTHON" -c "
import yaml
r = yaml.safe_load(open('$T/r.yaml'))
e = {m: r[m]['verification']['eer'] for m in ('iris', 'fingerprint', 'fused')}
print(e)
assert e['fused'] < min(e['iris'], e['fingerprint'])
assert r['fused']['identification']['rank1'] >= r['iris']['identification']['rank1']"
	assert_success
}

@test "one class: no impostors, eer null with a reason, exit 0" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 1 --samples 5
	run bio-eval -q "$T/p.bs" -o "$T/r.yaml" --curves "$T/c"
	assert_success
	# the three modalities and the score-level fusion
	run grep -c 'eer: null' "$T/r.yaml"
	assert_output 4
	run grep -c 'reason: "no impostor scores (a single identity)"' "$T/r.yaml"
	assert_output 4
	run grep -ciw nan "$T/r.yaml"
	assert_output 0
	[ ! -e "$T/c/roc_fused.csv" ]
}

@test "no embeddings, one sample per identity, no known labels: nulls with reasons" {
	"$PYTHON" "$GEN" -o "$T/a.bs" --no-emb
	run bio-eval "$T/a.bs" -o "$T/a.yaml"
	assert_success
	assert_output --partial "no embeddings in the input"
	run grep -c 'embeddings: false' "$T/a.yaml"
	assert_output 3
	run grep -E '^  accuracy: [0-9.]+$' "$T/a.yaml"
	assert_success

	"$PYTHON" "$GEN" -o "$T/b.bs" --samples 1
	run bio-eval "$T/b.bs" -o "$T/b.yaml"
	assert_success
	assert_output --partial "no genuine scores"
	assert_output --partial "no probes"
	run grep -c 'rank1: null' "$T/b.yaml"
	assert_output 3

	"$PYTHON" "$GEN" -o "$T/c.bs" --ids 2 --samples 0 --unknown 4
	run bio-eval "$T/c.bs" -o "$T/c.yaml"
	assert_success
	assert_output --partial "closed-set: no record has a known label"
	run grep -c 'accuracy: null' "$T/c.yaml"
	assert_output 1
	run grep -ciw nan "$T/c.yaml"
	assert_output 0
}

@test "bad input: one error line, exit 1, no output files" {
	"$PYTHON" "$GEN" -o "$T/ok.bs"
	"$PYTHON" "$GEN" -o "$T/notrailer.bs" --no-trailer
	"$PYTHON" "$GEN" -o "$T/tensor.bs" --bad-tensor
	"$PYTHON" "$GEN" -o "$T/pred.bs" --bad-pred
	head -c 700 "$T/ok.bs" > "$T/cut.bs"
	echo garbage > "$T/garbage.bs"
	"$PYTHON" -c "
import msgpack
open('$T/kind.bs', 'wb').write(msgpack.packb({'bio-stream': 1, 'kind': 'samples', 'meta': {}})
                               + msgpack.packb({'end': 0}))"
	for f in notrailer tensor pred cut garbage kind missing; do
		mkdir -p "$T/out_$f"
		run bio-eval "$T/$f.bs" -o "$T/out_$f/r.yaml" --curves "$T/out_$f/c" \
			--plots "$T/out_$f/p"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ]
		assert_output --regexp "^bio-eval: .*$f.bs"
		run ls -A "$T/out_$f"
		assert_output ""
	done
}

@test "a full stdout is an error" {
	"$PYTHON" "$GEN" -o "$T/p.bs"
	run sh -c "bio-eval -q '$T/p.bs' > /dev/full"
	assert_failure 1
}

@test "stdin, several files as one stream, -j invariance" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 15 --samples 4 --seed 2
	bio-eval -q -j1 "$T/p.bs" -o "$T/r1.yaml"
	bio-eval -q -j3 < "$T/p.bs" > "$T/r3.yaml"
	# the same figures (the provenance differs: the input is named, then standard input)
	cmp <(sed '/^provenance:/,$d' "$T/r1.yaml") <(sed '/^provenance:/,$d' "$T/r3.yaml")
	grep -q '^  inputs: \["-"\]' "$T/r3.yaml"
	run bio-eval -q "$T/p.bs" "$T/p.bs"
	assert_success
	assert_line "records: 120"
}

@test "plots: readable PNGs of the configured size, DET with every modality" {
	command -v gnuplot || skip "gnuplot not installed"
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 12 --samples 5
	mkdir -p "$T/run/metrics"
	printf '1700000000000 2.5 0\n1700000000100 1.2 1\n1700000000200 0.7 2\n' \
		> "$T/run/metrics/train_loss"
	printf '1700000000000 0.3 0\n1700000000100 0.6 1\n1700000000200 0.8 2\n' \
		> "$T/run/metrics/val_accuracy"
	run bio-eval -q "$T/p.bs" -o "$T/r.yaml" --plots "$T/pl" --run-dir "$T/run" \
		--set eval.plot_width=640 --set eval.plot_height=480
	assert_success
	run "$PYTHON" -c "
from PIL import Image
import sys
d = '$T/pl'
for n in ['det', 'roc', 'cmc', 'hist_iris', 'hist_fingerprint', 'hist_fused']:
    im = Image.open('%s/%s.png' % (d, n)).convert('RGB')
    assert im.size == (640, 480), (n, im.size)
    colors = len(set(im.getdata()))
    assert colors > 20, (n, colors)
im = Image.open(d + '/det.png').convert('RGB')
# the three curves use gnuplot's first three line colours
px = set(im.getdata())
for c in [(148, 0, 211), (0, 158, 115), (86, 180, 233)]:
    assert any(sum(abs(a - b) for a, b in zip(p, c)) < 30 for p in px), c
t = Image.open(d + '/training_curves.png')
assert t.size[0] > t.size[1]
print('ok')"
	assert_success
	assert_output --partial ok
	# the training curves: epochs from 1 with whole-number ticks, legends in words (a gnuplot
	# wrapper keeps every script and data file it was given)
	printf '#!/bin/sh\ncat "$(dirname "$1")"/* >>"%s/gp.all"\nexec gnuplot "$@"\n' "$T" >"$T/gp"
	chmod +x "$T/gp"
	BIO_GNUPLOT="$T/gp" bio-eval -q "$T/p.bs" -o "$T/r2.yaml" --plots "$T/pl2" --run-dir "$T/run"
	[ -s "$T/pl2/training_curves.png" ]
	grep -q "set xtics 1" "$T/gp.all"
	grep -q "set format x '%.0f'" "$T/gp.all"
	grep -q 'title "training loss"' "$T/gp.all"
	grep -q 'title "validation accuracy"' "$T/gp.all"
	grep -q 'set xlabel "Epoch"' "$T/gp.all"
	# steps 0..2 are epochs 1..3
	grep -qE '^3 0\.8(0000000000000004)?$' "$T/gp.all"
	! grep -qE '^0 2\.5' "$T/gp.all" || false
}

@test "plots without gnuplot: a clear error, exit 1" {
	"$PYTHON" "$GEN" -o "$T/p.bs"
	BIO_GNUPLOT=/nonexistent/gnuplot run bio-eval -q "$T/p.bs" -o "$T/r.yaml" --plots "$T/pl"
	assert_failure 1
	assert_output --partial "gnuplot"
	[ ! -e "$T/r.yaml" ]
}

@test "man page EXAMPLES run" {
	"$PYTHON" "$GEN" -o "$T/preds.bs" --ids 10 --samples 4
	cd "$T"
	run bio-eval -o report.yaml --curves curves --plots plots preds.bs
	assert_success
	[ -s report.yaml ] && [ -s curves/det_fused.csv ] && [ -s plots/det.png ]
	run sh -c "cat preds.bs | bio-eval --protocol fvc --gallery 2 -q > report.yaml"
	assert_success
	grep -q '^protocol: fvc' report.yaml
	# the enrolment example (train.bs made here instead of by bio-infer)
	"$PYTHON" "$OLDPWD/$GEN" -o train.bs --ids 10 --samples 4 --sample-seed 9
	run sh -c "bio-eval --enrol train.bs --gallery 100 -q preds.bs > report.yaml"
	assert_success
	grep -q 'n_gallery: 40' report.yaml
	# the open-set example (dev.bs: other samples of the same identities, made here)
	"$PYTHON" "$OLDPWD/$GEN" -o dev.bs --ids 10 --samples 4 --sample-seed 5
	run sh -c "bio-eval --template mean --gallery 3 --dev dev.bs --bootstrap 2000 \\
  --set eval.dev_fmr=0.001 -q preds.bs > report.yaml"
	assert_success
	grep -q '^  target_fmr: 0.001$' report.yaml
	grep -q '^  replicates: 2000$' report.yaml
	run sh -c "bio-eval --curves curves --scores --set eval.curve_resolution=0 -q preds.bs > report.yaml"
	assert_success
	[ -s curves/scores_iris.csv ]
}

@test "--track-run logs metrics and artifacts to the run and keeps its status" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 10 --samples 4
	id=0123456789abcdef0123456789abcdef
	run_dir=$("$PYTHON" tests/python/make_run.py "$T/mlruns" $id 3)
	run bio-eval -q "$T/p.bs" -o "$T/r.yaml" --plots "$T/pl" --track-run "$run_dir"
	assert_success
	# metric files: "<timestamp_ms> <value> <step>", the value of the report
	run "$PYTHON" -c "
import yaml
r = yaml.safe_load(open('$T/r.yaml'))
for m in ('iris', 'fingerprint', 'fused'):
    ts, v, step = open('$run_dir/metrics/eval_%s_eer' % m).read().split()
    assert int(ts) > 0 and step == '0', (ts, step)
    assert abs(float(v) - r[m]['verification']['eer']) < 1e-9, (m, v)
ts, v, step = open('$run_dir/metrics/eval_accuracy').read().split()
assert abs(float(v) - r['fused']['accuracy']) < 1e-9
print('ok')"
	assert_success
	[ -s "$run_dir/artifacts/eval/r.yaml" ]
	[ -s "$run_dir/artifacts/eval/plots/det.png" ]
	# the run's own training metrics were drawn
	[ -s "$T/pl/training_curves.png" ]
	grep -q '^status: 3$' "$run_dir/meta.yaml"
	# by id, in the store named by tracking.uri; the report goes to stdout
	run bio-eval -q "$T/p.bs" --set tracking.uri="$T/mlruns" --track-run $id
	assert_success
	[ -s "$run_dir/artifacts/eval/report.yaml" ]
	[ "$(wc -l < "$run_dir/metrics/eval_fused_eer")" -eq 2 ]
	# an unknown run fails before any output
	run bio-eval -q "$T/p.bs" -o "$T/x.yaml" --set tracking.uri="$T/mlruns" --track-run abc
	assert_failure 1
	assert_output --partial "no such run"
	[ ! -e "$T/x.yaml" ]
}

@test "type-confused and inconsistent records: one line naming the record and key, exit 1" {
	"$PYTHON" - "$T" <<'PY'
import sys
import msgpack
import numpy as np

def t(a, dt="f32"):
    a = np.asarray(a, dtype={"f32": "<f4", "i64": "<i8", "u8": "u1"}[dt])
    return {"dtype": dt, "shape": list(a.shape), "data": a.tobytes()}

good = {"id": "a", "label": 0, "pred": 0, "pred_name": "x", "topk": t([0, 1], "i64"),
        "topk_scores": t([1, 0]), "emb_iris": t([1, 2, 3])}
bad = {"label_str": dict(good, label="zero"), "label_big": dict(good, label=2 ** 40),
       "pred_neg": dict(good, pred=-3), "topk_f32": dict(good, topk=t([0, 1])),
       "emb_2d": dict(good, emb_iris=t([[1, 2, 3]])), "emb_u8": dict(good, emb_iris=t([1, 2, 3], "u8")),
       "emb_nan": dict(good, emb_iris=t([1, float("nan"), 3])),
       "emb_dim": dict(good, emb_iris=t([1, 2])),
       "emb_missing": {k: v for k, v in good.items() if k != "emb_iris"}, "not_map": 5,
       "score_nan": dict(good, score=float("nan")),
       "topk_scores_nan": dict(good, topk_scores=t([1, float("nan")])),
       "topk_scores_len": dict(good, topk_scores=t([1])),
       "topk_len": dict(good, topk=t([0], "i64")),
       "topk_range": dict(good, topk=t([0, 2], "i64")),
       "topk_neg": dict(good, topk=t([0, -1], "i64")),
       "pred_range": dict(good, pred=2), "label_neg2": dict(good, label=-2)}
for name, rec in bad.items():
    with open("%s/v_%s.bs" % (sys.argv[1], name), "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": "predictions",
                               "meta": {"labels": ["a", "b"], "modalities": ["iris"]}}))
        for r in (good, rec):
            f.write(msgpack.packb(r, use_bin_type=True))
        f.write(msgpack.packb({"end": 2}))
PY
	for f in "$T"/v_*.bs; do
		run bio-eval -q "$f" -o "$T/r.yaml"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ]
		assert_output --regexp "^bio-eval: .*v_.*\.bs: record 1"
		[ ! -e "$T/r.yaml" ]
	done
	for c in score_nan:score topk_scores_nan:topk_scores topk_scores_len:topk_scores \
		topk_len:topk topk_range:topk topk_neg:topk pred_range:pred label_neg2:label; do
		run bio-eval -q "$T/v_${c%%:*}.bs"
		assert_output --partial "record 1: key '${c#*:}': "
	done
}

@test "predictions without label names, and empty inputs or gallery, are refused" {
	"$PYTHON" - "$T" <<'PY'
import sys
import msgpack
d = sys.argv[1]
def w(name, meta, recs):
    with open("%s/%s.bs" % (d, name), "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": "predictions", "meta": meta}))
        for r in recs:
            f.write(msgpack.packb(r))
        f.write(msgpack.packb({"end": len(recs)}))
w("nolabels", {"modalities": ["iris"]}, [{"id": "a", "label": 0, "pred": 0}])
w("empty", {"labels": ["a", "b"]}, [])
w("one", {"labels": ["a", "b"]}, [{"id": "a", "label": 0, "pred": 0}])
PY
	run bio-eval -q -o "$T/r.yaml" "$T/nolabels.bs"
	assert_failure 1
	assert_output "bio-eval: $T/nolabels.bs: header meta has no 'labels'"
	run bio-eval -q -o "$T/r.yaml" "$T/empty.bs"
	assert_failure 1
	assert_output "bio-eval: $T/empty.bs: no records to evaluate"
	run bio-eval -q -o "$T/r.yaml" --enrol "$T/empty.bs" "$T/one.bs"
	assert_failure 1
	assert_output "bio-eval: $T/empty.bs: no records to enrol (--enrol)"
	[ ! -e "$T/r.yaml" ]
}

@test "report.yaml says what it was computed from: inputs, their programs, the model, when" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 6 --samples 4
	SOURCE_DATE_EPOCH=1764684000 bio-eval -q -o "$T/r.yaml" --enrol "$T/p.bs" "$T/p.bs"
	"$PYTHON" - "$T/r.yaml" "$T/p.bs" <<'PY'
import sys, yaml, msgpack, datetime
r = yaml.safe_load(open(sys.argv[1]))["provenance"]
meta = next(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False))["meta"]
assert r["program"] == "bio-eval" and r["version"] == "0.1.0", r
assert r["time"] == datetime.datetime(2025, 12, 2, 14, 0, tzinfo=datetime.timezone.utc), r["time"]
assert r["inputs"] == [sys.argv[2]], r["inputs"]
assert len(r["config_digest"]) == 64
assert r["predictions"]["program"] == meta.get("program"), (r, meta.get("program"))
assert r["predictions"]["model"] == meta.get("model"), (r, meta.get("model"))
assert r["enrol"]["path"] == sys.argv[2]
PY
	# without SOURCE_DATE_EPOCH: the time of the run
	bio-eval -q -o "$T/r2.yaml" "$T/p.bs"
	"$PYTHON" -c 'import sys, yaml, datetime
t = yaml.safe_load(open(sys.argv[1]))["provenance"]["time"]
d = abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
assert d < 120, d' "$T/r2.yaml"
}

# protocol GEN_ARGS EVAL_ARGS: generate input and dev predictions, evaluate, check against the
# numpy reimplementations of tests/python/protocol_compare.py
protocol() {
	"$PYTHON" "$GEN" -o "$T/p.bs" $1
	"$PYTHON" "$GEN" -o "$T/dev.bs" $1 --sample-seed 101
	run bio-eval -q "$T/p.bs" --dev "$T/dev.bs" -o "$T/r.yaml" $2
	assert_success
	run "$PYTHON" tests/python/protocol_compare.py "$T/p.bs" "$T/r.yaml" --dev "$T/dev.bs"
	assert_success
	assert_output --partial " 0 mismatches"
}

@test "bootstrap intervals and the dev threshold match numpy: every pair" {
	protocol "--ids 8 --samples 4 --dim 8 --seed 3" "--bootstrap 200"
	grep -q "eer_ci95: \[" "$T/r.yaml"
	grep -q "rank1_ci95: \[" "$T/r.yaml"
}

@test "bootstrap and the dev threshold match numpy: exact ties, FVC pairs, seed from the config" {
	protocol "--ids 7 --samples 4 --dim 3 --quantize --seed 4" \
		"--protocol fvc --bootstrap 150 --set eval.bootstrap_seed=9 --set eval.dev_fmr=0.05"
	grep -q "^  seed: 9$" "$T/r.yaml"
	grep -q "target_fmr: 0.05$" "$T/r.yaml"
}

@test "templates: mean and all against numpy, CMC over the templates, unmated probes" {
	protocol "--ids 9 --samples 5 --dim 8 --seed 6 --shuffle" \
		"--template mean --gallery 2 --bootstrap 150"
	grep -q "^template: mean$" "$T/r.yaml"
	run grep -c "n_templates: 9$" "$T/r.yaml"
	assert_output 3
	protocol "--ids 9 --samples 5 --dim 8 --seed 6 --unknown 3" \
		"--set eval.template=all --gallery 3 --bootstrap 150"
	grep -q "^template: all$" "$T/r.yaml"
	# an identity enrolled from --enrol only, and probes of an identity never enrolled
	"$PYTHON" "$GEN" -o "$T/in.bs" --ids 10 --samples 3 --seed 5 --sample-seed 77
	"$PYTHON" "$GEN" -o "$T/enr.bs" --ids 10 --drop-ids 2 --samples 4 --seed 5
	run bio-eval -q "$T/in.bs" --enrol "$T/enr.bs" --template mean --gallery 3 -o "$T/r.yaml"
	assert_success
	run grep -c "n_unmated_probes: 6$" "$T/r.yaml"
	assert_output 3
	run grep -c "n_templates: 8$" "$T/r.yaml"
	assert_output 3
	# 30 probes x 8 templates: 24 genuine, 216 impostor comparisons
	run grep -c "n_impostor: 216$" "$T/r.yaml"
	assert_output 4
}

@test "dev threshold on a hand-computed case" {
	# unit vectors at angles (degrees): dev A 0, 10; B 90, 100: genuine cos 10 twice, impostors
	# cos 90, 100, 80, 90: at FMR 1% no impostor may pass, so the threshold is the lowest score
	# above cos 80, cos 10 = 0.98480775. Eval: A 0, 20 (genuine cos 20 < it), B 90, 95 (cos 5
	# >= it), impostors cos 90, 95, 70, 75 below: FMR 0, FNMR 1/2, HTER 1/4.
	"$PYTHON" - "$T" <<'PY'
import sys
import msgpack
import numpy as np
def t(a):
    a = np.asarray(a, dtype="<f4")
    return {"dtype": "f32", "shape": list(a.shape), "data": a.tobytes()}
def w(name, angles):
    with open("%s/%s.bs" % (sys.argv[1], name), "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": "predictions",
                               "meta": {"labels": ["A", "B"], "modalities": ["iris"]}}))
        for i, a in enumerate(angles):
            v = t([np.cos(np.radians(a)), np.sin(np.radians(a))])
            f.write(msgpack.packb({"id": str(i), "label": i // 2, "pred": i // 2,
                                   "emb_iris": v, "emb_fused": v}, use_bin_type=True))
        f.write(msgpack.packb({"end": len(angles)}))
w("dev", [0, 10, 90, 100])
w("eval", [0, 20, 90, 95])
PY
	run bio-eval "$T/eval.bs" --dev "$T/dev.bs" --bootstrap 0 -o "$T/r.yaml"
	assert_success
	assert_output --partial "dev threshold"
	assert_output --regexp "  HTER +25.00% +25.00%"
	"$PYTHON" - "$T/r.yaml" <<'PY'
import sys, yaml, numpy as np
d = yaml.safe_load(open(sys.argv[1]))["iris"]["verification"]["dev_threshold"]
assert abs(d["threshold"] - np.cos(np.radians(10))) < 1e-7, d
assert d["dev_fmr"] == 0 and d["dev_fnmr"] == 0, d
assert d["fmr"] == 0 and d["fnmr"] == 0.5 and d["hter"] == 0.25, d
PY
	grep -q "eer_ci95: null" "$T/r.yaml"
}

@test "bootstrap: the same seed the same report, another seed other intervals, any -j" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 12 --samples 4 --seed 8
	bio-eval -q -j1 "$T/p.bs" -o "$T/a.yaml"
	bio-eval -q -j2 "$T/p.bs" -o "$T/b.yaml"
	bio-eval -q -j2 "$T/p.bs" --template mean --gallery 2 -o "$T/c.yaml"
	bio-eval -q -j1 "$T/p.bs" --template mean --gallery 2 -o "$T/d.yaml"
	bio-eval -q "$T/p.bs" --set eval.bootstrap_seed=43 -o "$T/e.yaml"
	diff <(grep -v "time:" "$T/a.yaml") <(grep -v "time:" "$T/b.yaml")
	diff <(grep -v "time:" "$T/c.yaml") <(grep -v "time:" "$T/d.yaml")
	run diff <(grep "eer_ci95" "$T/a.yaml") <(grep "eer_ci95" "$T/e.yaml")
	assert_failure
	# off: no intervals, no CI rows in the summary
	run bio-eval "$T/p.bs" --bootstrap 0 -o "$T/f.yaml"
	refute_output --partial "95% CI"
	run grep -c "^    [a-z_0-9]*_ci95: null" "$T/f.yaml"
	assert_output 19 # 4 per verification block (3 sections, score fusion), rank-1 of each ...
	run grep -c "rank1_ci95: null" "$T/f.yaml"
	assert_output 3 # ... and rank-1 of each section
}

@test "modalities come from the input: one, three, or the emb_ keys without header modalities" {
	"$PYTHON" - "$T" <<'PY'
import sys
import msgpack
import numpy as np
rng = np.random.default_rng(2)
def t(a):
    a = np.asarray(a, dtype="<f4")
    return {"dtype": "f32", "shape": list(a.shape), "data": a.tobytes()}
def w(name, mods, header=True):
    base = {m: rng.standard_normal((6, 5)) for m in mods}
    meta = {"labels": ["id%d" % i for i in range(6)]}
    if header:
        meta["modalities"] = mods
    with open("%s/%s.bs" % (sys.argv[1], name), "wb") as f:
        f.write(msgpack.packb({"bio-stream": 1, "kind": "predictions", "meta": meta}))
        n = 0
        for i in range(6):
            for s in range(4):
                r = {"id": "%d_%d" % (i, s), "label": i, "pred": i}
                embs = [base[m][i] + 0.8 * rng.standard_normal(5) for m in mods]
                for m, e in zip(mods, embs):
                    r["emb_" + m] = t(e)
                r["emb_fused"] = t(np.concatenate(embs))
                f.write(msgpack.packb(r, use_bin_type=True))
                n += 1
        f.write(msgpack.packb({"end": n}))
w("one", ["iris"])
w("three", ["iris", "fingerprint", "face"])
w("nohead", ["palm", "vein"], header=False)
PY
	run bio-eval -q "$T/three.bs" -o "$T/r3.yaml" --curves "$T/c3"
	assert_success
	"$PYTHON" - "$T/r3.yaml" <<'PY'
import sys, yaml
r = yaml.safe_load(open(sys.argv[1]))
for m in ("iris", "fingerprint", "face", "fused"):
    assert r[m]["verification"]["eer"] is not None, m
assert set(r["score_fusion"]) >= {"iris_znorm", "fingerprint_znorm", "face_znorm"}, r["score_fusion"]
assert r["score_fusion"]["verification"]["eer"] is not None
PY
	[ -s "$T/c3/roc_face.csv" ]
	run bio-eval "$T/three.bs" -o /dev/null
	assert_output --regexp "iris +fingerprint +face +fused"
	run bio-eval -q "$T/one.bs" -o "$T/r1.yaml"
	assert_success
	run grep -c "^fingerprint:" "$T/r1.yaml"
	assert_output 0
	grep -q "needs the embeddings of two or more modalities" "$T/r1.yaml"
	run bio-eval "$T/nohead.bs" -o "$T/rn.yaml"
	assert_success
	assert_output --regexp "palm +vein +fused"
	# an enrolment or dev stream with other modalities: one line naming it
	for opt in --enrol --dev; do
		run bio-eval -q "$T/three.bs" $opt "$T/one.bs" -o "$T/bad.yaml"
		assert_failure 1
		assert_output "bio-eval: $T/one.bs ($opt): its modalities [iris] differ from the input's [iris, fingerprint, face]"
		[ ! -e "$T/bad.yaml" ]
	done
}

@test "protocol bad input: absurd k, malformed dev, bad keys: one line, no output" {
	"$PYTHON" "$GEN" -o "$T/p.bs" --ids 5 --samples 4 --seed 2
	run bio-eval -q "$T/p.bs" --template mean --gallery 4 -o "$T/r.yaml"
	assert_failure 1
	assert_output "bio-eval: $T/p.bs: eval.gallery 4 enrols every sample (an identity has at most 4): no probes are left; set eval.gallery below 4"
	"$PYTHON" "$GEN" -o "$T/trunc.bs" --ids 5 --samples 4 --no-trailer
	run bio-eval -q "$T/p.bs" --dev "$T/trunc.bs" -o "$T/r.yaml"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "$T/trunc.bs"
	run bio-eval -q "$T/p.bs" --dev "$T/p.bs" --template mean --gallery 9 -o "$T/r.yaml"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	run bio-eval -q "$T/p.bs" --set eval.template=median -o "$T/r.yaml"
	assert_failure 1
	assert_output --partial "eval.template: expected pairs, mean or all, got 'median'"
	run bio-eval -q "$T/p.bs" --bootstrap -1
	assert_failure 2
	run bio-eval -q "$T/p.bs" --set eval.dev_fmr=2
	assert_failure 1
	assert_output --partial "eval.dev_fmr"
	[ ! -e "$T/r.yaml" ]
}
