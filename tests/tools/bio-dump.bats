#!/usr/bin/env bats
# bio-dump: a stream as JSON lines, checked against Python's msgpack and numpy reading the same
# file; --header, --count, --record, --full; the bad-input corpus gives one error line and exit 1;
# programs refuse to write a binary stream to a terminal unless -o - asks for it.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	export D="$BATS_FILE_TMPDIR"
	bio-synth --subjects 3 --samples 4 --seed 5 -o "$D/syn" 2>/dev/null
	bio-scan -o "$D/m.bs" "$D/syn" 2>/dev/null
	bio-prep -o "$D/s.bs" "$D/m.bs" 2>/dev/null
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	PY=${PYTHON:-/usr/bin/python3}
}

@test "bio-dump: every line agrees with Python's msgpack and numpy on the same stream" {
	run bio-dump -o "$D/s.jsonl" "$D/s.bs"
	assert_success
	"$PY" - "$D/s.bs" "$D/s.jsonl" <<'PY'
import json, sys, math
import msgpack, numpy as np
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == len(objs) == 26, (len(lines), len(objs))
assert lines[0]["kind"] == objs[0]["kind"] == "samples" and lines[0]["bio-stream"] == 1
assert lines[0]["meta"]["labels"] == objs[0]["meta"]["labels"]
assert lines[-1] == {"end": 24} and objs[-1]["end"] == 24
def close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))
for o, j in zip(objs[1:-1], lines[1:-1]):
    assert set(o) == set(j)
    for k, v in o.items():
        if isinstance(v, dict) and "dtype" in v:
            x = np.frombuffer(v["data"], dtype="<f4").reshape(v["shape"]).astype(np.float64)
            assert j[k]["dtype"] == v["dtype"] and j[k]["shape"] == v["shape"]
            assert close(j[k]["min"], x.min()) and close(j[k]["max"], x.max())
            assert close(j[k]["mean"], x.mean()) and j[k]["nonfinite"] == 0
        else:
            assert j[k] == v, (k, j[k], v)
PY
}

@test "bio-dump: --header, --count, --record N, --full" {
	run bio-dump --count "$D/s.bs"
	assert_success
	assert_output "24"
	run bio-dump --header "$D/m.bs"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial '"kind":"manifest"'
	run bio-dump --record 3 "$D/m.bs"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	"$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["id"].endswith("/04"), r' "$output"
	run bio-dump --record 24 "$D/m.bs"
	assert_failure 1
	assert_output "bio-dump: $D/m.bs: --record 24: the stream has 24 records"
	bio-dump --full --record 0 "$D/s.bs" >"$D/r0.json"
	"$PY" - "$D/s.bs" "$D/r0.json" <<'PY'
import json, sys
import msgpack, numpy as np
o = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))[1]
j = json.load(open(sys.argv[2]))
x = np.frombuffer(o["iris"]["data"], dtype="<f4").ravel()
assert np.allclose(np.array(j["iris"]["data"]), x, rtol=1e-7, atol=0)
PY
	run bio-dump --count --header "$D/s.bs"
	assert_failure 2
}

@test "bio-dump: bad-input corpus: one error line naming the file, exit 1" {
	n=0
	for f in tests/bad/stream/*; do
		err=$(bio-dump "$f" 2>&1 >/dev/null) && { echo "$f: accepted"; false; }
		[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "$f: $err"; false; }
		[[ "$err" == "bio-dump: $f: "* || "$err" == "bio-dump: "*"$f"* ]] || { echo "$f: $err"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 25 ]
	# a truncated stream fails after printing what it read
	head -c 3000 "$D/s.bs" >"$D/trunc.bs"
	run bio-dump -o "$D/trunc.jsonl" "$D/trunc.bs"
	assert_failure 1
	assert_output --partial "truncated"
	[ ! -e "$D/trunc.jsonl" ]
}

@test "a binary stream is not written to a terminal unless -o - asks for it" {
	command -v script >/dev/null || skip "script(1) not installed"
	run script -qec "bio-scan $D/syn" /dev/null
	assert_failure 2
	assert_output --partial "bio-scan: refusing to write a binary bio-stream to a terminal"
	run script -qec "bio-prep $D/m.bs" /dev/null
	assert_failure 2
	run script -qec "bio-batch $D/s.bs" /dev/null
	assert_failure 2
	run script -qec "bio-scan -o - $D/syn > $D/forced.bs" /dev/null
	assert_success
	cmp "$D/forced.bs" "$D/m.bs"
	# a pipe or a file is fine; text output to a terminal is too
	run script -qec "bio-scan $D/syn | bio-dump --count" /dev/null
	assert_success
	assert_output --partial "24"
}
