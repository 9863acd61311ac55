"""Exercises the spyglass wheel's Python API in a real multi-threaded program (WheelTests).

Usage: python wheel_api_check.py full|refused OUTPUT_DIR

full: thread "starter" calls spyglass.start(); a worker burns CPU in `heavy` and `light`, 75/25 by
its own thread CPU clock, in chunks of random length (so the split cannot lock onto the kernel's
tick); thread "reader" reads function and thread stats while the worker runs (and the recording
goes on); thread "stopper" stops the recording once the worker is done. Then every save type is
written (by the bundled executable, from a recording), the pstat file is loaded by pstats, clear_stats is checked on a running recording, the
recorder is killed to check that the failure stays inside the profiler, and profile() is used as a
context manager and as a decorator. If start() is refused, the error is reported instead.

refused: makes the process non-dumpable (prctl(PR_SET_DUMPABLE, 0)), which only root may read
across, and reports start()'s error.

The last line of stdout is one JSON object with what was measured; the test judges it.
"""

import ctypes
import json
import os
import pstats
import random
import signal
import sys
import threading
import time

import spyglass

WORK_SECONDS = 5.0  # CPU seconds the worker burns
READ_AT = 3.2  # CPU seconds into the work when the reader reads
RATE = 500

result = {"python": "%d.%d.%d" % sys.version_info[:3], "uid": os.getuid(), "version": spyglass.__version__}


def emit():
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def burn(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


def heavy(seconds):
    return burn(seconds)


def light(seconds):
    return burn(seconds)


def before_clear(seconds):
    return burn(seconds)


def after_clear(seconds):
    return burn(seconds)


progress = {"cpu": 0.0, "done": False}
reached = threading.Event()
finished = threading.Event()


def worker():
    start = time.thread_time()
    chunks = random.Random(7)
    while True:
        used = time.thread_time() - start
        progress["cpu"] = used
        if used >= READ_AT:
            reached.set()
        if used >= WORK_SECONDS:
            break
        period = chunks.uniform(0.004, 0.016)
        heavy(0.75 * period)
        light(0.25 * period)
    progress["cpu"] = time.thread_time() - start
    progress["done"] = True
    finished.set()


def by_name(stats, name):
    return [stat for stat in stats if stat.name == name]


def full(out):
    errors = []
    started = threading.Event()

    def starter():
        try:
            spyglass.start(rate=RATE)
        except spyglass.Error as error:
            errors.append(str(error))
        started.set()

    thread = threading.Thread(target=starter, name="starter")
    thread.start()
    thread.join()
    if errors:
        result["start_error"] = errors[0]
        return
    result["running_after_start"] = spyglass.is_running()
    work = threading.Thread(target=worker, name="worker")
    work.start()

    def reader():
        reached.wait(60)
        funcs = spyglass.get_func_stats()
        threads = spyglass.get_thread_stats()
        worker_cpu = progress["cpu"]
        result["reader"] = {
            "worker_still_running": not progress["done"],
            "recording_running": spyglass.is_running(),
            "nfuncs": len(funcs),
            "heavy": [s.ttot for s in by_name(funcs, "heavy")],
            "light": [s.ttot for s in by_name(funcs, "light")],
            "heavy_samples": sum(s.nsamples for s in by_name(funcs, "heavy")),
            "light_samples": sum(s.nsamples for s in by_name(funcs, "light")),
            "heavy_lineno": [s.lineno for s in by_name(funcs, "heavy")],
            "heavy_module": [s.module for s in by_name(funcs, "heavy")],
            "slice_len": len(funcs[:2]),
            "first_is_indexable": funcs[0].name if len(funcs) else None,
            "threads": [dict(name=t.name, id=t.id, tid=t.tid, ttot=t.ttot, nsamples=t.nsamples) for t in threads],
            "worker_cpu": worker_cpu,
            "worker_ident": work.ident,
            "worker_native_id": getattr(work, "native_id", None),
        }

    read = threading.Thread(target=reader, name="reader")
    read.start()

    def stopper():
        finished.wait(120)
        read.join()
        spyglass.stop()
        result["running_after_stop"] = spyglass.is_running()

    stop = threading.Thread(target=stopper, name="stopper")
    stop.start()
    stop.join()
    work.join()

    funcs = spyglass.get_func_stats()
    threads = spyglass.get_thread_stats()
    result["after_stop"] = {
        "heavy": sum(s.ttot for s in by_name(funcs, "heavy")),
        "light": sum(s.ttot for s in by_name(funcs, "light")),
        "threads": [dict(name=t.name, id=t.id, tid=t.tid, ttot=t.ttot, nsamples=t.nsamples) for t in threads],
        "worker_cpu": progress["cpu"],
    }
    saved = {}
    for kind, name in [("flamegraph", "stats.svg"), ("speedscope", "stats.speedscope.json"),
                       ("chrometrace", "stats.trace.json"), ("raw", "stats.txt"), ("pprof", "stats.pb.gz"),
                       ("pstat", "stats.prof"), ("callgrind", "callgrind.out.stats"), ("spyglass", "stats.spyglass")]:
        path = os.path.join(out, name)
        funcs.save(path, type=kind)
        saved[kind] = path
    result["saved"] = saved
    loaded = pstats.Stats(saved["pstat"])
    result["pstat_functions"] = sorted(set(key[2] for key in loaded.stats))
    result["pstat_total_tt"] = loaded.total_tt
    with open(saved["raw"]) as handle:
        result["raw_heavy_lines"] = [line.strip() for line in handle if "heavy" in line][:3]
    import xml.etree.ElementTree as ElementTree

    ElementTree.parse(saved["flamegraph"])
    with open(saved["chrometrace"]) as handle:
        events = json.load(handle)
    result["chrometrace_balanced"] = (
        sum(1 for e in events if e.get("ph") == "B") == sum(1 for e in events if e.get("ph") == "E") > 0)
    buf = []

    class Out(object):
        def write(self, text):
            buf.append(text)

    funcs.print_all(out=Out())
    threads.print_all(out=Out())
    result["print_all_mentions_heavy"] = "heavy" in "".join(buf)

    # clear_stats on a running recording: what came before is gone, the recording goes on.
    spyglass.clear_stats()
    result["empty_after_clear"] = len(spyglass.get_func_stats()) == 0
    spyglass.start(rate=200)
    before_clear(0.3)
    spyglass.clear_stats()
    after_clear(0.4)
    names = set(s.name for s in spyglass.get_func_stats())
    result["clear_while_running"] = {"before": "before_clear" in names, "after": "after_clear" in names}

    # The recorder dies: the program goes on, is_running() turns false, the next call raises.
    recorder_pid = spyglass._state.recorder.pid
    os.kill(recorder_pid, signal.SIGKILL)
    deadline = time.time() + 10
    while spyglass.is_running() and time.time() < deadline:
        time.sleep(0.01)
    result["running_after_kill"] = spyglass.is_running()
    try:
        spyglass.get_func_stats()
        result["error_after_kill"] = None
    except spyglass.Error as error:
        result["error_after_kill"] = str(error)
    result["stats_after_error"] = len(spyglass.get_func_stats())

    # The recorder's own sentence comes through (native frames need blocking mode).
    try:
        spyglass.start(native=True, nonblocking=True)
        result["native_error"] = None
        spyglass.stop()
    except spyglass.Error as error:
        result["native_error"] = str(error)

    # profile() as a context manager and as a decorator.
    context_path = os.path.join(out, "context.svg")
    with spyglass.profile(context_path, rate=200):
        heavy(0.4)
    result["context_file"] = os.path.getsize(context_path) if os.path.exists(context_path) else 0
    with open(context_path) as handle:
        result["context_mentions_heavy"] = "heavy" in handle.read()
    decorated_path = os.path.join(out, "decorated.prof")

    @spyglass.profile(decorated_path, rate=200)
    def decorated():
        return light(0.4)

    decorated()
    result["decorated_functions"] = sorted(set(key[2] for key in pstats.Stats(decorated_path).stats))
    result["running_at_end"] = spyglass.is_running()


def refused():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_DUMPABLE = 4
    result["dumpable_set"] = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    try:
        spyglass.start()
        result["start_error"] = None
        spyglass.stop()
    except spyglass.Error as error:
        result["start_error"] = str(error)
    result["running"] = spyglass.is_running()


def main():
    mode, out = sys.argv[1], sys.argv[2]
    signal.alarm(300)
    try:
        if mode == "full":
            full(out)
        else:
            refused()
    except Exception as error:  # reported, so the test shows what failed
        import traceback

        result["exception"] = "%s: %s" % (type(error).__name__, error)
        result["traceback"] = traceback.format_exc()
    emit()


if __name__ == "__main__":
    main()
