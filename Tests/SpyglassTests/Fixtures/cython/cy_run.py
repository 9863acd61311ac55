"""Calls the Cython module cyhot (built beside this file) with a Python callback that sleeps, so
that the stack stays still: <module> -> main -> cyhot.cy_call (C) -> py_sleep. Prints READY
first."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cyhot  # noqa: E402


def py_sleep(i):
    time.sleep(3600)  # PY-SLEEP


def main():
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    cyhot.cy_call(py_sleep, 1)


main()
