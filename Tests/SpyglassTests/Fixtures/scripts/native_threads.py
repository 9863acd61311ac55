# Four OS threads with no Python thread state (started with pthread_create through ctypes, each
# parked in libc's pause()), beside the Python main thread sleeping in main. Python 2.7 and 3.x.
# Prints "READY native=A,B,C,D" with their OS thread ids; ends after two minutes.
import ctypes
import ctypes.util
import os
import signal
import sys
import time


def tasks():
    return set(int(name) for name in os.listdir("/proc/self/task"))


def main():
    signal.alarm(120)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    pthread = libc
    try:
        pthread.pthread_create
    except AttributeError:
        pthread = ctypes.CDLL(ctypes.util.find_library("pthread") or "libpthread.so.0")
    pthread.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    before = tasks()
    handles = [ctypes.c_ulong() for _ in range(4)]
    start = ctypes.cast(libc.pause, ctypes.c_void_p)
    for handle in handles:
        if pthread.pthread_create(ctypes.byref(handle), None, start, None) != 0:
            sys.stderr.write("pthread_create failed\n")
            sys.exit(1)
    native = sorted(tasks() - before)
    while len(native) < 4:
        time.sleep(0.01)
        native = sorted(tasks() - before)
    sys.stdout.write("READY native=%s\n" % ",".join(str(tid) for tid in native))
    sys.stdout.flush()
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    main()
