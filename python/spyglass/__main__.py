# -*- coding: utf-8 -*-
"""``python -m spyglass ARGS``: runs the bundled spyglass executable (for when the environment's
bin folder is not on PATH)."""

from __future__ import absolute_import, print_function

import os
import sys

from spyglass._recorder import Error, binary_path


def main():
    try:
        path = binary_path()
    except Error as error:
        sys.stderr.write("spyglass: %s\n" % error)
        return 1
    os.execv(path, [path] + sys.argv[1:])
    return 1


if __name__ == "__main__":
    sys.exit(main())
