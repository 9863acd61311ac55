# --native fixture: calls back into Python from a C extension (native/spyglass_native_ext.c, built
# by the test into the folder given as the first argument). The main thread's stack is, innermost
# first: the sleep, inner, spyglass_call_back (the extension), outer, <module>. The READY line
# gives the lines of the marked statements.
import json
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import spyglass_native_ext  # noqa: E402

ready = threading.Event()


def inner():
    ready.set()
    time.sleep(3600)  # @sleep


def outer():
    spyglass_native_ext.call_back(inner)  # @call


def announce():
    ready.wait()
    lines = {}
    with open(__file__) as source:
        for number, text in enumerate(source, 1):
            if text.rstrip().endswith(("@sleep", "@call")) and "# @" in text:
                lines[text.split("# @")[1].strip()] = number
    sys.stdout.write("READY " + json.dumps(lines) + "\n")
    sys.stdout.flush()


threading.Thread(target=announce, name="announce").start()
outer()
