#!/usr/bin/env bats
# bio-infer: options and exit codes, predictions stream contents (against the samples and a
# PyTorch forward of the checkpoint), identical output for every batch size and thread count,
# CSV, shards, refusing a model that does not fit the samples, corrupt checkpoints, registered
# models, atomic output and full disk.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'
load 'mutate'

setup_file() {
	fixture32
	bio-batch --batch-size 6 --epochs 2 "$FIX/samples.bs" |
		bio-train $MODEL32_SETS --set tracking.uri="$FIX/mlruns" --val "$FIX/samples.bs" \
			-o "$FIX/ck" 2>/dev/null
}

# Fails unless two predictions streams hold the same records (headers may name other models).
same_records() {
	"$PYTHON" - "$1" "$2" <<'PY'
import sys, msgpack
a, b = ([o for o in msgpack.Unpacker(open(p, "rb"), raw=False)][1:] for p in sys.argv[1:3])
assert len(a) > 1 and a == b, "records differ"
PY
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	S="$FIX/samples.bs"
	CK="$FIX/ck/best.ckpt"
}

@test "help and version exit 0, misuse exits 2" {
	run bio-infer --help
	assert_success
	assert_output --partial "Usage: bio-infer"
	run bio-infer --version
	assert_success
	run bio-infer "$S"
	assert_failure 2
	assert_output --partial "no model given"
	assert_output --partial "Try 'bio-infer --help'."
	run bio-infer -m "$CK" --batch-size 0 "$S"
	assert_failure 2
	run bio-infer -m "$CK" --shard 3/2 "$S"
	assert_failure 2
}

@test "predictions stream: valid, one per sample, labels and top-k consistent" {
	bio-infer -m "$CK" -e -o "$T/p.bs" "$S"
	run "$PYTHON" tests/python/check_stream.py "$T/p.bs" --kind predictions
	assert_success
	"$PYTHON" - "$T/p.bs" "$S" <<'PY'
import sys, msgpack, numpy as np
p = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
s = list(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False, max_buffer_size=1 << 30))
hp, recs = p[0]["meta"], p[1:-1]
samples = s[1:-1]
assert len(recs) == len(samples) == p[-1]["end"]
assert hp["labels"] == s[0]["meta"]["labels"]
assert hp["embeddings"] is True and hp["fused_dim"] == 32 and hp["embedding_dim"] == 16
for r, q in zip(recs, samples):
    assert r["id"] == q["id"] and r["label"] == q["label"]
    topk = np.frombuffer(r["topk"]["data"], "<i8")
    sc = np.frombuffer(r["topk_scores"]["data"], "<f4")
    assert r["pred"] == topk[0] and r["pred_name"] == hp["labels"][r["pred"]]
    assert np.all(np.diff(sc) <= 0) and 0 < sc[0] <= 1 and abs(r["score"] - sc[0]) < 1e-6
    for k in ("emb_iris", "emb_fingerprint"):
        assert r[k]["shape"] == [16]
    f = np.frombuffer(r["emb_fused"]["data"], "<f4")
    i = np.frombuffer(r["emb_iris"]["data"], "<f4")
    assert np.array_equal(f[:16], i), "concat fusion starts with the iris embedding"
PY
}

@test "scores and embeddings agree with a PyTorch forward of the same checkpoint" {
	bio-infer -m "$CK" -e -k 6 -o "$T/p.bs" "$S"
	"$PYTHON" - "$CK" "$S" "$T/p.bs" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "tests/python"))
import numpy as np, torch
from bio_torch import model_from_checkpoint, read_stream, untensor
model, meta = model_from_checkpoint(sys.argv[1])
model.eval()
_, samples = read_stream(sys.argv[2])
_, preds = read_stream(sys.argv[3])
assert len(samples) == len(preds)
with torch.no_grad():
    xs = [torch.from_numpy(np.stack([untensor(r[m]) for r in samples]).astype(np.float32))
          for m in model.modalities]
    embs = model.embeddings(xs)
    fused = model.fusion(embs)
    probs = torch.softmax(model.classifier(fused).double(), 1).numpy()
worst = 0.0
for i, p in enumerate(preds):
    order = np.argsort(-probs[i], kind="stable")[:6]
    ours = untensor(p["topk_scores"])
    assert np.allclose(ours, probs[i][untensor(p["topk"])], atol=1e-5), (i, ours)
    assert p["pred"] == order[0] or abs(probs[i][order[0]] - probs[i][p["pred"]]) < 1e-5
    for k, e in zip(model.modalities, embs):
        d = np.abs(untensor(p["emb_" + k]) - e[i].numpy()).max() / (np.abs(e[i].numpy()).max() + 1e-12)
        worst = max(worst, d)
    worst = max(worst, np.abs(untensor(p["emb_fused"]) - fused[i].numpy()).max() / (np.abs(fused[i].numpy()).max() + 1e-12))
assert worst < 1e-4, worst
print("max relative embedding difference %.2g" % worst)
PY
}

@test "output is identical for every batch size and thread count" {
	bio-infer -m "$CK" -e -b 64 -j 1 -o "$T/ref.bs" "$S"
	for b in 1 5 64; do
		for j in 1 2 3; do
			bio-infer -m "$CK" -e -b "$b" -j "$j" -o "$T/o.bs" "$S"
			cmp "$T/ref.bs" "$T/o.bs"
		done
	done
}

@test "split selection, shards joined, and CSV" {
	bio-infer -m "$CK" --split val -o "$T/val.bs" "$S"
	run "$PYTHON" tests/python/check_stream.py "$T/val.bs" --kind predictions --min-records 1
	assert_success
	bio-infer -m "$CK" -o "$T/all.bs" "$S"
	bio-infer -m "$CK" --shard 0/2 -o "$T/s0.bs" "$S"
	bio-infer -m "$CK" --shard 1/2 -o "$T/s1.bs" "$S"
	cat "$T/s0.bs" "$T/s1.bs" > "$T/joined.bs"
	"$PYTHON" - "$T/all.bs" "$T/joined.bs" "$T/val.bs" <<'PY'
import sys, msgpack
def recs(p):
    return list(msgpack.Unpacker(open(p, "rb"), raw=False))
a = [o for o in recs(sys.argv[1]) if "id" in o]
j = [o for o in recs(sys.argv[2]) if "id" in o]
v = [o for o in recs(sys.argv[3]) if "id" in o]
key = lambda o: o["id"]
assert sorted(a, key=key) == sorted(j, key=key)
assert 0 < len(v) < len(a)
PY
	bio-infer -m "$CK" --csv -e -k 2 -o "$T/p.csv" "$S"
	run head -1 "$T/p.csv"
	assert_output "id,label,label_name,pred,pred_name,score,topk,topk_scores,emb_iris,emb_fingerprint,emb_fused"
	n=$(($(wc -l < "$T/p.csv") - 1))
	[ "$n" -eq "$(grep -c . <(bio-infer -m "$CK" --csv "$S" | tail -n +2))" ]
	"$PYTHON" - "$T/p.csv" "$T/all.bs" <<'PY'
import csv, sys, msgpack
rows = list(csv.DictReader(open(sys.argv[1])))
recs = [o for o in msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False) if "id" in o]
assert len(rows) == len(recs)
for r, o in zip(rows, recs):
    assert r["id"] == o["id"] and int(r["pred"]) == o["pred"] and r["pred_name"] == o["pred_name"]
    assert len(r["topk"].split(";")) == 2 and len(r["emb_fused"].split(";")) == 32
PY
}

@test "a model that does not fit the samples is refused" {
	# other input size
	bio-prep --set prep.size=24 -o "$T/s24.bs" "$FIX/manifest.bs"
	run bio-infer -m "$CK" -o "$T/x.bs" "$T/s24.bs"
	assert_failure 1
	assert_output --partial "takes 32x32"
	[ ! -e "$T/x.bs" ]
	# other label set
	bio-synth --subjects 2 --samples 2 --size 40 -o "$T/d2" 2>/dev/null
	bio-scan -o "$T/m2.bs" "$T/d2" 2>/dev/null
	bio-prep --set prep.size=32 -o "$T/s2.bs" "$T/m2.bs"
	run bio-infer -m "$CK" -o "$T/x.bs" "$T/s2.bs"
	assert_failure 1
	assert_output --partial "not the same label set"
	# a stream of another kind
	run bio-infer -m "$CK" "$FIX/manifest.bs"
	assert_failure 1
	assert_output --partial "manifest"
}

@test "corrupt, truncated or missing checkpoints: one error line, exit 1, no output" {
	echo "good" > "$T/out.bs"
	run bio-infer -m "$T/nonexistent.ckpt" -o "$T/out.bs" "$S"
	assert_failure 1
	assert_output --partial "nonexistent.ckpt"
	[ "${#lines[@]}" -eq 1 ]
	head -c 3000 "$CK" > "$T/trunc.ckpt"
	run bio-infer -m "$T/trunc.ckpt" -o "$T/out.bs" "$S"
	assert_failure 1
	assert_output --partial "trunc.ckpt"
	[ "${#lines[@]}" -eq 1 ]
	head -c 100000 /dev/urandom > "$T/junk.ckpt"
	run bio-infer -m "$T/junk.ckpt" -o "$T/out.bs" "$S"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	run cat "$T/out.bs"
	assert_output "good"
}

@test "registered models resolve from the tracking store" {
	run bio-infer --set tracking.uri="$T/none" -m models:/nosuch/latest "$S"
	assert_failure 1
	assert_output --partial "no tracking store"
	bio-batch --batch-size 6 --epochs 1 "$S" |
		bio-train $(cat "$FIX/sets") --set tracking.uri="$T/mlruns" --register idmodel \
			--alias champion -o "$T/ck" 2>/dev/null
	bio-infer --set tracking.uri="$T/mlruns" -m models:/idmodel/latest -o "$T/a.bs" "$S"
	bio-infer --set tracking.uri="$T/mlruns" -m models:/idmodel/1 -o "$T/b.bs" "$S"
	bio-infer -m "$T/ck/best.ckpt" -o "$T/c.bs" "$S"
	same_records "$T/a.bs" "$T/b.bs"
	bio-infer --set tracking.uri="$T/mlruns" -m models:/idmodel@champion -o "$T/d.bs" "$S"
	same_records "$T/a.bs" "$T/d.bs"
	bio-infer --set tracking.uri="$T/mlruns" -m "runs:/$(cat "$T/ck/run_id")/checkpoints/best.ckpt" \
		-o "$T/e.bs" "$S"
	same_records "$T/a.bs" "$T/e.bs"
	run bio-infer --set tracking.uri="$T/mlruns" -m models:/idmodel@nosuch "$S"
	assert_failure 1
	assert_output --partial "no alias 'nosuch'"
	run bio-infer --set tracking.uri="$T/mlruns" -m models:/nosuch/latest "$S"
	assert_failure 1
	assert_output --partial "nosuch"
	run bio-infer --set tracking.uri="$T/mlruns" -m models:/idmodel/7 "$S"
	assert_failure 1
	same_records "$T/a.bs" "$T/c.bs"
}

@test "bad samples input and a full disk exit 1" {
	head -c 2000 "$S" > "$T/trunc.bs"
	run bio-infer -m "$CK" -o "$T/x.bs" "$T/trunc.bs"
	assert_failure 1
	assert_output --partial "trunc.bs"
	[ ! -e "$T/x.bs" ]
	run bash -c "bio-infer -m '$CK' '$S' > /dev/full"
	assert_failure 1
	assert_output --partial "No space left on device"
}

@test "samples it would pass on wrong are refused: label -1 or out of range, NaN pixels, a modality twice" {
	mutated "$S" 'recs[2]["label"] = -1'
	run bio-infer -m "$CK" -o "$T/x.bs" "$T/bad.bs"
	assert_failure 1
	assert_output "bio-infer: $T/bad.bs: record 2: key 'label': label -1 is negative"
	[ ! -e "$T/x.bs" ]
	refuses_each "$S" bio-infer -m "$CK" -o "$T/x.bs" "$T/bad.bs" <<'EOF'
recs[1]["label"] = 99|partial|record 1: key 'label': label 99 outside the 6 label names
set_f32(recs[0]["iris"], 7, float("inf"))|partial|record 0: key 'iris': non-finite value inf at element 7
meta["modalities"] = ["iris", "fingerprint", "iris"]|partial|'iris' is listed twice
EOF
	[ ! -e "$T/x.bs" ]
	# unlabelled samples (no label key) are fine: label -1 in the predictions
	mutated "$S" 'for r in recs: del r["label"]'
	run bio-infer -m "$CK" -o "$T/x.bs" "$T/bad.bs"
	assert_success
}

@test "a checkpoint with one flipped byte is refused with one line; old checkpoints load unchecked" {
	size=$(stat -c %s "$CK")
	for off in 100 1000 $((size / 3)) $((size / 2)) $((size - 30)); do
		"$PYTHON" -c "
b = bytearray(open('$CK', 'rb').read())
b[$off] ^= 0x40
open('$T/flip.ckpt', 'wb').write(b)"
		run bio-infer -m "$T/flip.ckpt" -o "$T/x.bs" "$S"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ]
		assert_output --regexp "^bio-infer: $T/flip.ckpt: "
		[ ! -e "$T/x.bs" ]
	done
	"$PYTHON" tests/python/mutate_stream.py "$CK" "$T/old.ckpt" 'del meta["checksum"]
for r in recs: del r["crc32c"]'
	run bio-infer -v -m "$T/old.ckpt" -o "$T/x.bs" "$S"
	assert_success
	assert_output --partial "no checksums (written before checkpoints had them): loaded unchecked"
	bio-infer -m "$CK" -o "$T/y.bs" "$S"
	same_records "$T/x.bs" "$T/y.bs"
}
