#!/usr/bin/env python3
"""Spyglass beside py-spy, in one run, on the same targets.

Drives the benchmark harness (bench/harness: overhead.py, scale.py, dump_latency.py, slowdown.py),
first with py-spy and then with Spyglass for every measurement, reads both JSON logs and prints
Markdown tables with medians and ratios (py-spy / Spyglass: how many times cheaper Spyglass is).

    python3 bench/compare.py                       # build release first: swift build -c release
    python3 bench/compare.py --quick               # fewer rates and repetitions
    python3 bench/compare.py --out bench/results/latest.md

Not part of `swift test`: timings do not belong in unit tests.
"""
import argparse
import collections
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HARNESS = os.path.join(HERE, "harness")


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


def wakeup_floor(bound):
    """CPU µs per wake-up of bench/lower_bound.c doing nothing but sleeping to each tick, with no
    target (median of 3 runs of 3 s per rate)."""
    return [(rate, lower_bound(bound, 0, rate, "sleep", [])) for rate in (100, 1000, 10000, 20000)]


def sample_reads(spyglass, python, work):
    """The remote ranges of the read a typical Spyglass sample makes of a 10-deep target (strace's
    record of process_vm_readv; the most common list among the later calls), as ADDRESS:LENGTH."""
    target = subprocess.Popen([python, os.path.join(HARNESS, "workloads", "cpu_stack.py")], stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    trace = os.path.join(work, "reads-%d.strace" % target.pid)
    subprocess.run(["strace", "-f", "-e", "trace=process_vm_readv", "-o", trace, spyglass, "record", "-p",
                    str(target.pid), "-r", "100", "-d", "1", "--nonblocking", "-f", "raw", "-o", os.devnull],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    calls = []
    with open(trace) as fh:
        for line in fh:
            m = re.search(r"process_vm_readv\(\d+, \[.*?\], \d+, \[(.*)\], \d+, 0\) = \d+", line)
            if m:
                calls.append(tuple(re.findall(r"\{iov_base=(0x[0-9a-f]+), iov_len=(\d+)\}", m.group(1))))
    later = calls[len(calls) // 2:]
    ranges = ["%s:%s" % r for r in collections.Counter(later).most_common(1)[0][0]] if later else []
    return target, ranges


def lower_bound(binary, pid, rate, mode, ranges):
    """CPU µs per tick of bench/lower_bound.c (median of 3 runs of 3 s)."""
    runs = []
    for _ in range(3):
        out = subprocess.run([binary, str(pid), str(rate), mode] + ranges, stdout=subprocess.PIPE, text=True).stdout
        if out.split():
            runs.append(float(out.split()[0]))
    return med(runs)


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
    reps = "3" if not args.quick else "1"
    duration = "5" if not args.quick else "3"
    pyenv = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, text=True).stdout.strip() or "/root/.pyenv"
    out = []
    out.append("Command: `python3 bench/compare.py%s` (%s UTC), 2-core VM; every cell is the median of %s runs." % (
        " --quick" if args.quick else "", stamp, reps))

    # bench/lower_bound.c: the least any sampler spends (the wake-up floor, and per target below).
    bound = os.path.join(work, "lower_bound")
    if subprocess.run(["cc", "-O2", "-o", bound, os.path.join(HERE, "lower_bound.c")]).returncode != 0:
        bound = None
        out.append("\n(cc missing: the wake-up floor and the lower bounds are left out.)")
    elif not shutil.which("strace"):
        out.append("\n(strace missing: the per-target lower bounds are left out.)")

    # 0. The floor: what one timer wake-up costs a process that does nothing else on this machine.
    out.append("\n## The wake-up floor\n")
    out.append("| rate Hz | CPU µs per wake-up of a C loop doing only clock_nanosleep (`lower_bound PID HZ sleep`) |")
    out.append("|---|---|")
    floor = wakeup_floor(bound) if bound else []
    for rate, micros in floor:
        out.append("| %d | %.1f |" % (rate, micros))

    # 1. CPU per sample, achieved rate, RSS (overhead.py), blocking and non-blocking, per target.
    targets = [("3.12.1", "100,1000,10000")] + [(v, "1000,10000") for v in ("3.8.18", "2.7.18")]
    if args.quick:
        targets = [("3.12.1", "1000,10000")]
    for version, rates in targets:
        python = os.path.join(pyenv, "versions", version, "bin", "python")
        overhead = {}
        for name, path in tools:
            overhead[name] = run("overhead.py", path, os.path.join(work, "overhead-%s-%s.json" % (version, name)),
                                 ["--rates", rates, "--duration", duration, "--reps", reps, "--python", python], log)
        out.append("\n## CPU per sample, Python %s (record --pid, 10-deep CPU-bound target, %s s)\n" % (
            version, duration))
        out.append("| mode | rate Hz | py-spy µs/sample | Spyglass µs/sample | ratio | Spyglass µs/sample above the floor | "
                   "py-spy achieved Hz | Spyglass achieved Hz | py-spy maxRSS MiB | Spyglass maxRSS MiB | "
                   "target CPU% py-spy / Spyglass |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        floors = dict(floor)
        costs = {}
        for key in sorted(overhead["spyglass"]["results"], key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1]))):
            mode, rate = key.rsplit("_", 1)
            p = overhead["py-spy"]["results"].get(key, [])
            s = overhead["spyglass"]["results"][key]
            pu = med([r["us_per_sample"] for r in p])
            su = med([r["us_per_sample"] for r in s])
            above = su - floors[int(rate)] if su is not None and int(rate) in floors else None
            costs[(mode, int(rate))] = (pu, su)
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                mode, rate, fmt(pu), fmt(su), ratio(pu, su), fmt(above),
                fmt(med([r["rate_per_wall"] for r in p]), "%.0f"), fmt(med([r["rate_per_wall"] for r in s]), "%.0f"),
                fmt(med([r["maxrss_kb"] / 1024.0 for r in p])), fmt(med([r["maxrss_kb"] / 1024.0 for r in s])),
                fmt(med([r["target_cpu_pct"] for r in p]), "%.0f"), fmt(med([r["target_cpu_pct"] for r in s]), "%.0f")))

        # The least any sampler spends here: sleep, the same read, and in blocking mode the pause.
        if bound and shutil.which("strace"):
            target, ranges = sample_reads(args.spyglass, python, work)
            share = 20 if version.startswith("3.12") else 10
            out.append("\nThe least any sampler can spend per sample on this target here (`bench/lower_bound.c`: "
                       "a C loop that sleeps to the tick and makes only the one `process_vm_readv` of the "
                       "%d ranges, %d bytes, a Spyglass sample reads; blocking adds PTRACE_SEIZE, "
                       "PTRACE_INTERRUPT, polled waitpid and PTRACE_DETACH), against the bar (1/%d of py-spy's "
                       "figure above):\n" % (len(ranges), sum(int(r.split(":")[1]) for r in ranges), share))
            out.append("| rate Hz | sleep only | non-blocking least | bar | Spyglass | blocking least | bar | Spyglass |")
            out.append("|---|---|---|---|---|---|---|---|")
            for rate in [int(r) for r in rates.split(",") if int(r) >= 1000]:
                least = {m: lower_bound(bound, target.pid, rate, m, ranges) for m in ("sleep", "read", "pause")}
                nb = costs.get(("nonblocking", rate), (None, None))
                blk = costs.get(("blocking", rate), (None, None))
                out.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                    rate, fmt(least["sleep"]), fmt(least["read"]), fmt(nb[0] / share if nb[0] else None), fmt(nb[1]),
                    fmt(least["pause"]), fmt(blk[0] / share if blk[0] else None), fmt(blk[1])))
            target.kill()
            target.wait()

    # 2. 20 kHz non-blocking for 10 s (Spyglass only: py-spy tops out far below).
    twenty = run("overhead.py", args.spyglass, os.path.join(work, "overhead20k-spyglass.json"),
                 ["--rates", "20000", "--duration", "10", "--reps", reps, "--modes", "nonblocking", "--no-fixed"], log)
    for key, runs in twenty["results"].items():
        out.append("\n20 kHz non-blocking for 10 s: Spyglass achieved %s Hz (rate/wall; runs: %s), %s µs CPU per "
                   "sample, %d runs reported falling behind." % (
                       fmt(med([r["rate_per_wall"] for r in runs]), "%.0f"),
                       ", ".join(fmt(r["rate_per_wall"], "%.0f") for r in runs),
                       fmt(med([r["us_per_sample"] for r in runs])),
                       sum(1 for r in runs if r.get("behind_msgs"))))

    # 3. Target slowdown, launched under record (blocking, the default).
    if not args.quick:
        out.append("\n## Target slowdown (slowdown.py, launched under `record`, blocking)\n")
        for name, path in tools:
            data = run("slowdown.py", path, os.path.join(work, "slowdown-%s.json" % name),
                       ["--rates", "100,1000", "--modes", "blocking", "--runs", "5"], log)
            out.append("\n### %s\n" % name)
            out.extend(tables(data))

    # 4. 50 busy threads and a 500-deep recursion.
    out.append("\n## 50 busy threads and a 500-deep recursion (scale.py, 100 Hz)\n")
    for name, path in tools:
        data = run("scale.py", path, os.path.join(work, "scale-%s.json" % name),
                   ["--scenarios", "threads50,recursion", "--rates", "100", "--reps", reps], log)
        out.append("\n### %s\n" % name)
        out.extend(tables(data))

    # 5. dump latency per interpreter.
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
