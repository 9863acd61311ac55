"""A process forked the way uWSGI forks its workers: by C's fork(), here through ctypes, so the
interpreter is never told (no os.fork, no PyOS_AfterFork_Child). The child's one thread state
still carries the parent's thread ids; on 3.11+ its native_thread_id names the parent's main
thread, a thread of another process.

python raw_fork.py
    Prints `child PID` (the parent's line), then the child sleeps in child_sleeps() and the
    parent in time.sleep, both for an hour.
"""

import ctypes
import sys
import time


def child_sleeps():
    while True:
        time.sleep(3600)  # CHILD-SLEEP


libc = ctypes.CDLL(None, use_errno=True)
pid = libc.fork()
if pid == 0:
    child_sleeps()
elif pid < 0:
    sys.stderr.write("fork failed: errno %d\n" % ctypes.get_errno())
    sys.exit(1)
else:
    sys.stdout.write("child %d\n" % pid)
    sys.stdout.flush()
    time.sleep(3600)
