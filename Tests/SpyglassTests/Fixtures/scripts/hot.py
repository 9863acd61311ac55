# A CPU-bound main thread that spends its time on one line of one function. It ends itself after
# two minutes (SIGALRM), in case the test that launched it dies before stopping it.
import signal
import sys


def hot_function():
    x = 0
    while True: x = x + 1


signal.alarm(120)
sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
hot_function()
