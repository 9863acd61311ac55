# A workload with an exact 10 ms period: in every period, 3 ms in hot() then 7 ms in cold(),
# both busy-waiting on the clock, locked to absolute time (period k starts at start + k * 10 ms).
# A sampler at 100 Hz whose instants sit at a fixed phase of its interval would see only one of
# the two (always hot or never); one without aliasing sees hot about 30% of the time. Runs for
# argv[1] seconds; every 10 periods it writes the wall time it spent in hot() and in all so far
# ("hot total") to the file argv[2] (replaced atomically), so a test can take the program's own
# share over exactly the window it recorded.
import os
import sys
import time

clock = getattr(time, "perf_counter", time.time)
PERIOD = 0.010
HOT = 0.003


def hot(until):
    while clock() < until:
        pass


def cold(until):
    while clock() < until:
        pass


def main(seconds, report):
    start = clock()
    k = 0
    hot_time = 0.0
    total = 0.0
    while True:
        begin = start + k * PERIOD
        if begin - start >= seconds:
            break
        entry = clock()
        hot(begin + HOT)
        middle = clock()
        cold(begin + PERIOD)
        end = clock()
        hot_time += middle - entry
        total += end - entry
        k += 1
        if k % 10 == 0 and report:
            with open(report + ".tmp", "w") as f:
                f.write("%.6f %.6f\n" % (hot_time, total))
            os.rename(report + ".tmp", report)


sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules))
sys.stdout.flush()
if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 6.0, sys.argv[2] if len(sys.argv) > 2 else None)
