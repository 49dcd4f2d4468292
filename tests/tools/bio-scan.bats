#!/usr/bin/env bats
# bio-scan: help and exit codes, error messages, parsing/pairing/labels/splits on generated
# layouts, the real FVC2002 sets and their chimeric pairing, the MMU1 and CASIA-IrisV1 layouts
# built from synthetic irises, determinism, atomic output, and the man page's EXAMPLES.

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
	PYTHON="${PYTHON:-/usr/bin/python3}"
	T="$BATS_TEST_TMPDIR"
	FVC1="$REPO/../shared/data/real/fvc2002_db1_b"
	FVC2="$REPO/../shared/data/real/fvc2002_db2_b"
}

# mpy FILE CODE: loads manifest FILE as h (header), meta, recs, tr (trailer), checks the frame,
# then runs the Python CODE (assertions, prints).
mpy() {
	if [ -f "$REPO/tests/python/check_stream.py" ]; then
		"$PYTHON" "$REPO/tests/python/check_stream.py" "$1" --kind manifest >&2 || return 1
	fi
	"$PYTHON" - "$1" "$2" <<'EOF'
import sys, msgpack
path, code = sys.argv[1], sys.argv[2]
with open(path, 'rb') as f:
    objs = list(msgpack.Unpacker(f, raw=False, strict_map_key=True))
h, recs, tr = objs[0], objs[1:-1], objs[-1]
assert h['bio-stream'] == 1 and h['kind'] == 'manifest', h
assert tr == {'end': len(recs)}, tr
meta = h['meta']
mods = meta['modalities']
for r in recs:
    assert set(r) == {'id', 'label', 'identity', 'split'} | set(mods) | {'fields'}, r
    assert meta['labels'][r['label']] == r['identity'], r
    assert r['split'] in ('train', 'val', 'test'), r
assert len({r['id'] for r in recs}) == len(recs), 'ids not unique'
assert [r['label'] for r in recs] == sorted(r['label'] for r in recs)
exec(code)
EOF
}

# synth_tree DIR SUBJECTS SAMPLES [SKIP]: empty files in bio-synth's layout, sample SKIP of the
# fingerprints left out, created in reverse order (the scan must not depend on readdir order).
synth_tree() {
	local d=$1 n=$2 k=$3 skip=${4:-0} s e i
	local -a ir=() fp=()
	mkdir -p "$d/iris" "$d/fingerprint"
	for ((s = n; s >= 1; s--)); do for e in R L; do for ((i = k; i >= 1; i--)); do
		ir+=("$d/iris/$(printf '%03d_%s_%02d' $s $e $i).bmp")
		[ $i -eq "$skip" ] || fp+=("$d/fingerprint/$(printf '%03d_%s_thumb_%02d' $s $e $i).BMP")
	done; done; done
	touch "${ir[@]}"
	[ ${#fp[@]} -eq 0 ] || touch "${fp[@]}"
}

# real_irises DIR SUBJECTS SAMPLES: decodable iris images DIR/iris/<s>_<L|R>_<nn>.bmp, from
# bio-synth when it is built, else small gray BMPs written with PIL.
real_irises() {
	local d=$1 n=$2 k=$3
	if [ -x "$BIO_BUILD/bin/bio-synth" ] &&
		"$BIO_BUILD/bin/bio-synth" --set synth.subjects="$n" --set synth.samples="$k" \
			--set synth.size=32 -o "$d" 2>/dev/null &&
		[ "$(ls "$d/iris" | wc -l)" -eq $((n * 2 * k)) ]; then
		return 0
	fi
	rm -rf "$d"
	"$PYTHON" - "$d" "$n" "$k" <<'EOF'
import os, sys
from PIL import Image
d, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d + '/iris')
for s in range(1, n + 1):
    for e in 'LR':
        for i in range(1, k + 1):
            im = Image.new('L', (8, 8), (s * 37 + i * 11 + (e == 'R') * 5) % 256)
            im.save('%s/iris/%03d_%s_%02d.bmp' % (d, s, e, i))
EOF
}

@test "--help prints usage and the common options on stdout" {
	run --separate-stderr bio-scan --help
	assert_success
	assert_output --partial 'Usage: bio-scan [OPTIONS] [ROOT]'
	assert_output --partial '--print-config'
	assert_output --partial 'scan.split.{mode,val,test,seed}'
	[ -z "$stderr" ]
	run bio-scan --version
	assert_success
	assert_output --regexp '^bio-scan \(biopipe\) [0-9]'
}

@test "usage errors exit 2" {
	run bio-scan --no-such-option
	assert_failure 2
	assert_line "Try 'bio-scan --help'."
	run bio-scan a b
	assert_failure 2
	assert_line --index 0 'bio-scan: one data root expected, got 2 arguments'
}

@test "missing root: one line naming it, exit 1, no output" {
	cd "$T"
	run --separate-stderr bio-scan data/x
	assert_failure 1
	[ "$stderr" = "bio-scan: data/x: No such file or directory" ]
	[ -z "$output" ]
	mkdir -p r/iris
	run --separate-stderr bio-scan r
	assert_failure 1
	[ "$stderr" = "bio-scan: r/fingerprint: No such file or directory" ]
	run bio-scan -o out.bs data/x
	assert_failure 1
	[ ! -e out.bs ]
}

# scan_refuses FILE TEXT: bio-scan of the tree d with the config FILE holding TEXT (a printf
# format) exits 1
scan_refuses() {
	# shellcheck disable=SC2059
	printf "$2" >"$1"
	run bio-scan -c "$1" d
	assert_failure 1
}

@test "bad regex and group errors name the config key and file:line" {
	cd "$T"
	synth_tree d 1 2
	scan_refuses bad.yaml 'scan:\n  iris:\n    pattern: "^([0-9]+_([LR])"\n'
	assert_output --regexp "^bio-scan: bad.yaml:3: scan.iris.pattern: invalid regular expression '\^\(\[0-9\]\+_\(\[LR\]\)': "
	scan_refuses groups.yaml 'scan:\n  fingerprint:\n    pattern: "^([0-9]+)_(.*)$"\n'
	assert_output --regexp "^bio-scan: configs/base.yaml:[0-9]+: scan.fingerprint.fields: names 4 capture groups but the pattern has 2 \\(field 'finger' would be group 3\\); scan.fingerprint.pattern is from groups.yaml:3\$"
	scan_refuses fields.yaml 'scan:\n  iris:\n    fields: [subject, side, sample, ext, more]\n'
	assert_output --regexp "^bio-scan: fields.yaml:3: scan.iris.fields: names 5 capture groups but the pattern has 4 \\(field 'more' would be group 5\\); scan.iris.pattern is from configs/base.yaml:[0-9]+\$"
	scan_refuses ident.yaml 'scan:\n  identity: [subject, eye]\n'
	assert_output "bio-scan: ident.yaml:2: scan.identity: field 'eye' is not among the fields of modality 'iris'"
	run bio-scan --set scan.split.mode=random d
	assert_failure 1
	assert_output "bio-scan: --set: scan.split.mode: expected stratified or disjoint, got 'random'"
	run bio-scan --set scan.modalities=[face] d
	assert_failure 1
	assert_output --partial "scan.modalities: modality 'face' has no settings"
}

@test "synthetic layout: pairs, labels, paths, fields; unparsed and unpaired counted" {
	cd "$T"
	synth_tree d 3 4 4
	touch d/iris/notes.txt
	run --separate-stderr bio-scan -o m.bs d
	assert_success
	[ "$stderr" = "bio-scan: 1 file unparsed, 6 unpaired (use -v to list)" ]
	mpy m.bs '
assert mods == ["iris", "fingerprint"]
assert meta["labels"] == ["001_L", "001_R", "002_L", "002_R", "003_L", "003_R"], meta["labels"]
assert meta["program"] == "bio-scan" and len(meta["config_digest"]) == 64
assert meta["root"] == "d" and meta["identity"] == ["subject", "side"]
c = meta["counts"]
assert (c["files"], c["unparsed"], c["unpaired"], c["records"]) == (43, 1, 6, 18), c
assert len(recs) == 18
r = recs[0]
assert r["id"] == "001_L/01" and r["label"] == 0, r
assert r["iris"] == "d/iris/001_L_01.bmp" and r["fingerprint"] == "d/fingerprint/001_L_thumb_01.BMP", r
assert r["fields"]["fingerprint"] == {"subject": "001", "side": "L", "finger": "thumb", "sample": "01"}, r
for r in recs:
    s = r["fields"]["iris"]
    assert r["identity"] == s["subject"] + "_" + s["side"]
    assert r["fields"]["fingerprint"]["sample"] == s["sample"] != "04"
'
	run --separate-stderr bio-scan -v d
	assert_success
	grep -qx 'bio-scan: unparsed: d/iris/notes.txt' <<<"$stderr"
	grep -qx 'bio-scan: unpaired: d/iris/002_R_04.bmp (no fingerprint with the same identity and key)' <<<"$stderr"
	[ "$(grep -c '^bio-scan: unpaired: ' <<<"$stderr")" -eq 6 ]
	grep -qx 'bio-scan: 1 file unparsed, 6 unpaired' <<<"$stderr"
	grep -qx 'bio-scan: 18 records, 6 identities; train 12, val 6, test 0' <<<"$stderr"
}

@test "clean scan is quiet; output is identical across runs and readdir orders" {
	cd "$T"
	synth_tree d 4 5
	run --separate-stderr bio-scan -o a.bs d
	assert_success
	[ -z "$stderr" ]
	rm -rf d
	# the same tree created in the opposite order
	mkdir -p d/iris d/fingerprint
	(cd d && touch $("$PYTHON" -c "
for s in range(1,5):
  for e in 'LR':
    for i in range(1,6):
      print('iris/%03d_%s_%02d.bmp' % (s,e,i)); print('fingerprint/%03d_%s_thumb_%02d.BMP' % (s,e,i))"))
	bio-scan d > b.bs
	cmp a.bs b.bs
	bio-scan -o c.bs d
	cmp a.bs c.bs
}

@test "stratified split: fractions per identity, at least one train sample, seeded" {
	cd "$T"
	synth_tree d 5 10
	bio-scan --set scan.split.val=0.2 --set scan.split.test=0.1 d > a.bs
	bio-scan --set scan.split.val=0.2 --set scan.split.test=0.1 --set scan.split.seed=8 d > b.bs
	mpy a.bs '
from collections import Counter
per = {}
for r in recs:
    per.setdefault(r["label"], Counter())[r["split"]] += 1
assert len(per) == 10
for c in per.values():
    assert (c["train"], c["val"], c["test"]) == (7, 2, 1), c
assert meta["split"] == {"mode": "stratified", "val": 0.2, "test": 0.1, "seed": 7}, meta["split"]
open("a.splits", "w").write(" ".join(r["split"] for r in recs))
'
	mpy b.bs 'open("b.splits", "w").write(" ".join(r["split"] for r in recs))'
	! cmp -s a.splits b.splits || false
	# tiny identities keep their one sample for training
	synth_tree e 2 1
	bio-scan --set scan.split.val=0.5 --set scan.split.test=0.5 e > e.bs
	mpy e.bs 'assert [r["split"] for r in recs] == ["train"] * 4'
}

@test "disjoint split: whole identities per split" {
	cd "$T"
	synth_tree d 10 3
	bio-scan --set scan.split.mode=disjoint --set scan.split.val=0.25 --set scan.split.test=0.25 d > a.bs
	mpy a.bs '
from collections import Counter
split_of = {}
for r in recs:
    assert split_of.setdefault(r["identity"], r["split"]) == r["split"], r
c = Counter(split_of.values())
assert (c["train"], c["val"], c["test"]) == (10, 5, 5), c
assert meta["counts"]["val"] == 15 and meta["counts"]["test"] == 15
'
}

@test "FVC2002 DB1 and DB2: 10 fingers x 8 impressions, labels 101..110" {
	[ -d "$FVC1" ] && [ -d "$FVC2" ] || skip "no shared FVC2002 data"
	cd "$REPO"
	for db in 1 2; do
		run --separate-stderr bio-scan -c configs/datasets/fvc2002_db$db.yaml -o "$T/fvc$db.bs"
		assert_success
		[ -z "$stderr" ]
		mpy "$T/fvc$db.bs" "
assert mods == ['fingerprint']
assert meta['labels'] == [str(i) for i in range(101, 111)], meta['labels']
assert len(recs) == 80
from collections import Counter
assert set(Counter(r['label'] for r in recs).values()) == {8}
for r in recs:
    f = r['fields']['fingerprint']
    assert r['fingerprint'] == '../shared/data/real/fvc2002_db${db}_b/%s_%s.tif' % (f['finger'], f['impression']), r
    assert r['identity'] == f['finger'] and r['id'] == f['finger'] + '/' + f['impression']
assert [r['fields']['fingerprint']['impression'] for r in recs[:8]] == [str(i) for i in range(1, 9)]
assert Counter(r['split'] for r in recs) == {'train': 60, 'val': 20}
"
	done
	# the same data given as ROOT from elsewhere
	cd "$T"
	bio-scan -c "$REPO/configs/datasets/fvc2002_db1.yaml" "$FVC1" > abs.bs
	mpy abs.bs 'assert len(recs) == 80 and recs[0]["fingerprint"].endswith("fvc2002_db1_b/101_1.tif")'
}

@test "chimeric: FVC2002 fingers paired with synthetic irises by rank" {
	[ -d "$FVC1" ] || skip "no shared FVC2002 data"
	synth_tree "$T/s" 6 9  # 12 iris identities x 9 samples
	cd "$REPO"
	for db in 1 2; do
		run --separate-stderr bio-scan -c configs/datasets/fvc2002_db${db}_chimeric.yaml -o "$T/c.bs" "$T/s"
		assert_success
		# 2 iris identities beyond the 10 fingers (18 files), 1 extra sample per paired one (10)
		[ "$stderr" = "bio-scan: 0 files unparsed, 28 unpaired (use -v to list)" ]
		mpy "$T/c.bs" "
assert mods == ['iris', 'fingerprint'] and meta['chimeric'] is True
L = meta['labels']
assert L[0] == '001_L+101' and L[1] == '001_R+102' and L[9] == '005_R+110' and len(L) == 10, L
assert len(recs) == 80
for r in recs:
    i, f = r['fields']['iris'], r['fields']['fingerprint']
    assert r['identity'] == i['subject'] + '_' + i['side'] + '+' + f['finger']
    assert int(i['sample']) == int(f['impression']), r   # rank pairing: both 1..8
    assert r['fingerprint'].startswith('../shared/data/real/fvc2002_db${db}_b/')
assert meta['layout']['iris']['root'] == '$T/s'
"
	done
	run --separate-stderr bio-scan -v -c configs/datasets/fvc2002_db1_chimeric.yaml "$T/s"
	grep -qx "bio-scan: unpaired: $T/s/iris/006_R_09.bmp (chimeric: no partner identity)" <<<"$stderr"
	grep -qx "bio-scan: unpaired: $T/s/iris/001_L_09.bmp (chimeric: the partner identity has fewer samples)" <<<"$stderr"
}

@test "MMU1 layout built from synthetic irises scans and prepares" {
	cd "$T"
	real_irises src 3 5
	# <person>/<left|right>/<name><l|r><n>.bmp
	names=(aeval bryan chingycc)
	for f in src/iris/*; do
		b=$(basename "$f" .bmp)
		s=$((10#${b%%_*})); e=$(cut -d_ -f2 <<<"$b"); k=$((10#${b##*_}))
		p=${names[$((s - 1))]}
		if [ "$e" = L ]; then side=left; c=l; else side=right; c=r; fi
		mkdir -p "mmu/$p/$side"
		cp "$f" "mmu/$p/$side/$p$c$k.bmp"
	done
	touch mmu/aeval/Thumbs.db
	run --separate-stderr bio-scan -c "$REPO/configs/datasets/mmu1.yaml" -o mmu.bs mmu
	assert_success
	[ "$stderr" = "bio-scan: 1 file unparsed, 0 unpaired (use -v to list)" ]
	mpy mmu.bs '
assert mods == ["iris"]
assert meta["labels"] == ["aeval_left", "aeval_right", "bryan_left", "bryan_right", "chingycc_left", "chingycc_right"], meta["labels"]
assert len(recs) == 30
assert recs[0]["iris"] == "mmu/aeval/left/aevall1.bmp" and recs[0]["id"] == "aeval_left/1", recs[0]
assert recs[0]["fields"]["iris"] == {"person": "aeval", "eye": "left", "sample": "1"}
'
	bio-prep --set prep.size=8 mmu.bs > samples.bs
	"$PYTHON" -c "
import msgpack
o = list(msgpack.Unpacker(open('samples.bs', 'rb'), raw=False))
assert o[0]['kind'] == 'samples' and o[-1]['end'] == 30 and o[-1].get('failed', 0) == 0, o[-1]
"
}

@test "CASIA-IrisV1 layouts (flat and with session folders) built from synthetic irises" {
	cd "$T"
	real_irises src 2 6
	# <class>/<NNN>_<session>_<k>.bmp: class = subject*2 + eye, samples 1-3 session 1, 4-6 session 2
	for f in src/iris/*; do
		b=$(basename "$f" .bmp)
		s=$((10#${b%%_*})); e=$(cut -d_ -f2 <<<"$b"); k=$((10#${b##*_}))
		[ "$e" = R ] && c=$(printf '%03d' $((s * 2))) || c=$(printf '%03d' $((s * 2 - 1)))
		ses=$(((k - 1) / 3 + 1)); n=$(((k - 1) % 3 + 1))
		mkdir -p "flat/$c" "nested/$c/$ses"
		cp "$f" "flat/$c/${c}_${ses}_$n.bmp"
		cp "$f" "nested/$c/$ses/${c}_${ses}_$n.bmp"
	done
	for layout in flat nested; do
		run --separate-stderr bio-scan -c "$REPO/configs/datasets/casia_iris_v1.yaml" -o $layout.bs $layout
		assert_success
		[ -z "$stderr" ]
		mpy $layout.bs '
assert meta["labels"] == ["001", "002", "003", "004"], meta["labels"]
assert len(recs) == 24
assert [r["id"] for r in recs[:6]] == ["001/1_1", "001/1_2", "001/1_3", "001/2_1", "001/2_2", "001/2_3"]
assert recs[0]["fields"]["iris"] == {"class": "001", "number": "001", "session": "1", "k": "1"}
'
	done
	bio-prep --set prep.size=8 nested.bs > samples.bs
	"$PYTHON" -c "
import msgpack
o = list(msgpack.Unpacker(open('samples.bs', 'rb'), raw=False))
assert o[-1]['end'] == 24, o[-1]
"
}

@test "bio-synth output scans with the default config" {
	[ -x "$BIO_BUILD/bin/bio-synth" ] || skip "bio-synth not built"
	cd "$T"
	bio-synth --set synth.subjects=3 --set synth.samples=4 --set synth.size=32 -o syn
	run --separate-stderr bio-scan -o m.bs syn
	assert_success
	[ -z "$stderr" ]
	mpy m.bs 'assert len(recs) == 24 and len(meta["labels"]) == 6, (len(recs), meta["labels"])'
}

@test "symlinks: links to files followed, links to folders skipped and listed" {
	cd "$T"
	synth_tree d 1 2
	mkdir other
	touch other/001_L_03.bmp other/001_L_thumb_03.BMP
	ln -s "$T/other/001_L_03.bmp" d/iris/001_L_03.bmp
	ln -s "$T/other/001_L_thumb_03.BMP" d/fingerprint/001_L_thumb_03.BMP
	ln -s "$T/other" d/iris/more
	run --separate-stderr bio-scan -v -o m.bs d
	assert_success
	grep -qx "bio-scan: skipped: d/iris/more (not a regular file or a link to one)" <<<"$stderr"
	grep -qx "bio-scan: 0 files unparsed, 0 unpaired, 1 skipped" <<<"$stderr"
	mpy m.bs 'assert len(recs) == 5 and recs[2]["iris"] == "d/iris/001_L_03.bmp", recs'
}

@test "duplicate keys are reported" {
	cd "$T"
	synth_tree d 1 2
	touch d/fingerprint/001_L_index_01.BMP
	run --separate-stderr bio-scan -o m.bs d
	assert_success
	[ "$stderr" = "bio-scan: 0 files unparsed, 0 unpaired, 1 duplicate (use -v to list)" ]
	run --separate-stderr bio-scan -v d
	grep -qx "bio-scan: duplicate: d/fingerprint/001_L_thumb_01.BMP (same identity and key as d/fingerprint/001_L_index_01.BMP)" <<<"$stderr"
}

@test "nothing to pair is an error; a full disk is an error" {
	cd "$T"
	mkdir -p e/iris e/fingerprint
	touch e/iris/x.txt
	run bio-scan -o m.bs e
	assert_failure 1
	assert_line 'bio-scan: e: no records (1 files, 1 unparsed, 0 unpaired)'
	[ ! -e m.bs ]
	synth_tree d 2 2
	run sh -c 'bio-scan d > /dev/full'
	assert_failure 1
	assert_output --partial 'bio-scan: '
	# a failed run leaves an existing output untouched
	bio-scan -o keep.bs d
	cp keep.bs keep.orig
	run bio-scan -o keep.bs nothere
	assert_failure 1
	cmp keep.bs keep.orig
}

@test "--print-config shows the scan section" {
	run bio-scan --print-config -c "$REPO/configs/datasets/mmu1.yaml"
	assert_success
	assert_output --partial 'person'
	assert_output --partial 'mmu1'
}

@test "man page: sections present and EXAMPLES run" {
	man="$REPO/man/man1/bio-scan.1"
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' EXAMPLES; do
		grep -q "^\.SH \"\?$s\"\?$" "$man"
	done
	[ -d "$FVC1" ] || skip "no shared FVC2002 data"
	# a sandbox laid out like the repository: configs/, ../shared/data/real, data/...
	mkdir -p "$T/shared/data" "$T/work"
	ln -s "$(cd "$FVC1/.." && pwd)" "$T/shared/data/real"
	ln -s "$REPO/configs" "$T/work/configs"
	cd "$T/work"
	synth_tree data/synth 10 8
	mkdir -p data/mmu1/aeval/left
	touch data/mmu1/aeval/left/aevall{1,2,3}.bmp
	sed -n '/^\.EX/,/^\.EE/p' "$man" | sed -n 's/^\$ //p' | sed 's/\\-/-/g; s/\\e/\\/g' > examples.sh
	[ "$(wc -l < examples.sh)" -ge 4 ]
	while IFS= read -r line; do
		echo "\$ $line"
		bash -e -o pipefail -c "$line"
	done < examples.sh
}
