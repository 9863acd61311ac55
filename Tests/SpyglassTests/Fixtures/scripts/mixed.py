# Varied stacks for the recording tests: the main thread alternates between crunch and parse (a
# busy program's shape), a thread named "recurser" recurses to a depth that changes and sleeps
# between rounds, a thread named "sleeper" only sleeps. Python 2.7 and 3.x; ends after two minutes.
import signal
import sys
import threading
import time


def crunch(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def parse(n):
    words = []
    for i in range(n):
        words.append(str(i))
    return len(" ".join(words))


def descend(depth):
    if depth == 0:
        return crunch(2000)
    return descend(depth - 1) + 1


def recurse():
    depth = 0
    while True:
        descend(depth % 7)
        depth += 1
        time.sleep(0.003)


def sleep_forever():
    while True:
        time.sleep(1000)


signal.alarm(120)
for target, name in ((recurse, "recurser"), (sleep_forever, "sleeper")):
    thread = threading.Thread(target=target, name=name)
    thread.daemon = True
    thread.start()
sys.stdout.write("READY threads=3\n")
sys.stdout.flush()
while True:
    crunch(30000)
    parse(8000)
