#!/usr/bin/env python3
"""Training steps per second of sluice's cnn and mlp written in PyTorch, on the CPU.

The peer of bench/bench_train_step.c's in-memory variant: the same architecture as
trainer/src/model.c (layer list, widths, no conv bias, batch norm momentum 0.1 / eps 1e-5, the
global max head, parameter count printed and checked against --expect-params), the same input
shape, batch and optimizer as `sluice train --optimizer sgd` (momentum 0.9, weight decay 5e-4 on
conv and linear weights only, as sluice decays only its weight prefix; lr 0.05), one
preallocated batch of random float32 values and labels, torch.set_num_threads(--threads).
A step is zero_grad, forward, cross-entropy, backward, optimizer step, and loss.item() (sluice's
loop reads the loss every step too). Each round times --steps steps after --warmup steps;
steps/s is the median of --rounds rounds. Prints one JSON line.

usage: torch_train.py [--model cnn|mlp] [--batch B] [--size S] [--classes K] [--threads T]
                      [--steps N] [--warmup W] [--rounds R] [--optimizer sgd|adamw]
                      [--width W] [--blocks N] [--hidden H] [--pool] [--avg-pool]
                      [--expect-params P]
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn


class Block(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus an identity or conv1x1-BN shortcut, ReLU after the add
    (model.c build_block)."""

    def __init__(self, cin, cout, stride, bn):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = bn(cout)
        self.sc = None
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), bn(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.sc is None else self.sc(x)))


def make_cnn(size, classes, width, blocks, pool, avg_pool):
    """model.c build_cnn: stem, optional 2x2 max pool, blocks (block 2 is the stride-2 stage that
    doubles the channels), then the head: 2x2 max pools while both sides are even (a global max
    for power-of-two sides) unless avg_pool, a global average, linear."""
    bn = lambda c: nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), bn(width), nn.ReLU()]
    h = size
    if pool:
        layers.append(nn.MaxPool2d(2))
        h //= 2
    cin = width
    for b in range(1, blocks + 1):
        cout = 2 * width if b >= 2 else width
        stride = 2 if b == 2 else 1
        layers.append(Block(cin, cout, stride, bn))
        h = (h - 1) // stride + 1  # conv 3x3, pad 1
        cin = cout
    if not avg_pool:
        while h >= 2 and h % 2 == 0:  # square inputs: both sides alike
            layers.append(nn.MaxPool2d(2))
            h //= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def make_mlp(size, classes, hidden):
    """model.c build_mlp: flatten, linear hidden, ReLU, linear classes."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before each round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--pool", action="store_true")
    ap.add_argument("--avg-pool", action="store_true")
    ap.add_argument("--expect-params", type=int, default=0,
                    help="exit 1 unless the model has exactly this many parameters")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.model == "cnn":
        model = make_cnn(a.size, a.classes, a.width, a.blocks, a.pool, a.avg_pool)
    else:
        model = make_mlp(a.size, a.classes, a.hidden)
    params = sum(p.numel() for p in model.parameters())
    if a.expect_params and params != a.expect_params:
        print("torch_train.py: %s has %d parameters, sluice's has %d: the models differ"
              % (a.model, params, a.expect_params), file=sys.stderr)
        sys.exit(1)
    model.train()
    # sluice decays conv and linear weights only (its blob's prefix), not biases or BN.
    decay = [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
             for p in [m.weight]]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    if a.optimizer == "sgd":
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                               {"params": rest, "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": rest, "weight_decay": 0.0}], lr=1e-3,
                                betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(7)
    x = torch.rand(a.batch, 3, a.size, a.size, generator=g) * 4 - 2
    y = torch.randint(0, a.classes, (a.batch,), generator=g)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    rates = []
    for _ in range(a.rounds):
        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        rates.append(a.steps / (time.perf_counter() - t0))
    print(json.dumps({"system": "pytorch", "model": a.model, "params": params,
                      "batch": a.batch, "size": a.size, "classes": a.classes,
                      "threads": torch.get_num_threads(), "optimizer": a.optimizer,
                      "steps_per_s": statistics.median(rates),
                      "rounds": [round(r, 4) for r in rates], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
