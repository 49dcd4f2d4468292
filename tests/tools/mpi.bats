#!/usr/bin/env bats
# bio-train over MPI (Open MPI's mpirun on this host, loopback TCP): 2, 3 and 4 ranks give the
# checkpoints of one process bit for bit in every fusion mode and for batches that leave short
# pieces and idle ranks; kill -9 of one rank then --resume equals the uninterrupted run; what is
# refused (standard input, gradient accumulation, a bio-train built without MPI) is one line.
# Skips with one line where mpirun or an MPI build of bio-train is absent.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

setup_file() {
	small_fixture
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	need_mpi
	# Open MPI's own allocations (its op and dlopened components) are never freed: under the
	# sanitizer build, ranks run without leak detection (the single-process runs keep it, and the
	# rank split is leak-checked in the unit test that runs ranks as threads)
	NOLEAK="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	# loopback only, as root too; a rank's death ends the job
	MPIRUN="env $NOLEAK timeout 300 mpirun --oversubscribe --allow-run-as-root --mca btl self,tcp \
		--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
}


@test "2, 3 and 4 ranks give one process's checkpoints, bit for bit" {
	for bs in 8 13; do
		bio-batch $C --set batch.batch_size=$bs --epochs 3 "$SS" >"$T/b$bs.bs"
		for fusion in concat attention weighted; do
			cfg="$C --set model.fusion=$fusion"
			bio-train $cfg --val "$SS" -o "$T/one" -j2 "$T/b$bs.bs" 2>/dev/null
			for np in 2 3 4; do
				echo "batch $bs, $fusion, $np ranks"
				$MPIRUN -np $np bio-train $cfg --val "$SS" -o "$T/n$np" -j1 \
					"$T/b$bs.bs" 2>"$T/err" || { cat "$T/err"; false; }
				cmp "$T/one/last.ckpt" "$T/n$np/last.ckpt"
				cmp "$T/one/best.ckpt" "$T/n$np/best.ckpt"
			done
			rm -rf "$T/one" "$T"/n?
		done
	done
	# the batches really are split: -v reports the gradient bytes each rank sends
	$MPIRUN -np 2 bio-train $C -v -o "$T/v" -j1 "$T/b8.bs" 2>"$T/err"
	run grep -c "rank [01] of 2: .* steps" "$T/err"
	assert_output 2
	# and a different seed gives different weights under mpirun too
	$MPIRUN -np 2 bio-train $C --set experiment.seed=7 -o "$T/s7" -j1 "$T/b8.bs" 2>/dev/null
	run cmp -s "$T/v/last.ckpt" "$T/s7/last.ckpt"
	assert_failure
}

@test "one rank killed with SIGKILL, the job resumed under mpirun: bit-identical to one process" {
	cfg="$C --set model.channels=[8,16] --set model.hidden=32"
	bio-batch $C --epochs 150 "$SS" >"$T/b150.bs"
	bio-train $cfg --val "$SS" -o "$T/ref" -j1 "$T/b150.bs" 2>/dev/null
	$MPIRUN -np 2 bio-train $cfg --val "$SS" -o "$T/k" -j1 "$T/b150.bs" 2>"$T/err" &
	job=$!
	for _ in $(seq 400); do
		[ -f "$T/k/last.ckpt" ] && break
		sleep 0.02
	done
	sleep "$("$PYTHON" -c 'import random; print("%.3f" % random.uniform(0.0, 0.3))')"
	# the ranks themselves (not mpirun): their command line starts with the program
	victim=$(pgrep -f "^bio-train .*-o $T/k " | shuf -n 1)
	echo "killing rank process $victim"
	[ -n "$victim" ]
	kill -9 "$victim"
	run wait "$job"
	assert_failure
	# the other rank is taken down by mpirun (or by its own MPI error) soon after
	for i in $(seq 100); do
		pgrep -f "^bio-train .*-o $T/k " >/dev/null || break
		sleep 0.1
	done
	echo "the other rank was gone after ${i}00 ms"
	run pgrep -f "^bio-train .*-o $T/k "
	assert_failure
	e=$(ckpt_epoch "$T/k/last.ckpt")
	echo "resuming at epoch $e"
	[ "$e" -ge 1 ] && [ "$e" -lt 150 ]
	bio-batch $C --epochs 150 --start-epoch "$e" "$SS" >"$T/rest.bs"
	$MPIRUN -np 2 bio-train $cfg --val "$SS" -o "$T/k" -j1 --resume "$T/k/last.ckpt" \
		"$T/rest.bs" 2>/dev/null
	cmp "$T/ref/last.ckpt" "$T/k/last.ckpt"
	cmp "$T/ref/best.ckpt" "$T/k/best.ckpt"
	run ls "$T"/k/*.tmp.*
	assert_failure
}

@test "under mpirun: standard input and gradient accumulation are refused with one line" {
	bio-batch $C --epochs 1 "$SS" >"$T/b1.bs"
	run bash -c "$MPIRUN -np 2 bio-train $C -o '$T/x' - <'$T/b1.bs' 2>&1 | grep '^bio-train:' | sort -u"
	assert_output "bio-train: under mpirun every rank reads the batches: give them as a file (bio-batch -o FILE), not standard input"
	run bash -c "$MPIRUN -np 2 bio-train $C --set training.accumulate=2 -o '$T/x' '$T/b1.bs' 2>&1 | grep '^bio-train:' | sort -u"
	assert_output --partial "gradient accumulation is not supported across ranks"
	[ "$(echo "$output" | wc -l)" -eq 1 ]
	[ ! -e "$T/x/last.ckpt" ]
}

@test "a bio-train built without MPI refuses to be one of several ranks, and trains alone" {
	nompi="$BIO_BUILD/tests/bio-train-nompi"
	bio-batch $C --epochs 1 "$SS" >"$T/b1.bs"
	run bash -c "$MPIRUN -np 2 '$nompi' $C -o '$T/x' '$T/b1.bs' 2>&1 | grep '^bio-train:' | sort -u"
	assert_output "bio-train: started by mpirun/srun as one of 2 ranks, but this bio-train was built without MPI (install openmpi-bin and libopenmpi-dev, then rebuild with make)"
	[ ! -e "$T/x/last.ckpt" ]
	"$nompi" $C -o "$T/alone" "$T/b1.bs" 2>/dev/null
	bio-train $C -o "$T/mpi" "$T/b1.bs" 2>/dev/null
	cmp "$T/alone/last.ckpt" "$T/mpi/last.ckpt"
}

@test "make experiment MPI_NP=2: the pipeline trains as two ranks and gets the one-process model" {
	tiny_experiment "$T/tiny.yaml"
	experiment_run WORK="$T/one" MLRUNS="$T/ml1" >"$T/log1" 2>&1 || { cat "$T/log1"; false; }
	(export "${NOLEAK?}" && experiment_run WORK="$T/two" MLRUNS="$T/ml2" MPI_NP=2 \
		MPIRUN_FLAGS="--oversubscribe --allow-run-as-root --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo") \
		>"$T/log2" 2>&1 || { cat "$T/log2"; false; }
	grep -q "mpirun -np 2" "$T/log2"
	same_trained_model "$T/one" "$T/two"
}
