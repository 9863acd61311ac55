# -*- coding: utf-8 -*-
"""Which file format a save means, and how the executable names it.

Every file is written by the bundled executable (``spyglass convert RECORDING -f FORMAT -o
PATH``), exactly as ``spyglass record -f FORMAT`` writes it. This module only maps what the API
accepts (yappi's type names, file name extensions) onto the executable's format names.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import os

__all__ = ["FORMATS", "binary_format", "format_for_path"]

#: Every type ``save`` and ``profile`` accept, yappi's names where yappi has one.
FORMATS = ("flamegraph", "speedscope", "chrometrace", "raw", "pprof", "pstat", "callgrind", "spyglass")

#: The executable's ``--format`` name of each type (and of the aliases accepted).
_BINARY = {
    "flamegraph": "flamegraph", "svg": "flamegraph",
    "speedscope": "speedscope",
    "chrometrace": "chrometrace",
    "raw": "raw",
    "pprof": "pprof", "pprof.gz": "pprof",
    "pstat": "pstats", "pstats": "pstats", "ystat": "pstats",
    "callgrind": "callgrind",
    "spyglass": "spyglass",
}


def binary_format(kind):
    """The executable's name for the type `kind` (ValueError for a type it does not write)."""
    name = _BINARY.get(kind)
    if name is None:
        raise ValueError("unknown format %r; use one of %s" % (kind, ", ".join(FORMATS)))
    return name


def format_for_path(path):
    """The type a file name implies (as ``spyglass record`` names its files), or None."""
    base = os.path.basename(path).lower()
    if base.endswith(".svg"):
        return "flamegraph"
    if base.endswith(".trace.json") or base.endswith(".chrometrace.json"):
        return "chrometrace"
    if base.endswith(".json"):
        return "speedscope"
    if base.endswith(".txt") or base.endswith(".folded") or base.endswith(".collapsed"):
        return "raw"
    if base.endswith(".pb.gz") or base.endswith(".pprof") or base.endswith(".pb"):
        return "pprof"
    if base.endswith(".prof") or base.endswith(".pstat") or base.endswith(".pstats"):
        return "pstat"
    if base.startswith("callgrind.") or base.endswith(".callgrind"):
        return "callgrind"
    if base.endswith(".spyglass"):
        return "spyglass"
    return None
