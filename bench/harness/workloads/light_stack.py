"""A mostly idle pure-Python target with the same 10-frame stack as cpu_stack.py:

    <module> -> main -> l1 -> ... -> l7 -> leaf

Each round runs `leaf` for about --busy-ms milliseconds (1), then sleeps --sleep-ms (99): a
service busy 1% of the time, so that fifty of them take half a core. For long runs of many processes (the agent's RSS over an
hour, bench/fleet.py churn) where fifty CPU-bound targets would keep the machine saturated for the
whole hour. Prints "ready <pid>" once running; runs until --seconds have passed or it is killed.
Python 2.7 and 3.x.
"""
import os
import sys
import time


def leaf(deadline):
    s = 0
    while time.time() < deadline:
        for i in range(200):
            s += (i * i) % 7
    return s


def l7(deadline):
    return leaf(deadline)


def l6(deadline):
    return l7(deadline)


def l5(deadline):
    return l6(deadline)


def l4(deadline):
    return l5(deadline)


def l3(deadline):
    return l4(deadline)


def l2(deadline):
    return l3(deadline)


def l1(deadline):
    return l2(deadline)


def option(name, default):
    if name in sys.argv:
        return float(sys.argv[sys.argv.index(name) + 1])
    return default


def main():
    busy = option("--busy-ms", 1.0) / 1000.0
    pause = option("--sleep-ms", 99.0) / 1000.0
    end = time.time() + option("--seconds", 3600.0)
    sys.stdout.write("ready %d\n" % os.getpid())
    sys.stdout.flush()
    while time.time() < end:
        l1(time.time() + busy)
        time.sleep(pause)


main()
