#!/usr/bin/python3
"""Generate the committed test images under tests/data/images/ (run once; the outputs are
committed so the tests need neither Python nor these tools).

Needs Debian's python3-numpy, python3-pil (CMYK JPEG and its reference decode),
python3-skimage (the photograph the JPEGs are made from) and
libjpeg-turbo-progs (cjpeg: every JPEG kind, including restart intervals and arithmetic
coding, which PIL cannot write). PNGs are written by hand (zlib + crc32) so every colour type,
bit depth, tRNS and Adam7 interlacing can be produced exactly.

    /usr/bin/python3 tests/tools/make_test_images.py [OUT_DIR]

The JPEGs are made from a photograph; the small PNG and CMYK pictures are synthetic (smooth
gradients, hard edges at odd positions, fine noise). Everything is seeded: reruns give the
same pixels (the JPEG bytes depend only on the cjpeg and PIL versions).
"""
import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "images")
CORRUPT = os.path.join(OUT, "corrupt")


def picture(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 23.0) * np.cos(y / 31.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], axis=-1)
    # Hard-edged shapes (discs and a bar) so that chroma subsampling and edges matter.
    for _ in range(6):
        cx, cy, rad = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 40)
        colour = rng.uniform(0, 255, size=3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad * rad] = colour
    img[h // 3:h // 3 + 7, :, :] = [250, 20, 30]
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def photo(w, h):
    """A real photograph (scikit-image's "coffee", CC0) resized to w x h: JPEG errors at
    scaled and cropped decodes depend on image statistics, so the JPEG tests use a photo."""
    from skimage import data
    return np.asarray(Image.fromarray(data.coffee()).resize((w, h), Image.LANCZOS))


def write_ppm(path, rgb):
    h, w = rgb.shape[:2]
    with open(path, "wb") as f:
        if rgb.ndim == 2:
            f.write(b"P5\n%d %d\n255\n" % (w, h))
        else:
            f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(rgb.tobytes())


def cjpeg(rgb, out, *args):
    tmp = out + ".pnm"
    write_ppm(tmp, rgb)
    subprocess.run(["cjpeg", "-quality", "90", *args, "-outfile", out, tmp], check=True)
    os.remove(tmp)


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def pack_rows(samples, depth):
    """samples: (h, w*channels) integer array -> list of filter-0 scanlines."""
    rows = []
    for row in samples:
        if depth == 16:
            data = row.astype(">u2").tobytes()
        elif depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            padded = np.zeros(((len(row) + per - 1) // per) * per, dtype=np.uint8)
            padded[:len(row)] = row
            data = bytearray()
            for i in range(0, len(padded), per):
                v = 0
                for k in range(per):
                    v = (v << depth) | int(padded[i + k])
                data.append(v)
            data = bytes(data)
        rows.append(b"\x00" + data)
    return rows


def write_png(path, samples, colour_type, depth, palette=None, trns=None, interlace=False):
    """samples: (h, w, channels) array of sample values at `depth` bits."""
    h, w = samples.shape[:2]
    ch = samples.shape[2]
    raw = b""
    if not interlace:
        raw = b"".join(pack_rows(samples.reshape(h, w * ch), depth))
    else:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += b"".join(pack_rows(sub.reshape(sub.shape[0], -1), depth))
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0,
                                          1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(CORRUPT, exist_ok=True)
    big = photo(241, 167)
    gray = (big.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)

    # JPEG kinds, all 241x167 (odd: partial MCUs on both edges).
    cjpeg(big, os.path.join(OUT, "rgb444.jpg"), "-sample", "1x1")
    cjpeg(big, os.path.join(OUT, "rgb422.jpg"), "-sample", "2x1")
    cjpeg(big, os.path.join(OUT, "rgb420.jpg"), "-sample", "2x2")
    cjpeg(gray, os.path.join(OUT, "gray.jpg"))
    cjpeg(big, os.path.join(OUT, "progressive.jpg"), "-sample", "2x2", "-progressive")
    cjpeg(big, os.path.join(OUT, "restart.jpg"), "-sample", "2x2", "-restart", "1")
    cjpeg(big, os.path.join(OUT, "arithmetic.jpg"), "-sample", "2x2", "-arithmetic")

    # CMYK (PIL writes Adobe-inverted CMYK with an APP14 marker) and PIL's own RGB decode of
    # it, as the reference for the colour conversion.
    small = picture(64, 48, 2)
    cmyk = Image.fromarray(small).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    write(os.path.join(CORRUPT, "cmyk.jpg"), buf.getvalue())
    ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    write_png(os.path.join(OUT, "cmyk_pil_reference.png"), ref, 2, 8)

    # PNG kinds, 37x23, and the exact RGB each must decode to (.rgb: raw bytes, HWC).
    p = picture(37, 23, 3)
    pg = (p.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)
    rng = np.random.default_rng(4)
    alpha = rng.integers(0, 256, size=(23, 37, 1), dtype=np.uint8)
    low16 = rng.integers(0, 256, size=p.shape).astype(np.uint16)
    pal = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    idx = rng.integers(0, 16, size=(23, 37, 1), dtype=np.uint8)
    bits1 = (pg > 128).astype(np.uint8)[..., None]
    cases = {
        "rgb8": (p, 2, 8, {}, p),
        "rgba8": (np.concatenate([p, alpha], -1), 6, 8, {}, p),
        "rgb16": ((p.astype(np.uint16) << 8) | low16, 2, 16, {}, p),
        "gray8": (pg[..., None], 0, 8, {}, np.repeat(pg[..., None], 3, -1)),
        "gray16": (((pg.astype(np.uint16) << 8) | 0x7f)[..., None], 0, 16, {},
                   np.repeat(pg[..., None], 3, -1)),
        "gray_alpha8": (np.concatenate([pg[..., None], alpha], -1), 4, 8, {},
                        np.repeat(pg[..., None], 3, -1)),
        "gray1": (bits1, 0, 1, {}, np.repeat(bits1 * 255, 3, -1)),
        "palette4": (idx, 3, 4, {"palette": pal, "trns": bytes(range(0, 160, 10))},
                     pal[idx[..., 0]]),
        "interlaced": (p, 2, 8, {"interlace": True}, p),
    }
    for name, (samples, ctype, depth, kw, expect) in cases.items():
        write_png(os.path.join(OUT, name + ".png"), samples, ctype, depth, **kw)
        write(os.path.join(OUT, name + ".rgb"), expect.astype(np.uint8).tobytes())

    # The corrupt-image corpus (expected outcomes are in tests/unit/test_image_corrupt.c).
    with open(os.path.join(OUT, "rgb420.jpg"), "rb") as f:
        jpg = f.read()
    with open(os.path.join(OUT, "progressive.jpg"), "rb") as f:
        prog = f.read()
    with open(os.path.join(OUT, "rgb8.png"), "rb") as f:
        png = f.read()
    write(os.path.join(CORRUPT, "empty.jpg"), b"")
    write(os.path.join(CORRUPT, "truncated.jpg"), jpg[:len(jpg) * 6 // 10])
    write(os.path.join(CORRUPT, "truncated_header.jpg"), jpg[:120])
    write(os.path.join(CORRUPT, "truncated_progressive.jpg"), prog[:len(prog) // 2])
    write(os.path.join(CORRUPT, "no_eoi.jpg"), jpg[:-2])
    write(os.path.join(CORRUPT, "random.jpg"),
          np.random.default_rng(5).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    write(os.path.join(CORRUPT, "png_named.jpg"), png)
    write(os.path.join(CORRUPT, "text.jpg"), b"This is not an image, it is a README.\n" * 8)
    # The smallest GIF: 1x1, one colour.
    write(os.path.join(CORRUPT, "gif.jpg"),
          b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
          b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
    # A Huffman table whose code counts add up to more than 256 symbols: libjpeg rejects it.
    dht = jpg.index(b"\xff\xc4")
    bad = bytearray(jpg)
    for i in range(16):
        bad[dht + 5 + i] = 0x20
    write(os.path.join(CORRUPT, "bad_huffman_table.jpg"), bytes(bad))
    # Entropy-coded data overwritten with 0xff bytes in the middle of the scan.
    sos = jpg.index(b"\xff\xda")
    bad = bytearray(jpg)
    mid = sos + (len(jpg) - sos) // 2
    bad[mid:mid + 64] = b"\xff" * 64
    write(os.path.join(CORRUPT, "bad_scan_data.jpg"), bytes(bad))
    write(os.path.join(CORRUPT, "truncated.png"), png[:len(png) * 6 // 10])
    bad = bytearray(png)
    bad[29] ^= 0xff  # IHDR's CRC
    write(os.path.join(CORRUPT, "bad_crc.png"), bytes(bad))
    write_png(os.path.join(CORRUPT, "rgb16.png"), cases["rgb16"][0], 2, 16)
    write_png(os.path.join(CORRUPT, "gray8.png"), cases["gray8"][0], 0, 8)


if __name__ == "__main__":
    main()
