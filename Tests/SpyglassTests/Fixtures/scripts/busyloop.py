def busy_loop():
    while True:
        pass

import sys; sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
if __name__ == "__main__":
    busy_loop()
