# A recursion DEPTH frames deep (argv[1], default 5000) that then spins on one line forever, so
# every sample sees the same whole stack: <module> (line 17), DEPTH-1 calls of `deep` from line 11,
# and the innermost `deep` on line 10. Python 2.7 and 3.x; ends itself after two minutes.
import signal
import sys


def deep(n):
    if n == 0:
        while True: pass
    return deep(n - 1) + 1


DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
sys.setrecursionlimit(DEPTH + 100)
signal.alarm(120)
sys.stdout.write("READY depth=%d\n" % DEPTH); sys.stdout.flush(); deep(DEPTH - 1)
