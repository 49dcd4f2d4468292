#!/usr/bin/env bats
# More machines: make prep-sharded and make infer-sharded with SSHLOGIN run their shards through
# GNU parallel's --sshlogin on two "hosts": two real sshd (openssh-server) on 127.0.0.1, each on
# a port of its own, with a throwaway host key and user key, stopped at the end (and by timeout
# at the latest). The joined output is byte-identical to the local sharded run and holds the same
# records as one process; both hosts' sshd logged the jobs' sessions.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

free_port() {
	"${PYTHON:-/usr/bin/python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

setup_file() {
	# no sshd here: every test skips with the reason (skip in setup_file is not for old bats)
	export NO_SSH=
	if ! { [ -x /usr/sbin/sshd ] && command -v rsync >/dev/null && command -v ssh-keygen >/dev/null; }; then
		NO_SSH="openssh-server and rsync not installed (as root: make deps-ssh)"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		NO_SSH="sshd for the test needs root (its privilege separation)"
		return 0
	fi
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	export S="$BATS_FILE_TMPDIR/ssh"
	mkdir -p "$S" /run/sshd
	chmod 700 "$S"
	ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$S/user_key"
	cp "$S/user_key.pub" "$S/authorized_keys"
	: >"$S/ssh_config"
	for h in h1 h2; do
		port=$(free_port)
		cat >"$S/sshd_$h.conf" <<EOF2
Port $port
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd_$h.pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 64
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel INFO
EOF2
		# stops by itself after 10 minutes at the latest; teardown_file stops it before
		timeout 600 /usr/sbin/sshd -D -e -f "$S/sshd_$h.conf" 2>"$S/sshd_$h.log" &
		echo $! >"$S/sshd_$h.wrapper"
		cat >>"$S/ssh_config" <<EOF2
Host $h
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile $S/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
EOF2
	done
	export PARALLEL_SSH="ssh -F $S/ssh_config"
	for h in h1 h2; do
		for i in $(seq 1 50); do
			$PARALLEL_SSH $h true 2>/dev/null && break
			sleep 0.1
		done
		$PARALLEL_SSH $h true
	done
	# data: a small synthetic set, prepared once locally
	export D="$BATS_FILE_TMPDIR/d"
	mkdir -p "$D"
	(cd "$D" && bio-synth --subjects 3 --samples 4 --size 32 -o synth >/dev/null 2>&1 &&
		bio-scan -o manifest.bs "$D/synth" 2>/dev/null && bio-prep --set prep.size=16 -o samples.bs manifest.bs)
}

teardown_file() {
	if [ -n "${NO_SSH:-}" ] || [ -z "${S:-}" ]; then return 0; fi
	for h in h1 h2; do
		if [ -f "$S/sshd_$h.wrapper" ]; then kill "$(cat "$S/sshd_$h.wrapper")" 2>/dev/null || true; fi
		if [ -f "$S/sshd_$h.pid" ]; then kill "$(cat "$S/sshd_$h.pid")" 2>/dev/null || true; fi
	done
	return 0
}

setup() {
	[ -z "${NO_SSH:-}" ] || skip "$NO_SSH"
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	MK="make --no-print-directory -C $PWD BUILD=${BIO_BUILD:-build}"
}

# records FILE: the records of a stream, sorted by id, as one JSON line each
records() {
	bio-dump "$1" | grep -v '^{"bio-stream"\|^{"end"' | LC_ALL=C sort
}

@test "make prep-sharded SSHLOGIN=1/h1,1/h2: shards prepared on both hosts over ssh, joined as locally" {
	: >"$S/sshd_h1.log.mark"
	cd "$D"
	run $MK prep-sharded MANIFEST="$D/manifest.bs" OUT="$T/ssh.bs" SHARDS=4 SSHLOGIN=1/h1,1/h2
	assert_success
	assert_output --partial "prep-sharded: 4 shards"
	run $MK prep-sharded MANIFEST="$D/manifest.bs" OUT="$T/local.bs" SHARDS=4
	assert_success
	cmp "$T/ssh.bs" "$T/local.bs"
	bio-prep -o "$T/one.bs" manifest.bs
	diff <(records "$T/ssh.bs") <(records "$T/one.bs")
	# both hosts ran jobs
	grep -q "Accepted publickey" "$S/sshd_h1.log"
	grep -q "Accepted publickey" "$S/sshd_h2.log"
	# nothing left behind in the hosts' work folders
	[ -z "$(ls -A ~/.biopipe-shards 2>/dev/null)" ]
}

@test "make infer-sharded SSHLOGIN=1/h1,1/h2: shards inferred on both hosts, joined as locally" {
	cd "$D"
	bio-batch --set batch.batch_size=8 --epochs 2 samples.bs |
		bio-train --set model.input_size=16 --set 'model.channels=[4, 8]' --set model.hidden=16 \
			--set model.embedding=8 --set tracking.enabled=false -o ck 2>/dev/null
	run $MK infer-sharded MODEL="$D/ck/last.ckpt" SAMPLES="$D/samples.bs" OUT="$T/ssh.bs" SHARDS=3 \
		SSHLOGIN=1/h1,1/h2
	assert_success
	run $MK infer-sharded MODEL="$D/ck/last.ckpt" SAMPLES="$D/samples.bs" OUT="$T/local.bs" SHARDS=3
	assert_success
	cmp "$T/ssh.bs" "$T/local.bs"
	bio-infer -m ck/last.ckpt -o "$T/one.bs" samples.bs
	diff <(records "$T/ssh.bs") <(records "$T/one.bs")
	# a failing shard fails the whole run and leaves no output
	run $MK infer-sharded MODEL=/nonexistent SAMPLES="$D/samples.bs" OUT="$T/bad.bs" SHARDS=2 \
		SSHLOGIN=1/h1,1/h2
	assert_failure
	[ ! -e "$T/bad.bs" ]
}
