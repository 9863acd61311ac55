"""A program that lives in a generator expression: sum() enters the generator from C on every
item, and each entry passes through the few instructions in which CPython's frame links are not
yet consistent (a sampler reading then sees the generator's frame with no caller). Prints READY,
then loops for an hour."""

import sys


def inner(n):
    total = 0
    total += sum(i * i for i in range(n))  # GENEXPR
    return total


def outer():
    while True:
        inner(1000)  # OUTER-CALL


sys.stdout.write("READY\n")
sys.stdout.flush()
outer()
