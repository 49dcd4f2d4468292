#!/usr/bin/env bats
# The options every program shares (tools/tool.c) and the layered configuration (bio-config(5)),
# driven through every bio-* program built from tools/, bio-scan for runs that write output, and
# tests/helpers/tool_demo (tool.c with a tiny built-in config; copies stdin to its output) for
# atomic output, signals, a full disk and a reader that goes away.

bats_require_minimum_version 1.5.0

setup() {
	load '/usr/lib/bats/bats-support/load'
	load '/usr/lib/bats/bats-assert/load'
	ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
	: "${BIO_BUILD:=$ROOT/build}"
	: "${PYTHON:=/usr/bin/python3}"
	DEMO="$BIO_BUILD/tests/helpers/tool_demo"
	TOOLS=()
	for src in "$ROOT"/tools/bio-*.c; do
		[ -e "$src" ] || continue
		name="$(basename "$src" .c)"
		[ -x "$BIO_BUILD/bin/$name" ] && TOOLS+=("$BIO_BUILD/bin/$name")
	done
	[ "${#TOOLS[@]}" -gt 0 ] || fail "no bio-* programs built in $BIO_BUILD/bin"
	T="$BATS_TEST_TMPDIR"
	unset BIO_ENV
}

# Expected effective config: base.yaml merged with configs/env/$1.yaml (PyYAML), then the dump
# of program $2 parsed the same way; prints nothing and exits 0 when they are equal.
compare_config() {
	"$PYTHON" - "$ROOT/configs/base.yaml" "$ROOT/configs/env/$1.yaml" "$2" <<'EOF'
import sys, yaml
def merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
    return a
base = yaml.safe_load(open(sys.argv[1]))
env = yaml.safe_load(open(sys.argv[2])) or {}
got = yaml.safe_load(open(sys.argv[3]))
want = merge(base, env)
if got != want:
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            print("section %s: got %r, want %r" % (k, got.get(k), want.get(k)))
    sys.exit(1)
EOF
}

scan_tree() {
	mkdir -p "$T/d/iris" "$T/d/fingerprint"
	for s in 001 002 003; do
		for k in 01 02 03; do
			: >"$T/d/iris/${s}_L_$k.bmp"
			: >"$T/d/fingerprint/${s}_L_thumb_$k.bmp"
		done
	done
}

@test "configs/base.yaml is the one place a default lives: every key the sources read is there; an absent or emptied key is an error" {
	run "$PYTHON" tests/python/check_config_keys.py "$ROOT"
	assert_success
	assert_output --regexp '^[0-9]+ keys read by the programs, all defined in configs/base.yaml$'
	run "$PYTHON" tests/python/check_config_keys.py "$ROOT" --self-test
	assert_success
	# an emptied typed key: one line naming the --set, exit 1
	run "$BIO_BUILD/bin/bio-batch" --set batch.batch_size= /dev/null
	assert_failure 1
	assert_output "bio-batch: --set: batch.batch_size: expected an integer, got an empty value"
}

@test "every program prints its effective config: base.yaml with the dev overlay" {
	for t in "${TOOLS[@]}"; do
		run --separate-stderr "$t" --print-config
		assert_success
		[ -z "$stderr" ] || fail "$t: stderr: $stderr"
		printf '%s\n' "$output" >"$T/dump.yaml"
		run compare_config dev "$T/dump.yaml"
		assert_success
	done
}

@test "--print-config output loads back as a -c file and prints the same" {
	for t in "${TOOLS[@]}"; do
		"$t" --set tracking.run_name='a: b # c' --set experiment.seed=7 --print-config >"$T/a.yaml"
		"$t" -c "$T/a.yaml" --print-config >"$T/b.yaml"
		cmp "$T/a.yaml" "$T/b.yaml"
		grep -qx '  run_name: "a: b # c"' "$T/a.yaml"
	done
}

@test "--print-digest: the tools' digest of named keys; a --set changes only the digests that name it" {
	for t in "${TOOLS[@]}"; do
		run --separate-stderr "$t" --print-digest prep,stream
		assert_success
		[ -z "$stderr" ] || fail "$t: stderr: $stderr"
		[[ "$output" =~ ^[0-9a-f]{64}$ ]] || fail "$t: $output"
		printf '%s\n' "$output" >>"$T/all"
	done
	[ "$(sort -u "$T/all" | wc -l)" -eq 1 ] # every program computes the same digest
	b=${TOOLS[0]}
	# commas or spaces, chained after PREV: SHA-256 of "PREV\n<digest>\n"
	plain=$("$b" --print-digest prep,stream)
	[ "$("$b" --print-digest 'prep stream')" = "$plain" ]
	[ "$("$b" --print-digest abc:prep,stream)" = "$(printf 'abc\n%s\n' "$plain" | sha256sum | cut -c1-64)" ]
	[ "$("$b" --print-digest abd:prep,stream)" != "$("$b" --print-digest abc:prep,stream)" ]
	# a key in a section changes that section's digest (and a key digest naming it), nothing else
	for spec in p:prep p:scan p:experiment.seed p:training p:prep.size; do
		printf '%s %s\n' "$spec" "$("$b" --print-digest "$spec")" >>"$T/before"
		printf '%s %s\n' "$spec" "$("$b" --set prep.size=32 --print-digest "$spec")" >>"$T/after"
	done
	run diff "$T/before" "$T/after"
	assert_output --partial "< p:prep "
	assert_output --partial "< p:prep.size "
	refute_output --partial "p:scan"
	refute_output --partial "p:experiment.seed"
	refute_output --partial "p:training"
	# the same value set another way gives the same digest
	printf 'prep:\n  size: 32\n' >"$T/p.yaml"
	[ "$("$b" -c "$T/p.yaml" --print-digest p:prep)" = "$("$b" --set prep.size=32 --print-digest p:prep)" ]
	# bio-scan's manifest header carries the digest of its "scan" section
	scan_tree
	"$BIO_BUILD/bin/bio-scan" --set scan.root="$T/d" -o "$T/m.bs"
	run "$BIO_BUILD/bin/bio-dump" --header "$T/m.bs"
	assert_output --partial "\"config_digest\":\"$("$b" --set scan.root="$T/d" --print-digest scan)\""
	# an unknown key: one line, exit 1; no key at all: usage, exit 2
	run --separate-stderr "$b" --print-digest p:prep,nosuch
	assert_failure 1
	[ "$stderr" = "$(basename "$b"): config digest: nosuch: no such key" ]
	run --separate-stderr "$b" --print-digest p:
	assert_failure 2
	run --separate-stderr "$b" --print-digest :prep
	assert_failure 2
}

@test "BIO_ENV and --env choose the environment overlay; --env wins" {
	t="${TOOLS[0]}"
	for env in dev staging prod; do
		BIO_ENV=$env "$t" --print-config >"$T/$env.yaml"
		run compare_config "$env" "$T/$env.yaml"
		assert_success
		"$t" --env "$env" --print-config | cmp - "$T/$env.yaml"
	done
	! cmp -s "$T/dev.yaml" "$T/prod.yaml" || false
	BIO_ENV=prod "$t" --env dev --print-config | cmp - "$T/dev.yaml"
	BIO_ENV= "$t" --print-config | cmp - "$T/dev.yaml"
}

@test "an unknown environment is an error naming the available ones" {
	for t in "${TOOLS[@]}"; do
		n="$(basename "$t")"
		run --separate-stderr "$t" --env nosuch --print-config
		assert_failure 1
		assert_equal "$stderr" "$n: --env: unknown environment 'nosuch' (available: dev, prod, staging)"
		assert_equal "$output" ""
	done
	BIO_ENV=../base run --separate-stderr "${TOOLS[0]}" --print-config
	assert_failure 1
	assert_equal "$stderr" "$(basename "${TOOLS[0]}"): BIO_ENV: unknown environment '../base' (available: dev, prod, staging)"
}

@test "--set with an unknown key: one error line with a suggestion, exit 1, no output" {
	for t in "${TOOLS[@]}"; do
		n="$(basename "$t")"
		run --separate-stderr "$t" --set training.lrr=0.1 --print-config
		assert_failure 1
		assert_equal "$stderr" "$n: --set: training.lrr: unknown key (did you mean 'training.lr'?)"
		assert_equal "$output" ""
	done
	run --separate-stderr "${TOOLS[0]}" --set nosuch.key=1 --print-config
	assert_failure 1
	assert_equal "$stderr" "$(basename "${TOOLS[0]}"): --set: nosuch: unknown key"
}

@test "--set values: scalars, flow sequences, quoting; type changes refused" {
	t="${TOOLS[0]}"
	run --separate-stderr "$t" --set model.channels='[8, 16]' --set training.lr=1e-4 \
		--set tracking.run_name="'x y'" --set training.nesterov=yes --print-config
	assert_success
	assert_line '  channels: [8, 16]'
	assert_line '  lr: 1e-4'
	assert_line '  run_name: "x y"'
	assert_line '  nesterov: yes'
	run --separate-stderr "$t" --set model.channels=8 --print-config
	assert_failure 1
	[[ "$stderr" == *": --set: model.channels: expected a sequence (as in configs/base.yaml:"*"), got a scalar" ]]
	run --separate-stderr "$t" --set model.channels='[8, 16' --print-config
	assert_failure 1
	[[ "$stderr" == *": --set: model.channels: YAML syntax error: "* ]]
	run --separate-stderr "$t" --set training.lr --print-config
	assert_failure 2
	assert_equal "${stderr##*$'\n'}" "Try '$(basename "$t") --help'."
}

@test "layers apply in order: base, env, -c files in order, then --set" {
	t="${TOOLS[0]}"
	printf 'experiment:\n  seed: 1\ntracking:\n  run_name: one\n' >"$T/1.yaml"
	printf 'experiment:\n  seed: 2\n' >"$T/2.yaml"
	run "$t" --set experiment.seed=3 -c "$T/1.yaml" -c "$T/2.yaml" --print-config
	assert_success
	assert_line '  seed: 3'
	assert_line '  run_name: one'
	run "$t" -c "$T/2.yaml" -c "$T/1.yaml" --print-config
	assert_line '  seed: 1'
	run "$t" -c "$T/1.yaml" -c "$T/2.yaml" --print-config
	assert_line '  seed: 2'
}

@test "config file errors name the file and line" {
	t="${TOOLS[0]}"
	n="$(basename "$t")"
	printf 'experiment:\n  seed: 1\ntraining:\n  lrr: 0.5\n' >"$T/typo.yaml"
	run --separate-stderr "$t" -c "$T/typo.yaml" --print-config
	assert_failure 1
	assert_equal "$stderr" "$n: $T/typo.yaml:4: training.lrr: unknown key (did you mean 'training.lr'?)"
	printf 'training:\n  lr: 0.1\n  lr: 0.2\n' >"$T/dup.yaml"
	run --separate-stderr "$t" -c "$T/dup.yaml" --print-config
	assert_failure 1
	assert_equal "$stderr" "$n: $T/dup.yaml:3: training.lr: duplicate key (first at $T/dup.yaml:2)"
	run --separate-stderr "$t" -c "$T/missing.yaml" --print-config
	assert_failure 1
	assert_equal "$stderr" "$n: $T/missing.yaml: No such file or directory"
	head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$T/huge.yaml"
	run --separate-stderr "$t" -c "$T/huge.yaml" --print-config
	assert_failure 1
	assert_equal "$stderr" "$n: $T/huge.yaml: larger than 4194304 bytes"
}

@test "a value of the wrong type names file:line, key and value (bio-scan)" {
	[ -x "$BIO_BUILD/bin/bio-scan" ] || skip "bio-scan not built"
	scan_tree
	printf 'scan:\n  split:\n    val: fast\n' >"$T/v.yaml"
	run --separate-stderr "$BIO_BUILD/bin/bio-scan" -c "$T/v.yaml" "$T/d"
	assert_failure 1
	assert_equal "$stderr" "bio-scan: $T/v.yaml:3: scan.split.val: expected a number, got 'fast'"
	assert_equal "$output" ""
}

@test "the bad configs give the error each one is there for" {
	t="${TOOLS[0]}"
	n="$(basename "$t")"
	b="$ROOT/tests/bad/config"
	while IFS='|' read -r file want; do
		run --separate-stderr "$t" -c "$b/$file" --print-config
		assert_failure 1
		assert_equal "$stderr" "$n: $b/$file:$want"
	done <<'EOF2'
alias_bomb.yaml|6: more than 100000 nodes (aliases expanded); refusing a possible alias bomb
alias_bomb_strings.yaml|2: more than 4194304 bytes of text (aliases expanded); refusing a possible alias bomb
bad_tag.yaml|1: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'
complex_key.yaml|1: keys must be plain strings
deep_flow.yaml|1: nesting deeper than 32 levels
deep_nesting.yaml|33: nesting deeper than 32 levels
merge_key.yaml|3: training.<<: YAML merge keys are not supported
multi_document.yaml|2: more than one YAML document (only one is allowed)
recursive_alias.yaml|1: alias '*x' to an unknown anchor
syntax_error.yaml|3: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence (started at line 2)
tab_indent.yaml|2: tab character where YAML allows only spaces (indent with spaces)
top_level_list.yaml|1: the top level must be a map, not a sequence
undefined_alias.yaml|1: alias '*undefined' to an unknown anchor
unknown_key.yaml|2: training.lrr: unknown key (did you mean 'training.lr'?)
wide_huge.yaml|1: more than 100000 nodes
EOF2
	run --separate-stderr "$t" -c "$b/duplicate_key.yaml" --print-config
	assert_equal "$stderr" "$n: $b/duplicate_key.yaml:3: training.lr: duplicate key (first at $b/duplicate_key.yaml:2)"
	run --separate-stderr "$t" -c "$b/type_confusion.yaml" --print-config
	[[ "$stderr" == "$n: $b/type_confusion.yaml:1: training: expected a map (as in configs/base.yaml:"*"), got a scalar" ]]
	run --separate-stderr "$t" -c "$b/binary_garbage.yaml" --print-config
	[[ "$stderr" == "$n: $b/binary_garbage.yaml:1: invalid "*"UTF-8"* ]]
	run --separate-stderr "$t" -c "$b/nul_bytes.yaml" --print-config
	[[ "$stderr" == "$n: $b/nul_bytes.yaml:2: control characters are not allowed"* ]]
	run --separate-stderr "$t" -c "$b/bad_escape.yaml" --print-config
	[[ "$stderr" == "$n: $b/bad_escape.yaml:2: YAML syntax error: "*"escape"* ]]
}

@test "every bad config in tests/bad/config: one error line naming the file, exit 1" {
	t="${TOOLS[0]}"
	n="$(basename "$t")"
	count=0
	for f in "$ROOT"/tests/bad/config/*; do
		case "$(basename "$f")" in
		empty*) continue ;; # an empty overlay is valid: see the next test
		esac
		run --separate-stderr "$t" -c "$f" --print-config
		[ "$status" -eq 1 ] || fail "$f: exit $status, stderr: $stderr"
		assert_equal "$output" ""
		[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "$f: not one line: $stderr"
		[[ "$stderr" == "$n: $f"* ]] || fail "$f: message does not name the file: $stderr"
		count=$((count + 1))
	done
	[ "$count" -ge 10 ]
}

@test "an empty config file or document changes nothing" {
	t="${TOOLS[0]}"
	"$t" --print-config >"$T/want.yaml"
	for f in "$ROOT"/tests/bad/config/empty*; do
		"$t" -c "$f" --print-config | cmp - "$T/want.yaml"
	done
}

@test "usage errors: unknown option or bad -j, exit 2 with a Try line" {
	for t in "${TOOLS[@]}"; do
		n="$(basename "$t")"
		run --separate-stderr "$t" --no-such-option
		assert_failure 2
		assert_equal "$stderr" "$n: unrecognized option '--no-such-option'
Try '$n --help'."
		assert_equal "$output" ""
		run --separate-stderr "$t" -j 0 --print-config
		assert_failure 2
		assert_equal "$stderr" "$n: --jobs: invalid value '0' (expected an integer from 1 to 4096)
Try '$n --help'."
		run --separate-stderr "$t" -j 2x --print-config
		assert_failure 2
	done
}

@test "--version and --help go to stdout, exit 0" {
	for t in "${TOOLS[@]}"; do
		n="$(basename "$t")"
		run --separate-stderr "$t" --version
		assert_success
		assert_output "$n (biopipe) 0.1.0"
		run --separate-stderr "$t" --help
		assert_success
		assert_output --partial "--print-config"
		[ -z "$stderr" ]
	done
}

@test "a full disk on stdout is an error, exit 1" {
	for t in "${TOOLS[@]}"; do
		n="$(basename "$t")"
		run --separate-stderr "$t" --print-config
		assert_success
		run --separate-stderr sh -c '"$1" --print-config >/dev/full' sh "$t"
		assert_failure 1
		assert_equal "$stderr" "$n: <stdout>: write error: No space left on device"
		run --separate-stderr sh -c '"$1" --version >/dev/full' sh "$t"
		assert_failure 1
		# --help exits without a commit: stdout is checked at exit all the same
		run --separate-stderr sh -c '"$1" --help >/dev/full' sh "$t"
		assert_failure 1
		assert_equal "$stderr" "$n: <stdout>: write error: No space left on device"
	done
	run --separate-stderr sh -c 'echo hello | "$1" >/dev/full' sh "$DEMO"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: <stdout>: write error: No space left on device"
}

@test "-o into a missing directory: exit 1 naming the path (bio-scan, tool-demo)" {
	run --separate-stderr "$DEMO" -o "$T/nonexistent/dir/x" </dev/null
	assert_failure 1
	assert_equal "$stderr" "tool-demo: $T/nonexistent/dir/x: cannot create: No such file or directory"
	[ -x "$BIO_BUILD/bin/bio-scan" ] || skip "bio-scan not built"
	scan_tree
	run --separate-stderr "$BIO_BUILD/bin/bio-scan" -o "$T/nonexistent/dir/x" "$T/d"
	assert_failure 1
	assert_equal "$stderr" "bio-scan: $T/nonexistent/dir/x: cannot create: No such file or directory"
}

@test "-o FILE: same bytes as stdout, mode from the umask, no temp files left" {
	seq 1 100000 >"$T/in"
	"$DEMO" <"$T/in" >"$T/stdout"
	(umask 027 && "$DEMO" -o "$T/out" <"$T/in")
	cmp "$T/stdout" "$T/in"
	cmp "$T/out" "$T/in"
	[ "$(stat -c %a "$T/out")" = 640 ]
	(umask 022 && "$DEMO" -o "$T/out2" <"$T/in")
	[ "$(stat -c %a "$T/out2")" = 644 ]
	"$DEMO" -o - <"$T/in" | cmp - "$T/in"
	[ -z "$(find "$T" -name '.*.tmp.*')" ]
	# a closed stdout matters only when something was written to it
	"$DEMO" -o "$T/out3" <"$T/in" >&-
	cmp "$T/out3" "$T/in"
	run --separate-stderr sh -c '"$1" <"$2" >&-' sh "$DEMO" "$T/in"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: <stdout>: write error: Bad file descriptor"
	# a device is written in place, never replaced by a rename
	"$DEMO" -o /dev/null <"$T/in"
	[ -c /dev/null ]
	run --separate-stderr "$DEMO" -o /dev/full <"$T/in"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: /dev/full: write error: No space left on device"
	run --separate-stderr "$DEMO" -o "$T" <"$T/in"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: $T: Is a directory"
	# relative path: temp file in the current directory
	(cd "$T" && "$DEMO" -o rel <"$T/in")
	cmp "$T/rel" "$T/in"
	[ -z "$(find "$T" -name '.*.tmp.*')" ]
}

@test "a failed run leaves no partial file and keeps the old one" {
	seq 1 100000 >"$T/in"
	echo good >"$T/out"
	run --separate-stderr "$DEMO" --fail-after 50000 -o "$T/out" <"$T/in"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: <stdin>: failing after 50000 bytes as asked"
	assert_equal "$(cat "$T/out")" good
	run --separate-stderr "$DEMO" --fail-after 50000 -o "$T/new" <"$T/in"
	assert_failure 1
	[ ! -e "$T/new" ]
	# a program that forgets to commit leaves no temp file behind (and no output)
	"$DEMO" --no-commit -o "$T/forgot" <"$T/in"
	[ ! -e "$T/forgot" ]
	# a config error comes before the output is opened
	run --separate-stderr "$DEMO" --set demo.count=500 -o "$T/out" <"$T/in"
	assert_failure 1
	assert_equal "$stderr" "tool-demo: --set: demo.count: 500 is out of range [0, 100]"
	assert_equal "$(cat "$T/out")" good
	[ -z "$(find "$T" -name '.*.tmp.*')" ]
}

@test "SIGTERM and SIGINT remove the temp output" {
	for sig in TERM INT; do
		mkfifo "$T/fifo-$sig"
		# A non-interactive shell starts background jobs with SIGINT ignored (and the
		# program keeps an ignored signal ignored, as nohup expects): restore the default.
		env --default-signal=INT,TERM "$DEMO" -o "$T/out-$sig" <"$T/fifo-$sig" 3>&- &
		pid=$!
		exec 5>"$T/fifo-$sig" # unblocks the open; the program then waits for input
		echo partial >&5
		for _ in $(seq 50); do
			[ -n "$(find "$T" -name ".out-$sig.tmp.*")" ] && break
			sleep 0.1
		done
		[ -n "$(find "$T" -name ".out-$sig.tmp.*")" ] || fail "no temp file appeared"
		kill -s "$sig" "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid"
			fail "still running 5 s after SIG$sig"
		fi
		status=0
		wait "$pid" || status=$?
		exec 5>&-
		[ "$status" -gt 128 ] || fail "exit status $status after SIG$sig"
		[ -z "$(find "$T" -name ".out-$sig.tmp.*")" ] || fail "temp file left after SIG$sig"
		[ ! -e "$T/out-$sig" ]
	done
}

@test "a reader that goes away ends the program quietly, exit 0" {
	# (yes and the first head may die of SIGPIPE themselves once the program is gone)
	run --separate-stderr bash -c 'yes | head -c 20000000 | "$1" | head -c 1 >/dev/null; echo "${PIPESTATUS[2]} ${PIPESTATUS[3]}"' sh "$DEMO"
	assert_output "0 0"
	assert_equal "$stderr" ""
}

@test "the environment and -j reach the program; no progress bar when stderr is not a terminal" {
	run --separate-stderr "$DEMO" --show -j 3 </dev/null
	assert_success
	assert_output "hello 4 3"
	assert_equal "$stderr" ""
	run --separate-stderr env BIO_ENV=prod "$DEMO" --show -j 1 </dev/null
	assert_output "hi 3 1"
	run --separate-stderr "$DEMO" --show </dev/null
	cpus="$("$PYTHON" -c 'import os; print(len(os.sched_getaffinity(0)))')"
	assert_output "hello 4 $cpus"
	run --separate-stderr "$DEMO" --env staging --print-config
	assert_failure 1
	assert_equal "$stderr" "tool-demo: --env: unknown environment 'staging' (available: dev, prod)"
}

# Keys written in man/man5/bio-config.5, roff markup removed (.B/.BR/.BI... joined as printed).
man_keys() {
	"$PYTHON" - "$ROOT/man/man5/bio-config.5" "$ROOT/configs/base.yaml" <<'EOF2'
import re, shlex, sys, yaml
text = []
for line in open(sys.argv[1]):
    line = line.rstrip("\n").replace("\\-", "-").replace("\\e", "\\")
    line = re.sub(r"\\f[BIRP]", "", line)
    m = re.match(r"\.(B|I|BR|RB|BI|IB|IR|RI)\s+(.*)", line)
    if m:
        try:
            args = shlex.split(m.group(2))
        except ValueError:
            args = m.group(2).split()
        line = (" " if m.group(1) in ("B", "I") else "").join(args)
    text.append(line)
text = "\n".join(text)
base = yaml.safe_load(open(sys.argv[2]))
mods = set(base.get("scan", {}).get("modalities", []))
def leaves(node, path):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaves(v, path + [str(k)])
    else:
        yield path
missing = []
for p in leaves(base, []):
    if len(p) > 2 and p[0] == "scan" and p[1] in mods:
        p = ["scan", "modality"] + p[2:]
    key = ".".join(p)
    if not re.search(r"(?<![\w.])" + re.escape(key) + r"(?![\w])", text):
        missing.append(key)
print("\n".join(sorted(set(missing))))
EOF2
}

@test "bio-config(5) documents every key of configs/base.yaml" {
	run man_keys
	assert_success
	[ -z "$output" ] || fail "keys missing from man/man5/bio-config.5: $output"
}

@test "bio-config(5) EXAMPLES run as written (with bio-scan)" {
	[ -x "$BIO_BUILD/bin/bio-scan" ] || skip "bio-scan not built"
	PATH="$BIO_BUILD/bin:$PATH"
	cd "$T"
	BIO_ENV=prod bio-scan --print-config >prod.yaml
	run diff <(bio-scan --print-config) <(bio-scan --env prod --print-config)
	assert_failure 1
	assert_line --partial '> '
	printf 'training:\n  lr: 0.01\n  scheduler: cosine\n' >fast.yaml
	run bio-scan -c fast.yaml --set model.channels='[16, 32]' --print-config
	assert_success
	assert_line '  lr: 0.01'
	assert_line '  scheduler: cosine'
	assert_line '  channels: [16, 32]'
	run --separate-stderr bio-scan --set training.lrr=0.01 --print-config
	assert_failure 1
	assert_equal "$stderr" "bio-scan: --set: training.lrr: unknown key (did you mean 'training.lr'?)"
	bio-scan --env prod -c fast.yaml --print-config >run.yaml
	bio-scan -c run.yaml --print-config | cmp - run.yaml
	# the pattern example of SYNTAX: taken literally
	run bio-scan --set 'scan.iris.pattern=^(a|b): #x$' --print-config
	assert_line '    pattern: "^(a|b): #x$"'
}

@test "a progress line appears when standard error is a terminal" {
	command -v script >/dev/null || skip "script(1) not installed"
	seq 1 100000 >"$T/in"
	run script -qec "'$DEMO' <'$T/in' >/dev/null" /dev/null
	assert_success
	[[ "$output" == $'\r'"tool-demo: copying 4096"* ]] || fail "no progress line: $output"
	run --separate-stderr "$DEMO" <"$T/in"
	assert_equal "$stderr" ""
}

@test "a misspelled option gets a suggestion; missing and extra arguments are named" {
	run --separate-stderr "$BIO_BUILD/bin/bio-train" --vall x.bs
	assert_failure 2
	assert_equal "$stderr" "bio-train: unrecognized option '--vall' (did you mean '--val'?)
Try 'bio-train --help'."
	run --separate-stderr "$BIO_BUILD/bin/bio-batch" --epohcs 3
	assert_failure 2
	assert_equal "${stderr%%$'\n'*}" "bio-batch: unrecognized option '--epohcs' (did you mean '--epochs'?)"
	run --separate-stderr "$BIO_BUILD/bin/bio-batch" --epochs
	assert_failure 2
	assert_equal "${stderr%%$'\n'*}" "bio-batch: option '--epochs' requires an argument"
	run --separate-stderr "$BIO_BUILD/bin/bio-batch" --drop-last=1
	assert_failure 2
	assert_equal "${stderr%%$'\n'*}" "bio-batch: option '--drop-last' doesn't allow an argument"
	run --separate-stderr "$BIO_BUILD/bin/bio-infer" -k
	assert_failure 2
	assert_equal "${stderr%%$'\n'*}" "bio-infer: option requires an argument -- 'k'"
	run --separate-stderr "$BIO_BUILD/bin/bio-scan" -Z
	assert_failure 2
	assert_equal "${stderr%%$'\n'*}" "bio-scan: invalid option -- 'Z'"
}
