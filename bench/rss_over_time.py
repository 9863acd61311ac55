#!/usr/bin/env python3
"""Does Spyglass's memory stay flat over a long recording?

Records the 10-deep CPU-bound target (bench/harness/workloads/cpu_stack.py) to raw and to
flamegraph at once (two Spyglass processes on one target) and reads each one's resident set
(VmRSS) from /proc once a second. Reported: RSS after 60 s of sampling, RSS at the end, the
peak, and the samples written.

An hour at the default 100 Hz is 360,000 samples. By default this runs 6 minutes at 1000 Hz,
which takes the same 360,000 samples (memory grows with samples and distinct stacks, not with
wall time), so "end" stands for "after an hour at 100 Hz"; `--rate 100 --seconds 3600` runs the
real hour.

    python3 bench/rss_over_time.py [--spyglass .build/release/spyglass] [--rate 1000] [--seconds 360]
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(HERE, "harness", "workloads", "cpu_stack.py")


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spyglass", default=os.path.join(ROOT, ".build", "release", "spyglass"))
    ap.add_argument("--python", default=os.path.join(
        subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, text=True).stdout.strip() or "/root/.pyenv",
        "versions", "3.12.1", "bin", "python"))
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=360)
    ap.add_argument("--workdir", default="/tmp")
    args = ap.parse_args()

    target = subprocess.Popen([args.python, WORKLOAD, "--seconds", str(args.seconds + 120)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    recorders = {}
    for fmt in ("raw", "flamegraph"):
        out = os.path.join(args.workdir, "spyglass-rss.%s" % fmt)
        recorders[fmt] = (out, subprocess.Popen(
            [args.spyglass, "record", "-f", fmt, "-o", out, "-r", str(args.rate), "-d", str(args.seconds),
             "--pid", str(target.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    start = time.monotonic()
    series = {fmt: [] for fmt in recorders}
    while any(p.poll() is None for _, p in recorders.values()):
        time.sleep(1)
        for fmt, (_, p) in recorders.items():
            value = rss_kib(p.pid) if p.poll() is None else None
            if value:
                series[fmt].append((time.monotonic() - start, value))
    target.kill()
    print("| format | rate Hz | seconds | samples | RSS after 60 s MiB | RSS at the end MiB | peak MiB | growth MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, (out, p) in recorders.items():
        stderr = p.stderr.read()
        samples = "?"
        for line in stderr.splitlines():
            if "Samples:" in line:
                samples = line.rsplit("Samples:", 1)[1].split()[0]
        points = series[fmt]
        at60 = next((v for t, v in points if t >= 60), None)
        end = points[-1][1] if points else None
        peak = max((v for _, v in points), default=None)
        mib = lambda v: "-" if v is None else "%.1f" % (v / 1024.0)
        growth = "-" if at60 is None or end is None else "%+.2f" % ((end - at60) / 1024.0)
        print("| %s | %d | %d | %s | %s | %s | %s | %s |" % (
            fmt, args.rate, args.seconds, samples, mib(at60), mib(end), mib(peak), growth))
    print("\nSUMMARY rss_over_time: %d s at %d Hz = %d samples (an hour at 100 Hz is 360,000)" % (
        args.seconds, args.rate, args.seconds * args.rate))


if __name__ == "__main__":
    sys.exit(main())
