"""The program bench/link-order/generate.sh has Spyglass record while it notes which code runs.

Python 2.7 and 3.x. A CPU-bound main thread 12 frames deep with locals of several types, a second
busy thread, an idle thread (blocked in a wait) and, with --child, a child process of itself (for
--subprocesses). Prints "ready <pid>" once all of it runs; exits after --seconds.
"""
import os
import subprocess
import sys
import threading
import time


def leaf(n, label, table):
    s = 0
    for i in range(n):
        s += (i * i) % 7
    table[label] = s
    return s


def step(depth, n):
    words = ["alpha", "beta", depth]
    if depth == 0:
        return leaf(n, "leaf", {"depth": depth, "words": words})
    return step(depth - 1, n)


def busy(deadline):
    while time.time() < deadline:
        step(4, 3000)


def idle(event):
    event.wait()


def main():
    seconds = 5.0
    child = False
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--seconds":
            seconds = float(args.pop(0))
        elif a == "--child":
            child = True
    deadline = time.time() + seconds
    event = threading.Event()
    threads = [threading.Thread(target=busy, args=(deadline,)), threading.Thread(target=idle, args=(event,))]
    for t in threads:
        t.daemon = True
        t.start()
    kid = None
    if child:
        kid = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--seconds", str(seconds)],
                               stdout=open(os.devnull, "w"))
    sys.stdout.write("ready %d\n" % os.getpid())
    sys.stdout.flush()
    while time.time() < deadline:
        step(10, 2000)
    event.set()
    if kid is not None:
        kid.wait()


if __name__ == "__main__":
    main()
