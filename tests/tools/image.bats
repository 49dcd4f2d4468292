#!/usr/bin/env bats
# libbio's image module through the imgdump helper: decoding of every PNG/BMP/TIFF/JPEG variant
# and resizing compared with PIL 9.4 (tests/python/pil_compare.py), the writers read back by PIL,
# the real FVC2002 TIFFs, and the bad-input corpus tests/bad/image (one error line, exit 1, no
# output; rerun under ASan/UBSan by `make asan`).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
bats_require_minimum_version 1.5.0

setup() {
	cd "$BATS_TEST_DIRNAME/../.." || exit 1
	PYTHON="${PYTHON:-/usr/bin/python3}"
	IMGDUMP="${BIO_BUILD:-build}/tests/helpers/imgdump"
	T="$BATS_TEST_TMPDIR"
	REAL="../shared/data/real"
}

@test "imgdump: help, usage errors" {
	run "$IMGDUMP" --help
	assert_success
	assert_output --partial "usage: imgdump"
	run "$IMGDUMP"
	assert_failure 2
	run "$IMGDUMP" -r 0x3 x.png
	assert_failure 2
	run "$IMGDUMP" -f cubic x.png
	assert_failure 2
}

@test "decoders match PIL bit for bit on every PNG, BMP, TIFF and JPEG variant" {
	run "$PYTHON" tests/python/pil_compare.py decode "$IMGDUMP" "$T/fx"
	assert_success
	refute_output --partial "MISMATCH"
	assert_line --regexp "^decode PNG: ([0-9]+) files, \1 bit-exact, max difference 0$"
	assert_line --regexp "^decode BMP: ([0-9]+) files, \1 bit-exact, max difference 0$"
	assert_line --regexp "^decode TIFF: ([0-9]+) files, \1 bit-exact, max difference 0$"
	assert_line --regexp "^decode JPEG: ([0-9]+) files, \1 bit-exact, max difference 0$"
	# the fixtures really are the variants named (a few spot checks of what PIL sees)
	run "$PYTHON" -c '
import sys
from PIL import Image
for name in sys.argv[1:]:
    with Image.open(name) as im:
        print(name.rsplit("/", 1)[1], im.mode, getattr(im, "info", {}).get("compression", ""),
              im.info.get("interlace", 0))
' "$T/fx/png_gray16_i.png" "$T/fx/png_pal2.png" "$T/fx/bmp_rle4.bmp" "$T/fx/tif_I16.tif" \
		"$T/fx/bmp_rgba32_bf_v5_topdown.bmp"
	assert_success
	assert_line "png_gray16_i.png I  1"
	assert_line "png_pal2.png P  0"
	assert_line "bmp_rle4.bmp P 2 0"
	assert_line "tif_I16.tif I;16 raw 0"
	assert_line "bmp_rgba32_bf_v5_topdown.bmp RGBA 3 0"
}

@test "resize: floor(float + 0.5) equals PIL's BILINEAR and BOX result on many sizes" {
	run "$PYTHON" tests/python/pil_compare.py resize "$IMGDUMP" "$T/rz"
	assert_success
	refute_output --partial "MISMATCH"
	assert_output --regexp "rounded float == PIL for 1\.000000, max \|round\(f\) - PIL\| = 0"
	assert_output --partial "u8 mismatches 0, range ok True"
}

@test "writers: gray and RGB PNG/BMP written by libbio read back by PIL" {
	run "$PYTHON" tests/python/pil_compare.py writers "$IMGDUMP" "$T/wr"
	assert_success
	refute_output --partial "MISMATCH"
	assert_output "writers: 20 files written by libbio, read back by PIL"
	# no temporary files left beside the outputs
	run find "$T/wr" -name '*.tmp.*'
	assert_output ""
}

@test "writers: a full device fails with exit 1 and stays a device" {
	[ "$(id -u)" = 0 ] || skip "needs root to make a private full device"
	mknod "$T/full" c 1 7
	"$PYTHON" -c 'from PIL import Image; Image.new("L", (5, 4), 9).save("'"$T"'/in.png")'
	run "$IMGDUMP" -w "$T/full" "$T/in.png"
	assert_failure 1
	assert_output "imgdump: $T/full: No space left on device"
	[ -c "$T/full" ]
}

@test "real FVC2002 TIFFs decode and resize exactly as PIL does" {
	[ -d "$REAL" ] || skip "no real data at $REAL"
	run "$PYTHON" tests/python/pil_compare.py real "$IMGDUMP" "$REAL"
	assert_success
	refute_output --partial "MISMATCH"
	assert_line --regexp "^decode real: ([0-9]+) files, \1 bit-exact, max difference 0$"
	assert_output --regexp "resize real.*rounded float == PIL for 1\.000000"
}

@test "bad inputs: each gives one error line naming the file, exit 1, no output" {
	n=0
	for f in tests/bad/image/*; do
		for args in "" "-r 8x8" "-u -r 5x3 -f area"; do
			# shellcheck disable=SC2086
			run --separate-stderr "$IMGDUMP" $args "$f"
			if [ "$status" -ne 1 ] || [ -n "$output" ] || [ "${#stderr_lines[@]}" -ne 1 ] ||
				[[ "$stderr" != "imgdump: $f: "* ]]; then
				echo "$f ($args): status $status, stdout ${#output} bytes, stderr: $stderr"
				return 1
			fi
		done
		n=$((n + 1))
	done
	[ "$n" -ge 40 ]
}

@test "bad inputs: the error messages say what is wrong" {
	run "$IMGDUMP" tests/bad/image/bmp_truncated_pixels.bmp
	assert_failure 1
	assert_output "imgdump: tests/bad/image/bmp_truncated_pixels.bmp: truncated BMP pixel array (got 1024 of 76800 bytes)"
	local f msg
	while IFS='|' read -r f msg; do
		run "$IMGDUMP" "tests/bad/image/$f" </dev/null
		assert_failure 1
		assert_output --partial "$msg"
	done <<'EOF'
bmp_huge_dims.bmp|BMP image of 100000x100000 exceeds the limit
png_huge_dims.png|PNG image of 100000x100000 exceeds the limit
tif_huge_dims.tif|TIFF image of 100000x100000 exceeds the limit
bmp_rle8_run_overflow.bmp|BMP RLE run of 6 pixels at x=0 overflows row 0 (width 4)
bmp_rle8_absolute_overflow.bmp|BMP RLE run of 6 pixels at x=0 overflows row 0 (width 4)
tif_ifd_loop.tif|bad TIFF: the chain of IFDs loops back to offset
bmp_bad_palette_index.bmp|BMP palette index 200 out of range (16 colors)
png_bad_palette_index.png|PNG palette index 10 out of range (4 colors)
png_bad_crc_idat.png|IDAT: CRC error
png_bad_crc_ancillary.png|tEXt: CRC error
bmp_zero_width.bmp|BMP image has zero size (0x4)
jpg_truncated.jpg|truncated JPEG
EOF
	run "$IMGDUMP" tests/bad/image/garbage.bin
	assert_output "imgdump: tests/bad/image/garbage.bin: unknown image format (not BMP, PNG, TIFF or JPEG)"
	run "$IMGDUMP" /nonexistent/x.png
	assert_failure 1
	assert_output "imgdump: /nonexistent/x.png: No such file or directory"
}

@test "limits: a lower pixel limit refuses a larger image" {
	"$PYTHON" -c 'from PIL import Image; Image.new("RGB", (30, 20)).save("'"$T"'/a.jpg")'
	run "$IMGDUMP" --max-pixels 599 "$T/a.jpg"
	assert_failure 1
	assert_output "imgdump: $T/a.jpg: JPEG image of 30x20 exceeds the limit of 599 pixels"
	run "$IMGDUMP" --max-pixels 600 "$T/a.jpg"
	assert_success
}
