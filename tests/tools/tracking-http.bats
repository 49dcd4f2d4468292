#!/usr/bin/env bats
# The tracking-server client against stand-ins that misbehave (tests/python/stub_http.py; no
# MLflow needed): a server that accepts and never answers cannot stop or slow down a training
# beyond its timeouts, 503s are retried with backoff, credentials are sent as MLflow clients send
# them (MLFLOW_TRACKING_TOKEN as a bearer token, else USERNAME/PASSWORD as basic), the errors
# are one line naming the URL, and with no server at all the run is journaled and training ends
# with exit 0.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'train_fixture'

setup_file() {
	fixture32
	bio-batch --batch-size 6 --epochs 4 "$FIX/samples.bs" > "$FIX/b4.bs"
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
	C="$(cat "$FIX/sets") --set tracking.cache_dir=$T/cache"
}

teardown() {
	[ -s "$T/stub.pid" ] && kill "$(cat "$T/stub.pid")" 2>/dev/null || true
}

# Starts the stub in mode $1 (with HTTPS when $2 and $3 name a certificate and its key); sets URL.
stub() {
	"$PYTHON" tests/python/stub_http.py "$1" "$T/port" "$T/requests.log" ${2:+"$2" "$3"} &
	echo $! > "$T/stub.pid"
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	URL="http${2:+s}://127.0.0.1:$(cat "$T/port")"
}

@test "a server that never answers: training finishes within its timeouts, the run is journaled" {
	stub hang
	start=$(date +%s)
	run bio-train $C --set tracking.uri="$URL" --set tracking.timeout=0.5 \
		--set tracking.retries=1 --set tracking.backoff=0.1 -o "$T/ck" "$FIX/b4.bs"
	assert_success
	[ $(($(date +%s) - start)) -lt 20 ]
	assert_output --partial "epoch 4/4"
	assert_output --partial "$URL/api/2.0/mlflow/experiments/get-by-name"
	assert_output --partial "timed out"
	assert_output --partial "training goes on"
	[ "$(wc -l < "$T/ck"/tracking/0/*/metrics/train_loss)" -eq 4 ]
	# the wait between tries: far fewer requests than epochs x retries
	[ "$(wc -l < "$T/requests.log")" -le 8 ]
}

@test "503 is retried with backoff, then one error line naming the URL" {
	stub 503
	run bio-infer $C --set tracking.uri="$URL" --set tracking.retries=2 --set tracking.backoff=0.05 \
		-m models:/m/1 "$FIX/samples.bs"
	assert_failure 1
	[ "${#lines[@]}" -eq 1 ]
	assert_output --partial "$URL/api/2.0/mlflow/model-versions/get?name=m&version=1: HTTP 503"
	[ "$(wc -l < "$T/requests.log")" -eq 3 ]
}

@test "credentials: MLFLOW_TRACKING_TOKEN as bearer, else USERNAME/PASSWORD as basic" {
	stub 404
	MLFLOW_TRACKING_TOKEN=s3cret run bio-infer $C --set tracking.uri="$URL" -m models:/m@a "$FIX/samples.bs"
	assert_failure 1
	assert_output --partial "models:/m@a"
	MLFLOW_TRACKING_USERNAME=ann MLFLOW_TRACKING_PASSWORD=pw run bio-infer $C \
		--set tracking.uri="$URL" -m "runs:/abc/checkpoints" "$FIX/samples.bs"
	assert_failure 1
	run cat "$T/requests.log"
	assert_line --index 0 --partial "GET /api/2.0/mlflow/registered-models/alias?name=m&alias=a Bearer s3cret"
	assert_line --index 1 --partial "GET /api/2.0/mlflow/runs/get?run_id=abc Basic $(printf ann:pw | base64)"
}

@test "https: the certificate is checked; MLFLOW_TRACKING_SERVER_CERT_PATH and _INSECURE_TLS as MLflow reads them" {
	command -v openssl >/dev/null || skip "no openssl to make a test certificate"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
	stub 404 "$T/cert.pem" "$T/key.pem"
	[ "${URL#https://}" != "$URL" ]
	run bio-infer $C --set tracking.uri="$URL" --set tracking.retries=0 -m models:/m/1 "$FIX/samples.bs"
	assert_failure 1
	assert_output --partial "$URL/api/2.0/mlflow/model-versions/get"
	refute_output --partial "HTTP 404"
	assert_output --partial "certificate"
	MLFLOW_TRACKING_SERVER_CERT_PATH="$T/cert.pem" run bio-infer $C --set tracking.uri="$URL" \
		-m models:/m/1 "$FIX/samples.bs"
	assert_failure 1
	assert_output --partial "HTTP 404 RESOURCE_DOES_NOT_EXIST"
	MLFLOW_TRACKING_INSECURE_TLS=true run bio-infer $C --set tracking.uri="$URL" \
		-m models:/m/2 "$FIX/samples.bs"
	assert_output --partial "HTTP 404 RESOURCE_DOES_NOT_EXIST"
}

@test "server down from the start: training finishes (exit 0) and the journal holds the run" {
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	run bio-train $C --set tracking.uri="http://127.0.0.1:$port" --set tracking.retries=1 \
		--set tracking.backoff=0.05 --val "$FIX/samples.bs" -o "$T/ck" --register m "$FIX/b4.bs"
	assert_success
	assert_output --partial "epoch 4/4"
	assert_output --partial "kept in $T/ck/tracking"
	[ "$(wc -l < "$T/ck"/tracking/0/*/metrics/train_loss)" -eq 4 ]
	[ -s "$T/ck"/tracking/0/*/artifacts/checkpoints/best.ckpt ]
	run bio-train $C --sync-tracking "$T/ck"
	assert_failure 1
	run bio-train $C --sync-tracking "$T/nothing"
	assert_failure 1
	assert_output --partial "no tracking journal"
}
