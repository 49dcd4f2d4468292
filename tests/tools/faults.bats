#!/usr/bin/env bats
# Faults every program meets the same way: a full disk (/dev/full, or a file size limit with
# SIGXFSZ ignored, whose writes fail with EFBIG as a full disk's fail with ENOSPC) is one line
# naming the output and the cause, exit 1, and no partial output; a closed downstream pipe ends
# the program quietly with exit 0 (the SIGPIPE policy of bio-stream(5)).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'
bats_require_minimum_version 1.5.0

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	export FX="$BATS_FILE_TMPDIR/fx"
	mkdir -p "$FX"
	local s="--set prep.size=16 --set model.input_size=16 --set model.channels=[4,8] --set model.hidden=16 --set model.embedding=8"
	prepared_fixture "$FX" 32 $s
	bio-batch --batch-size 6 --epochs 2 "$FX/samples.bs" >"$FX/b2.bs"
	bio-train $s --set tracking.enabled=false -o "$FX/ck" "$FX/b2.bs" 2>/dev/null
	bio-infer -e -m "$FX/ck/best.ckpt" -o "$FX/p.bs" "$FX/samples.bs"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	cd "$FX" || exit 1
}

# The commands writing to standard output, one per line.
commands() {
	cat <<EOF
bio-scan data
bio-prep $(cat sets) manifest.bs
bio-batch samples.bs
bio-infer -m ck/best.ckpt samples.bs
bio-infer --csv -m ck/best.ckpt samples.bs
bio-eval -q p.bs
bio-synth --print-config
EOF
}

@test "a full disk: one line naming <stdout> or the -o file and the cause, exit 1" {
	while read -r cmd; do
		run --separate-stderr bash -c "$cmd > /dev/full"
		[ "$status" -eq 1 ] || { echo "$cmd: status $status"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$cmd: $stderr"; return 1; }
		[[ "$stderr" == "${cmd%% *}: <stdout>: write error: No space left on device" ]] ||
			{ echo "$cmd: $stderr"; return 1; }
	done < <(commands)
	run bio-batch -o /dev/full samples.bs
	assert_failure 1
	assert_output "bio-batch: /dev/full: write error: No space left on device"
}

@test "a closed pipe downstream: every program exits 0 quietly" {
	while read -r cmd; do
		run --separate-stderr bash -c "$cmd | { exec 0<&-; sleep 0.2; }; exit \${PIPESTATUS[0]}"
		[ "$status" -eq 0 ] || { echo "$cmd: status $status: $stderr"; return 1; }
		[ -z "$stderr" ] || { echo "$cmd: $stderr"; return 1; }
	done < <(commands)
	run --separate-stderr bash -c "bio-batch --epochs 50 samples.bs | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}"
	assert_success
	[ -z "$stderr" ]
}

@test "bio-eval --curves and --plots on a full disk: the cause, and no partial set of files" {
	# limits in KiB: the curves CSVs are small, gnuplot's data and PNGs larger
	for c in "2 --curves $T/cv" "24 --plots $T/pl" "2 --curves $T/cv --plots $T/pl"; do
		run bash -c "trap '' XFSZ; ulimit -f ${c%% *}; bio-eval -q ${c#* } -o '$T/r.yaml' p.bs"
		assert_failure 1
		[ "${#lines[@]}" -eq 1 ]
		assert_output --regexp "^bio-eval: $T/(cv|pl)/[a-z_]+\.(csv|png): (write error|writing plot data): File too large$"
		[ ! -e "$T/cv" ] && [ ! -e "$T/pl" ] && [ ! -e "$T/r.yaml" ]
	done
	# into folders that exist already: still nothing new in them
	mkdir "$T/cv" "$T/pl"
	run bash -c "trap '' XFSZ; ulimit -f 24; bio-eval -q --plots '$T/pl' --curves '$T/cv' -o '$T/r.yaml' p.bs"
	assert_failure 1
	[ -z "$(ls -A "$T/cv" "$T/pl" | grep -v ':$' | grep .)" ]
	run bio-eval -q --curves "$T/cv" --plots "$T/pl" -o "$T/r.yaml" p.bs
	assert_success
	[ -s "$T/cv/roc_fused.csv" ] && [ -s "$T/pl/det.png" ] && [ -s "$T/r.yaml" ]
	! ls -A "$T/cv" "$T/pl" | grep -q "\.tmp" || false
}

@test "a checkpoint that cannot be written: its path and the cause" {
	run bash -c "trap '' XFSZ; ulimit -f 16; bio-train $(cat sets) --set tracking.enabled=false -o '$T/ck' b2.bs"
	assert_failure 1
	assert_output --regexp "bio-train: $T/ck/(last|best)\.ckpt: write error: File too large"
	! ls "$T"/ck/*.tmp.* 2>/dev/null || false
}

@test "the bad-header corpus: every samples reader refuses each file with one line naming it" {
	root="$BATS_TEST_DIRNAME/../.."
	n=0
	for f in "$root"/tests/bad/header/*.bs; do
		for cmd in "bio-batch -o $T/o.bs" "bio-infer -m ck/best.ckpt -o $T/o.bs" \
			"bio-train $(cat sets) --set tracking.enabled=false -o $T/ck --val"; do
			if [ "${cmd%% *}" = bio-train ]; then
				run --separate-stderr $cmd "$f" b2.bs
			else
				run --separate-stderr $cmd "$f"
			fi
			if [ "$status" -ne 1 ] || [ "${#stderr_lines[@]}" -ne 1 ] ||
				[[ "$stderr" != "${cmd%% *}: $f: "* ]]; then
				echo "$cmd $f: status $status: $stderr"
				return 1
			fi
			[ ! -e "$T/o.bs" ] && [ ! -e "$T/ck/last.ckpt" ]
		done
		n=$((n + 1))
	done
	[ "$n" -ge 15 ]
	# bio-batch says why, naming the record where one is concerned
	run bio-batch "$root/tests/bad/header/nan-pixel.bs"
	assert_output --partial "nan-pixel.bs: record 2: key 'iris': non-finite value nan at element 3"
	run bio-batch "$root/tests/bad/header/shape-lies.bs"
	assert_output --partial "shape-lies.bs: record 0: key 'iris': shape [1,4,4], expected [1,4,5] (header shape)"
}

@test "temp files a killed run left are removed by the next run of that output; a live one's stay" {
	dead=$(sh -c 'echo $$')
	mkdir -p "$T/o/cv"
	touch "$T/o/.b.bs.tmp.$dead.AbC123" "$T/o/.b.bs.tmp.$$.XyZ789" "$T/o/.other.bs.tmp.$dead.Q1w2e3" \
		"$T/o/cv/.roc_fused.csv.tmp$dead" "$T/o/cv/.roc_fused.csv.tmp$$"
	bio-batch -o "$T/o/b.bs" samples.bs
	[ ! -e "$T/o/.b.bs.tmp.$dead.AbC123" ]
	[ -e "$T/o/.b.bs.tmp.$$.XyZ789" ] && [ -e "$T/o/.other.bs.tmp.$dead.Q1w2e3" ]
	bio-eval -q --curves "$T/o/cv" -o "$T/o/r.yaml" p.bs
	[ ! -e "$T/o/cv/.roc_fused.csv.tmp$dead" ] && [ -e "$T/o/cv/.roc_fused.csv.tmp$$" ]
	# a real kill -9 while writing (bio-infer has its output open, waiting for records), then a
	# second run of the same output
	run bash -c "{ head -c 3000 samples.bs; sleep 1; } |
		exec timeout -s KILL 0.3 bio-infer -m ck/best.ckpt -o '$T/o/p.bs'"
	[ "$status" -eq 137 ]
	[ -n "$(find "$T/o" -name '.p.bs.tmp.*')" ]
	bio-infer -m ck/best.ckpt -o "$T/o/p.bs" samples.bs
	[ -z "$(find "$T/o" -name '.p.bs.tmp.*')" ] && [ -s "$T/o/p.bs" ]
}
