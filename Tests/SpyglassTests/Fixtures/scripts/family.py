# A parent with children, for `--subprocesses` (the cases of py-spy's subprocess tests; the code is
# this project's own). Python 2.7 and 3.x. One mode per run:
#   children  two multiprocessing children (the default start method) parked in child_sleep
#   zombie    one child (forked) that exits at once and is never reaped: a zombie beside the parent
#   threads   four sleeping threads, and one subprocess.Popen child running the same interpreter
# Prints "READY parent=P children=A,B" once every child is in place; ends after two minutes.
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time


def child_sleep(connection):
    connection.send("up")
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)


def child_exit():
    pass


def thread_sleep():
    while True:
        time.sleep(0.05)


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (IOError, OSError):
        return "?"


def ready(children):
    sys.stdout.write("READY parent=%d children=%s\n" % (os.getpid(), ",".join(str(c) for c in children)))
    sys.stdout.flush()


def main():
    signal.alarm(120)
    mode = sys.argv[1]
    if mode == "children":
        pairs = [multiprocessing.Pipe() for _ in range(2)]
        children = [multiprocessing.Process(target=child_sleep, args=(pair[1],)) for pair in pairs]
        for child in children:
            child.daemon = True
            child.start()
        for pair in pairs:
            pair[0].recv()
        ready([c.pid for c in children])
    elif mode == "zombie":
        context = multiprocessing.get_context("fork") if hasattr(multiprocessing, "get_context") else multiprocessing
        child = context.Process(target=child_exit)
        child.start()
        while process_state(child.pid) != "Z":
            time.sleep(0.01)
        ready([child.pid])
    elif mode == "threads":
        for _ in range(4):
            worker = threading.Thread(target=thread_sleep)
            worker.daemon = True
            worker.start()
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(120)"],
            stdout=subprocess.PIPE)
        child.stdout.readline()
        ready([child.pid])
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    main()
