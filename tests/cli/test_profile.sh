# sluice profile: the per-stage table, the bottleneck named by its canonical text, the bound and
# predictions as pipeline text; --json for scripts; --trace writes a Chrome trace that Debian's
# Python json module parses, with paired events, non-negative durations and a named track for
# every thread that recorded; each stage's memory and a file source's I/O backend; usage errors
# exit 2.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$SLUICE" --help
expect_output_has "profile"
expect_exit 0 "$SLUICE" profile --help
expect_output_has "usage: sluice profile PIPELINE"
expect_output_has "--trace FILE"
expect_output_has "--threads T"

p='range(3000000) | batch(64) | prefetch(2)'
expect_exit 0 "$SLUICE" profile "$p" --seconds 1 --threads 2 --json --trace trace.json
"$PY" - "$WORK/out" "$p" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pipeline"] == sys.argv[2], d["pipeline"]
texts = [s["stage"] for s in d["stages"]]
assert texts == ["prefetch(2)", "batch(64)", "range(0, 3000000)"] or \
       texts == ["prefetch(2)", "batch(64)", "range(3000000)"], texts
assert d["bottleneck"] in texts, d["bottleneck"]
assert d["cores"] == 2, d["cores"]
assert d["elements"] > 0 and d["elements_per_s"] > 0, d
assert d["bound"] > 0 and d["model_rate"] > 0, d
assert [s["depth"] for s in d["stages"]] == [0, 1, 2], d["stages"]
top = d["stages"][0]
assert top["work_ahead"] is True and 0 <= top["wait_share"] <= 1.01, top
assert 0 <= top["fill"] <= 1, top
# memory: the prefetch ring at capacity 2 holds two batches of 64 int64 (plus element headers);
# batch(64) reserves its arena; range buffers nothing and reads no file
assert 2 * 64 * 8 < top["memory_bytes"] < 2 * (64 * 8 + 4096), top
assert d["stages"][1]["memory_bytes"] >= 64 * 8, d["stages"][1]
assert d["stages"][2]["memory_bytes"] == 0 and d["stages"][2]["io"] is None, d["stages"][2]
for s in d["stages"]:
    for k in ("rate", "per_core_rate", "busy_share", "wait_share", "blocked_share", "fill",
              "bytes_per_s", "capacity", "own_ns"):
        assert k in s, (k, s)
for pr in d["predictions"]:
    assert pr["change"] in ("parallel", "prefetch", "cache"), pr
    assert pr["rate"] > 0 and pr["pipeline"].startswith("range("), pr
PYEOF

"$PY" - trace.json <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
names, stacks, used = {}, {}, set()
for e in ev:
    for k in ("ph", "ts", "pid", "tid", "name"):
        assert k in e, (k, e)
    if e["ph"] == "M":
        if e["name"] == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        continue
    used.add(e["tid"])
    if e["ph"] == "X":
        assert e["dur"] >= 0 and e["ts"] >= 0, e
    elif e["ph"] == "B":
        stacks.setdefault(e["tid"], []).append(e["name"])
    elif e["ph"] == "E":
        assert stacks.get(e["tid"]) and stacks[e["tid"]].pop() == e["name"], e
    else:
        raise AssertionError(("unexpected phase", e))
assert all(not s for s in stacks.values()), stacks
assert used and used <= set(names), (used, names)
# the consumer's thread and the prefetch's coordinator each have a track with events
assert "sl-prefetch" in {names[t] for t in used}, names
assert len(used) >= 2, used
PYEOF

expect_exit 0 "$SLUICE" profile "$p" --seconds 0.5
expect_output_has "pipeline:    range("
expect_output_has "bottleneck:  "
expect_output_has "bound:       "
expect_output_has "elements/s"
expect_output_has "memory"

# a file source says which I/O backend read it; SLUICE_IO=pread selects the fallback
"$PY" "$TOOLS/make_dataset.py" d.tfrecord --records 200 >/dev/null
"$SLUICE" convert d.tfrecord -o d --shards 2 >/dev/null
for io in io_uring pread; do
  SLUICE_IO=$io expect_exit 0 "$SLUICE" profile 'records("d-*.sluice") | take(50)' --json --seconds 0.5
  "$PY" - "$WORK/out" "$io" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
src = d["stages"][-1]
assert src["stage"] == 'records("d-*.sluice")' and src["io"] == sys.argv[2], src
assert d["stages"][0]["io"] is None, d["stages"][0]
PYEOF
done

# on a terminal the live line names the bottleneck as it runs (util-linux's script gives the
# command a pseudo-terminal); piped, as everywhere above, it stays silent
if command -v script >/dev/null; then
  script -qec "$SLUICE profile 'range(2000000000) | shuffle(1000, seed=1) | batch(64)' --seconds 1.5" \
    /dev/null </dev/null >"$WORK/tty" 2>&1 || { cat "$WORK/tty"; exit 1; }
  tr '\r' '\n' <"$WORK/tty" | grep -qE '^profile .* elements/s .* bottleneck: (shuffle|batch|range)' ||
    { echo "no live line naming the bottleneck:"; tr '\r' '\n' <"$WORK/tty" | head; exit 1; }
  # convert's names the phase (reading, converting, writing) that takes most of its time
  script -qec "$SLUICE convert d.tfrecord -o tty.sluice --compress zstd" /dev/null </dev/null \
    >"$WORK/tty" 2>&1 || { cat "$WORK/tty"; exit 1; }
  tr '\r' '\n' <"$WORK/tty" | grep -qE '^convert .*records/s.* bottleneck: (reading the input|converting records|writing the output \(compression included\)) \([0-9]+% of the time\)' ||
    { echo "no convert line naming the bottleneck:"; tr '\r' '\n' <"$WORK/tty" | head; exit 1; }
fi

expect_exit 2 "$SLUICE" profile
expect_exit 2 "$SLUICE" profile "$p" --seconds 0
expect_exit 2 "$SLUICE" profile "$p" --trace
expect_exit 2 "$SLUICE" profile "$p" --frobnicate
expect_exit 1 "$SLUICE" profile "$p" --seconds 0.2 --trace no-such-dir/t.json
expect_output_has "writing the trace to no-such-dir/t.json"
expect_exit 1 "$SLUICE" profile 'range(5) | batch(0)'
echo "profile OK"
