#!/usr/bin/env python3
"""Spyglass beside py-spy 0.4.3 and Tachyon (CPython 3.15's own sampling profiler), in one run.

The target is bench/harness/workloads/cpu_stack.py (one thread, a 10-deep CPU-bound pure-Python
stack) run by Debian sid's /usr/bin/python3.15 inside the debootstrap'd root that
tools/debian-roots.sh makes or reuses, started with tools/in-root.sh (chrooted, in a mount namespace
of its own; every step execs, so the pid started is the python's). Each profiler attaches to the
running target for D seconds (default 5) at every rate (default 1000 and 10000 Hz), blocking and
non-blocking:

  Spyglass  .build/release/spyglass record --pid PID -r RATE -d D -f raw -o OUT [--nonblocking]
  py-spy    py-spy record --pid PID -r RATE -d D -f raw -o OUT [--nonblocking]
  Tachyon   nsenter --target PID --mount --root env -C /proc /usr/bin/python3.15 \\
              -m profiling.sampling attach -a -r RATE -d D --collapsed -o OUT [--blocking] PID

Tachyon runs with the target's own interpreter (it reads only its own minor version) inside the
target's own mount namespace and root, as `docker exec` would: it opens the executable at the path
the target's /proc/PID/maps shows, which a reader in a fresh tools/in-root.sh namespace does not see
("Failed to find the PyRuntime section"); see Tests/TestSupport/Tachyon.swift. Tachyon does not
pause the target unless --blocking is given (the opposite default of py-spy's); -a samples every
thread (py-spy and Spyglass always do; the target has one thread). Its default --mode wall keeps
idle samples, which py-spy and Spyglass drop; the target never idles, so the counts compare.

For every run a fresh target is started (after waiting for an idle machine), and measured:

  CPU           user+sys of the whole profiler process tree (wait4 rusage of /usr/bin/time, which
                waited for it; benchlib.run_measured)
  samples       the sum of the counts in its collapsed/raw output
  µs/sample     CPU / samples
  achieved Hz   samples / D
  max RSS       the profiler's ru_maxrss (GNU time's %M: wait4 from this Python harness would
                report at least the harness's own RSS, inherited through fork/exec)
  target CPU%   the target's utime+stime (/proc/PID/stat) over the profiler's wall time

Tachyon's CPU includes starting a Python interpreter and importing the sampler; that start-up is
measured on its own (`python3.15 -m profiling.sampling attach --help` through the same nsenter
wrapper, median of 5) and the tables give Tachyon both raw and with the start-up subtracted.

Every cell is repeated --repeat times (default 3, --quick: 1); within a repetition the three
profilers run one after another on each cell, in an order that rotates between repetitions, so
drift touches all three alike. Figures are medians.

    swift build -c release --product spyglass   # first: the script does not build
    python3 bench/tachyon.py                     # about 8 minutes on an idle machine
    python3 bench/tachyon.py --quick             # 1 repetition, about 3 minutes (more while it
                                                 # waits for an idle machine)

Needs root (chroot, nsenter, ptrace), py-spy 0.4.3 on PATH (pip install py-spy==0.4.3), nsenter and
GNU time (/usr/bin/time). Not part of `swift test`.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "harness"))
import benchlib as B  # noqa: E402

TOOLS = ["spyglass", "py-spy", "tachyon"]
LABEL = {"spyglass": "Spyglass", "py-spy": "py-spy", "tachyon": "Tachyon"}
EXPECTED_CHAIN = ["l1", "l2", "l3", "l4", "l5", "l6", "l7", "leaf"]
# Tachyon's environment: no colours in its messages, nothing of the host's Python setup.
CLEAN_ENV = dict((k, v) for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "FORCE_COLOR"))
CLEAN_ENV.update({"NO_COLOR": "1", "PYTHON_COLORS": "0", "PYTHONDONTWRITEBYTECODE": "1"})


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spyglass", default=os.path.join(ROOT, ".build", "release", "spyglass"))
    ap.add_argument("--pyspy", default="py-spy", help="py-spy 0.4.3 (default: py-spy on PATH)")
    ap.add_argument("--root", default=None,
                    help="the Debian sid root (default: made or reused by tools/debian-roots.sh, <cache>/sid)")
    ap.add_argument("--python", default="/usr/bin/python3.15", help="the interpreter inside the root")
    ap.add_argument("--rates", default="1000,10000")
    ap.add_argument("--modes", default="blocking,nonblocking")
    ap.add_argument("--duration", type=int, default=5, help="seconds each profiler samples (default 5)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per cell (default 3)")
    ap.add_argument("--quick", action="store_true", help="one repetition (a smoke test)")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds the target runs before attach")
    ap.add_argument("--workdir", default=None,
                    help="scratch folder under /tmp (bind-mounted into the target's root; default: a new one)")
    ap.add_argument("--keep", action="store_true", help="keep the profilers' outputs in --workdir")
    ap.add_argument("--json", default=None, help="also write every run's figures as JSON here")
    ap.add_argument("--out", default=None, help="also write the Markdown report here")
    ap.add_argument("--max-foreign", type=float, default=0.4,
                    help="redo a run during which other work kept more than this many cores busy (default 0.4)")
    ap.add_argument("--retries", type=int, default=2, help="redo a noisy run at most this often (default 2)")
    ap.add_argument("--quiet-timeout", type=float, default=20.0,
                    help="before each run wait up to this many seconds for an idle machine; 0: never (default 20)")
    ap.add_argument("--budget", type=float, default=2400.0,
                    help="after this many seconds stop waiting and redoing, so the script ends (default 2400)")
    args = ap.parse_args()
    if args.quick:
        args.repeat = 1
    return args


def fail(message):
    print("tachyon.py: " + message, file=sys.stderr)
    sys.exit(2)


def first_line(argv, env=None):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, env=env).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return "unknown (%s)" % error
    lines = out.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "unknown (no output)"


def check_spyglass(path):
    """The release binary must exist; a warning when a source file is newer than it."""
    if not os.access(path, os.X_OK):
        fail("%s is missing: build it first with `swift build -c release --product spyglass`" % path)
    built = os.path.getmtime(path)
    newer = []
    for folder, _, files in os.walk(os.path.join(ROOT, "Sources")):
        newer.extend(os.path.join(folder, f) for f in files if os.path.getmtime(os.path.join(folder, f)) > built)
    if newer:
        print("WARNING: %d file(s) under Sources/ are newer than %s (e.g. %s): rebuild with "
              "`swift build -c release --product spyglass`" % (len(newer), path, os.path.relpath(newer[0], ROOT)),
              file=sys.stderr)
    return "" if not newer else " (STALE: %d source files are newer)" % len(newer)


def sid_root(args):
    if args.root:
        root = args.root
    else:
        # Makes the roots, or reuses them when less than a week old.
        if subprocess.run([os.path.join(ROOT, "tools", "debian-roots.sh")]).returncode != 0:
            fail("tools/debian-roots.sh failed")
        cache = subprocess.run([os.path.join(ROOT, "tools", "debian-roots.sh"), "--print"],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        root = os.path.join(cache, "sid")
    if not os.path.exists(root + args.python):
        fail("%s has no %s" % (root, args.python))
    return root


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.root = sid_root(args)
        self.stale = check_spyglass(args.spyglass)
        self.spyglass = os.path.abspath(args.spyglass)
        self.pyspy, note = B.resolve_binary(args.pyspy)
        if note:
            print("# " + note, file=sys.stderr)
        if not shutil.which(self.pyspy):
            fail("py-spy not found: pip install py-spy==0.4.3")
        if "0.4.3" not in first_line([self.pyspy, "--version"]):
            print("WARNING: %s is not py-spy 0.4.3 (pip install py-spy==0.4.3)" % self.pyspy, file=sys.stderr)
        for tool in ("nsenter", B.TIME_BIN):
            if not shutil.which(tool):
                fail("%s is needed" % tool)
        work = args.workdir or os.path.join("/tmp", "spyglass-tachyon-%s" % datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y%m%dT%H%M%SZ"))
        self.work = os.path.abspath(work)
        if not self.work.startswith("/tmp/"):
            fail("--workdir must be under /tmp (it is bind-mounted into the target's root at the same path)")
        B.ensure_dir(self.work)
        # The workload, copied where the target's root sees it (only /tmp is bind-mounted).
        self.workload = os.path.join(self.work, "cpu_stack.py")
        shutil.copy(os.path.join(B.WORKLOADS, "cpu_stack.py"), self.workload)
        self.noise = B.Noise(args)
        self.in_root = [os.path.join(ROOT, "tools", "in-root.sh"), "--bind", "/tmp", self.root]

    # -- commands -------------------------------------------------------------------------------------
    def nsenter(self, pid):
        """Run in the target's own mount namespace and root (see the file comment)."""
        return ["nsenter", "--target", str(pid), "--mount", "--root", "env", "-C", "/proc"]

    def command(self, tool, pid, rate, nonblocking, out):
        d = str(self.args.duration)
        if tool == "spyglass":
            argv = [self.spyglass, "record", "--pid", str(pid), "-r", str(rate), "-d", d, "-f", "raw", "-o", out]
            return argv + (["--nonblocking"] if nonblocking else [])
        if tool == "py-spy":
            argv = [self.pyspy, "record", "--pid", str(pid), "-r", str(rate), "-d", d, "-f", "raw", "-o", out]
            return argv + (["--nonblocking"] if nonblocking else [])
        argv = self.nsenter(pid) + [self.args.python, "-m", "profiling.sampling", "attach", "-a", "-r", str(rate),
                                    "-d", d, "--collapsed", "-o", out]
        return argv + ([] if nonblocking else ["--blocking"]) + [str(pid)]

    def start_target(self):
        tgt = B.Target(self.in_root + [self.args.python, self.workload, "--seconds",
                                       str(self.args.duration * 20 + 60)])
        if tgt.ready_line != "ready %d" % tgt.pid:
            tgt.stop()
            raise RuntimeError("the target's pid is not the one started: %r, started %d" % (tgt.ready_line, tgt.pid))
        return tgt

    # -- checks and fixed costs -----------------------------------------------------------------------
    def preflight(self):
        """Each profiler must see the target's 10-deep stack before anything is timed."""
        tgt = self.start_target()
        try:
            time.sleep(self.args.warmup)
            dumps = [("Spyglass", [self.spyglass, "dump", "--pid", str(tgt.pid)], None),
                     ("py-spy", [self.pyspy, "dump", "--pid", str(tgt.pid)], None),
                     ("Tachyon", self.nsenter(tgt.pid) + [self.args.python, "-m", "profiling.sampling", "dump", "-a",
                                                          str(tgt.pid)], CLEAN_ENV)]
            for name, argv, env in dumps:
                proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      timeout=60, env=env)
                if proc.returncode != 0 or "leaf" not in proc.stdout or "l7" not in proc.stdout:
                    fail("%s cannot read the python3.15 target (exit %d):\n$ %s\n%s"
                         % (name, proc.returncode, " ".join(argv), proc.stdout))
        finally:
            tgt.stop()

    def startup_costs(self, runs=5):
        """CPU of Tachyon's wrapper, of an empty interpreter and of the sampler's start-up (interpreter +
        imports of profiling.sampling, all its collectors included), each through the same nsenter
        wrapper into a process of the root (a sleeping one: the machine stays idle)."""
        self.noise.wait_quiet()
        holder = subprocess.Popen(self.in_root + ["/bin/sleep", "3600"], stdin=subprocess.DEVNULL)
        time.sleep(0.5)
        wrap = self.nsenter(holder.pid)
        probes = [("wrapper", "nsenter … env -C /proc true", wrap + ["true"]),
                  ("interpreter", "nsenter … python3.15 -c pass", wrap + [self.args.python, "-c", "pass"]),
                  ("sampler", "nsenter … python3.15 -m profiling.sampling attach --help",
                   wrap + [self.args.python, "-m", "profiling.sampling", "attach", "--help"])]
        costs = {}
        try:
            for key, label, argv in probes:
                rs = [B.run_measured(argv, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     env=CLEAN_ENV) for _ in range(runs)]
                if any(r["rc"] != 0 for r in rs):
                    fail("start-up probe failed: %s" % " ".join(argv))
                costs[key] = {"label": label, "cpu": B.med([r["cpu"] for r in rs]),
                              "wall": B.med([r["wall"] for r in rs]),
                              "maxrss_kb": B.med([r["maxrss_kb"] for r in rs]), "runs": rs}
        finally:
            holder.kill()
            holder.wait()
        return costs

    # -- one measurement ------------------------------------------------------------------------------
    def one_run(self, tool, mode, rate, rep):
        tag = "%s_%s_%d_%d" % (tool, mode, rate, rep)
        out = os.path.join(self.work, tag + ".txt")
        errf = os.path.join(self.work, tag + ".log")
        for f in (out, errf):
            if os.path.exists(f):
                os.unlink(f)
        nonblocking = mode == "nonblocking"
        tgt = self.start_target()
        try:
            time.sleep(self.args.warmup)
            argv = self.command(tool, tgt.pid, rate, nonblocking, out)
            c0 = tgt.cpu_seconds()
            s0 = B.SysSnap()
            with open(errf, "w") as ef:
                r = B.run_measured(argv, timeout=self.args.duration * 30 + 60, stdout=ef, stderr=subprocess.STDOUT,
                                   env=CLEAN_ENV if tool == "tachyon" else None)
            s1 = B.SysSnap()
            c1 = tgt.cpu_seconds()
            alive = tgt.alive()
        finally:
            tgt.stop()
        with open(errf) as ef:
            log = ef.read()
        n, full = count_samples(out, tool) if os.path.exists(out) else (0, 0)
        busy, steal = s1.since(s0)
        tcpu = (c1 - c0) if (c0 is not None and c1 is not None) else None
        r.update({
            "tool": tool, "mode": mode, "rate": rate, "rep": rep, "argv": argv, "log_tail": log[-400:],
            "samples": n,
            "rate_per_D": n / float(self.args.duration),
            "rate_per_wall": n / r["wall"] if r["wall"] else None,
            "us_per_sample": 1e6 * r["cpu"] / n if n else None,
            "target_cpu_pct": 100.0 * tcpu / r["wall"] if tcpu is not None and r["wall"] else None,
            "target_alive": alive,
            "full_stack_pct": 100.0 * full / n if n else None,
            "foreign_cores": busy - (r["cpu"] + (tcpu or 0)) / r["wall"],
            "steal_pct": steal,
        })
        if not self.args.keep:
            for f in (out, errf):
                if os.path.exists(f):
                    os.unlink(f)
        return r


def count_samples(path, tool):
    """(samples, samples whose stack ends in l1..l7 -> leaf) of a collapsed file: one stack a line,
    'STACK COUNT'. py-spy and Spyglass frames read 'func (file:line)', Tachyon's 'file:func:line'
    after a 'tid:N' pseudo-frame."""
    total = full = 0
    with open(path, errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            try:
                count = int(count)
            except ValueError:
                continue
            names = []
            for frame in stack.split(";"):
                if tool == "tachyon":
                    if frame.startswith("tid:"):
                        continue
                    parts = frame.rsplit(":", 2)
                    names.append(parts[1] if len(parts) == 3 else frame)
                else:
                    names.append(frame.split(" (", 1)[0])
            total += count
            if names[-len(EXPECTED_CHAIN):] == EXPECTED_CHAIN:
                full += count
    return total, full


def ratio(a, b):
    return "-" if not a or not b else "%.1f×" % (a / b)


def main():
    args = parse_args()
    bench = Bench(args)
    rates = [int(x) for x in args.rates.split(",") if x]
    modes = [m for m in args.modes.split(",") if m]
    out = []

    def say(text=""):
        out.append(text)
        print(text)
        sys.stdout.flush()

    say("Command: `%s`" % " ".join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), os.getcwd())]
                                   + sys.argv[1:]))
    say("Started %s UTC; every cell is the median of %d run%s of %d s." % (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), args.repeat, "" if args.repeat == 1 else "s",
        args.duration))
    say()
    say("- Spyglass: `%s` — %s%s" % (bench.spyglass, first_line([bench.spyglass, "--version"]), bench.stale))
    say("- py-spy: `%s` — %s" % (bench.pyspy, first_line([bench.pyspy, "--version"])))
    say("- Tachyon and the target: `%s` in `%s` — %s" % (
        args.python, bench.root, " ".join(first_line(bench.in_root + [args.python, "-VV"]).split())))
    model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    say("- Machine: %s, %d CPUs, load average %s; kernel %s" % (model, os.cpu_count(), B.loadavg(),
                                                                 os.uname().release))
    say("- Target: `tools/in-root.sh --bind /tmp ROOT %s %s --seconds %d` (a fresh one per run)"
        % (args.python, bench.workload, args.duration * 20 + 60))
    say("- Commands (PID, RATE, OUT per run):")
    for tool in TOOLS:
        for mode in modes:
            say("  - %s %s: `%s`" % (LABEL[tool], mode, " ".join(
                bench.command(tool, "PID", "RATE", mode == "nonblocking", "OUT"))))
    say()

    bench.preflight()
    startup = bench.startup_costs()
    say("## Tachyon's start-up (measured once: median of 5, same nsenter wrapper, no sampling)")
    say()
    markdown_table(["what", "CPU ms", "wall ms", "maxRSS MiB"],
                   [[v["label"], "%.1f" % (1e3 * v["cpu"]), "%.1f" % (1e3 * v["wall"]),
                     "%.1f" % (v["maxrss_kb"] / 1024.0)] for v in startup.values()], say)
    subtract = startup["sampler"]["cpu"]
    say()
    say("\"Tachyon − start-up\" below subtracts the last row (%.1f ms CPU: interpreter + imports of the "
        "sampler) from each Tachyon run's CPU before dividing by its samples." % (1e3 * subtract))
    say()

    results = {}
    for rep in range(args.repeat):
        order = TOOLS[rep % len(TOOLS):] + TOOLS[:rep % len(TOOLS)]
        for mode in modes:
            for rate in rates:
                for tool in order:
                    r = bench.noise.run(lambda: bench.one_run(tool, mode, rate, rep), lambda r: r["foreign_cores"])
                    if tool == "tachyon" and r["samples"]:
                        r["us_per_sample_minus_startup"] = 1e6 * (r["cpu"] - subtract) / r["samples"]
                    results.setdefault((tool, mode, rate), []).append(r)
                    print("  rep %d %-11s %5d Hz %-8s: wall %.2fs cpu %.3fs samples %d (%s µs/sample) rss %.1f MiB "
                          "target %s%% foreign %.2f cores%s" % (
                              rep, mode, rate, tool, r["wall"], r["cpu"], r["samples"],
                              B.fmt(r["us_per_sample"], "%.1f"), (r["maxrss_kb"] or 0) / 1024.0,
                              B.fmt(r["target_cpu_pct"], "%.0f"), r["foreign_cores"],
                              "" if r["rc"] == 0 else " EXIT %s: %s" % (r["rc"], r["log_tail"].strip()[-200:])),
                          file=sys.stderr)
                    sys.stderr.flush()

    def m(tool, mode, rate, key, scale=1.0):
        v = B.med([r[key] for r in results[(tool, mode, rate)] if r.get(key) is not None])
        return None if v is None else v * scale

    say("## CPU per sample, Python 3.15 (record/attach --pid, 10-deep CPU-bound target, %d s)" % args.duration)
    say()
    head = ["mode", "rate Hz"]
    for tool in TOOLS:
        if tool == "tachyon":
            head += ["Tachyon µs/sample (raw)", "Tachyon µs/sample − start-up"]
        else:
            head += ["%s µs/sample" % LABEL[tool]]
        head += ["%s achieved Hz" % LABEL[tool], "%s maxRSS MiB" % LABEL[tool], "%s target CPU%%" % LABEL[tool]]
    head += ["Tachyon/Spyglass (raw)", "Tachyon/Spyglass (− start-up)", "py-spy/Spyglass"]
    rows = []
    for mode in modes:
        for rate in rates:
            row = [mode, str(rate)]
            for tool in TOOLS:
                row.append(B.fmt(m(tool, mode, rate, "us_per_sample"), "%.1f"))
                if tool == "tachyon":
                    row.append(B.fmt(m(tool, mode, rate, "us_per_sample_minus_startup"), "%.1f"))
                row += [B.fmt(m(tool, mode, rate, "rate_per_D"), "%.0f"),
                        B.fmt(m(tool, mode, rate, "maxrss_kb", 1 / 1024.0), "%.1f"),
                        B.fmt(m(tool, mode, rate, "target_cpu_pct"), "%.0f")]
            s = m("spyglass", mode, rate, "us_per_sample")
            row += [ratio(m("tachyon", mode, rate, "us_per_sample"), s),
                    ratio(m("tachyon", mode, rate, "us_per_sample_minus_startup"), s),
                    ratio(m("py-spy", mode, rate, "us_per_sample"), s)]
            rows.append(row)
    markdown_table(head, rows, say)
    say()
    # samples / D overstates a profiler that fell behind and ran past D to take them: name those.
    behind = []
    for mode in modes:
        for rate in rates:
            for tool in TOOLS:
                wall = m(tool, mode, rate, "wall")
                allowance = startup["sampler"]["wall"] if tool == "tachyon" else 0.0
                if wall and wall > 1.1 * args.duration + allowance:
                    behind.append("%s %s %d Hz ran %.1f s to take its %s samples (%s per wall second)" % (
                        LABEL[tool], mode, rate, wall, B.fmt(m(tool, mode, rate, "samples"), "%d"),
                        B.fmt(m(tool, mode, rate, "rate_per_wall"), "%.0f")))
    if behind:
        say("Fell behind (median wall more than 10%% past %d s): %s." % (args.duration, "; ".join(behind)))
        say()
    say("Achieved Hz = samples / %d s. Target CPU%% = the share of one CPU the target kept over the profiler's "
        "wall time (Tachyon's wall includes its start-up, while the target runs unhindered). maxRSS = the "
        "profiler process's peak (Tachyon's includes the interpreter). Ratios: how many times Spyglass's CPU per "
        "sample the other spends." % args.duration)
    say()
    say("### Details (medians; CPU min..max over the runs)")
    say()
    rows = []
    for mode in modes:
        for rate in rates:
            for tool in TOOLS:
                rs = results[(tool, mode, rate)]
                rows.append([mode, str(rate), LABEL[tool],
                             B.fmt(B.med([r["wall"] for r in rs]), "%.2f"),
                             "%s [%s..%s]" % (B.fmt(B.med([r["cpu"] for r in rs]), "%.3f"),
                                              B.fmt(B.mn([r["cpu"] for r in rs]), "%.3f"),
                                              B.fmt(B.mx([r["cpu"] for r in rs]), "%.3f")),
                             B.fmt(B.med([r["user"] for r in rs]), "%.3f"),
                             B.fmt(B.med([r["sys"] for r in rs]), "%.3f"),
                             B.fmt(B.med([r["samples"] for r in rs]), "%d"),
                             B.fmt(B.med([r["rate_per_wall"] for r in rs]), "%.0f"),
                             B.fmt(B.med([r["full_stack_pct"] for r in rs]), "%.1f"),
                             B.fmt(B.med([r["foreign_cores"] for r in rs]), "%.2f"),
                             B.fmt(B.med([r["steal_pct"] for r in rs]), "%.1f"),
                             "%d/%d" % (sum(r["attempts"] - 1 for r in rs), sum(1 for r in rs if r["noisy"])),
                             "%d" % sum(1 for r in rs if r["rc"] != 0 or not r["samples"])])
    markdown_table(["mode", "rate Hz", "profiler", "wall s", "CPU s [min..max]", "user s", "sys s", "samples",
                    "samples/wall", "full-stack %", "foreign cores", "steal %", "redone/noisy", "bad runs"], rows, say)
    say()
    say(bench.noise.report())

    data = {"startup": startup, "results": {"%s_%s_%d" % k: v for k, v in results.items()}}
    B.dump_json(args.json or os.path.join(bench.work, "results.json"), data)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(out) + "\n")
    print("every run's figures: %s" % (args.json or os.path.join(bench.work, "results.json")), file=sys.stderr)


def markdown_table(head, rows, say):
    say("| " + " | ".join(head) + " |")
    say("|" + "---|" * len(head))
    for row in rows:
        say("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
