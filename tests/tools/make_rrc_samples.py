#!/usr/bin/python3
"""Samples of torchvision's RandomResizedCrop window, made once and committed as the reference
for tests/unit/test_image_random_crop.c (which compares sluice's sampler with them by a
two-sample Kolmogorov-Smirnov test, so the test itself needs no torch).

Needs Debian's python3-torchvision (apt-get install -y python3-torchvision).

    /usr/bin/python3 tests/tools/make_rrc_samples.py [OUT_DIR]

Writes rrc_<W>x<H>.txt: a comment line, then one "h w" line per sample of
RandomResizedCrop.get_params(image, scale=(0.08, 1.0), ratio=(3/4, 4/3)). 640x120 is wide
enough that most draws fail all 10 tries and take the centre-crop fallback.
"""
import os
import sys

import torch
import torchvision
from torchvision.transforms import RandomResizedCrop

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "images", "rrc")
N = 3000


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240611)
    for w, h in [(500, 375), (640, 120)]:
        img = torch.empty(3, h, w, dtype=torch.uint8)
        lines = ["# torchvision %s RandomResizedCrop.get_params on %dx%d, scale (0.08, 1), "
                 "ratio (3/4, 4/3): h w" % (torchvision.__version__, w, h)]
        for _ in range(N):
            _, _, ch, cw = RandomResizedCrop.get_params(img, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0])
            lines.append("%d %d" % (ch, cw))
        with open(os.path.join(OUT, "rrc_%dx%d.txt" % (w, h)), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
