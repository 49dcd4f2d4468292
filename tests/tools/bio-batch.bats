#!/usr/bin/env bats
# bio-batch: options and exit codes, per-epoch order determinism, --start-epoch as the tail of a
# full run, drop-last counts, every sample once per epoch, batch contents, pipe vs file,
# early close, the pipe memory bound, full disk, the man page's examples.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'mutate'
bats_require_minimum_version 1.5.0

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || return 1
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FIX="$BATS_FILE_TMPDIR/fx"
	# 38 records: splits cycle train, train, val, test -> 20 train, 9 val, 9 test
	"$PYTHON" tests/python/prep_fixture.py "$FIX" --records 38 --formats bmp,png \
		--sizes 40x36,64x64,23x30
	(cd "$FIX" && bio-prep -j2 --set prep.size=16 -o samples.bs manifest.bs)
	export S="$FIX/samples.bs"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
}

# Checks a batches stream against the samples it came from; prints one line per epoch:
# "<epoch> <batches> <sizes...>". Fails when a batch's tensors or labels differ from the samples
# named by its ids, or when an epoch does not hold every selected sample exactly once.
check_batches() {
	"$PYTHON" - "$@" <<'EOF'
import sys, collections, msgpack, numpy as np
batches, samples, split = sys.argv[1], sys.argv[2], sys.argv[3]
objs = list(msgpack.Unpacker(open(batches, "rb"), raw=False, max_buffer_size=1 << 30))
hdr, recs, trailer = objs[0], objs[1:-1], objs[-1]
assert hdr["kind"] == "batches" and trailer["end"] == len(recs), (hdr["kind"], trailer)
meta = hdr["meta"]
sobjs = list(msgpack.Unpacker(open(samples, "rb"), raw=False, max_buffer_size=1 << 30))
by_id = {o["id"]: o for o in sobjs if "id" in o}
want = sorted(i for i, o in by_id.items() if o["split"] == split)
assert meta["n_samples"] == len(want) and meta["split"] == split
mods = meta["modalities"]
per_epoch = collections.OrderedDict()
for r in recs:
    n = len(r["ids"])
    lab = np.frombuffer(r["label"]["data"], "<i8")
    assert r["label"]["dtype"] == "i64" and r["label"]["shape"] == [n]
    for k, i in enumerate(r["ids"]):
        s = by_id[i]
        assert lab[k] == s["label"]
        for m in mods:
            t = r[m]
            assert t["dtype"] == "f32" and t["shape"] == [n] + meta["shape"], t["shape"]
            x = np.frombuffer(t["data"], "<f4").reshape(n, -1)[k]
            assert np.array_equal(x, np.frombuffer(s[m]["data"], "<f4")), (i, m)
    e = per_epoch.setdefault(r["epoch"], [])
    assert r["index"] == len(e), (r["epoch"], r["index"])
    e.append(r["ids"])
for ep, bl in per_epoch.items():
    ids = [i for b in bl for i in b]
    if not meta["drop_last"]:
        assert sorted(ids) == want, "epoch %d: not every sample once" % ep
    else:
        assert len(set(ids)) == len(ids) and set(ids) <= set(want)
    assert len(bl) == meta["batches_per_epoch"]
    print(ep, len(bl), " ".join(str(len(b)) for b in bl))
EOF
}

@test "bio-batch --help, --version, usage errors" {
	run bio-batch --help
	assert_success
	assert_output --partial "Usage: bio-batch"
	assert_output --partial "--start-epoch"
	run bio-batch --version
	assert_success
	run bio-batch --bogus
	assert_failure 2
	assert_output --partial "Try 'bio-batch --help'"
	run bio-batch --batch-size 0 "$S"
	assert_failure 2
	run bio-batch --epochs 2 --start-epoch 3 "$S"
	assert_failure 2
	assert_output --partial "start-epoch"
	run bio-batch --set batch.batch_size=x "$S"
	assert_failure 1
	assert_output --partial "batch.batch_size"
}

@test "bio-batch: every train sample once per epoch, batches hold the samples' data" {
	bio-batch --batch-size 6 --epochs 3 -o "$T/b.bs" "$S"
	run check_batches "$T/b.bs" "$S" train
	assert_success
	assert_output "0 4 6 6 6 2
1 4 6 6 6 2
2 4 6 6 6 2"
	if [ -f tests/python/check_stream.py ]; then
		"$PYTHON" tests/python/check_stream.py "$T/b.bs" --kind batches --min-records 12 \
			--max-records 12 --tensor-keys iris,fingerprint --expect-shape '*,1,16,16'
	fi
	run check_batches "$T/b.bs" "$S" val
	assert_failure
}

@test "bio-batch: --drop-last drops the incomplete batch; other splits" {
	bio-batch --batch-size 6 --epochs 2 --drop-last -o "$T/d.bs" "$S"
	run check_batches "$T/d.bs" "$S" train
	assert_success
	assert_output "0 3 6 6 6
1 3 6 6 6"
	bio-batch --split val --batch-size 4 -o "$T/v.bs" "$S"
	run check_batches "$T/v.bs" "$S" val
	assert_output "0 3 4 4 1"
	bio-batch --set batch.split=test --set batch.batch_size=9 --set batch.drop_last=true \
		-o "$T/t.bs" "$S"
	run check_batches "$T/t.bs" "$S" test
	assert_output "0 1 9"
	run bio-batch --split nosuch "$S"
	assert_success
	assert_output --partial "no samples of split 'nosuch'"
}

@test "bio-batch: orders are deterministic per (seed, epoch) and differ between epochs" {
	bio-batch -b 5 -E 3 -o "$T/a.bs" "$S"
	bio-batch -b 5 -E 3 -o "$T/b.bs" "$S"
	cmp "$T/a.bs" "$T/b.bs"
	bio-batch -b 5 -E 3 --seed 99 -o "$T/c.bs" "$S"
	! cmp -s "$T/a.bs" "$T/c.bs" || false
	run "$PYTHON" - "$T/a.bs" <<'EOF'
import sys, msgpack
recs = [o for o in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if "epoch" in o]
orders = {}
for r in recs:
    orders.setdefault(r["epoch"], []).extend(r["ids"])
o = list(orders.values())
assert o[0] != o[1] and o[1] != o[2] and o[0] != sorted(o[0]), o
print("shuffled")
EOF
	assert_output "shuffled"
	# --no-shuffle keeps input order
	bio-batch -b 50 --no-shuffle -o "$T/n.bs" "$S"
	run "$PYTHON" -c "
import sys, msgpack
r = [o for o in msgpack.Unpacker(open('$T/n.bs', 'rb'), raw=False) if 'epoch' in o][0]
print(r['ids'] == sorted(r['ids']))"
	assert_output "True"
}

@test "bio-batch: --start-epoch gives exactly the tail of an uninterrupted run" {
	bio-batch -b 7 -E 5 -o "$T/full.bs" "$S"
	bio-batch -b 7 -E 5 --start-epoch 3 -o "$T/tail.bs" "$S"
	run "$PYTHON" - "$T/full.bs" "$T/tail.bs" <<'EOF'
import sys, msgpack
def recs(p):
    objs = list(msgpack.Unpacker(open(p, "rb"), raw=False))
    return objs[0]["meta"], objs[1:-1]
mf, full = recs(sys.argv[1])
mt, tail = recs(sys.argv[2])
assert mt["start_epoch"] == 3 and mt["epochs"] == 5
assert [r for r in full if r["epoch"] >= 3] == tail and len(tail) == 2 * mf["batches_per_epoch"]
print("tail ok", len(tail))
EOF
	assert_success
	assert_output "tail ok 6"
	run bio-batch -b 7 -E 5 --start-epoch 5 "$S"
	assert_success
}

@test "bio-batch: a pipe and a file give identical output; several files read as one" {
	bio-batch -b 4 -E 2 -o "$T/file.bs" "$S"
	cat "$S" | bio-batch -b 4 -E 2 > "$T/pipe.bs"
	cmp "$T/file.bs" "$T/pipe.bs"
	bio-batch -b 4 -E 2 - < "$S" > "$T/stdin.bs"
	cmp "$T/file.bs" "$T/stdin.bs"
	# shards given as separate files = the same shards through cat
	cd "$FIX"
	bio-prep --set prep.size=16 --shard 0/2 -o "$T/p0.bs" manifest.bs
	bio-prep --set prep.size=16 --shard 1/2 -o "$T/p1.bs" manifest.bs
	bio-batch -b 4 -o "$T/two.bs" "$T/p0.bs" "$T/p1.bs"
	cat "$T/p0.bs" "$T/p1.bs" | bio-batch -b 4 > "$T/cat.bs"
	cmp "$T/two.bs" "$T/cat.bs"
	run check_batches "$T/two.bs" "$S" train
	assert_success
}

@test "bio-batch: closing its output early ends it quietly with exit 0" {
	run bash -c "bio-batch -b 2 -E 1000000 '$S' | head -c 100 > /dev/null; echo \${PIPESTATUS[0]}"
	assert_output "0"
	run bash -c "cat '$S' | bio-batch -b 2 -E 1000000 | head -c 100 > /dev/null; echo \${PIPESTATUS[1]}"
	assert_output "0"
}

@test "bio-batch: from a pipe, memory is bounded by batch.max_buffer_bytes" {
	run bash -c "cat '$S' | bio-batch --set batch.max_buffer_bytes=20000 -o '$T/x.bs'"
	assert_failure 1
	assert_output --partial "batch.max_buffer_bytes"
	[ ! -e "$T/x.bs" ]
	# from a file the limit does not apply: records are re-read, not held
	run bio-batch --set batch.max_buffer_bytes=20000 -o "$T/x.bs" "$S"
	assert_success
}

@test "bio-batch: bad input and a full disk are errors (exit 1)" {
	head -c 5000 "$S" > "$T/trunc.bs"
	run bio-batch -o "$T/o.bs" "$T/trunc.bs"
	assert_failure 1
	assert_output --partial "trunc.bs"
	[ ! -e "$T/o.bs" ]
	run bio-batch "$FIX/manifest.bs"
	assert_failure 1
	assert_output --partial "manifest.bs"
	run bash -c "bio-batch '$S' > /dev/full"
	assert_failure 1
}

@test "bio-batch: samples it would pass on wrong are refused: NaN, labels out of range, bad header" {
	mutated "$S" 'set_f32(recs[4]["iris"], 5, float("nan"))'
	run bio-batch -o "$T/o.bs" "$T/bad.bs"
	assert_failure 1
	assert_output "bio-batch: $T/bad.bs: record 4: key 'iris': non-finite value nan at element 5"
	[ ! -e "$T/o.bs" ]
	refuses_each "$S" bio-batch -o "$T/o.bs" "$T/bad.bs" <<'EOF'
recs[1]["label"] = -1|partial|record 1: key 'label': label -1 is negative
recs[0]["label"] = 2**40|regexp|record 0: key 'label': label 1099511627776 outside the [0-9]+ label names
meta["modalities"] = ["iris", "iris"]|partial|'iris' is listed twice
del meta["labels"]|partial|header meta has no 'labels'
meta["shape"] = [1, 8, 8]|partial|expected [1,8,8] (header shape)
EOF
	[ ! -e "$T/o.bs" ]
}

@test "bio-batch: the man page's EXAMPLES run" {
	cp -r "$FIX" "$T/ex"
	cd "$T/ex"
	sed -n '/^\.EX/,/^\.EE/p' "$OLDPWD/man/man1/bio-batch.1" | sed -n 's/^\$ //p' > examples.sh
	[ "$(wc -l < examples.sh)" -ge 3 ]
	run bash -e -o pipefail examples.sh
	assert_success
	for f in batches.bs tail.bs augmented.bs val.bs; do [ -s "$f" ]; done
	bio-prep -o samples64.bs manifest.bs
	run check_batches val.bs samples64.bs val
	assert_success
}

@test "bio-batch: augmentation is off by default; on, every image is the numpy reference warp of its sample with the recorded parameters, inside the ranges" {
	bio-batch -b 5 -E 2 -o "$T/off.bs" "$S"
	run "$PYTHON" -c "
import msgpack
o = list(msgpack.Unpacker(open('$T/off.bs', 'rb'), raw=False))
print('augment' in o[0]['meta'], any(k.startswith('aug_') for r in o[1:-1] for k in r))"
	assert_output "False False"
	bio-batch -b 5 -E 2 --set augment.enabled=true -o "$T/on.bs" "$S"
	run "$PYTHON" tests/python/augment_reference.py "$S" "$T/on.bs"
	echo "$output"
	assert_success
	# large ranges: corners from the replicated border, a circular shift, strong photometry
	bio-batch -b 5 -E 2 --set augment.enabled=true --set augment.iris.shift=0.5 \
		--set augment.iris.rotate=0 --set augment.fingerprint.rotate=180 \
		--set augment.fingerprint.translate=0.5 --set augment.fingerprint.scale=0.5 \
		--set augment.fingerprint.contrast=0.9 --set augment.fingerprint.brightness=2 \
		-o "$T/big.bs" "$S"
	run "$PYTHON" tests/python/augment_reference.py "$S" "$T/big.bs"
	echo "$output"
	assert_success
	# one modality only: the other passes through untouched
	bio-batch -b 5 -E 1 --set augment.enabled=true --set augment.iris.rotate=0 \
		--set augment.iris.translate=0 --set augment.iris.scale=0 --set augment.iris.contrast=0 \
		--set augment.iris.brightness=0 -o "$T/fp.bs" "$S"
	run "$PYTHON" - "$S" "$T/fp.bs" <<'PY'
import sys
sys.path.insert(0, "tests/python")
import numpy as np
from bio_torch import read_stream, untensor
_, s = read_stream(sys.argv[1])
h, b = read_stream(sys.argv[2])
by = {r["id"]: r for r in s}
assert list(h["meta"]["augment"]) == ["fingerprint"] and "aug_iris" not in b[0]
for r in b:
    for k, i in enumerate(r["ids"]):
        assert np.array_equal(untensor(r["iris"])[k], untensor(by[i]["iris"]))
print("iris untouched")
PY
	assert_output "iris untouched"
}

@test "bio-batch: augmentation is reproducible: the same bytes for the same seed; per (epoch, sample) the same image whatever the batch size, pipe or file, --start-epoch; epochs and seeds differ" {
	a="--set augment.enabled=true"
	bio-batch $a -b 5 -E 3 -o "$T/a.bs" "$S"
	bio-batch $a -b 5 -E 3 -j1 -o "$T/b.bs" "$S"
	cmp "$T/a.bs" "$T/b.bs"
	bio-batch $a -b 5 -E 3 -j2 -o "$T/b.bs" "$S"
	cmp "$T/a.bs" "$T/b.bs"
	cat "$S" | bio-batch $a -b 5 -E 3 >"$T/pipe.bs"
	cmp "$T/a.bs" "$T/pipe.bs"
	bio-batch $a -b 3 -E 3 -o "$T/b3.bs" "$S"
	bio-batch $a -b 5 -E 3 --start-epoch 2 -o "$T/tail.bs" "$S"
	bio-batch $a -b 5 -E 3 --seed 99 -o "$T/s99.bs" "$S"
	run "$PYTHON" - "$T/a.bs" "$T/b3.bs" "$T/tail.bs" "$T/s99.bs" <<'PY'
import sys
sys.path.insert(0, "tests/python")
import numpy as np
from bio_torch import read_stream, untensor
def images(p):
    _, recs = read_stream(p)
    out = {}
    for r in recs:
        for k, i in enumerate(r["ids"]):
            out[(r["epoch"], i)] = (untensor(r["iris"])[k].tobytes(),
                                    untensor(r["fingerprint"])[k].tobytes(),
                                    untensor(r["aug_fingerprint"])[k].tobytes())
    return out
a, b3, tail, s99 = (images(p) for p in sys.argv[1:])
assert a == b3, "batch size changed the augmentation"
assert tail == {k: v for k, v in a.items() if k[0] == 2}, "--start-epoch"
ids = sorted({i for _, i in a})
assert all(a[(0, i)] != a[(1, i)] for i in ids), "epochs repeat"
assert all(a[k][1] != s99[k][1] for k in a), "seeds repeat"
print("reproducible", len(a))
PY
	echo "$output"
	assert_success
}

@test "bio-batch: bad augment values are one error line naming the key" {
	for kv in augment.iris.rotate=-1 augment.fingerprint.scale=0.9 augment.iris.shift=abc \
		augment.enabled=maybe; do
		run --separate-stderr bio-batch --set augment.enabled=true --set "$kv" -o "$T/x.bs" "$S"
		[ "$status" -ne 0 ]
		[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "$kv: $stderr"
		[[ "$stderr" == "bio-batch: "*"${kv%%=*}"* ]] || fail "$kv: $stderr"
		[ ! -e "$T/x.bs" ]
	done
}
