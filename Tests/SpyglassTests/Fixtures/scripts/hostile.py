# A target whose names are made to break a profiler's output (HostileNamesTests).
#
# Function names, qualified names (3.11+), file names and thread names hold markup (<script>,
# </svg>, a CDATA end), quotes, '&', NUL, newlines, ANSI and OSC escape sequences, C1 controls,
# invalid text (a lone surrogate on 3.x, invalid UTF-8 on 2.7) and 100 KB lengths. Every script
# payload, if it ever ran in a browser, would mark the document: data-pwned="..." on the root
# element, and document.title = "pwned".
#
# Usage: hostile.py DIRECTORY [ARGS...]
#   DIRECTORY  an empty folder in which files with hostile names are created (a package whose
#              folder name is hostile too, so even the shortened file name is).
#
# The main thread spins in a chain of hostile functions (defined in a file with a hostile name);
# one named thread per hostile name sleeps in a hostile function. Prints "READY threads=N" once
# every thread runs. Runs on Python 2.7 and 3.x.
import os
import sys
import threading
import time
import types

PY2 = sys.version_info[0] == 2


def payload(tag):
    return "document.documentElement.setAttribute('data-pwned','" + tag + "');document.title='pwned'"


LONG = "long" + "L" * (100 * 1024)
if PY2:
    INVALID = "invalid\xff\xfeutf8"
    C1 = "c1-\xc2\x9b31m"  # U+009B, the 8-bit CSI, as UTF-8
else:
    INVALID = "lone\udcffsurrogate"
    C1 = "c1-\u009b31m"

NAMES = [
    "<script>" + payload("fn-script") + "</script>",
    "</svg><svg xmlns='http://www.w3.org/2000/svg' onload=\"" + payload("fn-svg") + "\"><text>",
    "]]><script>" + payload("fn-cdata") + "</script><![CDATA[",
    "quote\"double'single&amp;&lt;",
    "nul\x00byte",
    "ansi\x1b[31mred\x1b[0m",
    "osc\x1b]0;pwned-title\x07",
    "newline\nand\rreturn\ttab",
    C1,
    INVALID,
    LONG,
]

THREAD_NAMES = [
    "<script>" + payload("thread-script") + "</script>",
    "</svg><script>" + payload("thread-svg") + "</script>",
    "\"'&<>",
    "nul\x00thread",
    "\x1b[31mred-thread\x1b[0m",
    "\x1b]0;pwned-title\x07thread",
    C1 + "-thread",
    INVALID + "-thread",
    "T" * (100 * 1024),
]


def rename(code, name, filename):
    """The same code object with another co_name (and co_qualname) and co_filename."""
    if hasattr(code, "replace"):  # 3.8+
        changes = {"co_name": name, "co_filename": filename}
        if hasattr(code, "co_qualname"):
            changes["co_qualname"] = name
        return code.replace(**changes)
    if PY2:
        return types.CodeType(
            code.co_argcount, code.co_nlocals, code.co_stacksize, code.co_flags, code.co_code,
            code.co_consts, code.co_names, code.co_varnames, filename, name, code.co_firstlineno,
            code.co_lnotab, code.co_freevars, code.co_cellvars)
    return types.CodeType(  # 3.6, 3.7
        code.co_argcount, code.co_kwonlyargcount, code.co_nlocals, code.co_stacksize, code.co_flags,
        code.co_code, code.co_consts, code.co_names, code.co_varnames, filename, name,
        code.co_firstlineno, code.co_lnotab, code.co_freevars, code.co_cellvars)


def write(path, text):
    handle = open(path, "w")
    handle.write(text)
    handle.close()


directory = sys.argv[1]
# A package folder and a module file whose names are hostile (no '/' and no NUL in a file name).
package = os.path.join(directory, "pkg<svg onload=\"" + payload("dir") + "\">&'\x1b[32m")
os.mkdir(package)
write(os.path.join(package, "__init__.py"), "")
module_path = os.path.join(
    package, "<img src=x onerror=\"" + payload("file") + "\">&quot;'\x1b[31m\x1b]0;t\x07.py")
write(module_path, """
import time

def spin(callee):
    while True:
        callee()

def leaf():
    x = 0
    for i in range(1000):
        x += i
    return x

def sleeper():
    while True:
        time.sleep(1000)
""")
namespace = {"__name__": "hostile_module"}
exec(compile(open(module_path).read(), module_path, "exec"), namespace)


def hostile(function, name, filename=None):
    """`function` renamed, keeping its globals and closure."""
    code = rename(function.__code__, name, filename or function.__code__.co_filename)
    return types.FunctionType(code, function.__globals__, function.__name__, None, function.__closure__)


def make_link(callee):
    def link():
        return callee()
    return link


# The main thread's chain, outermost first: every hostile name, then spin() and leaf() from the
# hostile file. Each link also gets a co_filename that is itself hostile (a '/' and a NUL are
# possible there).
def chain():
    spin = namespace["spin"]
    leaf = namespace["leaf"]
    callee = lambda: spin(leaf)
    for index, name in reversed(list(enumerate(NAMES))):
        filename = "/srv/</script><script>" + payload("co-filename") + "</script>/" + str(index) + "\x00\x1b[33m.py"
        if index == len(NAMES) - 1:
            filename = "/srv/" + "F" * (100 * 1024) + ".py"
        callee = hostile(make_link(callee), name, filename)
    return callee


def thread_body(name):
    sleeper = hostile(namespace["sleeper"], name)
    return lambda: sleeper()


threads = []
for index, name in enumerate(THREAD_NAMES):
    thread = threading.Thread(target=thread_body(NAMES[index % len(NAMES)]), name=name)
    thread.daemon = True
    thread.start()
    threads.append(thread)
threading.current_thread().name = "\x1b]0;pwned-title\x07<script>" + payload("main") + "</script>"

run = chain()
# Wait until every thread is asleep in its function before announcing readiness.
time.sleep(0.2)
sys.stdout.write("READY threads=%d\n" % (len(threads) + 1))
sys.stdout.flush()
run()
