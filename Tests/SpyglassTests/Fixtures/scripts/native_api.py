# The same native work measured two ways (PythonAPITests): zlib compresses in the main thread.
#   native_api.py api OUT.svg   - profiles itself with spyglass.start(native=True, nonblocking=False)
#                                 and saves the flame graph to OUT.svg (the package from PYTHONPATH,
#                                 the executable from SPYGLASS_BINARY)
#   native_api.py plain SECONDS - only works, for `spyglass record --native -- python native_api.py`
import sys
import time
import zlib

DATA = bytes(bytearray(range(256))) * 4096


def compress_forever(seconds):
    end = time.time() + seconds
    while time.time() < end:
        zlib.compress(DATA, 9)


def main():
    if sys.argv[1] == "api":
        import spyglass

        spyglass.start(rate=200, native=True, nonblocking=False)
        compress_forever(2.0)
        spyglass.stop()
        spyglass.get_func_stats().save(sys.argv[2], type="flamegraph")
    else:
        compress_forever(float(sys.argv[2]))


if __name__ == "__main__":
    main()
