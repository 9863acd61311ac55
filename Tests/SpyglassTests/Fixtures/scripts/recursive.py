def recurse(x):
    if x == 0:
        return
    recurse(x-1)

import sys; sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
while True:
    recurse(20)
