"""Named asyncio tasks parked in nested awaits, for `dump --async` and `record --async-aware`.

python async_tasks.py tree [--pure]
    A task awaiting a child task, a gather() of two tasks, a TaskGroup of two, a finished task that is
    still referenced, and a running task ("blocker") that holds the event loop in time.sleep. The
    blocker prints, as truth, every task of asyncio.all_tasks() (and the finished one) with its id,
    state, coroutine chain (cr_await / gi_yieldfrom, innermost first, with the interpreter's own line
    numbers) and the tasks awaiting it, as `READY <json>`, then sleeps.
python async_tasks.py sleepers [--pure]
    Twenty tasks "sleeper-NN" each in its own asyncio.sleep, and a task "spinner" that spins in
    busy() and sleeps, over and over, each for a random 12-28 ms (random, so that no sampling rate
    keeps meeting the same phase of a fixed cycle: 20 + 20 ms at 200 Hz is 8 samples a cycle, and
    the share a record measured then depended on where its ticks fell). Prints READY, then every
    0.1 s `STAT busy=<seconds in busy()> wall=<seconds>` (the target's own measurement of its share).

python async_tasks.py many N [--pure]
    N tasks "many-N" each in asyncio.sleep; prints READY when they all wait (and `ready PID`).

--pure blocks the C accelerator (_asyncio), so the pure-Python asyncio runs.
"""

import sys

if "--pure" in sys.argv:
    sys.modules["_asyncio"] = None

import asyncio
import json
import os
import random
import threading
import time

STOP = 3600


def marker_line(marker):
    with open(__file__, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + marker):
                return number
    raise SystemExit("no marker " + marker)


async def leaf(delay):
    await asyncio.sleep(delay)


async def middle():
    await leaf(STOP)


async def child_work():
    await middle()


async def parent():
    child = asyncio.create_task(child_work(), name="child")
    await child


async def gatherer():
    first = asyncio.create_task(leaf(STOP), name="gather-a")
    second = asyncio.create_task(middle(), name="gather-b")
    await asyncio.gather(first, second)


async def group_owner():
    async with asyncio.TaskGroup() as group:
        group.create_task(leaf(STOP), name="group-a")
        group.create_task(middle(), name="group-b")


async def finished():
    return 1


def qualname(code):
    return getattr(code, "co_qualname", code.co_name)


def chain(coro):
    """The coroutine chain of a task, innermost first, as the interpreter itself shows it."""
    frames = []
    obj = coro
    while obj is not None and len(frames) < 100:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is None:
            break
        frames.append({"name": qualname(frame.f_code), "filename": frame.f_code.co_filename, "line": frame.f_lineno})
        obj = getattr(obj, "cr_await", None) if hasattr(obj, "cr_await") else getattr(obj, "gi_yieldfrom", None)
    return frames[::-1]


AWAITED_BY = {
    "child": ["parent"],
    "gather-a": ["gatherer"],
    "gather-b": ["gatherer"],
    "group-a": ["group-owner"],
    "group-b": ["group-owner"],
    "blocker": ["main"],
}

KEEP = []


def describe(extra):
    current = asyncio.current_task()
    tasks = list(asyncio.all_tasks()) + [t for t in extra if t not in asyncio.all_tasks()]
    truth = []
    for task in tasks:
        frames = chain(task.get_coro())
        state = "running" if task is current else "done" if task.done() else "pending"
        if task is current and frames:
            frames[0]["line"] = marker_line("BLOCKER-SLEEP")
        truth.append({
            "name": task.get_name(),
            "id": id(task),
            "state": state,
            "thread_id": threading.get_ident() if task is current else None,
            "frames": frames,
            "awaited_by": AWAITED_BY.get(task.get_name(), []),
        })
    return truth


async def blocker(extra):
    print("READY " + json.dumps({"version": list(sys.version_info[:2]), "tasks": describe(extra)}), flush=True)
    time.sleep(STOP)  # BLOCKER-SLEEP


async def tree():
    asyncio.current_task().set_name("main")
    done = asyncio.create_task(finished(), name="finished")
    KEEP.append(done)
    for name, work in (("parent", parent), ("gatherer", gatherer), ("group-owner", group_owner)):
        KEEP.append(asyncio.create_task(work(), name=name))
    for _ in range(5):
        await asyncio.sleep(0.02)
    # 3.14+'s C tasks leave their thread's list when done; before, and for the pure-Python asyncio,
    # a finished task stays in the registry (a WeakSet) while it is referenced.
    extra = [done] if sys.version_info < (3, 14) or "--pure" in sys.argv else []
    await asyncio.create_task(blocker(extra), name="blocker")


BUSY = [0.0]


def busy(seconds):
    start = time.perf_counter()
    x = 0
    while time.perf_counter() - start < seconds:
        x += 1
    BUSY[0] += time.perf_counter() - start


async def spinner():
    while True:
        busy(random.uniform(0.012, 0.028))
        await asyncio.sleep(random.uniform(0.012, 0.028))  # SPINNER-AWAIT


async def sleeper():
    await asyncio.sleep(STOP)  # SLEEPER-AWAIT


async def report(start):
    while True:
        await asyncio.sleep(0.1)
        print("STAT busy=%.6f wall=%.6f" % (BUSY[0], time.perf_counter() - start), flush=True)


async def sleepers():
    KEEP.extend(asyncio.create_task(sleeper(), name="sleeper-%02d" % i) for i in range(20))
    KEEP.append(asyncio.create_task(spinner(), name="spinner"))
    await asyncio.sleep(0.1)
    print("READY", flush=True)
    await report(time.perf_counter())


async def many():
    count = int(sys.argv[2])
    KEEP.extend(asyncio.create_task(sleeper(), name="many-%d" % i) for i in range(count))
    await asyncio.sleep(0.2)
    print("ready %d" % os.getpid(), flush=True)  # for bench/harness/benchlib.py
    print("READY tasks=%d" % len(asyncio.all_tasks()), flush=True)
    await asyncio.sleep(STOP)


if __name__ == "__main__":
    asyncio.run({"tree": tree, "sleepers": sleepers, "many": many}[sys.argv[1]]())
