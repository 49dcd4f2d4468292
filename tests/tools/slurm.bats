#!/usr/bin/env bats
# bio-train under Slurm's srun: a real one-node Slurm on this host for this file only (munged with
# a throwaway key, slurmctld and slurmd in the foreground, slurm.conf, state, spool, logs and
# sockets in the file's temp folder, every port on 127.0.0.1, each daemon under timeout and
# stopped by teardown_file). srun --mpi=pmix -n 2, 3 and 4 ranks give one process's checkpoints
# bit for bit; make experiment MPIRUN=srun trains as two ranks and gets the one-process model;
# srun without PMIx (--mpi=none), or a bio-train built without MPI, is refused with one line.
# Skips with one line where Slurm, munge, mpirun or an MPI build of bio-train is absent, or not
# root (slurmd starts the tasks as their user).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

free_port() {
	"${PYTHON:-/usr/bin/python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# the daemons' logs, for a failure's output
slurm_logs() {
	for f in "$SL"/munged.log "$SL"/slurmctld.log "$SL"/slurmd.log "$SL"/*.err; do
		[ -s "$f" ] && { echo "== $f"; tail -n 20 "$f"; }
	done
	return 0
}

setup_file() {
	# no Slurm here: every test skips with the reason (skip in setup_file is not for old bats)
	export NO_SLURM= SLURM_FAILED=
	if ! { [ -x /usr/sbin/munged ] && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] &&
		command -v srun >/dev/null && command -v sinfo >/dev/null; }; then
		NO_SLURM="Slurm and munge not installed (as root: make deps-ssh)"
		return 0
	fi
	if ! ls /usr/lib/*/slurm-wlm/mpi_pmix*.so >/dev/null 2>&1; then
		NO_SLURM="Slurm without its PMIx plugin (mpi_pmix.so)"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		NO_SLURM="slurmd for the test needs root (it starts the tasks as their user)"
		return 0
	fi
	# nothing of an enclosing Slurm job (if the tests run inside one) reaches this cluster's srun
	unset $(compgen -v SLURM_) 2>/dev/null || true
	export SL="$BATS_FILE_TMPDIR/slurm"
	mkdir -p "$SL/state" "$SL/spool" "$SL/munge"
	chmod 700 "$SL/munge"
	head -c 1024 /dev/urandom >"$SL/munge/munge.key"
	chmod 600 "$SL/munge/munge.key"
	# every daemon stops by itself after 5 minutes at the latest; teardown_file stops it before
	timeout 300 /usr/sbin/munged -F --force --key-file="$SL/munge/munge.key" \
		--socket="$SL/munge/munge.socket" --pid-file="$SL/munge/munged.pid" \
		--seed-file="$SL/munge/munged.seed" --log-file="$SL/munged.log" \
		</dev/null >"$SL/munged.err" 2>&1 3>&- &
	echo $! >"$SL/munged.wrapper"
	cpus=$(slurmd -C | sed -n 's/.* CPUs=\([0-9]*\) .*/\1/p' | head -n 1)
	cat >"$SL/slurm.conf" <<EOF2
ClusterName=biotest
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SL/munge/munge.socket
# slurmctld, slurmd, slurmstepd and srun listen on the address localhost resolves to only
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
SchedulerType=sched/builtin
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost CPUs=${cpus:-1} State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF2
	export SLURM_CONF="$SL/slurm.conf"
	for _ in $(seq 100); do
		[ -S "$SL/munge/munge.socket" ] && break
		sleep 0.05
	done
	timeout 300 /usr/sbin/slurmctld -D -i -f "$SLURM_CONF" </dev/null >"$SL/slurmctld.err" 2>&1 3>&- &
	echo $! >"$SL/slurmctld.wrapper"
	timeout 300 /usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF" </dev/null >"$SL/slurmd.err" 2>&1 3>&- &
	echo $! >"$SL/slurmd.wrapper"
	# up when the node is idle and a job step runs
	for _ in $(seq 100); do
		[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
		sleep 0.1
	done
	if ! [ "$(timeout 30 srun -n 1 hostname 2>"$SL/srun.err")" = "$(hostname)" ]; then
		SLURM_FAILED="the test's Slurm did not start: $(cat "$SL/srun.err")"
	fi
	# data: the small set of tests/tools/mpi.bats
	small_fixture
}

teardown_file() {
	if [ -n "${NO_SLURM:-}" ] || [ -z "${SL:-}" ]; then return 0; fi
	# timeout passes the TERM on to its daemon; slurmd and slurmctld first, munged last
	for d in slurmd slurmctld munged; do
		for f in "$SL/$d.wrapper" "$SL/$d.pid" "$SL/munge/$d.pid"; do
			[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
		done
		for _ in $(seq 50); do
			[ -f "$SL/$d.wrapper" ] && kill -0 "$(cat "$SL/$d.wrapper")" 2>/dev/null || break
			sleep 0.1
		done
	done
	return 0
}

setup() {
	[ -z "${NO_SLURM:-}" ] || skip "$NO_SLURM"
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	need_mpi
	if [ -n "$SLURM_FAILED" ]; then
		echo "$SLURM_FAILED"
		slurm_logs
		return 1
	fi
	# as in tests/tools/mpi.bats: ranks without leak detection under the sanitizer build, and
	# Open MPI's byte transfer over loopback TCP only (srun passes the environment to the ranks)
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
	# Debian's Open MPI 4.1 starts under srun through PMIx only (its PMI-2 is not built in)
	SRUN="timeout 120 srun --mpi=pmix"
}

@test "srun --mpi=pmix -n 2, 3 and 4 (overcommitted) give one process's checkpoints, bit for bit" {
	for bs in 8 13; do
		bio-batch $C --set batch.batch_size=$bs --epochs 3 "$SS" >"$T/b$bs.bs"
		bio-train $C --val "$SS" -o "$T/one" -j2 "$T/b$bs.bs" 2>/dev/null
		for np in 2 3 4; do
			echo "batch $bs, $np ranks"
			$SRUN --overcommit -n $np bio-train $C --val "$SS" -o "$T/n$np" -j1 "$T/b$bs.bs" \
				2>"$T/err" || { cat "$T/err"; slurm_logs; false; }
			cmp "$T/one/last.ckpt" "$T/n$np/last.ckpt"
			cmp "$T/one/best.ckpt" "$T/n$np/best.ckpt"
		done
		rm -rf "$T/one" "$T"/n?
	done
	# the batches really are split: each of the two ranks reports the gradient bytes it sends
	$SRUN -n 2 bio-train $C -v -o "$T/v" -j1 "$T/b8.bs" 2>"$T/err"
	run grep -c "rank [01] of 2: .* steps" "$T/err"
	assert_output 2
}

@test "srun without PMIx (--mpi=none), or a bio-train built without MPI: refused with one line" {
	bio-batch $C --epochs 1 "$SS" >"$T/b1.bs"
	run bash -c "timeout 60 srun --mpi=none -n 2 bio-train $C -o '$T/x' '$T/b1.bs' 2>&1 | grep '^bio-train:' | sort -u"
	assert_output "bio-train: started by srun as one of 2 tasks without PMIx: give srun --mpi=pmix (or MpiDefault=pmix in slurm.conf)"
	[ ! -e "$T/x/last.ckpt" ]
	run bash -c "$SRUN -n 2 '$BIO_BUILD/tests/bio-train-nompi' $C -o '$T/x' '$T/b1.bs' 2>&1 | grep '^bio-train:' | sort -u"
	assert_output "bio-train: started by mpirun/srun as one of 2 ranks, but this bio-train was built without MPI (install openmpi-bin and libopenmpi-dev, then rebuild with make)"
	[ ! -e "$T/x/last.ckpt" ]
	# one task without PMIx is one process
	timeout 60 srun --mpi=none -n 1 bio-train $C -o "$T/alone" "$T/b1.bs" 2>/dev/null
	bio-train $C -o "$T/one" "$T/b1.bs" 2>/dev/null
	cmp "$T/alone/last.ckpt" "$T/one/last.ckpt"
}

@test "make experiment MPI_NP=2 MPIRUN=srun MPI_NP_FLAG=-n: two ranks of srun, the one-process model" {
	tiny_experiment "$T/tiny.yaml"
	experiment_run WORK="$T/one" MLRUNS="$T/ml1" >"$T/log1" 2>&1 || { cat "$T/log1"; false; }
	# (--error: each task's standard error to a file of its own, to see there were two)
	experiment_run WORK="$T/two" MLRUNS="$T/ml2" MPI_NP=2 MPIRUN=srun MPI_NP_FLAG=-n \
		MPIRUN_FLAGS="--mpi=pmix --error=$T/task%t.err" \
		>"$T/log2" 2>&1 || { cat "$T/log2" "$T"/task*.err; slurm_logs; false; }
	grep -q "^srun -n 2 \+--mpi=pmix --error=" "$T/log2" || { cat "$T/log2"; false; }
	run ls "$T"
	assert_output --partial "task0.err"
	assert_output --partial "task1.err"
	refute_output --partial "task2.err"
	grep -q "epoch 2/2" "$T/task0.err"
	same_trained_model "$T/one" "$T/two"
}
