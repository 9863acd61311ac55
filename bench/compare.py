#!/usr/bin/env python3
"""Spyglass beside py-spy, in one run, on the same targets.

Drives the shared harness (../shared/bench: overhead.py, scale.py, dump_latency.py, slowdown.py),
first with py-spy and then with Spyglass for every measurement, reads both JSON logs and prints
Markdown tables with medians and ratios (py-spy / Spyglass: how many times cheaper Spyglass is).

    python3 bench/compare.py                       # build release first: swift build -c release
    python3 bench/compare.py --quick               # fewer rates and repetitions
    python3 bench/compare.py --out bench/results/latest.md

Not part of `swift test`: timings do not belong in unit tests.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HARNESS = os.path.join(ROOT, "..", "shared", "bench")


def run(script, profiler, json_path, extra, log):
    cmd = [sys.executable, os.path.join(HARNESS, script), "--profiler", profiler, "--json", json_path] + extra
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(proc.stdout + "\n")
    log.flush()
    with open(json_path) as fh:
        data = json.load(fh)
    data["_stdout"] = proc.stdout
    return data


def tables(data):
    """The harness's own Markdown tables and SUMMARY line."""
    return [line for line in data.get("_stdout", "").splitlines() if line.startswith(("|", "SUMMARY", "##"))]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, pattern="%.1f"):
    return "-" if value is None else pattern % value


def ratio(a, b):
    return "-" if not a or not b else "%.1f×" % (a / b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spyglass", default=os.path.join(ROOT, ".build", "release", "spyglass"))
    ap.add_argument("--pyspy", default=shutil.which("py-spy") or "py-spy")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    # The harness replaces a pyenv shim by the real binary itself.
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    work = os.path.join(args.workdir, stamp)
    os.makedirs(work, exist_ok=True)
    log = open(os.path.join(work, "harness.log"), "w")
    tools = [("py-spy", args.pyspy), ("spyglass", args.spyglass)]
    rates = "100,1000,10000" if not args.quick else "1000,10000"
    reps = "3" if not args.quick else "1"
    out = []
    out.append("Command: `python3 bench/compare.py%s` (%s UTC), Python 3.12.1 target, 2-core VM." % (
        " --quick" if args.quick else "", stamp))

    # 1. CPU per sample, achieved rate, RSS (overhead.py), blocking and non-blocking.
    overhead = {}
    for name, path in tools:
        overhead[name] = run("overhead.py", path, os.path.join(work, "overhead-%s.json" % name),
                             ["--rates", rates, "--duration", "3", "--reps", reps], log)
    out.append("\n## CPU per sample (record --pid, 10-deep CPU-bound target, medians of %s)\n" % reps)
    out.append("| mode | rate Hz | py-spy µs/sample | Spyglass µs/sample | ratio | py-spy achieved Hz | Spyglass achieved Hz | py-spy maxRSS MiB | Spyglass maxRSS MiB | target CPU% py-spy / Spyglass |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(overhead["spyglass"]["results"], key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1]))):
        mode, rate = key.rsplit("_", 1)
        p = overhead["py-spy"]["results"].get(key, [])
        s = overhead["spyglass"]["results"][key]
        pu = med([r["us_per_sample"] for r in p])
        su = med([r["us_per_sample"] for r in s])
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            mode, rate, fmt(pu), fmt(su), ratio(pu, su),
            fmt(med([r["rate_per_wall"] for r in p]), "%.0f"), fmt(med([r["rate_per_wall"] for r in s]), "%.0f"),
            fmt(med([r["maxrss_kb"] / 1024.0 for r in p])), fmt(med([r["maxrss_kb"] / 1024.0 for r in s])),
            fmt(med([r["target_cpu_pct"] for r in p]), "%.0f"), fmt(med([r["target_cpu_pct"] for r in s]), "%.0f")))

    # 2. 20 kHz non-blocking for 10 s (Spyglass only: py-spy tops out far below).
    twenty = run("overhead.py", args.spyglass, os.path.join(work, "overhead20k-spyglass.json"),
                 ["--rates", "20000", "--duration", "10", "--reps", "1", "--modes", "nonblocking", "--no-fixed"], log)
    for key, runs in twenty["results"].items():
        out.append("\n20 kHz non-blocking for 10 s: Spyglass achieved %s Hz (rate/wall), %s µs CPU per sample." % (
            fmt(med([r["rate_per_wall"] for r in runs]), "%.0f"), fmt(med([r["us_per_sample"] for r in runs]))))

    # 3. 50 busy threads.
    out.append("\n## 50 busy threads (scale.py threads50)\n")
    for name, path in tools:
        data = run("scale.py", path, os.path.join(work, "scale-%s.json" % name),
                   ["--scenarios", "threads50", "--rates", "100"], log)
        out.append("\n### %s\n" % name)
        out.extend(tables(data))

    # 4. dump latency per interpreter.
    out.append("\n## dump latency per interpreter (dump_latency.py)\n")
    for name, path in tools:
        data = run("dump_latency.py", path, os.path.join(work, "dump-%s.json" % name), [], log)
        out.append("\n### %s\n" % name)
        out.extend(tables(data))

    text = "\n".join(out) + "\n"
    print(text)
    with open(args.out or os.path.join(work, "summary.md"), "w") as fh:
        fh.write(text)
    print("raw harness output: %s" % work, file=sys.stderr)


if __name__ == "__main__":
    main()
