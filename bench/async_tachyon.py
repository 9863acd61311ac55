#!/usr/bin/env python3
"""`record --async-aware` beside Tachyon's `--async-aware` (CPython 3.15's own sampler), in one run.

The target is Tests/SpyglassTests/Fixtures/scripts/async_tasks.py in its `many N` mode (N tasks,
each parked in its own asyncio.sleep, plus the main task), run by Debian sid's /usr/bin/python3.15
in the root tools/debian-roots.sh makes, exactly as bench/tachyon.py runs its target (see there for
how Tachyon is started inside the target's own mount namespace and how CPU is measured). Both
profilers attach for D seconds (default 5) at each rate (default 100 and 1000 Hz) with every task
shown (`--async-mode all`), for N = 10 and N = 1000:

  Spyglass  .build/release/spyglass record --async-aware --async-mode all --pid PID -r RATE -d D \\
              -f raw -o OUT [--nonblocking]
  Tachyon   nsenter ... /usr/bin/python3.15 -m profiling.sampling attach --async-aware --async-mode all \\
              -r RATE -d D --collapsed -o OUT [--blocking] PID

Measured per run: CPU (user+sys of the profiler's process tree), ticks (how many samples the
profiler took: the count of the `many-0` task's stacks, one per tick), µs per tick (CPU / ticks),
achieved Hz (ticks / D), the stacks written per tick (every task's, so N+1 when complete), max RSS.
Tachyon's start-up (interpreter + imports, measured as in bench/tachyon.py) is also subtracted.
Figures are medians of --repeat runs (default 3), the two profilers alternating.

    swift build -c release --product spyglass
    python3 bench/async_tachyon.py               # about 6 minutes
    python3 bench/async_tachyon.py --quick       # one repetition

Needs root (chroot, nsenter, ptrace), nsenter and GNU time. Not part of `swift test`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
import benchlib as B  # noqa: E402
import tachyon as T  # noqa: E402

FIXTURE = os.path.join(ROOT, "Tests", "SpyglassTests", "Fixtures", "scripts", "async_tasks.py")
TOOLS = ["spyglass", "tachyon"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spyglass", default=os.path.join(ROOT, ".build", "release", "spyglass"))
    ap.add_argument("--root", default=None)
    ap.add_argument("--python", default="/usr/bin/python3.15")
    ap.add_argument("--rates", default="100,1000")
    ap.add_argument("--tasks", default="10,1000")
    ap.add_argument("--modes", default="nonblocking,blocking")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--quiet-timeout", type=float, default=20.0)
    ap.add_argument("--max-foreign", type=float, default=0.4)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--budget", type=float, default=2400.0)
    ap.add_argument("--out", default=None, help="also write the Markdown report here")
    args = ap.parse_args()
    if args.quick:
        args.repeat = 1
    args.pyspy = "py-spy"
    args.workdir = None
    args.keep = False
    args.json = None
    return args


class AsyncBench(T.Bench):
    def __init__(self, args):
        super(AsyncBench, self).__init__(args)
        self.fixture = os.path.join(self.work, "async_tasks.py")
        shutil.copy(FIXTURE, self.fixture)
        self.tasks = 10

    def command(self, tool, pid, rate, nonblocking, out):
        d = str(self.args.duration)
        if tool == "spyglass":
            argv = [self.spyglass, "record", "--async-aware", "--async-mode", "all", "--pid", str(pid), "-r",
                    str(rate), "-d", d, "-f", "raw", "-o", out]
            return argv + (["--nonblocking"] if nonblocking else [])
        argv = self.nsenter(pid) + [self.args.python, "-m", "profiling.sampling", "attach", "--async-aware",
                                    "--async-mode", "all", "-r", str(rate), "-d", d, "--collapsed", "-o", out]
        return argv + ([] if nonblocking else ["--blocking"]) + [str(pid)]

    def start_target(self):
        tgt = B.Target(self.in_root + [self.args.python, self.fixture, "many", str(self.tasks)], ready_timeout=60)
        if tgt.ready_line != "ready %d" % tgt.pid:
            tgt.stop()
            raise RuntimeError("unexpected readiness line %r" % tgt.ready_line)
        return tgt


def stacks(path):
    """(ticks, stacks): the count of many-0's stacks, and of every stack."""
    ticks = total = 0
    with open(path, errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            if "<task many-0>" in stack or "<task>:many-0:" in stack:
                ticks += int(count)
    return ticks, total


def main():
    args = parse_args()
    bench = AsyncBench(args)
    out = []

    def say(text=""):
        print(text)
        out.append(text)

    startup = bench.startup_costs()
    rates = [int(r) for r in args.rates.split(",")]
    counts = [int(n) for n in args.tasks.split(",")]
    modes = args.modes.split(",")
    results = {}
    for rep in range(args.repeat):
        for tasks in counts:
            bench.tasks = tasks
            for mode in modes:
                for rate in rates:
                    order = TOOLS if rep % 2 == 0 else TOOLS[::-1]
                    for tool in order:
                        bench.noise.wait_quiet()
                        tag = "%s_%s_%d_%d_%d" % (tool, mode, rate, tasks, rep)
                        path = os.path.join(bench.work, tag + ".txt")
                        tgt = bench.start_target()
                        try:
                            time.sleep(args.warmup)
                            argv = bench.command(tool, tgt.pid, rate, mode == "nonblocking", path)
                            with open(path + ".log", "w") as log:
                                r = B.run_measured(argv, timeout=args.duration * 30 + 120, stdout=log,
                                                   stderr=subprocess.STDOUT,
                                                   env=T.CLEAN_ENV if tool == "tachyon" else None)
                        finally:
                            tgt.stop()
                        ticks, total = stacks(path) if os.path.exists(path) else (0, 0)
                        r.update({"ticks": ticks, "stacks": total})
                        results.setdefault((tool, mode, rate, tasks), []).append(r)
                        print("%-8s %-11s %5d Hz %5d tasks: %.3f s CPU, %d ticks, %d stacks" %
                              (tool, mode, rate, tasks, r["cpu"], ticks, total), file=sys.stderr)

    sampler_ms = 1e3 * startup["sampler"]["cpu"]
    say("Tachyon's start-up (interpreter + imports): %.1f ms CPU, subtracted in the \"−start-up\" column." %
        sampler_ms)
    say()
    say("| tasks | mode | rate | Spyglass µs/tick | Tachyon µs/tick | Tachyon − start-up | ratio | "
        "ticks (S / T) | stacks per tick (S / T) | max RSS MiB (S / T) |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for tasks in counts:
        for mode in modes:
            for rate in rates:
                s = results.get(("spyglass", mode, rate, tasks), [])
                t = results.get(("tachyon", mode, rate, tasks), [])
                if not s or not t:
                    continue

                def per_tick(runs, minus=0.0):
                    return B.med([1e6 * (r["cpu"] - minus) / r["ticks"] for r in runs if r["ticks"]])
                su, tu = per_tick(s), per_tick(t)
                tm = per_tick(t, startup["sampler"]["cpu"])
                say("| %d | %s | %d Hz | %.1f | %.1f | %.1f | %.1f× | %d / %d | %.1f / %.1f | %.1f / %.1f |" % (
                    tasks, mode, rate, su, tu, tm, tm / su if su else 0,
                    B.med([r["ticks"] for r in s]), B.med([r["ticks"] for r in t]),
                    B.med([r["stacks"] / float(r["ticks"]) for r in s if r["ticks"]]),
                    B.med([r["stacks"] / float(r["ticks"]) for r in t if r["ticks"]]),
                    B.med([r["maxrss_kb"] for r in s]) / 1024.0, B.med([r["maxrss_kb"] for r in t]) / 1024.0))
    say()
    say(bench.noise.report())
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
