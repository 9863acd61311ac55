# Two threads: "sleeper" blocks in time.sleep, the main thread burns CPU in spin.
import signal
import sys
import threading
import time


def sleep_forever():
    time.sleep(100000)


def spin():
    x = 0
    while True: x = x + 1


signal.alarm(120)
sleeper = threading.Thread(target=sleep_forever, name="sleeper")
sleeper.daemon = True
sleeper.start()
sys.stdout.write("READY threads=2\n"); sys.stdout.flush()
spin()
