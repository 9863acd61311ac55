#!/usr/bin/env python3
"""The agent's cost on a host of many Python processes, beside py-spy, and its memory over time.

    python3 bench/fleet.py compare [--processes 50] [--seconds 30] [--rate 100]
    python3 bench/fleet.py churn [--processes 50] [--minutes 60] [--rate 100]
    python3 bench/fleet.py ab --spyglass A --spyglass-b B [--rounds 3] [--processes 50] [--seconds 20]

compare: starts --processes CPU-bound targets (bench/harness/workloads/cpu_stack.py, a 10-deep
stack) on --python, then one after the other:
  1. no profiler: the targets' own CPU rate (the baseline of their slowdown);
  2. `spyglass agent --rate R` uploading every 10 s to a local Push API endpoint that answers at
     once: after a 10 s warm-up (attaching), over --seconds, its CPU per process-sample (from its
     SIGUSR1 counts and /proc/PID/stat), its share of one core, the achieved rate per process, its
     RSS against its own RSS with no process to sample (the fixed base), and the targets' slowdown;
  3. one `py-spy record --pid P --rate R --nonblocking -d SECONDS` per target, all at once: their
     CPU per process-sample (CPU from wait4, samples from their raw outputs), the time they took,
     the achieved rate, their RSS, and the targets' slowdown;
  4. the floor (bench/fleet_floor.c): one process_vm_readv per process per tick and nothing else,
     of 1 and of 5 pages.
py-spy runs at the default priority; the agent raises itself to nice -10 (as root) as it does in
production. Needs py-spy on PATH and cc.

churn: --processes mostly idle targets (light_stack.py, busy 1% of the time) on the
interpreters given with --python (repeatable), 5 of them replaced by new ones every --churn-every
seconds; the agent samples them for --minutes and its RSS is printed every minute.

ab: the agent measurement of `compare` alone (no py-spy), for two spyglass executables in turn on
the same targets, --rounds times (A, B, A, B, ...): a change on the sampling path's A/B. Prints each
run and the medians.

The spyglass executable: --spyglass, else .build/release/spyglass (swift build -c release).
"""

import argparse
import http.server
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = os.path.join(ROOT, "bench", "harness", "workloads")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process (and its threads), in seconds; None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def rss_mib(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class NullReceiver:
    """A Push API / OTLP endpoint on 127.0.0.1 that reads each request and answers 200 at once."""

    def __init__(self):
        counts = self.counts = {"requests": 0, "bytes": 0}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                counts["requests"] += 1
                counts["bytes"] += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/proto")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *arguments):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Targets:
    """Python processes running a workload; each prints "ready PID" first."""

    def __init__(self):
        self.processes = []

    def start(self, python, script, arguments):
        process = subprocess.Popen([python, os.path.join(WORKLOADS, script)] + arguments, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        line = process.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit("%s %s did not start: %r" % (python, script, line))
        self.processes.append(process)
        return process

    def stop(self, process):
        process.kill()
        process.wait()
        self.processes.remove(process)

    def pids(self):
        return [process.pid for process in self.processes]

    def cpu(self):
        return sum(cpu_seconds(pid) or 0 for pid in self.pids())

    def stop_all(self):
        for process in list(self.processes):
            self.stop(process)


class Agent:
    def __init__(self, spyglass, arguments, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([spyglass, "agent"] + arguments, stdout=subprocess.DEVNULL, stderr=self.log)

    def text(self):
        with open(self.log_path) as handle:
            return handle.read()

    def counts(self, timeout=5.0):
        """(ticks, process samples) from a SIGUSR1 report."""
        before = self.text().count("process samples so far")
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.text()
            if text.count("process samples so far") > before:
                line = [line for line in text.splitlines() if "process samples so far" in line][-1]
                words = line.split()
                ticks = int(words[words.index("ticks") - 1])
                samples = int(words[words.index("process") - 1])
                return ticks, samples
            time.sleep(0.01)
        raise SystemExit("the agent did not answer SIGUSR1:\n" + self.text())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def spyglass_binary(arguments):
    path = arguments.spyglass or os.path.join(ROOT, ".build", "release", "spyglass")
    if not os.access(path, os.X_OK):
        raise SystemExit("no spyglass executable at %s: swift build -c release (or --spyglass PATH)" % path)
    return path


def measure_agent(arguments, targets, receiver, directory):
    spyglass = spyglass_binary(arguments)
    # The fixed base: the agent with nothing to sample (after its first upload interval).
    idle = Agent(spyglass, ["--upload", receiver.url, "--match", "no-such-process-xyz", "--upload-interval", "1"],
                 os.path.join(directory, "agent-idle.log"))
    time.sleep(3)
    base = rss_mib(idle.process.pid)
    idle.stop()

    agent = Agent(spyglass, ["--upload", receiver.url, "--rate", str(arguments.rate), "--match", "cpu_stack.py",
                             "--upload-interval", "10"], os.path.join(directory, "agent.log"))
    time.sleep(10)
    ticks0, samples0 = agent.counts()
    cpu0 = cpu_seconds(agent.process.pid)
    targets0 = targets.cpu()
    start = time.time()
    time.sleep(arguments.seconds)
    ticks1, samples1 = agent.counts()
    cpu1 = cpu_seconds(agent.process.pid)
    targets1 = targets.cpu()
    elapsed = time.time() - start
    rss = rss_mib(agent.process.pid)
    hwm = rss_mib(agent.process.pid, "VmHWM")
    agent.stop()
    samples = samples1 - samples0
    cpu = cpu1 - cpu0
    return {
        "cpu_us_per_sample": cpu * 1e6 / max(samples, 1),
        "core_share": cpu / elapsed,
        "achieved_hz": samples / (len(targets.pids()) * elapsed),
        "ticks_hz": (ticks1 - ticks0) / elapsed,
        "rss": rss, "hwm": hwm, "base": base,
        "per_process_mib": (rss - base) / len(targets.pids()),
        "targets_cpu_rate": (targets1 - targets0) / elapsed,
        "samples": samples, "elapsed": elapsed,
        "log_tail": agent.text().splitlines()[-6:],
    }


def measure_pyspy(arguments, targets, directory):
    pyspy = arguments.py_spy
    outputs = []
    processes = []
    start = time.time()
    targets0 = targets.cpu()
    for pid in targets.pids():
        output = os.path.join(directory, "pyspy-%d.txt" % pid)
        outputs.append(output)
        processes.append(subprocess.Popen(
            [pyspy, "record", "--pid", str(pid), "--rate", str(arguments.rate), "--nonblocking", "--duration",
             str(int(arguments.seconds)), "--format", "raw", "--output", output], stdout=subprocess.DEVNULL,
            stderr=open(output + ".log", "w")))
    # Targets' CPU over the same window as py-spy's samples (its first seconds).
    time.sleep(arguments.seconds)
    targets1 = targets.cpu()
    window = time.time() - start
    cpu = 0.0
    peak_rss = []
    for process in processes:
        _, _, usage = os.wait4(process.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        peak_rss.append(usage.ru_maxrss / 1024)
    elapsed = time.time() - start
    samples = 0
    for output in outputs:
        try:
            with open(output) as handle:
                for line in handle:
                    samples += int(line.rsplit(" ", 1)[1])
        except (OSError, ValueError, IndexError):
            pass
    return {
        "cpu_us_per_sample": cpu * 1e6 / max(samples, 1),
        "core_share": cpu / elapsed,
        "achieved_hz": samples / (len(processes) * arguments.seconds),
        "elapsed": elapsed,
        "rss_each": sum(peak_rss) / len(peak_rss),
        "targets_cpu_rate": (targets1 - targets0) / window,
        "samples": samples,
    }


def measure_floor(arguments, targets, directory):
    binary = os.path.join(directory, "fleet_floor")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(ROOT, "bench", "fleet_floor.c")], check=True)
    results = {}
    for pages in (1, 5):
        command = [binary, str(arguments.rate), str(min(arguments.seconds, 20)), str(pages)] + [
            str(pid) for pid in targets.pids()]
        if os.geteuid() == 0:
            command = ["nice", "-n", "-10"] + command
        line = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        results[pages] = float(line.split(": ")[1].split()[0])
    return results


def compare(arguments):
    directory = tempfile.mkdtemp(prefix="spyglass-fleet-")
    receiver = NullReceiver()
    targets = Targets()
    try:
        for _ in range(arguments.processes):
            targets.start(arguments.python[0], "cpu_stack.py", ["--seconds", "100000"])
        time.sleep(3)
        before = targets.cpu()
        time.sleep(10)
        baseline = (targets.cpu() - before) / 10
        agent = measure_agent(arguments, targets, receiver, directory)
        pyspy = measure_pyspy(arguments, targets, directory)
        floor = measure_floor(arguments, targets, directory)
    finally:
        targets.stop_all()
        receiver.stop()
    n = arguments.processes
    print("%d CPU-bound 10-deep targets (%s) at %g Hz, %g s measured, %d CPUs" % (
        n, arguments.python[0], arguments.rate, arguments.seconds, os.cpu_count()))
    print("targets' own CPU with no profiler: %.2f CPUs" % baseline)
    print()
    print("| | CPU per process-sample | share of one core | achieved rate per process | RSS | targets' slowdown |")
    print("|---|---|---|---|---|---|")
    print("| spyglass agent (1 process, nice -10) | %.1f µs | %.1f%% | %.1f Hz (%.1f%%) | %.1f MiB: %.1f base + %.2f MiB per process (peak %.1f) | %.1f%% |" % (
        agent["cpu_us_per_sample"], 100 * agent["core_share"], agent["achieved_hz"],
        100 * agent["achieved_hz"] / arguments.rate, agent["rss"], agent["base"], agent["per_process_mib"],
        agent["hwm"], 100 * (1 - agent["targets_cpu_rate"] / baseline)))
    print("| py-spy 0.4.3 record × %d | %.1f µs | %.1f%% | %.1f Hz (%.1f%%), %.0f s to take %g s | %.1f MiB each, %.0f MiB in all | %.1f%% |" % (
        n, pyspy["cpu_us_per_sample"], 100 * pyspy["core_share"], pyspy["achieved_hz"],
        100 * pyspy["achieved_hz"] / arguments.rate, pyspy["elapsed"], arguments.seconds, pyspy["rss_each"],
        pyspy["rss_each"] * n, 100 * (1 - pyspy["targets_cpu_rate"] / baseline)))
    print("| floor: one process_vm_readv per process per tick | %.1f µs (5 pages), %.1f µs (1 page) | | | | |" % (
        floor[5], floor[1]))
    print()
    print("py-spy / agent, CPU per process-sample: %.1f×" % (pyspy["cpu_us_per_sample"] / agent["cpu_us_per_sample"]))
    print("agent: %d process samples, ticks at %.2f Hz; its last lines:" % (agent["samples"], agent["ticks_hz"]))
    for line in agent["log_tail"]:
        print("   ", line)


def ab(arguments):
    directory = tempfile.mkdtemp(prefix="spyglass-fleet-ab-")
    receiver = NullReceiver()
    targets = Targets()
    binaries = {"A": spyglass_binary(arguments), "B": arguments.spyglass_b}
    if not binaries["B"] or not os.access(binaries["B"], os.X_OK):
        raise SystemExit("ab needs --spyglass-b PATH (an executable)")
    runs = {"A": [], "B": []}
    try:
        for _ in range(arguments.processes):
            targets.start(arguments.python[0], "cpu_stack.py", ["--seconds", "100000"])
        time.sleep(3)
        for round_ in range(arguments.rounds):
            for name in ("A", "B"):
                arguments.spyglass = binaries[name]
                result = measure_agent(arguments, targets, receiver, directory)
                runs[name].append(result)
                print("round %d %s: %.2f µs per process-sample, %.2f%% of a core, %.1f Hz per process, %.1f MiB" % (
                    round_ + 1, name, result["cpu_us_per_sample"], 100 * result["core_share"],
                    result["achieved_hz"], result["rss"]), flush=True)
    finally:
        targets.stop_all()
        receiver.stop()
    print()
    for name in ("A", "B"):
        values = sorted(run["cpu_us_per_sample"] for run in runs[name])
        print("%s (%s): median %.2f µs per process-sample over %d runs (%s)" % (
            name, binaries[name], values[len(values) // 2], len(values), ", ".join("%.2f" % v for v in values)))


def churn(arguments):
    spyglass = spyglass_binary(arguments)
    directory = tempfile.mkdtemp(prefix="spyglass-churn-")
    receiver = NullReceiver()
    targets = Targets()
    generator = random.Random(7)
    started = 0

    def start_one():
        nonlocal started
        python = arguments.python[started % len(arguments.python)]
        started += 1
        targets.start(python, "light_stack.py", ["--seconds", str(arguments.minutes * 60 + 600)])

    try:
        for _ in range(arguments.processes):
            start_one()
        agent = Agent(spyglass, ["--upload", receiver.url, "--rate", str(arguments.rate), "--match", "light_stack.py"],
                      os.path.join(directory, "agent.log"))
        begin = time.time()
        next_report = begin
        next_churn = begin + arguments.churn_every
        print("minute  RSS MiB  peak MiB  processes started  agent CPU s  uploads")
        while True:
            now = time.time()
            if now >= next_report:
                print("%6.1f  %7.1f  %8.1f  %17d  %11.1f  %7d" % (
                    (now - begin) / 60, rss_mib(agent.process.pid) or -1, rss_mib(agent.process.pid, "VmHWM") or -1,
                    started, cpu_seconds(agent.process.pid) or -1, receiver.counts["requests"]), flush=True)
                next_report += 60
            if now - begin >= arguments.minutes * 60:
                break
            if now >= next_churn:
                for process in generator.sample(targets.processes, 5):
                    targets.stop(process)
                for _ in range(5):
                    start_one()
                next_churn += arguments.churn_every
            time.sleep(0.5)
        ticks, samples = agent.counts()
        agent.stop()
        print("%d ticks, %d process samples, %d requests uploaded; the agent's last lines:" % (
            ticks, samples, receiver.counts["requests"]))
        for line in agent.text().splitlines()[-4:]:
            print("   ", line)
    finally:
        targets.stop_all()
        receiver.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["compare", "churn", "ab"])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--churn-every", type=float, default=10)
    parser.add_argument("--python", action="append", help="interpreter(s) of the targets (default /usr/bin/python3.11)")
    parser.add_argument("--spyglass")
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--spyglass-b", help="ab: the other spyglass executable")
    parser.add_argument("--rounds", type=int, default=3, help="ab: runs of each executable")
    arguments = parser.parse_args()
    arguments.python = arguments.python or ["/usr/bin/python3.11"]
    if arguments.mode == "compare":
        compare(arguments)
    elif arguments.mode == "ab":
        ab(arguments)
    else:
        churn(arguments)


if __name__ == "__main__":
    main()
