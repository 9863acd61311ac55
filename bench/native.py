#!/usr/bin/env python3
"""`record --native` beside `py-spy record --native`, in one run, on the same target.

The target is Tests/SpyglassTests/Fixtures/scripts/native_qsort.py under pyenv's 3.12 (override
with --python): its main thread sleeps inside a Python comparison callback called by libc's qsort
through ctypes (a deep native + Python stack to unwind every tick), a second thread compresses
with zlib in a loop (busy in libz). Both profilers sample it for D seconds (default 10) at each
rate (default 100 and 1000 Hz), idle threads included, blocking mode (the only one --native has):

  Spyglass  .build/release/spyglass record --native -i --pid PID -r RATE -d D -f raw -o OUT
  py-spy    py-spy record --native -i --pid PID -r RATE -d D -f raw -o OUT

Measured per run: CPU (user+sys of the profiler, wait4), ticks (samples of the zlib thread: one
per tick), µs per tick (CPU / ticks), achieved Hz, max RSS (GNU time), and the target's pause
(the zlib thread's CPU lost: its CPU seconds over the run vs the same time unprofiled). Medians of
--repeat runs (default 3), the two profilers alternating.

    swift build -c release --product spyglass
    python3 bench/native.py            # about 3 minutes
    python3 bench/native.py --quick    # one repetition

Needs root (ptrace) and GNU time. Not part of `swift test`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
import benchlib as B  # noqa: E402

SCRIPT = os.path.join(ROOT, "Tests/SpyglassTests/Fixtures/scripts/native_qsort.py")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", default=os.path.join(B._pyenv_root(), "versions/3.12.1/bin/python3"))
    p.add_argument("--rates", default="100,1000")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    return p.parse_args()


def start_target(python):
    proc = subprocess.Popen([python, SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        raise SystemExit("target did not start: %r" % line)
    time.sleep(0.5)  # the announcing thread exits
    return proc


def ticks(path):
    total = 0
    with open(path) as fh:
        for line in fh:
            if "compress_forever" in line:
                total += int(line.rsplit(" ", 1)[1])
    return total


def main():
    args = parse_args()
    if args.quick:
        args.repeat = 1
    spyglass = os.path.join(ROOT, ".build/release/spyglass")
    pyspy = shutil.which("py-spy")
    tools = [("spyglass", spyglass), ("py-spy", pyspy)]
    rates = [int(r) for r in args.rates.split(",")]
    results = {}
    target = start_target(args.python)
    try:
        out = tempfile.mkdtemp(prefix="native-bench-")
        for rate in rates:
            for rep in range(args.repeat):
                for name, exe in tools:
                    path = os.path.join(out, "%s-%d-%d.txt" % (name, rate, rep))
                    argv = [exe, "record", "--native", "-i", "--pid", str(target.pid), "-r", str(rate), "-d",
                            str(args.duration), "-f", "raw", "-o", path]
                    r = B.run_measured(argv, timeout=args.duration * 10 + 60, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                    n = ticks(path) if os.path.exists(path) else 0
                    results.setdefault((name, rate), []).append(
                        {"cpu": r["cpu"], "ticks": n, "rss": r["maxrss_kb"], "rc": r["rc"]})
                    time.sleep(1)
    finally:
        target.kill()
    print("| profiler | rate | µs CPU per tick | ticks in %gs | achieved Hz | max RSS MiB | py-spy / Spyglass |" % args.duration)
    print("|---|---|---|---|---|---|---|")
    for rate in rates:
        per = {}
        for name, _ in tools:
            runs = results[(name, rate)]
            us = B.med([1e6 * x["cpu"] / x["ticks"] for x in runs if x["ticks"]])
            per[name] = us
            n = B.med([x["ticks"] for x in runs])
            rss = B.med([x["rss"] / 1024.0 for x in runs if x["rss"]])
            ratio = ""
            if name == "py-spy" and per.get("spyglass") and us:
                ratio = "%.1f×" % (us / per["spyglass"])
            print("| %s | %d Hz | %.0f | %d | %.0f | %.1f | %s |" % (
                name, rate, us or 0, n, n / args.duration, rss or 0, ratio))
    print("runs: %s" % {("%s@%d" % k): v for k, v in results.items()})


if __name__ == "__main__":
    main()
