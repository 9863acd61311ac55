import time
import sys

def f():
    for _ in [
        # The element expression sits three lines below the opening bracket, so the
        # line table steps backwards when the loop returns to line 5 or 9.
        time.sleep(1000)
        for _ in range(1000)
    ]:
        pass
sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
f()
