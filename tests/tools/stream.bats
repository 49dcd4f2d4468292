#!/usr/bin/env bats
# bio-stream interop: streams written by Python's msgpack are read by libbio (tests/helpers/
# stream_dump), libbio's copies are validated by tests/python/check_stream.py, the bad-input corpus
# gives one error line and exit 1, and the Python example of man5/bio-stream.5 runs.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	PY=${PYTHON:-/usr/bin/python3}
	BUILD=${BIO_BUILD:-build}
	DUMP="$BUILD/tests/helpers/stream_dump"
	W="$PY tests/python/write_stream.py"
	CHECK="$PY tests/python/check_stream.py"
	T=$BATS_TEST_TMPDIR
}

@test "every kind written by Python reads the same in C" {
	for k in manifest samples batches predictions checkpoint; do
		$W "$T/$k.bin" --kind $k --records 7 --size 5,3 --seed 3 --expect "$T/$k.expect"
		run "$DUMP" --kind $k "$T/$k.bin"
		assert_success
		assert_line --index 0 "kind $k"
		grep '^record ' <<<"$output" >"$T/$k.got"
		diff -u "$T/$k.expect" "$T/$k.got"
		assert_line "end 7 failed=0"
	done
}

@test "C copies of Python streams are byte-identical and pass check_stream.py" {
	for k in manifest samples batches predictions checkpoint; do
		$W "$T/$k.bin" --kind $k --records 4 --failed 2
		run "$DUMP" --kind $k --copy "$T/$k.copy" "$T/$k.bin"
		assert_success
		assert_line "end 4 failed=2"
		cmp "$T/$k.bin" "$T/$k.copy"
		run $CHECK "$T/$k.copy" --kind $k --min-records 4 --max-records 4
		assert_success
		assert_output --partial "ok: kind $k, 4 records in 1 part(s)"
		assert_output --partial "failed=2"
	done
}

@test "several files, stdin and concatenated streams read as one" {
	$W "$T/a.bin" --records 3 --seed 1 --failed 1
	$W "$T/b.bin" --records 0 --seed 2
	$W "$T/c.bin" --records 4 --seed 3 --failed 2
	run "$DUMP" --kind samples "$T/a.bin" "$T/b.bin" "$T/c.bin"
	assert_success
	assert_line "end 7 failed=3"
	files_out=$output
	run bash -c "cat '$T/a.bin' '$T/b.bin' '$T/c.bin' | '$DUMP' --kind samples -"
	assert_success
	[ "$output" = "$files_out" ]
	run $CHECK "$T/a.bin" "$T/b.bin" "$T/c.bin" --kind samples --tensor-keys iris,fingerprint \
		--expect-shape 1,4,4 --min-records 7
	assert_success
	assert_output --partial "7 records in 3 part(s)"
	cat "$T/a.bin" "$T/c.bin" >"$T/ac.bin"
	run $CHECK - --kind samples <"$T/ac.bin"
	assert_success
	assert_output --partial "7 records in 2 part(s)"
}

@test "records re-read by offset match the sequential read" {
	$W "$T/a.bin" --records 9 --size 16,16 --seed 5
	cp "$T/a.bin" "$T/b.bin"
	run "$DUMP" --reverse "$T/a.bin" "$T/b.bin"
	assert_success
	diff <(grep '^record ' <<<"$output" | sed 's/^record [0-9]*://') \
		<(grep '^again ' <<<"$output" | tac | sed 's/^again [0-9]*://')
	[ "$(grep -c '^again ' <<<"$output")" -eq 18 ]
	# a pipe has no offsets: said plainly
	run bash -c "cat '$T/a.bin' | '$DUMP' --reverse -"
	assert_failure 1
	assert_output --partial "<stdin>: no random access"
}

@test "kind mismatch and truncated pipes are errors naming the input" {
	$W "$T/s.bin" --records 5 --size 8,8
	run "$DUMP" --kind batches "$T/s.bin"
	assert_failure 1
	assert_output "stream_dump: $T/s.bin: stream kind is 'samples', expected 'batches'"
	size=$(stat -c %s "$T/s.bin")
	for cut in 1 60 $((size / 2)) $((size - 1)); do
		run bash -c "head -c $cut '$T/s.bin' | '$DUMP' -"
		assert_failure 1
		assert_output --regexp '^stream_dump: <stdin>: (truncated|empty) '
		run bash -c "head -c $cut '$T/s.bin' | $CHECK - --kind samples"
		assert_failure 1
	done
}

@test "bad-input corpus: one error line naming the file, exit 1, in C and in Python" {
	n=0
	for f in tests/bad/stream/*; do
		run "$DUMP" "$f"
		[ "$status" -eq 1 ] || { echo "$f: status $status: $output"; false; }
		err=$("$DUMP" "$f" 2>&1 >/dev/null) || true
		[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "$f: $err"; false; }
		[[ "$err" == "stream_dump: $f: "* ]] || { echo "$f: $err"; false; }
		run $CHECK "$f" --kind samples
		[ "$status" -eq 1 ] || { echo "check_stream $f: $status $output"; false; }
		[[ "$output" == "check_stream.py: $f: "* ]] || { echo "$f: $output"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 25 ]
}

@test "check_stream.py catches non-finite values, wrong shapes and missing keys" {
	$W "$T/s.bin" --records 3 --size 2,2
	run $CHECK "$T/s.bin" --kind samples --tensor-keys iris --expect-shape 1,2,3
	assert_failure 1
	assert_output --partial "key 'iris' has shape [1, 2, 2], expected 1,2,3"
	run $CHECK "$T/s.bin" --kind samples --min-records 4
	assert_failure 1
	$PY - "$T/nan.bin" <<-'EOF'
	import sys, msgpack, numpy as np
	t = {"dtype": "f32", "shape": [2], "data": np.array([1, np.nan], "<f4").tobytes()}
	recs = [{"id": "a", "label": 0, "identity": "x", "split": "train", "iris": t}]
	with open(sys.argv[1], "wb") as f:
	    for o in [{"bio-stream": 1, "kind": "samples", "meta": {"modalities": []}}] + recs + [{"end": 1}]:
	        f.write(msgpack.packb(o))
	EOF
	run $CHECK "$T/nan.bin" --kind samples
	assert_failure 1
	assert_output --partial "1 non-finite values"
	run $CHECK "$T/nan.bin" --kind manifest
	assert_failure 1
	assert_output --partial "kind 'samples', expected 'manifest'"
	$W "$T/p.bin" --kind predictions --records 2
	run $CHECK "$T/p.bin" --kind samples --loose
	assert_failure 1
	run $CHECK "$T/p.bin" --kind predictions
	assert_success
	run $CHECK
	assert_failure 2
}

@test "man page renders without warnings" {
	command -v groff >/dev/null || skip "groff is not installed"
	run bash -c "LC_ALL=C.UTF-8 groff -t -man -Tutf8 -ww -z man/man5/bio-stream.5 2>&1"
	assert_success
	assert_output ""
}

@test "the Python example of the man page runs" {
	$W "$T/samples.bin" --records 3 --size 4,4
	# the example between the example-begin/end comments, with roff escapes undone
	sed -n '/^\.\\" example-begin/,/^\.\\" example-end/p' man/man5/bio-stream.5 |
		grep -v '^\.' | sed -e 's/\\e/\\/g' -e 's/\\(aq/'"'"'/g' -e 's/\\-/-/g' -e 's/^\\&//' >"$T/ex.py"
	[ -s "$T/ex.py" ]
	run $PY "$T/ex.py" "$T/samples.bin"
	assert_success
	assert_line --index 0 "kind samples, meta keys: producer version labels modalities shape normalize"
	assert_line --index 1 "s0000 0 iris (1, 4, 4) float32"
	assert_line "3 records, trailer {'end': 3, 'failed': 0}"
}
