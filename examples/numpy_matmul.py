"""A numpy matrix-multiply loop: the example for `--native` (BLAS's kernels under the Python line).

    ./spyglass.sh record --native -o matmul.svg -d 5 -- python3 examples/numpy_matmul.py
"""
import numpy as np


def multiply(a, b):
    return a @ b  # the line numpy's and OpenBLAS's frames sit under


def main():
    rng = np.random.default_rng(0)
    a = rng.random((400, 400))
    b = rng.random((400, 400))
    total = 0.0
    for _ in range(100000):
        total += multiply(a, b)[0, 0]
    print(total)


if __name__ == "__main__":
    main()
