import time
import sys
def кириллица(seconds):
    time.sleep(seconds)
sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
if __name__ == "__main__":
    кириллица(100)
