#!/usr/bin/python3
"""The benchmark's image set: an ImageNet-like folder of JPEGs made from real photographs.

Writes OUT/train/class_NN/img_NNNNN.jpg (CLASSES folders of PER_CLASS images each) and
OUT/flat/ (symlinks to every image, for bench_image --dir, which reads one directory).
Each image is a seeded random window over one of the colour photographs Debian's
python3-skimage ships (30-100% of the photo's width, 4:3), resized with PIL's antialiased
bicubic to 500x375 (one in five portrait, 375x500), mirrored half the time, with a mild
brightness change, and saved by PIL at quality 90 (libjpeg defaults: 4:2:0, baseline).
The same seed gives the same bytes on the same Pillow/libjpeg.

usage: make_images.py OUT [--classes N] [--per-class M] [--seed S]
"""
import argparse
import os
import random
import sys

from PIL import Image, ImageEnhance

PHOTO_DIR = "/usr/lib/python3/dist-packages/skimage/data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "ihc.png", "motorcycle_left.png",
          "motorcycle_right.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    photos = []
    for name in PHOTOS:
        path = os.path.join(PHOTO_DIR, name)
        if os.path.exists(path):
            photos.append(Image.open(path).convert("RGB"))
    if not photos:
        sys.exit("make_images.py: no photographs in %s (apt-get install python3-skimage)"
                 % PHOTO_DIR)

    rng = random.Random(a.seed)
    train = os.path.join(a.out, "train")
    flat = os.path.join(a.out, "flat")
    os.makedirs(flat, exist_ok=True)
    total_bytes = 0
    n = 0
    for c in range(a.classes):
        cdir = os.path.join(train, "class_%02d" % c)
        os.makedirs(cdir, exist_ok=True)
        for k in range(a.per_class):
            pic = photos[rng.randrange(len(photos))]
            portrait = rng.random() < 0.2
            ow, oh = (375, 500) if portrait else (500, 375)
            pw, ph = pic.size
            # a window of the output's aspect over 30-100% of the photo's limiting side
            frac = 0.3 + 0.7 * rng.random()
            cw = pw * frac
            ch = cw * oh / ow
            if ch > ph * frac:
                ch = ph * frac
                cw = ch * ow / oh
            x = rng.random() * (pw - cw)
            y = rng.random() * (ph - ch)
            img = pic.resize((ow, oh), Image.BICUBIC, box=(x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            img = ImageEnhance.Brightness(img).enhance(0.8 + 0.4 * rng.random())
            name = "img_%05d.jpg" % n
            path = os.path.join(cdir, name)
            img.save(path, "JPEG", quality=90)
            total_bytes += os.path.getsize(path)
            link = os.path.join(flat, name)
            if not os.path.lexists(link):
                os.symlink(os.path.relpath(path, flat), link)
            n += 1
    print("%d JPEGs in %d classes, mean %.1f KB, from %d skimage photographs -> %s"
          % (n, a.classes, total_bytes / 1e3 / n, len(photos), train))


if __name__ == "__main__":
    main()
