# CPython 3.12 only: on SIGUSR1, a frame chain that loops. The main thread prepares, then waits
# for SIGUSR1 in sigwait (no Python code runs, so a reader attaches as to any idle program); once
# the signal comes, one store makes its innermost frame's `previous` pointer (in
# _PyInterpreterFrame, reached through the frame object's f_frame) point at the frame itself, and
# it spins without ever returning, so the interpreter never follows the loop, while a reader
# walking the chain goes round forever unless it bounds its walk. Layouts (3.12):
# PyFrameObject.f_frame at offset 24 (after the object head and f_back),
# _PyInterpreterFrame.previous at offset 8 (after f_code).
import ctypes
import signal
import sys


def spin():
    frame = sys._getframe()
    interpreter_frame = ctypes.c_void_p.from_address(id(frame) + 24).value
    previous = ctypes.c_void_p.from_address(interpreter_frame + 8)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    sys.stdout.write("READY\n"); sys.stdout.flush()
    signal.sigwait([signal.SIGUSR1])
    previous.value = interpreter_frame
    while True: pass


if sys.version_info[:2] != (3, 12):
    sys.exit("frame_cycle.py needs CPython 3.12")
signal.alarm(120)
spin()
