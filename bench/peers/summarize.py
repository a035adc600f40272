#!/usr/bin/python3
"""Reads the per-round outputs run.sh leaves in OUT and prints the comparison table.

Files (r = round 1..R): r{r}_sluice.json (`sluice bench --json`), r{r}_sluice_jemalloc.json
(optional, same), r{r}_pytorch.json, r{r}_tfdata.json (one JSON line each), r{r}_ceiling.txt
(bench_image's output), r{r}_load.txt (lines "system load1"). Also OUT/machine.txt.

images/s is the steady rate: images after the first batch over the time after the first batch
(the ceiling has no first batch: all its images over its time). CPU-seconds per image: every
CPU-second the system's processes used from the start of iteration, over all images.
Ratios are ratios of the medians over the rounds, with the per-round range.
Writes OUT/summary.md (the same table in Markdown) as well.

usage: summarize.py OUT REPRODUCE_COMMAND
"""
import json
import os
import re
import statistics
import sys

SYSTEMS = [("sluice", "(a) sluice engine"),
           ("sluice_jemalloc", "(a') sluice, jemalloc preloaded (diagnostic)"),
           ("pytorch", "(b) PyTorch DataLoader"),
           ("tfdata", "(c) tf.data"),
           ("ceiling", "(d) bare-C ceiling (bench_image)"),
           ("op", "    sluice fused op, no engine (bench_image)")]


def load_json_line(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
    raise ValueError("%s: no JSON line" % path)


def from_sluice(d, batch):
    first = d["first_element_ms"] / 1e3
    n = d["examples"]
    return {"rate": (n - min(batch, n)) / (d["seconds"] - first), "cpu": d["cpu_seconds"] / n,
            "first": first, "images": n}


def from_python(d):
    return {"rate": d["steady_images_per_s"], "cpu": d["cpu_seconds"] / d["images"],
            "first": d["first_batch_s"], "images": d["images"]}


def from_bench_image(path):
    out = {}
    with open(path) as f:
        text = f.read()
    for key, label in (("op", r"\(a\) sluice fused"), ("ceiling", r"\(b\) bare-C ceiling")):
        m = re.search(label + r".*?\s(\d+) images/s \(.*?\)\s+(\d+) us CPU/image", text)
        if not m:
            raise ValueError("%s: no %s line" % (path, key))
        out[key] = {"rate": float(m.group(1)), "cpu": float(m.group(2)) * 1e-6, "first": None,
                    "images": None}
    return out


def fmt_range(xs, f="%.0f"):
    return (f + " (" + f + "-" + f + ")") % (statistics.median(xs), min(xs), max(xs))


def main():
    out, repro = sys.argv[1], sys.argv[2]
    batch = 64
    rounds = sorted({int(m.group(1)) for m in
                     (re.match(r"r(\d+)_", n) for n in os.listdir(out)) if m})
    res = {k: [] for k, _ in SYSTEMS}
    loads = []
    for r in rounds:
        p = lambda name: os.path.join(out, "r%d_%s" % (r, name))  # noqa: E731
        res["sluice"].append(from_sluice(load_json_line(p("sluice.json")), batch))
        if os.path.exists(p("sluice_jemalloc.json")):
            res["sluice_jemalloc"].append(
                from_sluice(load_json_line(p("sluice_jemalloc.json")), batch))
        res["pytorch"].append(from_python(load_json_line(p("pytorch.json"))))
        res["tfdata"].append(from_python(load_json_line(p("tfdata.json"))))
        bi = from_bench_image(p("ceiling.txt"))
        res["ceiling"].append(bi["ceiling"])
        res["op"].append(bi["op"])
        with open(p("load.txt")) as f:
            loads.append("round %d: " % r + ", ".join(
                "%s %s" % tuple(line.split()[:2]) for line in f if line.strip()))

    lines = []
    emit = lines.append
    with open(os.path.join(out, "machine.txt")) as f:
        for line in f:
            emit(line.rstrip())
    emit("")
    emit("| system | images/s median (min-max) | CPU-ms per image | first batch, s |")
    emit("|---|---|---|---|")
    for key, label in SYSTEMS:
        v = res[key]
        if not v:
            continue
        firsts = [x["first"] for x in v if x["first"] is not None]
        emit("| %s | %s | %s | %s |" % (
            label.strip(), fmt_range([x["rate"] for x in v]),
            fmt_range([x["cpu"] * 1e3 for x in v], "%.2f"),
            "%.2f" % statistics.median(firsts) if firsts else "-"))
    emit("")

    def ratio(a, b, key="rate"):
        ma = statistics.median(x[key] for x in res[a])
        mb = statistics.median(x[key] for x in res[b])
        per = [x[key] / y[key] for x, y in zip(res[a], res[b])]
        return ma / mb, min(per), max(per)

    checks = [("sluice / ceiling", "ceiling", 0.90, ">= 0.90"),
              ("sluice / PyTorch", "pytorch", 3.5, ">= 3.5 expected"),
              ("sluice / tf.data", "tfdata", 1.0, "> 1 expected")]
    emit("| ratio (images/s) | median | per round | target | result |")
    emit("|---|---|---|---|---|")
    for name, other, target, text in checks:
        m, lo, hi = ratio("sluice", other)
        ok = m >= target if target != 1.0 else m > target
        emit("| %s | %.2f | %.2f-%.2f | %s | %s |" % (name, m, lo, hi, text,
                                                   "pass" if ok else "**FAIL**"))
    emit("")
    emit("| ratio (CPU per image, other / sluice) | median |")
    emit("|---|---|")
    for name, other in (("ceiling / sluice", "ceiling"), ("PyTorch / sluice", "pytorch"),
                        ("tf.data / sluice", "tfdata")):
        m, _, _ = ratio(other, "sluice", "cpu")
        emit("| %s | %.2f |" % (name, m))
    if res["sluice_jemalloc"]:
        m, lo, hi = ratio("sluice_jemalloc", "ceiling")
        emit("")
        emit("diagnostic: sluice with jemalloc preloaded (large buffers kept, no page faults) / "
             "ceiling = %.2f (%.2f-%.2f)" % (m, lo, hi))
    emit("")
    emit("load average (1 min) before each run:")
    for line in loads:
        emit("  " + line)
    emit("")
    emit("reproduce: " + repro)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
