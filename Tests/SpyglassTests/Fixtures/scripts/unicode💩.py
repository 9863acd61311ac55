#!/usr/bin/env python
# -*- coding: utf-8 -*-
import time
import sys
def function1(seconds):
    time.sleep(seconds)
sys.stdout.write("READY threading=%d\n" % ("threading" in sys.modules)); sys.stdout.flush()
if __name__ == "__main__":
    function1(100)
