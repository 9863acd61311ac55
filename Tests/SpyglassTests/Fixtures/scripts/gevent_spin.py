"""Two greenlets under gevent's hub: "spin" loops and yields, "busy" counts and yields. Each
sample shows the greenlet that runs, from its own first frame. Prints READY."""

import sys

import gevent


def busy(step):
    total = 0
    while True:
        total += step
        gevent.sleep(0)


def spin():
    while True:
        for _ in range(10000):  # GEVENT-SPIN
            pass
        gevent.sleep(0)


sys.stdout.write("READY\n")
sys.stdout.flush()
gevent.joinall([gevent.spawn(spin), gevent.spawn(busy, 1)])
