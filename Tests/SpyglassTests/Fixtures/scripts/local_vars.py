# -*- coding: utf-8 -*-
# py-spy's tests/scripts/local_vars.py (dump --locals), runnable on 2.7 and without numpy, plus
# values that stress the bounded reprs: huge ints, sets, bytes, deep nesting, huge containers.
import sys
import time

try:
    import numpy as np
except ImportError:
    np = None


def local_variable_lookup(arg1="foo", arg2=None, arg3=True):
    local1 = [-1234, 5678]
    local2 = ("a", "b", "c")
    local3 = 123456789123456789
    local4 = 3.1415
    local5 = {"a": False, "b": (1, 2, 3)}
    # https://github.com/benfred/py-spy/issues/224
    local6 = ("-" * 115, {"key": {"key": {"key": "value"}}})
    if np is not None:
        local7 = np.bool_(True)
        local8 = np.byte(2)
        local9 = np.int8(3)
        local10 = np.int16(42)
        local11 = np.int32(43)
        local12 = np.int64(44)
        local13 = np.uint8(45)
        local14 = np.uint16(46)
        local15 = np.uint32(7)
        local16 = np.uint64(8)
        local17 = np.ulonglong(11)
        local18 = np.float16(0.3)
        local19 = np.float32(0.5)
        local20 = np.float64(0.7)
        local21 = np.longdouble(0.9)
        local22 = np.complex64(0.3 + 5j)
        local23 = np.complex128(0.3 + 5j)
        local24 = np.clongdouble(0.3 + 5j)
    # https://github.com/benfred/py-spy/issues/766
    local25 = "测试1" * 500
    local26 = ""
    big = 2 ** 200
    negative_big = -(3 ** 100)
    small_set = set([1, 2, 3])
    some_bytes = b"ab\x00c"
    a_float = -2.5e-05
    # unicode on 2.7 (str on 3.x): shown as text, not as <unicode at 0x...>
    some_text = u"h\u00e9llo \u6d4b\u8bd5 \U0001F4A9"
    deep = {"v": 0}
    for level in range(40):
        deep = {"k": deep}
    huge_string = "x" * (10 * 1024 * 1024)
    long_list = list(range(100000))
    sys.stdout.write("READY numpy=%d\n" % (np is not None)); sys.stdout.flush()
    time.sleep(100000)


if __name__ == "__main__":
    local_variable_lookup()
