"""Peer (b): PyTorch's DataLoader over the image folder, as a typical training script writes it.

torchvision ImageFolder + RandomResizedCrop(224) (scale (0.08, 1), ratio (3/4, 4/3), the
defaults), RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std); batch 64,
shuffle=True, num_workers = --workers (default: the number of CPUs), persistent workers (so the
second epoch does not pay for new worker processes: the choice that favours the peer).
Decoding is Pillow's (PIL.Image.open + convert("RGB") inside ImageFolder's loader).

Runs --epochs passes over the folder and prints one JSON line:
  images, seconds (from the start of iteration to the last batch), first_batch_s,
  steady_images_per_s (images after the first batch / time after the first batch),
  cpu_seconds (this process and every worker, from the start of iteration to the end).

usage: torch_loader.py TRAIN_DIR [--epochs E] [--workers W] [--batch B] [--seed S]
"""
import argparse
import json
import os
import resource
import time

import psutil
import torch
import torchvision
from torchvision import datasets, transforms


def tree_cpu(proc):
    """user+system CPU seconds of proc's live descendants (the DataLoader workers)."""
    total = 0.0
    for child in proc.children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def self_cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers that have exited and were reaped
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(a.train, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                         num_workers=a.workers, persistent_workers=a.workers > 0)
    me = psutil.Process()
    s0, c0 = self_cpu()
    t0 = time.perf_counter()
    first = None
    images = 0
    checksum = 0.0
    for _ in range(a.epochs):
        for x, y in loader:
            if first is None:
                first = time.perf_counter()
                first_n = x.shape[0]
            images += x.shape[0]
            checksum += float(x[0, 0, 0, 0])  # touch the batch, as a training step would
    t1 = time.perf_counter()
    workers = tree_cpu(me)  # persistent workers are still alive here
    s1, c1 = self_cpu()
    cpu = (s1 - s0) + (c1 - c0) + workers
    del loader
    print(json.dumps({
        "system": "pytorch", "images": images, "seconds": t1 - t0, "first_batch_s": first - t0,
        "steady_images_per_s": (images - first_n) / (t1 - first),
        "images_per_s": images / (t1 - t0), "cpu_seconds": cpu,
        "workers": a.workers, "versions": {"torch": torch.__version__,
                                           "torchvision": torchvision.__version__},
    }))


if __name__ == "__main__":
    main()
