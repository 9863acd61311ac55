# A parent that starts two multiprocessing children burning CPU in child_work, then joins them.
# A child ends when its parent is gone (the tests SIGKILL the parent) or after a minute.
import multiprocessing
import os
import signal
import sys
import time


def child_work(parent):
    deadline = time.time() + 60
    while os.getppid() == parent and time.time() < deadline:
        for i in range(100000): x = i * i


def main():
    signal.alarm(120)
    children = [multiprocessing.Process(target=child_work, args=(os.getpid(),)) for _ in range(2)]
    for child in children:
        child.start()
    sys.stdout.write("READY parent=%d children=%s\n" % (os.getpid(), ",".join(str(c.pid) for c in children)))
    sys.stdout.flush()
    for child in children:
        child.join()


if __name__ == "__main__":
    main()
