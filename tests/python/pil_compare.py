#!/usr/bin/python3
"""Compares libbio's image decoders, resizer and writers with PIL 9.4 (the reference the
preprocessing must match), through the imgdump test helper.

  pil_compare.py decode  IMGDUMP WORKDIR   fixtures of every PNG/BMP/TIFF/JPEG variant, written
                                           by PIL or by hand (struct/zlib), decoded by both
  pil_compare.py resize  IMGDUMP WORKDIR   BILINEAR and BOX on many sizes, up and down
  pil_compare.py writers IMGDUMP WORKDIR   libbio's PNG/BMP writers read back by PIL
  pil_compare.py real    IMGDUMP DIR...    every image under DIR: decode and 64x64 resizes
  pil_compare.py bad     OUTDIR            (re)writes the bad-input corpus (tests/bad/image)

Each prints one summary line per check and exits 1 when anything differs from PIL beyond the
tolerance (0 everywhere: decoding is bit-exact, and floor(resized + 0.5) must equal PIL's
uint8 result).
"""
import os
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
from PIL import Image

FAILED = []
warnings.filterwarnings("ignore")  # PIL's note on palette transparency


def fail(msg):
    FAILED.append(msg)
    print("MISMATCH: " + msg)


def run_imgdump(imgdump, args):
    p = subprocess.run([imgdump] + args, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"imgdump {' '.join(args)}: {p.stderr.decode().strip()}")
    return p.stdout


def parse_pgm(data):
    magic, dims, maxval, rest = data.split(b"\n", 3)
    assert magic == b"P5" and maxval == b"255", data[:20]
    w, h = map(int, dims.split())
    return np.frombuffer(rest, np.uint8).reshape(h, w)


def libbio_gray(imgdump, path):
    return parse_pgm(run_imgdump(imgdump, [path]))


def pil_gray(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


# ---------------------------------------------------------------- hand-written PNG

def png_chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_pack_rows(samples, bit_depth):
    """samples: (h, w*channels) ints -> list of packed row bytes."""
    rows = []
    for r in samples:
        if bit_depth == 16:
            rows.append(np.asarray(r, ">u2").tobytes())
        elif bit_depth == 8:
            rows.append(np.asarray(r, np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            n = (len(r) + per - 1) // per
            out = bytearray(n)
            for i, v in enumerate(r):
                out[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def write_png(path, samples, bit_depth, color_type, channels, palette=None, trns=None,
              interlace=False):
    """samples: (h, w, channels) array of sample values."""
    h, w = samples.shape[:2]
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for r in png_pack_rows(sub.reshape(sub.shape[0], -1), bit_depth):
                raw += b"\0" + r
    else:
        for r in png_pack_rows(samples.reshape(h, -1), bit_depth):
            raw += b"\0" + r
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                           1 if interlace else 0))
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(raw, 6))
    data += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def png_fixtures(d, rng):
    out = []
    for interlace in (False, True):
        il = "_i" if interlace else ""
        for depth in (1, 2, 4, 8, 16):
            s = rng.integers(0, 1 << depth, (13, 17, 1))
            p = f"{d}/png_gray{depth}{il}.png"
            write_png(p, s, depth, 0, 1, interlace=interlace)
            out.append(p)
        s = rng.integers(0, 256, (13, 17, 1))
        p = f"{d}/png_gray8_trns{il}.png"
        write_png(p, s, 8, 0, 1, trns=struct.pack(">H", 7), interlace=interlace)
        out.append(p)
        for depth in (8, 16):
            for ct, ch, nm in ((2, 3, "rgb"), (4, 2, "ga"), (6, 4, "rgba")):
                s = rng.integers(0, 1 << depth, (11, 19, ch))
                p = f"{d}/png_{nm}{depth}{il}.png"
                write_png(p, s, depth, ct, ch, interlace=interlace)
                out.append(p)
        s = rng.integers(0, 256, (11, 19, 3))
        p = f"{d}/png_rgb8_trns{il}.png"
        write_png(p, s, 8, 2, 3, trns=struct.pack(">HHH", 1, 2, 3), interlace=interlace)
        out.append(p)
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            pal = rng.integers(0, 256, (n, 3))
            s = rng.integers(0, n, (9, 23, 1))
            p = f"{d}/png_pal{depth}{il}.png"
            write_png(p, s, depth, 3, 1, palette=pal, interlace=interlace)
            out.append(p)
        pal = rng.integers(0, 256, (40, 3))
        s = rng.integers(0, 40, (9, 23, 1))
        p = f"{d}/png_pal8_short_trns{il}.png"
        write_png(p, s, 8, 3, 1, palette=pal, trns=bytes(range(0, 200, 10)), interlace=interlace)
        out.append(p)
    # written by PIL itself
    a = rng.integers(0, 256, (21, 31, 3), dtype=np.uint8)
    for mode in ("L", "RGB", "RGBA", "P", "1", "LA"):
        p = f"{d}/png_pil_{mode}.png"
        Image.fromarray(a).convert(mode).save(p)
        out.append(p)
    p = f"{d}/png_pil_I16.png"
    Image.fromarray(rng.integers(0, 600, (8, 9)).astype(np.uint16)).save(p)
    out.append(p)
    return out


# ---------------------------------------------------------------- hand-written BMP

def bmp_file(width, height, bits, pixel_rows, palette=None, header=40, compression=0,
             masks=None, top_down=False, n_colors=None, raw_pixels=None):
    """pixel_rows: list of packed, unpadded rows, top row first. Returns BMP bytes."""
    stride = ((width * bits + 31) // 32) * 4
    if raw_pixels is None:
        rows = [r + b"\0" * (stride - len(r)) for r in pixel_rows]
        if not top_down:
            rows = rows[::-1]
        pix = b"".join(rows)
    else:
        pix = raw_pixels
    pal = b""
    if palette is not None:
        entry = 3 if header == 12 else 4
        pal = b"".join(bytes([b, g, r] + [0] * (entry - 3)) for r, g, b in palette)
    extra = b""
    if header == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        h = -height if top_down else height
        info = struct.pack("<IiiHHIIiiII", header, width, h, 1, bits, compression, len(pix),
                           2835, 2835, n_colors if n_colors is not None else 0, 0)
        tail = b""
        if masks is not None and header == 40:
            extra = struct.pack("<III", *masks[:3])
        elif header > 40:
            m = list(masks) if masks is not None else [0, 0, 0, 0]
            m = (m + [0, 0, 0, 0])[:4]
            tail = struct.pack("<IIII", *m)
        info += tail
        info += b"\0" * (header - len(info))
    offset = 14 + len(info) + len(extra) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(pix), 0, 0, offset)
    return head + info + extra + pal + pix


def pack_bits(vals, bits):
    per = 8 // bits
    out = bytearray((len(vals) + per - 1) // per)
    for i, v in enumerate(vals):
        out[i // per] |= int(v) << (8 - bits * (i % per + 1))
    return bytes(out)


def rle_encode(idx, rle4):
    """Simple RLE8/RLE4 stream (bottom-up rows): runs of equal values, EOL per row, EOB."""
    out = bytearray()
    h, w = idx.shape
    for y in range(h - 1, -1, -1):
        r = idx[y]
        x = 0
        while x < w:
            n = 1
            while x + n < w and r[x + n] == r[x] and n < 255:
                n += 1
            v = int(r[x])
            out += bytes([n, (v << 4 | v) if rle4 else v])
            x += n
        out += b"\0\0"
    out += b"\0\1"
    return bytes(out)


def bmp_fixtures(d, rng):
    out = []

    def save(name, data):
        p = f"{d}/{name}.bmp"
        with open(p, "wb") as f:
            f.write(data)
        out.append(p)

    a = rng.integers(0, 256, (13, 19, 3), dtype=np.uint8)
    for mode in ("1", "L", "P", "RGB", "RGBA"):
        p = f"{d}/bmp_pil_{mode}.bmp"
        Image.fromarray(a).convert(mode).save(p)
        out.append(p)
    w, h = 21, 7
    for bits in (1, 4, 8):
        n = 1 << bits
        pal = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]
        idx = rng.integers(0, n, (h, w))
        rows = [pack_bits(r, bits) if bits < 8 else bytes(r.astype(np.uint8)) for r in idx]
        save(f"bmp_pal{bits}", bmp_file(w, h, bits, rows, palette=pal))
        save(f"bmp_pal{bits}_topdown", bmp_file(w, h, bits, rows, palette=pal, top_down=True))
        save(f"bmp_pal{bits}_v5", bmp_file(w, h, bits, rows, palette=pal, header=124))
        if bits != 1:
            save(f"bmp_pal{bits}_os2", bmp_file(w, h, bits, rows, palette=pal, header=12))
    # short palette (clrUsed)
    pal = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(20)]
    idx = rng.integers(0, 20, (h, w))
    save("bmp_pal8_20colors",
         bmp_file(w, h, 8, [bytes(r.astype(np.uint8)) for r in idx], palette=pal, n_colors=20))
    # gray palettes (PIL opens these as L / 1)
    idx = rng.integers(0, 256, (h, w))
    save("bmp_gray8", bmp_file(w, h, 8, [bytes(r.astype(np.uint8)) for r in idx],
                               palette=[(i, i, i) for i in range(256)]))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    bgr_rows = [bytes(r[:, ::-1].ravel()) for r in rgb]
    for hdr in (40, 108, 124):
        save(f"bmp_rgb24_h{hdr}", bmp_file(w, h, 24, bgr_rows, header=hdr))
    save("bmp_rgb24_topdown", bmp_file(w, h, 24, bgr_rows, top_down=True))
    save("bmp_rgb24_os2", bmp_file(w, h, 24, bgr_rows, header=12))
    bgrx = [bytes(np.concatenate([r[:, ::-1], rng.integers(0, 256, (w, 1), dtype=np.uint8)],
                                 1).ravel()) for r in rgb]
    save("bmp_rgb32", bmp_file(w, h, 32, bgrx))
    save("bmp_rgb32_bf_h40", bmp_file(w, h, 32, bgrx, compression=3,
                                      masks=(0xFF0000, 0xFF00, 0xFF)))
    save("bmp_rgb32_bf_v4", bmp_file(w, h, 32, bgrx, header=108, compression=3,
                                     masks=(0xFF0000, 0xFF00, 0xFF, 0)))
    save("bmp_rgba32_bf_v5_topdown", bmp_file(w, h, 32, bgrx, header=124, compression=3,
                                              masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000),
                                              top_down=True))
    xbgr = [bytes(np.concatenate([rng.integers(0, 256, (w, 1), dtype=np.uint8), r[:, ::-1]],
                                 1).ravel()) for r in rgb]
    save("bmp_xbgr32_bf_v4", bmp_file(w, h, 32, xbgr, header=108, compression=3,
                                      masks=(0xFF000000, 0xFF0000, 0xFF00, 0)))
    px16 = rng.integers(0, 1 << 16, (h, w)).astype("<u2")
    rows16 = [r.tobytes() for r in px16]
    save("bmp_rgb555", bmp_file(w, h, 16, rows16))
    save("bmp_rgb565_bf", bmp_file(w, h, 16, rows16, compression=3,
                                   masks=(0xF800, 0x7E0, 0x1F)))
    save("bmp_rgb555_bf_v4", bmp_file(w, h, 16, rows16, header=108, compression=3,
                                      masks=(0x7C00, 0x3E0, 0x1F, 0)))
    # RLE: runs make for a small stream
    for bits, comp in ((8, 1), (4, 2)):
        n = 1 << bits
        pal = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]
        idx = np.repeat(rng.integers(0, n, (h, 6)), 4, axis=1)[:, :w]
        save(f"bmp_rle{bits}", bmp_file(w, h, bits, None, palette=pal, compression=comp,
                                       raw_pixels=rle_encode(idx, bits == 4)))
    return out


# ---------------------------------------------------------------- TIFF and JPEG

def tiff_set_photometric(path, value):
    """Rewrites tag 262 (PhotometricInterpretation) of the first IFD in place."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        e = "<" if data[:2] == b"II" else ">"
        ifd = struct.unpack(e + "I", data[4:8])[0]
        n = struct.unpack(e + "H", data[ifd:ifd + 2])[0]
        for i in range(n):
            o = ifd + 2 + 12 * i
            if struct.unpack(e + "H", data[o:o + 2])[0] == 262:
                data[o + 8:o + 10] = struct.pack(e + "H", value)
        f.seek(0)
        f.write(data)


def write_tiff(path, e, arr, bps, photometric, width=None, tile=None):
    """Minimal uncompressed TIFF, byte order e ('<' or '>'); arr (h, w[, spp]) of samples
    already in file order (packed rows for bps < 8); tile: square tile side, or strips."""
    h = arr.shape[0]
    spp = arr.shape[2] if arr.ndim == 3 else 1
    w = width or arr.shape[1]
    if tile:
        th = (h + tile - 1) // tile
        tw = (w + tile - 1) // tile
        pad = np.zeros((th * tile, tw * tile) + arr.shape[2:], arr.dtype)
        pad[:h, :w] = arr
        chunks = [pad[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile].tobytes()
                  for ty in range(th) for tx in range(tw)]
    else:
        chunks = [arr.tobytes()]
    data = b"".join(chunks)
    offs, o = [], 8
    for c in chunks:
        offs.append(o)
        o += len(c)
    ifd = o + (o & 1)
    extra = []  # (tag, type, values)
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bps] * spp), (259, 3, [1]),
            (262, 3, [photometric]), (277, 3, [spp])]
    if tile:
        tags += [(322, 4, [tile]), (323, 4, [tile]), (324, 4, offs),
                 (325, 4, [len(c) for c in chunks])]
    else:
        tags += [(273, 4, offs), (278, 4, [h]), (279, 4, [len(data)])]
    tags.sort()
    n = len(tags)
    blob_at = ifd + 2 + 12 * n + 4
    body, blobs = b"", b""
    for tag, typ, vals in tags:
        fmt = "H" if typ == 3 else "I"
        raw = struct.pack(e + fmt * len(vals), *vals)
        if len(raw) <= 4:
            body += struct.pack(e + "HHI", tag, typ, len(vals)) + raw.ljust(4, b"\0")
        else:
            body += struct.pack(e + "HHII", tag, typ, len(vals), blob_at + len(blobs))
            blobs += raw
    head = (b"II*\0" if e == "<" else b"MM\0*") + struct.pack(e + "I", ifd)
    with open(path, "wb") as f:
        f.write(head + data + b"\0" * (ifd - o) + struct.pack(e + "H", n) + body +
                b"\0\0\0\0" + blobs)
    return path


def tiff_fixtures(d, rng):
    out = []
    a = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    for mode in ("L", "RGB", "RGBA", "P", "1", "LA"):
        for comp in (None, "tiff_lzw", "packbits", "tiff_adobe_deflate"):
            p = f"{d}/tif_{mode}_{comp or 'raw'}.tif"
            Image.fromarray(a).convert(mode).save(p, compression=comp)
            out.append(p)
    p = f"{d}/tif_I16.tif"
    Image.fromarray(rng.integers(0, 700, (9, 11)).astype(np.uint16)).save(p)
    out.append(p)
    p = f"{d}/tif_L_miniswhite.tif"
    Image.fromarray(a[:, :, 0]).save(p)
    tiff_set_photometric(p, 0)
    out.append(p)
    p = f"{d}/tif_L_rows3.tif"
    Image.fromarray(a[:, :, 1]).save(p, compression="tiff_lzw", rowsperstrip=3)
    out.append(p)
    # by hand: big-endian, 16-bit big-endian, 4-bit gray, tiled (the RGBA fallback)
    g8 = rng.integers(0, 256, (10, 13), dtype=np.uint8)
    for e in ("<", ">"):
        nm = "le" if e == "<" else "be"
        out.append(write_tiff(f"{d}/tif_hand_gray8_{nm}.tif", e, g8, 8, 1))
        g16 = rng.integers(0, 400, (10, 13)).astype(e + "u2")
        out.append(write_tiff(f"{d}/tif_hand_gray16_{nm}.tif", e, g16, 16, 1))
    g4 = rng.integers(0, 16, (10, 13))
    packed = np.frombuffer(b"".join(pack_bits(r, 4) for r in g4), np.uint8).reshape(10, -1)
    out.append(write_tiff(f"{d}/tif_hand_gray4.tif", "<", packed, 4, 1, width=13))
    out.append(write_tiff(f"{d}/tif_hand_gray8_tiled.tif", "<",
                          rng.integers(0, 256, (40, 37), dtype=np.uint8), 8, 1, tile=16))
    out.append(write_tiff(f"{d}/tif_hand_rgb8_tiled.tif", "<",
                          rng.integers(0, 256, (20, 35, 3), dtype=np.uint8), 8, 2, tile=16))
    return out


def jpeg_fixtures(d, rng):
    out = []
    yy, xx = np.mgrid[0:37, 0:53]
    smooth = np.stack([(xx * 4) % 256, (yy * 6) % 256, (xx + yy) * 2 % 256], -1).astype(np.uint8)
    noisy = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for nm, a in (("smooth", smooth), ("noisy", noisy)):
        im = Image.fromarray(a)
        # (file name suffix, image, save options)
        variants = [(f"q{q}_s{sub}", im, dict(quality=q, subsampling=sub))
                    for q in (75, 95) for sub in (0, 1, 2)]
        variants += [("progressive", im, dict(quality=85, progressive=True)),
                     ("gray", im.convert("L"), dict(quality=90)),
                     ("optimize", im, dict(quality=80, optimize=True)),
                     ("cmyk", im.convert("CMYK"), dict(quality=90))]
        for suffix, img, opts in variants:
            p = f"{d}/jpg_{nm}_{suffix}.jpg"
            img.save(p, **opts)
            out.append(p)
    return out


# ---------------------------------------------------------------- checks

def check_decode(imgdump, files, label):
    n_exact = 0
    worst = 0
    for p in files:
        ref = pil_gray(p)
        try:
            got = libbio_gray(imgdump, p)
        except RuntimeError as e:
            fail(f"{os.path.basename(p)}: {e}")
            continue
        if got.shape != ref.shape:
            fail(f"{os.path.basename(p)}: shape {got.shape} vs PIL {ref.shape}")
            continue
        diff = int(np.abs(got.astype(int) - ref.astype(int)).max())
        worst = max(worst, diff)
        if diff == 0:
            n_exact += 1
        else:
            fail(f"{os.path.basename(p)}: max |libbio - PIL| = {diff}")
    print(f"decode {label}: {len(files)} files, {n_exact} bit-exact, max difference {worst}")


def cmd_decode(imgdump, work):
    rng = np.random.default_rng(20240501)
    os.makedirs(work, exist_ok=True)
    check_decode(imgdump, png_fixtures(work, rng), "PNG")
    check_decode(imgdump, bmp_fixtures(work, rng), "BMP")
    check_decode(imgdump, tiff_fixtures(work, rng), "TIFF")
    check_decode(imgdump, jpeg_fixtures(work, rng), "JPEG")


def compare_resize(imgdump, path, img, ow, oh, stats):
    for flt, pf in (("bilinear", Image.BILINEAR), ("area", Image.BOX)):
        ref = np.asarray(Image.fromarray(img).resize((ow, oh), pf)).astype(np.int64)
        raw = run_imgdump(imgdump, ["-r", f"{ow}x{oh}", "-f", flt, path])
        v = np.frombuffer(raw, "<f4").reshape(oh, ow).astype(np.float64)
        q = np.floor(v + 0.5).astype(np.int64)
        d = np.abs(q - ref)
        stats["n"] += d.size
        stats["exact"] += int((d == 0).sum())
        stats["max"] = max(stats["max"], int(d.max()))
        stats["maxf"] = max(stats["maxf"], float(np.abs(v - ref).max()))
        stats["range_ok"] &= bool(v.min() >= 0 and v.max() <= 255)
        u8 = parse_pgm(run_imgdump(imgdump, ["-u", "-r", f"{ow}x{oh}", "-f", flt, path]))
        stats["u8_bad"] += int((u8.astype(np.int64) != ref).sum())
        if d.max() > 0 or (u8.astype(np.int64) != ref).any():
            fail(f"resize {img.shape[1]}x{img.shape[0]} -> {ow}x{oh} {flt}: max {int(d.max())}")


def print_resize(stats, label):
    frac = stats["exact"] / max(stats["n"], 1)
    print(f"resize {label}: {stats['n']} pixels, rounded float == PIL for {frac:.6f}, "
          f"max |round(f) - PIL| = {stats['max']}, max |f - PIL| = {stats['maxf']:.4f}, "
          f"u8 mismatches {stats['u8_bad']}, range ok {stats['range_ok']}")
    if not stats["range_ok"]:
        fail("resize output outside 0..255")


def cmd_resize(imgdump, work):
    rng = np.random.default_rng(7)
    os.makedirs(work, exist_ok=True)
    stats = {"n": 0, "exact": 0, "max": 0, "maxf": 0.0, "u8_bad": 0, "range_ok": True}
    sizes = [((388, 374), (64, 64)), ((296, 560), (64, 64)), ((17, 13), (64, 64)),
             ((100, 100), (33, 77)), ((5, 7), (3, 2)), ((640, 480), (31, 17)),
             ((64, 50), (64, 20)), ((50, 64), (20, 64)), ((1, 1), (5, 5)), ((300, 1), (7, 1)),
             ((99, 101), (97, 103)), ((30, 40), (300, 400)), ((64, 64), (64, 64)),
             ((2, 3), (1, 1)), ((1000, 7), (3, 9))]
    for _ in range(12):
        sizes.append(((int(rng.integers(1, 400)), int(rng.integers(1, 400))),
                      (int(rng.integers(1, 130)), int(rng.integers(1, 130)))))
    for (w, h), (ow, oh) in sizes:
        yy, xx = np.mgrid[0:h, 0:w]
        img = ((xx * 7 + yy * 3) % 256 + rng.integers(-40, 40, (h, w))).clip(0, 255)
        img = img.astype(np.uint8)
        p = f"{work}/resize_{w}x{h}.png"
        Image.fromarray(img).save(p)
        compare_resize(imgdump, p, img, ow, oh, stats)
    print_resize(stats, f"{len(sizes)} size pairs x 2 filters")


def cmd_writers(imgdump, work):
    rng = np.random.default_rng(3)
    os.makedirs(work, exist_ok=True)
    n = 0
    for w, h in ((1, 1), (3, 2), (17, 5), (64, 64), (101, 33)):
        src = f"{work}/w_src_{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(src)
        ours = libbio_gray(imgdump, src)
        yy, xx = np.mgrid[0:h, 0:w]
        pattern = np.stack([(3 * xx + yy) & 255, (xx + 5 * yy) & 255, (7 * xx + 3 * yy) & 255],
                           -1).astype(np.uint8)
        for ext in ("png", "bmp"):
            g = f"{work}/w_gray_{w}x{h}.{ext}"
            c = f"{work}/w_rgb_{w}x{h}.{ext}"
            run_imgdump(imgdump, ["-w", g, src])
            run_imgdump(imgdump, ["-W", c, src])
            with Image.open(g) as im:
                if im.mode != "L" or not np.array_equal(np.asarray(im), ours):
                    fail(f"gray {ext} writer {w}x{h}: PIL reads mode {im.mode}, other pixels")
            with Image.open(c) as im:
                if im.mode != "RGB" or not np.array_equal(np.asarray(im), pattern):
                    fail(f"RGB {ext} writer {w}x{h}: PIL reads mode {im.mode}, other pixels")
            n += 2
    print(f"writers: {n} files written by libbio, read back by PIL")


def cmd_real(imgdump, dirs):
    files = []
    for d in dirs:
        for root, _, names in os.walk(d):
            files += [os.path.join(root, x) for x in sorted(names)
                      if x.lower().endswith((".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"))]
    files.sort()
    if not files:
        fail("no images found")
    check_decode(imgdump, files, "real")
    stats = {"n": 0, "exact": 0, "max": 0, "maxf": 0.0, "u8_bad": 0, "range_ok": True}
    for p in files[::8]:
        compare_resize(imgdump, p, pil_gray(p), 64, 64, stats)
    print_resize(stats, f"real, {len(files[::8])} files -> 64x64 x 2 filters")


# ---------------------------------------------------------------- bad-input corpus

def png_bytes(w, h, bit_depth=8, color_type=0, rows=None, extra=b"", ihdr=None):
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    if rows is None:
        rows = b"".join(b"\0" + bytes((w * ch * bit_depth + 7) // 8) for _ in range(h))
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", ihdr or struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0,
                                                   0, 0))
    data += extra
    data += png_chunk(b"IDAT", zlib.compress(rows))
    return data + png_chunk(b"IEND", b"")


def flip_byte(data, pos):
    b = bytearray(data)
    b[pos] ^= 0x55
    return bytes(b)


def cmd_bad(out):
    """Corrupt inputs, each of which must give one error line and exit 1."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    files = {}
    gray = [(i, i, i) for i in range(256)]
    rows8 = [bytes(rng.integers(0, 256, 320, dtype=np.uint8)) for _ in range(240)]
    ok_bmp = bmp_file(320, 240, 8, rows8, palette=gray)
    files["bmp_truncated_pixels.bmp"] = ok_bmp[:14 + 40 + 1024 + 1024]
    files["bmp_truncated_header.bmp"] = ok_bmp[:30]
    files["bmp_truncated_palette.bmp"] = ok_bmp[:14 + 40 + 300]
    small = [bytes([1, 2, 3, 200, 4, 5, 6, 7])] * 4
    files["bmp_bad_palette_index.bmp"] = bmp_file(8, 4, 8, small, palette=gray[:16],
                                                  n_colors=16)
    files["bmp_bad_palette_index_4bit.bmp"] = bmp_file(
        8, 4, 4, [pack_bits([0, 1, 9, 1, 0, 1, 0, 1], 4)] * 4, palette=gray[:2], n_colors=2)
    files["bmp_zero_width.bmp"] = bmp_file(0, 4, 24, [b""] * 4)
    files["bmp_zero_height.bmp"] = bmp_file(4, 0, 24, [])
    files["bmp_huge_dims.bmp"] = bmp_file(100000, 100000, 24, [], raw_pixels=b"\0" * 64)
    files["bmp_huge_dims_32bit.bmp"] = bmp_file(0x7FFFFFFF, 0x7FFFFFFF, 32, [],
                                                raw_pixels=b"\0" * 64)
    b = bytearray(bmp_file(4, 4, 24, [bytes(12)] * 4))
    b[18:22] = struct.pack("<i", -4)
    files["bmp_negative_width.bmp"] = bytes(b)
    b = bytearray(ok_bmp[:2000])
    b[14:18] = struct.pack("<I", 99)
    files["bmp_bad_header_size.bmp"] = bytes(b)
    files["bmp_bad_bit_depth.bmp"] = bmp_file(4, 4, 3, [bytes(2)] * 4)
    files["bmp_jpeg_compression.bmp"] = bmp_file(4, 4, 24, [bytes(12)] * 4, compression=4)
    b = bytearray(bmp_file(4, 4, 24, [bytes(12)] * 4))
    b[10:14] = struct.pack("<I", 100000)
    files["bmp_offset_past_end.bmp"] = bytes(b)
    files["bmp_palette_too_big.bmp"] = bmp_file(4, 4, 8, [bytes(4)] * 4, palette=gray,
                                                n_colors=1000)
    files["bmp_bad_bitfield_masks.bmp"] = bmp_file(4, 4, 32, [bytes(16)] * 4, compression=3,
                                                   masks=(0xF0F000, 0xFF00, 0xFF))
    b = bytearray(bmp_file(4, 4, 24, [bytes(12)] * 4))
    b[26:28] = struct.pack("<H", 0)
    files["bmp_zero_planes.bmp"] = bytes(b)
    rle = bmp_file(16, 16, 8, None, palette=gray, compression=1,
                   raw_pixels=bytes([16, 7, 0, 0, 16, 9]))
    files["bmp_rle8_truncated.bmp"] = rle
    files["bmp_rle8_bad_index.bmp"] = bmp_file(4, 2, 8, None, palette=gray[:4], n_colors=4,
                                               compression=1,
                                               raw_pixels=bytes([4, 1, 0, 0, 4, 77, 0, 1]))
    # runs that cross the end of their 4-pixel row (PIL clips them silently; we refuse them)
    files["bmp_rle8_run_overflow.bmp"] = bmp_file(4, 2, 8, None, palette=gray[:4], n_colors=4,
                                                  compression=1,
                                                  raw_pixels=bytes([6, 1, 0, 0, 4, 2, 0, 1]))
    files["bmp_rle8_absolute_overflow.bmp"] = bmp_file(
        4, 2, 8, None, palette=gray[:4], n_colors=4, compression=1,
        raw_pixels=bytes([0, 6, 1, 2, 3, 1, 2, 3, 0, 0, 4, 2, 0, 1]))

    ok_png = png_bytes(64, 64, rows=b"".join(b"\0" + bytes(range(64)) for _ in range(64)))
    idat = ok_png.index(b"IDAT")
    files["png_truncated_idat.png"] = ok_png[:idat + 20]
    files["png_truncated_header.png"] = ok_png[:20]
    files["png_signature_only.png"] = ok_png[:8]
    files["png_bad_crc_ihdr.png"] = flip_byte(ok_png, 8 + 8 + 13)
    files["png_bad_crc_idat.png"] = flip_byte(ok_png, ok_png.index(b"IEND") - 8)
    bad_text = png_chunk(b"tEXt", b"Comment\0hello")
    bad_text = bad_text[:-1] + bytes([bad_text[-1] ^ 1])
    files["png_bad_crc_ancillary.png"] = png_bytes(4, 4, extra=bad_text)
    files["png_zero_width.png"] = png_bytes(1, 1, ihdr=struct.pack(">IIBBBBB", 0, 4, 8, 0, 0,
                                                                   0, 0))
    files["png_huge_dims.png"] = png_bytes(1, 1, ihdr=struct.pack(">IIBBBBB", 100000, 100000,
                                                                  8, 0, 0, 0, 0))
    pal = png_chunk(b"PLTE", bytes(12))
    files["png_bad_palette_index.png"] = png_bytes(
        4, 2, color_type=3, extra=pal, rows=b"\0" + bytes([0, 1, 10, 2]) + b"\0" + bytes(4))
    files["png_palette_without_plte.png"] = png_bytes(4, 2, color_type=3)
    data = ok_png[:idat - 4]
    data += png_chunk(b"IDAT", b"\x78\x9c" + bytes(rng.integers(0, 256, 60, dtype=np.uint8)))
    files["png_bad_zlib.png"] = data + png_chunk(b"IEND", b"")
    files["png_missing_iend.png"] = ok_png[:-12]
    files["png_bad_bit_depth.png"] = png_bytes(1, 1, ihdr=struct.pack(">IIBBBBB", 4, 4, 3, 0,
                                                                      0, 0, 0))
    z = zlib.compress(b"".join(b"\0" + bytes(64) for _ in range(64)))
    zb = bytearray(z)
    zb[-1] ^= 0xFF  # Adler-32
    files["png_bad_adler32.png"] = (ok_png[:idat - 4] + png_chunk(b"IDAT", bytes(zb)) +
                                    png_chunk(b"IEND", b""))

    tif_path = os.path.join(out, "tmp_ok.tif")
    write_tiff(tif_path, "<", rng.integers(0, 256, (50, 60), dtype=np.uint8), 8, 1)
    with open(tif_path, "rb") as f:
        ok_tif = f.read()
    os.unlink(tif_path)

    def tif_patch(data, tag, value):
        b = bytearray(data)
        ifd = struct.unpack("<I", b[4:8])[0]
        n = struct.unpack("<H", b[ifd:ifd + 2])[0]
        for i in range(n):
            o = ifd + 2 + 12 * i
            if struct.unpack("<H", b[o:o + 2])[0] == tag:
                t = struct.unpack("<H", b[o + 2:o + 4])[0]
                b[o + 8:o + 12] = struct.pack("<I", value) if t == 4 else struct.pack(
                    "<HH", value, 0)
        return bytes(b)

    # PIL writes the IFD before the pixel data: cutting the file cuts the strip
    Image.fromarray(rng.integers(0, 256, (50, 60), dtype=np.uint8)).save(tif_path)
    with open(tif_path, "rb") as f:
        pil_tif = f.read()
    os.unlink(tif_path)
    files["tif_truncated_strip.tif"] = pil_tif[:len(pil_tif) - 1000]
    files["tif_truncated_header.tif"] = ok_tif[:6]
    files["tif_huge_dims.tif"] = tif_patch(tif_patch(ok_tif, 256, 100000), 257, 100000)
    files["tif_zero_width.tif"] = tif_patch(ok_tif, 256, 0)
    b = bytearray(ok_tif)
    b[4:8] = struct.pack("<I", 10 ** 7)
    files["tif_bad_ifd_offset.tif"] = bytes(b)
    # the first IFD's next-IFD offset points back to itself: a loop of pages
    b = bytearray(ok_tif)
    ifd = struct.unpack("<I", b[4:8])[0]
    n = struct.unpack("<H", b[ifd:ifd + 2])[0]
    b[ifd + 2 + 12 * n:ifd + 6 + 12 * n] = struct.pack("<I", ifd)
    files["tif_ifd_loop.tif"] = bytes(b)
    files["tif_bad_strip_offset.tif"] = tif_patch(ok_tif, 273, 10 ** 7)
    files["tif_bad_bits.tif"] = tif_patch(ok_tif, 258, 13)

    jp = os.path.join(out, "tmp_ok.jpg")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(jp, quality=90)
    with open(jp, "rb") as f:
        ok_jpg = f.read()
    os.unlink(jp)
    files["jpg_truncated.jpg"] = ok_jpg[:len(ok_jpg) // 2]
    files["jpg_header_only.jpg"] = ok_jpg[:100]
    sof = ok_jpg.index(b"\xff\xc0")
    b = bytearray(ok_jpg)
    b[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    files["jpg_huge_dims.jpg"] = bytes(b)
    b[sof + 5:sof + 9] = struct.pack(">HH", 0, 64)
    files["jpg_zero_height.jpg"] = bytes(b)
    files["jpg_garbage_after_soi.jpg"] = b"\xff\xd8\xff" + bytes(
        rng.integers(0, 256, 200, dtype=np.uint8))
    b = bytearray(ok_jpg)
    b[sof + 9] = 7  # component count
    files["jpg_bad_components.jpg"] = bytes(b)

    files["garbage.bin"] = bytes(rng.integers(0, 256, 300, dtype=np.uint8))
    files["empty.bmp"] = b""
    files["text.png"] = b"this is not an image\n"
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"bad: wrote {len(files)} files to {out}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "bad":
        cmd_bad(sys.argv[2])
        return 0
    if len(sys.argv) < 4 or sys.argv[1] not in ("decode", "resize", "writers", "real"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, imgdump = sys.argv[1], sys.argv[2]
    if cmd == "decode":
        cmd_decode(imgdump, sys.argv[3])
    elif cmd == "resize":
        cmd_resize(imgdump, sys.argv[3])
    elif cmd == "writers":
        cmd_writers(imgdump, sys.argv[3])
    else:
        cmd_real(imgdump, sys.argv[3:])
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
