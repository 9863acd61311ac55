import sys
import threading
import time
def ready(): sys.stdout.write("READY threads=11\n"); sys.stdout.flush()
def main():
    for i in range(10):
        thread = threading.Thread(target=lambda: time.sleep(10000))
        thread.name = "CustomThreadName-%d" % i; thread.daemon = True
        thread.start(); i == 9 and ready()
    time.sleep(10000)


main()
