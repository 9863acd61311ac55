# The interpreter's own view of its threads, for a differential check against spyglass.
#
# Several named threads block at known places, at different depths and in different kinds of
# code (plain functions, a method, a classmethod, nested functions and a lambda, a generator).
# The main thread blocks in a function too. Once every one of them has arrived, a short-lived
# reporter thread calls sys._current_frames() and prints ONE JSON line:
#
#   {"threads": [{"ident": int, "name": str, "native_id": int (3.8+ only),
#                 "frames": [{"name": str, "filename": str, "line": int}, ...innermost first]}]}
#
# covering every thread but itself, and then returns, so it is gone from a later dump.
# "name" is co_qualname on 3.11+ and co_name before. Runs on Python 2.7 and 3.x.
import json
import sys
import threading
import time

BLOCK_SECONDS = 100000
ARRIVALS = dict((name, threading.Event()) for name in ("deep", "waiter", "nested", "generator", "locked", "main"))
NEVER = threading.Event()
HELD = threading.Lock()


def a1():
    a2()


def a2():
    return a3()


def a3():
    ARRIVALS["deep"].set()
    time.sleep(BLOCK_SECONDS)


class Worker(object):
    def wait_here(self):
        ARRIVALS["waiter"].set()
        NEVER.wait()


class Holder(object):
    @classmethod
    def blocked(cls):
        ARRIVALS["locked"].set()
        HELD.acquire()


def outer():
    def inner():
        snooze = lambda: time.sleep(BLOCK_SECONDS)
        ARRIVALS["nested"].set()
        snooze()
    inner()


def slow_values():
    ARRIVALS["generator"].set()
    time.sleep(BLOCK_SECONDS)
    yield 1


def consume():
    for _ in slow_values():
        pass


def frame_list(frame):
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append({
            "name": getattr(code, "co_qualname", code.co_name),
            "filename": code.co_filename,
            "line": frame.f_lineno,
        })
        frame = frame.f_back
    return frames


def report():
    for event in ARRIVALS.values():
        event.wait()
    time.sleep(0.2)  # each thread set its event right before blocking: let it get there
    me = threading.current_thread().ident
    by_ident = dict((thread.ident, thread) for thread in threading.enumerate())
    threads = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        entry = {"ident": ident, "frames": frame_list(frame)}
        thread = by_ident.get(ident)
        entry["name"] = thread.name if thread is not None else None
        native_id = getattr(thread, "native_id", None)
        if native_id is not None:
            entry["native_id"] = native_id
        threads.append(entry)
    threads.sort(key=lambda entry: entry["name"] or "")
    sys.stdout.write(json.dumps({"threads": threads}) + "\n")
    sys.stdout.flush()


def start(name, target):
    thread = threading.Thread(target=target, name=name)
    thread.daemon = True
    thread.start()


def main_block():
    ARRIVALS["main"].set()
    time.sleep(BLOCK_SECONDS)


def main():
    HELD.acquire()
    start("deep-sleeper", a1)
    start("event-waiter", Worker().wait_here)
    start("nested-lambda", outer)
    start("generator", consume)
    start("lock-waiter", Holder.blocked)
    start("reporter", report)
    main_block()


if __name__ == "__main__":
    main()
