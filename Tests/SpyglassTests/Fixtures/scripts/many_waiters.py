"""500 threads waiting on one event ("waiter-N"), the main thread asleep: prints READY once all
are waiting. Python 2.7 and 3.x."""

import sys
import threading
import time

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 500
event = threading.Event()
started = []
for number in range(COUNT):
    thread = threading.Thread(target=event.wait, name="waiter-%d" % number)
    thread.daemon = True
    thread.start()
    started.append(thread)
time.sleep(0.5)
sys.stdout.write("READY\n")
sys.stdout.flush()
time.sleep(3600)
