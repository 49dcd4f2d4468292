#!/usr/bin/env bats
# bio-prep: options and exit codes, a golden checksum, thread-count and shard invariance, values
# against PIL + numpy, bad images (--keep-going), atomic output, the man page's examples.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'mutate'

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || return 1
	export PYTHON="${PYTHON:-/usr/bin/python3}"
	export FIX="$BATS_FILE_TMPDIR/fx"
	# lossless formats of several kinds and sizes (down- and upscaling), 36 records
	"$PYTHON" tests/python/prep_fixture.py "$FIX" --records 36 \
		--formats bmp,png,bmp24,png_rgb,tif --sizes 96x80,37x41,64x64,200x150,20x16
	export FIXL="$BATS_FILE_TMPDIR/fxl"
	"$PYTHON" tests/python/prep_fixture.py "$FIXL" --records 8 --formats jpg,bmp,png
}

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	T="$BATS_TEST_TMPDIR"
}

# Prints "<kind> <records> <failed>" of a stream file.
stream_summary() {
	"$PYTHON" - "$1" <<'EOF'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False, max_buffer_size=1 << 30))
recs = [o for o in objs[1:] if "end" not in o and "bio-stream" not in o]
trailers = [o for o in objs if "end" in o]
print(objs[0]["kind"], len(recs), sum(t.get("failed", 0) for t in trailers))
EOF
}

# Validates a samples stream of N records with the independent checker (once it exists).
check_samples() {
	if [ -f tests/python/check_stream.py ]; then
		"$PYTHON" tests/python/check_stream.py "$1" --kind samples --min-records "$2" \
			--max-records "$2" --tensor-keys iris,fingerprint --expect-shape 1,64,64
	fi
}

@test "bio-prep --help, --version, usage errors" {
	run bio-prep --help
	assert_success
	assert_output --partial "Usage: bio-prep"
	assert_output --partial "--shard I/N"
	run bio-prep --version
	assert_success
	assert_output --partial "0.1.0"
	run bio-prep --no-such-option
	assert_failure 2
	assert_output --partial "Try 'bio-prep --help'"
	run bio-prep --shard 3/3 "$FIX/manifest.bs"
	assert_failure 2
	assert_output --partial "--shard"
	run bio-prep --shard x "$FIX/manifest.bs"
	assert_failure 2
	run bio-prep --max-failures -1 "$FIX/manifest.bs"
	assert_failure 2
	run bio-prep --set prep.resize=cubic "$FIX/manifest.bs"
	assert_failure 1
	assert_output --partial "prep.resize"
}

@test "bio-prep: golden checksum of the tiny fixture" {
	# Regression guard: these bytes were checked against PIL (next tests) when recorded; a
	# change in decoding, resizing, normalising or the stream writer changes them.
	cd "$FIX"
	run bio-prep -j1 -o "$T/out.bs" manifest.bs
	assert_success
	# the records and trailer (the header holds the version and config digest)
	run "$PYTHON" - "$T/out.bs" <<'EOF'
import hashlib, sys, msgpack
data = open(sys.argv[1], "rb").read()
u = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
u.feed(data)
u.unpack()
print(hashlib.sha256(data[u.tell():]).hexdigest())
EOF
	assert_output "310c57c7f11bd5c7acf1df32dcb5b23fcc81ae3b7837b885964ebaba60e9096e"
}

@test "bio-prep: output is a samples stream with header, tensors and trailer" {
	cd "$FIX"
	bio-prep -o "$T/s.bs" manifest.bs
	run stream_summary "$T/s.bs"
	assert_output "samples 36 0"
	cd "$OLDPWD"
	check_samples "$T/s.bs" 36
	run "$PYTHON" - "$T/s.bs" <<'EOF'
import sys, msgpack, numpy as np
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
meta = objs[0]["meta"]
assert meta["shape"] == [1, 64, 64] and meta["normalize"] == {"mean": 0.5, "std": 0.5}, meta
assert meta["modalities"] == ["iris", "fingerprint"] and len(meta["labels"]) == 12
r = objs[1]
assert set(r) == {"id", "label", "identity", "split", "iris", "fingerprint"}, r.keys()
x = np.frombuffer(r["iris"]["data"], "<f4")
assert r["iris"]["dtype"] == "f32" and x.size == 64 * 64 and -1 <= x.min() and x.max() <= 1
assert objs[-1] == {"end": 36, "failed": 0}, objs[-1]
print("ok")
EOF
	assert_success
	assert_output "ok"
}

@test "bio-prep: -j1, -j2, -j4 and -j7 give byte-identical output" {
	cd "$FIX"
	bio-prep -j1 -o "$T/j1.bs" manifest.bs
	for j in 2 4 7; do
		bio-prep -j$j -o "$T/j$j.bs" manifest.bs
		cmp "$T/j1.bs" "$T/j$j.bs"
	done
	# from standard input too
	bio-prep -j3 < manifest.bs > "$T/stdin.bs"
	cmp "$T/j1.bs" "$T/stdin.bs"
	# several manifests are read as one stream, as their concatenation is
	bio-prep -j2 manifest.bs manifest.bs > "$T/two.bs"
	cat manifest.bs manifest.bs | bio-prep -j1 > "$T/cat.bs"
	cmp "$T/two.bs" "$T/cat.bs"
	run stream_summary "$T/two.bs"
	assert_output "samples 72 0"
}

@test "bio-prep: values match PIL + numpy (bilinear, area, unquantised)" {
	# tolerance: quantised output within 1 gray level of PIL and >= 99.9% of pixels equal;
	# unquantised (float before rounding) within 0.5 gray level.
	cd "$FIX"
	bio-prep -j2 -o "$T/b.bs" manifest.bs
	run "$PYTHON" "$OLDPWD/tests/python/prep_reference.py" manifest.bs "$T/b.bs" --min-exact 0.999
	assert_success
	assert_output --partial "ok: 36 samples"
	bio-prep -j2 --set prep.resize=area --set prep.size=24 -o "$T/a.bs" manifest.bs
	run "$PYTHON" "$OLDPWD/tests/python/prep_reference.py" manifest.bs "$T/a.bs" \
		--filter area --size 24 --min-exact 0.999
	assert_success
	bio-prep --set prep.quantize=false --set prep.mean=0.2 --set prep.std=0.3 -o "$T/q.bs" manifest.bs
	run "$PYTHON" "$OLDPWD/tests/python/prep_reference.py" manifest.bs "$T/q.bs" \
		--no-quantize --mean 0.2 --std 0.3 --tol-levels 0.5
	assert_success
	# the check can fail: wrong normalisation parameters are caught
	run "$PYTHON" "$OLDPWD/tests/python/prep_reference.py" manifest.bs "$T/b.bs" --mean 0.45
	assert_failure
}

@test "bio-prep: JPEG samples match PIL within one gray level" {
	cd "$FIXL"
	bio-prep -o "$T/l.bs" manifest.bs
	run "$PYTHON" "$OLDPWD/tests/python/prep_reference.py" manifest.bs "$T/l.bs" --min-exact 0.99
	assert_success
}

@test "bio-prep: shards joined with cat hold the same samples as one run" {
	cd "$FIX"
	bio-prep -j2 -o "$T/all.bs" manifest.bs
	for i in 0 1 2 3 4; do bio-prep -j1 --shard $i/5 -o "$T/p$i.bs" manifest.bs; done
	run stream_summary "$T/p1.bs"
	assert_output "samples 7 0"  # records 1, 6, 11, ..., 31
	cat "$T"/p0.bs "$T"/p1.bs "$T"/p2.bs "$T"/p3.bs "$T"/p4.bs > "$T/joined.bs"
	run "$PYTHON" - "$T/all.bs" "$T/joined.bs" <<'EOF'
import sys, msgpack
def recs(p):
    objs = list(msgpack.Unpacker(open(p, "rb"), raw=False))
    return sorted((o for o in objs if "id" in o), key=lambda r: r["id"])
a, b = recs(sys.argv[1]), recs(sys.argv[2])
assert len(a) == 36 and a == b, (len(a), len(b))
print("same")
EOF
	assert_output "same"
	# every reader takes the joined file as one stream
	run bio-batch --batch-size 5 -o "$T/batches.bs" "$T/joined.bs"
	assert_success
	run bio-batch --batch-size 5 "$T"/p0.bs "$T"/p1.bs "$T"/p2.bs "$T"/p3.bs "$T"/p4.bs
	assert_success
	cd "$OLDPWD"
	check_samples "$T/joined.bs" 36
}

@test "bio-prep: make prep-sharded runs the shards through GNU parallel" {
	cd "$FIX"
	# the bio-prep under test (no rebuild); a clean make environment
	local mk="env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C $OLDPWD BUILD=$BIO_BUILD BIO_PREP=$(command -v bio-prep)"
	run $mk prep-sharded MANIFEST="$FIX/manifest.bs" OUT="$T/sh.bs" SHARDS=3 \
		PREP_FLAGS="--root $FIX"
	assert_success
	bio-prep -o "$T/one.bs" manifest.bs
	run "$PYTHON" - "$T/one.bs" "$T/sh.bs" <<'EOF'
import sys, msgpack
def recs(p):
    return sorted((o for o in msgpack.Unpacker(open(p, "rb"), raw=False) if "id" in o),
                  key=lambda r: r["id"])
assert recs(sys.argv[1]) == recs(sys.argv[2])
print("same")
EOF
	assert_output "same"
	run ls "$T"
	refute_output --partial "shards"
	# a failing shard fails the target and leaves no OUT
	run $mk prep-sharded MANIFEST="$FIX/manifest.bs" OUT="$T/bad.bs" SHARDS=3 \
		PREP_FLAGS="--root /nonexistent"
	assert_failure
	[ ! -e "$T/bad.bs" ]
}

@test "bio-prep: --root resolves relative paths from elsewhere" {
	cd "$FIX"
	bio-prep -o "$T/here.bs" manifest.bs
	cd "$T"
	run bio-prep -o "$T/root.bs" "$FIX/manifest.bs"
	assert_failure 1
	assert_output --partial "img/"
	bio-prep --root "$FIX" -o "$T/root.bs" "$FIX/manifest.bs"
	cmp "$T/here.bs" "$T/root.bs"
}

@test "bio-prep: a missing image names the file, exit 1, no output left" {
	cp -r "$FIX" "$T/m"
	cd "$T/m"
	rm img/iris_0005.*
	echo "good old content" > out.bs
	run bio-prep -j2 -o out.bs manifest.bs
	assert_failure 1
	assert_output --partial "bio-prep: img/iris_0005."
	[ "$(wc -l <<< "$output")" -eq 1 ]
	[ "$(cat out.bs)" = "good old content" ]
	run ls -a
	refute_output --partial "out.bs."
}

@test "bio-prep: a corrupt image fails the run; --keep-going skips and counts it" {
	cp -r "$FIX" "$T/c"
	cd "$T/c"
	f=$(ls img/fingerprint_0003.*)
	head -c 60 "$f" > "$f.tmp" && mv "$f.tmp" "$f"
	run bio-prep -o out.bs manifest.bs
	assert_failure 1
	assert_output --partial "bio-prep: $f: "
	[ ! -e out.bs ]
	run bio-prep -j2 --keep-going -o out.bs manifest.bs
	assert_failure 1
	assert_output --partial "bio-prep: $f: "
	assert_output --partial "1 samples failed"
	run stream_summary out.bs
	assert_output "samples 35 1"
	run bio-prep -j2 --keep-going --max-failures 1 -o out2.bs manifest.bs
	assert_success
	assert_output --partial "$f"
	# the same records (the headers differ: prep.max_failures is part of the prep config digest)
	diff <(bio-dump out.bs | tail -n +2) <(bio-dump out2.bs | tail -n +2)
	run bio-prep --keep-going --set prep.max_failures=1 manifest.bs
	assert_success
}

@test "bio-prep: bad manifests are errors naming the input" {
	cd "$FIX"
	head -c 300 manifest.bs > "$T/trunc.bs"
	run bio-prep -o "$T/o.bs" "$T/trunc.bs"
	assert_failure 1
	assert_output --partial "trunc.bs"
	[ ! -e "$T/o.bs" ]
	bio-prep -o "$T/s.bs" manifest.bs
	run bio-prep "$T/s.bs"
	assert_failure 1
	assert_output --partial "s.bs"
	run bio-prep "$T/none.bs"
	assert_failure 1
	assert_output --partial "none.bs"
}

@test "bio-prep: a full disk is an error (exit 1)" {
	cd "$FIX"
	run bash -c 'bio-prep manifest.bs > /dev/full'
	assert_failure 1
	assert_output --partial "bio-prep: "
	[ "$(wc -l <<< "$output")" -eq 1 ]
}

@test "bio-prep: the man page's EXAMPLES run" {
	cp -r "$FIX" "$T/ex"
	cd "$T/ex"
	sed -n '/^\.EX/,/^\.EE/p' "$OLDPWD/man/man1/bio-prep.1" | sed -n 's/^\$ //p' > examples.sh
	[ "$(wc -l < examples.sh)" -ge 5 ]
	run bash -e examples.sh
	assert_success
	for f in samples.bs joined.bs batches.bs small.bs part0.bs part3.bs; do [ -s "$f" ]; done
	run stream_summary small.bs
	assert_output "samples 36 0"
}

@test "bio-prep: the real FVC2002 DB1_B and DB2_B TIFFs prepare exactly as PIL does" {
	[ -d ../shared/data/real/fvc2002_db1_b ] || skip "no ../shared/data/real"
	for db in db1 db2; do
		bio-scan -c configs/datasets/fvc2002_$db.yaml -o "$T/$db.bs" 2>/dev/null
		bio-prep -c configs/datasets/fvc2002_$db.yaml -j2 -o "$T/${db}s.bs" "$T/$db.bs"
		run "$PYTHON" tests/python/prep_reference.py "$T/$db.bs" "$T/${db}s.bs" --min-exact 0.999
		assert_success
		assert_output --partial "ok: 80 samples"
	done
}

@test "bio-prep: a manifest with a label outside its names or a modality twice is refused; so is an RLE BMP run past its row" {
	cd "$FIX"
	T="$BATS_TEST_TMPDIR"
	mutated manifest.bs 'recs[2]["label"] = len(meta["labels"])'
	run bio-prep -o "$T/o.bs" "$T/bad.bs"
	assert_failure 1
	assert_output --regexp "^bio-prep: $T/bad.bs: record 2: key 'label': label [0-9]+ outside the [0-9]+ label names of the header$"
	refuses_each manifest.bs bio-prep -o "$T/o.bs" "$T/bad.bs" <<'EOF'
meta["modalities"] = ["iris", "iris"]|partial|'iris' is listed twice
meta["modalities"] = ["iris", "split"]|partial|'split' is a reserved record key
EOF
	[ ! -e "$T/o.bs" ]
	cp "$OLDPWD/tests/bad/image/bmp_rle8_run_overflow.bmp" "$T/rle.bmp"
	mutated manifest.bs "recs[0][\"iris\"] = \"$T/rle.bmp\""
	run bio-prep -o "$T/o.bs" "$T/bad.bs"
	assert_failure 1
	assert_output --partial "rle.bmp: BMP RLE run of 6 pixels at x=0 overflows row 0 (width 4)"
	[ ! -e "$T/o.bs" ]
}

@test "bio-prep: image limits are config keys, checked from the header before the file is read" {
	d="$BATS_TEST_TMPDIR/big"
	mkdir -p "$d/iris" "$d/fingerprint"
	# a 12000x12000 8-bit BMP, 144 MB, sparse: inside the 16384 sides, over the 64 Mpx default
	"${PYTHON:-/usr/bin/python3}" - "$d/iris/001_L_01.bmp" <<'PY'
import struct, sys
w = h = 12000
row = (w + 3) // 4 * 4
size = 54 + 1024 + row * h
hdr = b"BM" + struct.pack("<IHHI", size, 0, 0, 54 + 1024) + \
      struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, row * h, 2835, 2835, 256, 0)
with open(sys.argv[1], "wb") as f:
    f.write(hdr + bytes(1024))
    f.truncate(size)
PY
	cp "$d/iris/001_L_01.bmp" "$d/fingerprint/001_L_thumb_01.bmp"
	bio-scan -o "$d/m.bs" "$d" 2>/dev/null
	run /usr/bin/time -f "rss %M" bio-prep -j1 -o "$d/s.bs" "$d/m.bs"
	assert_failure 1
	assert_output --partial "BMP image of 12000x12000 exceeds the limit of 67108864 pixels"
	rss=$(sed -n 's/^rss \([0-9]*\)$/\1/p' <<<"$output")
	[ "$rss" -lt 40000 ] || { echo "refusing it cost $rss KiB"; false; }
	[ ! -e "$d/s.bs" ]
	# the limits are keys: a smaller file limit refuses it on its size, a smaller side limit too
	run bio-prep --set prep.max_file_bytes=1000000 -o "$d/s.bs" "$d/m.bs"
	assert_failure 1
	assert_output --partial "exceeds the limit of 1000000 bytes"
	run bio-prep --set prep.max_width=8000 -o "$d/s.bs" "$d/m.bs"
	assert_failure 1
	assert_output --partial "exceeds the limit of 8000x16384"
	# stream bounds stop at the 256 MiB the manual gives
	run bio-prep --set stream.max_tensor_bytes=2000000000 "$d/m.bs"
	assert_failure 1
	assert_output --partial "stream.max_tensor_bytes: 2000000000 is out of range [1, 268435456]"
}

# segmented_any_j MOD SAMPLES: 3 subjects x SAMPLES drawn into $T/d and scanned into $T/m.bs,
# MOD segmented by -j1 into $T/s1.bs and by -j3 into $T/s3.bs, the same bytes
segmented_any_j() {
	bio-synth --subjects 3 --samples "$2" -o "$T/d" 2>/dev/null
	bio-scan --set scan.root="$T/d" -o "$T/m.bs" 2>/dev/null
	bio-prep --set "prep.$1.segment=true" -j1 -o "$T/s1.bs" "$T/m.bs"
	bio-prep --set "prep.$1.segment=true" -j3 -o "$T/s3.bs" "$T/m.bs"
	cmp "$T/s1.bs" "$T/s3.bs"
}

@test "bio-prep: fingerprint segmentation (prep.fingerprint.segment) gives numpy's crop, contrast and bytes; -j does not change them" {
	segmented_any_j fingerprint 3
	run "$PYTHON" tests/python/segment_reference.py "$T/m.bs" "$T/s1.bs"
	assert_success
	assert_output --partial "ok: 18 samples"
	bio-prep --set prep.fingerprint.segment=true --set prep.fingerprint.block=8 \
		--set prep.fingerprint.threshold=0.5 --set prep.fingerprint.margin=0 -o "$T/s8.bs" "$T/m.bs"
	run "$PYTHON" tests/python/segment_reference.py "$T/m.bs" "$T/s8.bs" --block 8 \
		--threshold 0.5 --margin 0
	assert_success
	# the header names what was done; the iris is left as it was
	run "$PYTHON" - "$T/s1.bs" "$T/s8.bs" <<'PY'
import sys, msgpack
h = next(iter(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)))
print(sorted(h["meta"]["segment"]), h["meta"]["segment"]["fingerprint"]["block"])
PY
	assert_output "['fingerprint'] 16"
	bio-prep -o "$T/plain.bs" "$T/m.bs"
	run "$PYTHON" tests/python/prep_reference.py "$T/m.bs" "$T/plain.bs"
	assert_success
}

@test "bio-prep: iris segmentation (prep.iris.segment) records the circles and unwraps a strip; -j does not change the bytes" {
	segmented_any_j iris 2
	run "$PYTHON" - "$T/s1.bs" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
h, recs, t = objs[0], objs[1:-1], objs[-1]
print(sorted(h["meta"]["segment"]), h["meta"]["segment"]["iris"]["strip"])
ok = 0
for r in recs:
    s = r["segment"]["iris"]
    (px, py, pr), (ix, iy, ir) = s["pupil"], s["iris"]
    ok += 5 < pr < ir < 64 and abs(px - ix) < 0.15 * ir and abs(py - iy) < 0.15 * ir
print(len(recs), ok, t["segment_failed"])
PY
	assert_success
	assert_line --index 0 "['iris'] [32, 128]"
	assert_line --index 1 "12 12 0"
	# a different strip changes the samples, not their shape
	bio-prep --set prep.iris.segment=true --set prep.iris.strip_height=16 -o "$T/s16.bs" "$T/m.bs"
	! cmp -s "$T/s1.bs" "$T/s16.bs"
	run bio-prep --set prep.iris.strip_width=2 -o "$T/x.bs" "$T/m.bs"
	assert_failure
	assert_output --partial "prep.iris.strip_width"
}

# segment_refuses MOD GRAY KEEP_GOING_OPTS EXPECT...: in a set of 2 x 2 subjects and samples
# ($T/d, scanned into $T/m.bs) the first MOD image made flat GRAY (its name in f): segmenting MOD
# fails with one line naming the file and each EXPECT and writes nothing; with --keep-going
# --max-failures 1 (and KEEP_GOING_OPTS) the trailer counts 7 records, 1 failed, 1 segment_failed
segment_refuses() {
	local mod=$1 gray=$2 kopts=$3 e
	shift 3
	bio-synth --subjects 2 --samples 2 -o "$T/d" 2>/dev/null
	f=$(ls "$T/d/$mod" | head -1)
	"$PYTHON" -c 'import sys; from PIL import Image; Image.new("L", (128, 128), int(sys.argv[2])).save(sys.argv[1])' "$T/d/$mod/$f" "$gray"
	bio-scan --set scan.root="$T/d" -o "$T/m.bs" 2>/dev/null
	run bio-prep --set "prep.$mod.segment=true" -o "$T/s.bs" "$T/m.bs"
	assert_failure 1
	assert_output --partial "$f"
	for e in "$@"; do
		assert_output --partial "$e"
	done
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "$T/s.bs" ]
	# shellcheck disable=SC2086
	run bio-prep -k --max-failures 1 --set "prep.$mod.segment=true" $kopts -o "$T/s.bs" "$T/m.bs"
	assert_success
	run "$PYTHON" - "$T/s.bs" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
t = objs[-1]
print(t["end"], t["failed"], t["segment_failed"])
PY
	assert_output "7 1 1"
}

@test "bio-prep: an iris image with no pupil fails naming the file and the key; --keep-going counts it in segment_failed" {
	segment_refuses iris 120 -j3 "iris segmentation failed" "prep.iris.segment"
}

@test "bio-prep: the real FVC2002 prints segment as numpy does" {
	[ -d ../shared/data/real/fvc2002_db1_b ] || skip "no ../shared/data/real"
	for db in db1 db2; do
		bio-scan -c configs/datasets/fvc2002_$db.yaml -o "$T/$db.bs" 2>/dev/null
		bio-prep -c configs/datasets/fvc2002_$db.yaml --set prep.fingerprint.segment=true \
			-j2 -o "$T/${db}s.bs" "$T/$db.bs"
		run "$PYTHON" tests/python/segment_reference.py "$T/$db.bs" "$T/${db}s.bs"
		assert_success
		assert_output --partial "ok: 80 samples"
	done
}

@test "bio-prep: a print with no foreground fails naming the file and the key; --keep-going counts it in segment_failed" {
	segment_refuses fingerprint 200 "" "prep.fingerprint.min_foreground"
	# absurd settings are one line naming the key
	run bio-prep --set prep.fingerprint.block=2 -o "$T/x.bs" "$T/m.bs"
	assert_failure
	assert_output --partial "prep.fingerprint.block"
	run bio-prep --set prep.fingerprint.threshold=1.5 -o "$T/x.bs" "$T/m.bs"
	assert_failure
	assert_output --partial "prep.fingerprint.threshold"
}
