# dump --locals of closures: `outer` has a captured local (`captured`) and a captured argument
# (`shared`); `inner`, running in it, reads both as free variables. Python 2.7/3.x.
import sys
import time


def outer(arg, shared):
    captured = "cell-value"
    plain = 42

    def inner(extra):
        own = captured + "!" + shared
        sys.stdout.write("READY\n"); sys.stdout.flush()
        time.sleep(100000)
        return own

    inner(7)


outer(1, "from-arg")
