"""A small CPU-bound program to try Spyglass on: about 75% of the time in `crunch`, 25% in `parse`."""
import time


def crunch(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def parse(n):
    words = []
    for i in range(n):
        words.append(str(i))
    return len(" ".join(words))


def main(seconds=5.0):
    end = time.time() + seconds
    while time.time() < end:
        crunch(30000)
        parse(8000)


if __name__ == "__main__":
    main()
