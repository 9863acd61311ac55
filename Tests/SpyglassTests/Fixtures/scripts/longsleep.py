import time
import sys

def longsleep():
    time.sleep(100000)

sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
if __name__ == "__main__":
    longsleep()
