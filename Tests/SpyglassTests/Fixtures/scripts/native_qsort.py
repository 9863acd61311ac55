# --native fixture: the main thread sorts with libc's qsort through ctypes, and the comparison
# callback (Python) sleeps, so its stack is, innermost first: the C library's sleep, the
# interpreter's sleep, compare, ctypes/libffi glue, qsort, the ctypes call, sort_forever, <module>.
# A thread named "zlib" compresses in a loop (zlib's deflate under compress_forever). The READY
# line gives the lines of the marked statements, as this file numbers them.
import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import zlib

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
ready = threading.Event()


def compare(a, b):
    ready.set()
    time.sleep(3600)  # @sleep
    return a[0] - b[0]


def sort_forever():
    callback = COMPARE(compare)
    while True:
        values = (ctypes.c_int * 4)(3, 1, 2, 0)
        libc.qsort(values, 4, ctypes.sizeof(ctypes.c_int), callback)  # @qsort


def compress_forever():
    data = os.urandom(1 << 20)
    while True:
        zlib.compress(data, 9)  # @compress


def marked_lines():
    lines = {}
    with open(__file__) as source:
        for number, text in enumerate(source, 1):
            if text.rstrip().endswith(("@sleep", "@qsort", "@compress")) and "# @" in text:
                lines[text.split("# @")[1].strip()] = number
    return lines


def announce():
    ready.wait()
    sys.stdout.write("READY " + json.dumps(marked_lines()) + "\n")
    sys.stdout.flush()


threading.Thread(target=compress_forever, name="zlib").start()
threading.Thread(target=announce, name="announce").start()
sort_forever()
