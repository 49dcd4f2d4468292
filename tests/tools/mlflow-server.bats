#!/usr/bin/env bats
# Tracking to a real MLflow server (MLflow 3.5 from ../shared/vendor/mlflow, SQLite backend,
# artifact proxy) on 127.0.0.1: bio-train logs the same params, metrics, tags and artifacts as to
# the file store and registers a version with an alias; MLflow's own client reads everything back
# (download_artifacts("models:/NAME@ALIAS") included); bio-infer loads models:/NAME@ALIAS and
# runs:/ID/PATH; bio-eval --track-run adds to the server run; --push-tracking sends a file store. A server killed in the middle of a
# training loses no metric point and duplicates none after its restart and --sync-tracking, and a
# flush whose answer was lost is checked against the server's history. Skipped (one line) when
# ../shared/vendor is absent.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

VENDOR="$BATS_TEST_DIRNAME/../../../shared/vendor/mlflow"

# Starts the server of $SRV on $PORT in its own process group (killed as a whole by
# stop_server, and by timeout after 5 minutes whatever happens); waits for /health.
start_server() {
	setsid sh -c 'echo $$ > "$1/pgid"; cd "$1" && . "$2/env.sh" &&
		exec timeout -s KILL 300 "$3" -m mlflow server \
		--backend-store-uri "sqlite:///$1/mlflow.db" --artifacts-destination "$1/artifacts" \
		--host 127.0.0.1 --port "$4" --workers 1' sh "$SRV" "$MLF" "$PYTHON" "$PORT" \
		>>"$SRV/server.log" 2>&1 </dev/null &
	disown $!
	for _ in $(seq 240); do
		curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
		sleep 0.25
	done
	echo "the MLflow server did not start:" >&2
	tail -20 "$SRV/server.log" >&2
	return 1
}

stop_server() {
	[ -s "$SRV/pgid" ] || return 0
	kill -KILL -- "-$(cat "$SRV/pgid")" 2>/dev/null || true
	rm -f "$SRV/pgid"
	for _ in $(seq 40); do
		curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || return 0
		sleep 0.25
	done
}

setup_file() {
	[ -d "$VENDOR" ] || return 0
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FIX="$BATS_FILE_TMPDIR/fx" MLF="$BATS_FILE_TMPDIR/mlflow" SRV="$BATS_FILE_TMPDIR/srv"
	mkdir -p "$FIX" "$SRV"
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	"$VENDOR/setup.sh" "$MLF" >/dev/null
	PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export PORT URI="http://127.0.0.1:$PORT"
	start_server
	prepared_fixture "$FIX" 48 $MODEL32_SETS
	bio-batch --batch-size 6 --epochs 3 "$FIX/samples.bs" > "$FIX/b3.bs"
	bio-batch --batch-size 6 --epochs 6 "$FIX/samples.bs" > "$FIX/b6.bs"
}

teardown_file() {
	[ -d "$VENDOR" ] || return 0
	stop_server
}

setup() {
	[ -d "$VENDOR" ] || skip "../shared/vendor is absent (MLflow server tests run in CI)"
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	S="$FIX/samples.bs"
	C="$(cat "$FIX/sets") --set tracking.cache_dir=$T/cache"
}

# Runs Python with the vendored MLflow importable.
mlpython() {
	(. "$MLF/env.sh" && "$PYTHON" -W ignore "$@")
}

@test "bio-train logs to the server what it logs to a file store; MLflow's client reads it back" {
	bio-train $C --set tracking.uri="$T/mlruns" --set tracking.experiment=srv --val "$S" \
		-o "$T/fck" --register fsmodel --alias champion "$FIX/b3.bs" 2>/dev/null
	run bio-train $C --set tracking.uri="$URI" --set tracking.experiment=srv --val "$S" \
		-o "$T/ck" --register srvmodel --alias champion "$FIX/b3.bs"
	assert_success
	assert_output --partial "registered model srvmodel version 1 alias champion"
	refute_output --partial "not complete"
	cp "$T/ck/run_id" "$FIX/srv_run_id"
	mlpython - "$URI" "$T/mlruns" "$(cat "$T/fck/run_id")" "$T/ck/best.ckpt" "$T/dl" <<'EOF'
import filecmp, os, sys
import mlflow, requests
from mlflow import MlflowClient
uri, fs_root, fs_id, best, dl = sys.argv[1:]
c = MlflowClient(uri)
exp = c.get_experiment_by_name("srv")
runs = c.search_runs([exp.experiment_id])
assert len(runs) == 1, runs
r = runs[0]
f = MlflowClient(fs_root).get_run(fs_id)
assert r.info.status == "FINISHED" and r.info.end_time >= r.info.start_time, r.info
assert r.data.params.pop("tracking.uri") == uri and f.data.params.pop("tracking.uri") == fs_root
assert r.data.params == f.data.params, set(r.data.params.items()) ^ set(f.data.params.items())
assert len(r.data.params) > 90
assert set(r.data.metrics) == set(f.data.metrics), (set(r.data.metrics), set(f.data.metrics))
assert set(f.data.tags) <= set(r.data.tags), set(f.data.tags) - set(r.data.tags)
assert r.data.tags["mlflow.source.name"] == "bio-train"
assert r.data.tags["mlflow.runName"] == r.info.run_name
for k in r.data.metrics:
    h = c.get_metric_history(r.info.run_id, k)
    hf = MlflowClient(fs_root).get_metric_history(fs_id, k)
    assert [m.step for m in h] == [0, 1, 2], (k, h)
    if k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert [m.value for m in h] == [m.value for m in hf], (k, h, hf)
# the REST API pages metric histories: max_results is needed (0 returns none)
q = {"run_id": r.info.run_id, "metric_key": "train_loss"}
j = requests.get(uri + "/api/2.0/mlflow/metrics/get-history", params=dict(q, max_results=2)).json()
assert len(j["metrics"]) == 2 and j.get("next_page_token"), j
arts = sorted(a.path for a in c.list_artifacts(r.info.run_id))
arts += sorted(a.path for a in c.list_artifacts(r.info.run_id, "checkpoints"))
assert arts == ["checkpoints", "config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt"], arts
mv = c.get_model_version_by_alias("srvmodel", "champion")
assert mv.version == "1" and mv.run_id == r.info.run_id, mv
assert mv.source == f"runs:/{r.info.run_id}/checkpoints", mv.source
assert [v.version for v in c.search_model_versions("name='srvmodel'")] == ["1"]
assert c.get_registered_model("srvmodel").aliases == {"champion": "1"}
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
d = mlflow.artifacts.download_artifacts("models:/srvmodel@champion", dst_path=dl)
assert sorted(os.listdir(d)) == ["best.ckpt", "last.ckpt"], os.listdir(d)
assert filecmp.cmp(os.path.join(d, "best.ckpt"), best, shallow=False)
# the file store's registry: the alias and a directory source MLflow downloads
mlflow.set_tracking_uri(fs_root)
mlflow.set_registry_uri(fs_root)
fc = MlflowClient(fs_root)
assert str(fc.get_model_version_by_alias("fsmodel", "champion").version) == "1"
d = mlflow.artifacts.download_artifacts("models:/fsmodel@champion", dst_path=dl + "-fs")
assert sorted(os.listdir(d)) == ["best.ckpt", "last.ckpt"], os.listdir(d)
print(r.info.run_id)
EOF
}

@test "bio-infer loads models:/NAME@ALIAS, /VERSION, /latest and runs:/ID/PATH from the server" {
	run bio-infer $C --set tracking.uri="$URI" -m models:/srvmodel@champion -o "$T/a.bs" "$S"
	assert_success
	[ -s "$T/cache/artifacts/"*/*/artifacts/checkpoints/best.ckpt ]
	id=$(basename "$(dirname "$(dirname "$(ls -d "$T/cache/artifacts/"*/*/artifacts/checkpoints)")")")
	bio-infer $C --set tracking.uri="$URI" -m models:/srvmodel/1 -o "$T/b.bs" "$S"
	bio-infer $C --set tracking.uri="$URI" -m models:/srvmodel/latest -o "$T/c.bs" "$S"
	bio-infer $C --set tracking.uri="$URI" -m "runs:/$id/checkpoints/best.ckpt" -o "$T/d.bs" "$S"
	mlpython - "$T" <<'EOF'
import sys, msgpack
recs = [[o for o in msgpack.Unpacker(open(f"{sys.argv[1]}/{n}.bs", "rb"), raw=False)][1:]
        for n in "abcd"]
assert len(recs[0]) > 1 and all(r == recs[0] for r in recs), "records differ"
EOF
	run bio-infer $C --set tracking.uri="$URI" -m models:/srvmodel@nosuch "$S"
	assert_failure 1
	assert_output --partial "models:/srvmodel@nosuch"
	[ "${#lines[@]}" -eq 1 ]
	run bio-infer $C --set tracking.uri="$URI" -m models:/nomodel/3 "$S"
	assert_failure 1
}

@test "bio-eval --track-run logs its figures and report to the server run, status kept" {
	id=$(mlpython -c 'import sys; from mlflow import MlflowClient
c = MlflowClient(sys.argv[1]); print(c.search_runs([c.get_experiment_by_name("srv").experiment_id])[0].info.run_id)' "$URI")
	bio-infer $C --set tracking.uri="$URI" -m models:/srvmodel@champion -e -o "$T/p.bs" "$S"
	run bio-eval $C --set tracking.uri="$URI" --track-run "$id" -o "$T/report.yaml" "$T/p.bs"
	assert_success
	refute_output --partial "not complete"
	# the run id bio-train wrote (its journal's, as the make pipelines pass it) finds it too
	run bio-eval $C --set tracking.uri="$URI" --track-run "$(cat "$FIX/srv_run_id")" \
		-o "$T/report2.yaml" "$T/p.bs"
	assert_success
	mlpython - "$URI" "$id" <<'EOF'
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1])
r = c.get_run(sys.argv[2])
assert r.info.status == "FINISHED", r.info.status
assert "eval_accuracy" in r.data.metrics and "eval_fused_eer" in r.data.metrics, r.data.metrics
assert len(c.get_metric_history(r.info.run_id, "eval_accuracy")) == 2
assert "eval/report.yaml" in [a.path for a in c.list_artifacts(r.info.run_id, "eval")]
EOF
}

@test "bio-train --push-tracking sends a file store's runs, registered versions and aliases, once" {
	bio-train $C --set tracking.uri="$T/mlruns" --set tracking.experiment=pushed --val "$S" \
		-o "$T/ck" --register pushmodel --alias best "$FIX/b3.bs" 2>/dev/null
	# more than one runs/log-batch holds (1000 metrics, 100 params, 100 tags a call)
	d=$(dirname "$(ls -d "$T/mlruns"/*/"$(cat "$T/ck/run_id")"/meta.yaml)")
	"$PYTHON" - "$d" <<'EOF'
import os, sys
d = sys.argv[1]
with open(os.path.join(d, "metrics", "many"), "w") as f:
    f.writelines("%d %r %d\n" % (1700000000000 + i, i * 0.5, i) for i in range(2500))
for i in range(150):
    open(os.path.join(d, "params", "extra.p%03d" % i), "w").write(str(i))
for i in range(120):
    open(os.path.join(d, "tags", "extra.t%03d" % i), "w").write(str(i))
EOF
	run bio-train $C --set tracking.uri="$URI" --push-tracking "$T/mlruns"
	assert_success
	assert_output --partial "1 of 1 run of $T/mlruns complete on $URI"
	run bio-train $C --set tracking.uri="$URI" --push-tracking "$T/mlruns"
	assert_success
	run bio-train $C --push-tracking "$T/mlruns"
	assert_failure 2
	# a param the server will not change is reported once and does not hold back the rest
	printf 'changed' > "$d/params/extra.p000"
	echo "1700000009999 1.5 2500" >> "$d/metrics/many"
	run bio-train $C --set tracking.uri="$URI" --push-tracking "$T/mlruns"
	assert_failure 1
	assert_output --partial "the server refused params 'extra.p000'"
	run bio-train $C --set tracking.uri="$URI" --push-tracking "$T/mlruns"
	assert_success
	mlpython - "$URI" "$T/mlruns" "$(cat "$T/ck/run_id")" <<'EOF'
import sys
from mlflow import MlflowClient
uri, root, fid = sys.argv[1:]
c, fc = MlflowClient(uri), MlflowClient(root)
runs = c.search_runs([c.get_experiment_by_name("pushed").experiment_id])
assert len(runs) == 1, runs
r, f = runs[0], fc.get_run(fid)
assert r.data.tags["bio.spool_run_id"] == fid
assert (r.info.status, r.info.start_time, r.info.end_time) == (f.info.status, f.info.start_time, f.info.end_time)
assert r.data.params.pop("extra.p000") == "0" and f.data.params.pop("extra.p000") == "changed"
assert r.data.params == f.data.params, set(r.data.params.items()) ^ set(f.data.params.items())
assert set(r.data.metrics) == set(f.data.metrics), set(r.data.metrics) ^ set(f.data.metrics)
assert "extra.p149" in r.data.params and "extra.t119" in r.data.tags
assert len(c.get_metric_history(r.info.run_id, "many")) == 2501
for k in f.data.metrics:
    a = [(m.step, m.timestamp, m.value) for m in c.get_metric_history(r.info.run_id, k)]
    b = [(m.step, m.timestamp, m.value) for m in fc.get_metric_history(fid, k)]
    assert a == b, (k, a, b)
assert sorted(x.path for x in c.list_artifacts(r.info.run_id, "checkpoints")) == \
    sorted(x.path for x in fc.list_artifacts(fid, "checkpoints"))
mv = c.get_model_version_by_alias("pushmodel", "best")
assert mv.run_id == r.info.run_id and mv.source == f"runs:/{r.info.run_id}/checkpoints", mv
assert len(c.search_model_versions("name='pushmodel'")) == 1
EOF
}

# Writes the batches of $1 to stdout: the epochs before $2, then (after file $3 appears) the rest.
feed() {
	"$PYTHON" - "$@" <<'EOF'
import os, sys, time, msgpack
src, cut, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = sys.stdout.buffer
waited = False
for o in msgpack.Unpacker(open(src, "rb"), raw=False):
    if not waited and o.get("epoch", -1) >= cut:
        out.flush()
        t = time.time()
        while not os.path.exists(go) and time.time() - t < 60:
            time.sleep(0.05)
        waited = True
    out.write(msgpack.packb(o))
out.flush()
EOF
}

@test "server killed mid-training: training goes on, every point arrives once after restart + --sync-tracking" {
	state() { cat "$T/ck"/tracking/0/*/bio-remote.json 2>/dev/null; }
	tr="--set tracking.uri=$URI --set tracking.experiment=down --set tracking.retries=1 --set tracking.backoff=0.1 --set tracking.timeout=5"
	feed "$FIX/b6.bs" 3 "$T/go" | bio-train $C $tr --val "$S" -o "$T/ck" --register downmodel \
		--alias prod 2>"$T/train.err" &
	train=$!
	# epochs 0 and 1 acknowledged, epoch 2 in progress: kill the server (SIGKILL, whole group)
	for _ in $(seq 200); do
		state | grep -q '"train_loss": 2' && break
		sleep 0.1
	done
	state | grep -q '"train_loss": 2'
	stop_server
	touch "$T/go"
	wait "$train"
	run cat "$T/train.err"
	assert_output --partial "training goes on"
	assert_output --partial "epoch 6/6"
	assert_output --partial "registration waits for the tracking server"
	assert_output --partial "not complete"
	run bio-train $C --sync-tracking "$T/ck"
	assert_failure 1
	assert_output --partial "0 of 1 run"
	start_server
	mv "$T/ck" "$T/moved" # as the make pipelines rename a finished model directory
	run bio-train $C --sync-tracking "$T/moved"
	assert_success
	assert_output --partial "1 of 1 run"
	# a send whose answer was lost: the journal believes nothing was acknowledged
	f=$(ls "$T/moved"/tracking/0/*/bio-remote.json)
	"$PYTHON" - "$f" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["unsure"] = {k: True for k in s["metrics"]}
s["metrics"] = {k: 0 for k in s["metrics"]}
json.dump(s, open(sys.argv[1], "w"))
EOF
	echo "$(date +%s)000 0.5 6" >> "$(dirname "$f")/metrics/lr"
	run bio-train $C --sync-tracking "$T/moved"
	assert_success
	mlpython - "$URI" <<'EOF'
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1])
r = c.search_runs([c.get_experiment_by_name("down").experiment_id])[0]
assert r.info.status == "FINISHED", r.info.status
assert len(r.data.metrics) >= 10, r.data.metrics
for k in r.data.metrics:
    steps = sorted(m.step for m in c.get_metric_history(r.info.run_id, k))
    want = [0, 1, 2, 3, 4, 5] + ([6] if k == "lr" else [])
    assert steps == want, (k, steps)
arts = sorted(a.path for a in c.list_artifacts(r.info.run_id, "checkpoints"))
assert arts == ["checkpoints/best.ckpt", "checkpoints/last.ckpt"], arts
mv = c.get_model_version_by_alias("downmodel", "prod")
assert mv.run_id == r.info.run_id and mv.version == "1", mv
assert len(c.search_model_versions("name='downmodel'")) == 1
EOF
}
