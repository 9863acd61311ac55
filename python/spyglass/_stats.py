# -*- coding: utf-8 -*-
"""yappi-shaped statistics over a Profile: ``FuncStats`` and ``ThreadStats``.

Times are CPU seconds: every sample carries the CPU time its thread used since the thread's
previous sample (``spyglass record --weight cpu``), so ``ttot``/``tsub`` add up like yappi's
default CPU clock. A sampler cannot count calls; ``nsamples`` is how many samples had the function
on the stack.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import collections
import os
import sys

__all__ = ["FuncStat", "FuncStats", "ThreadStat", "ThreadStats"]


class FuncStat(collections.namedtuple("FuncStat", "name module lineno ttot tsub nsamples")):
    """One function: `name` (qualified on 3.11+), `module` (its file name), `lineno` (its first
    line), `ttot` (CPU seconds in it and below), `tsub` (CPU seconds in it alone), `nsamples`
    (samples with it on the stack)."""

    __slots__ = ()

    @property
    def full_name(self):
        return "%s:%d %s" % (self.module, self.lineno, self.name)

    @property
    def tavg(self):
        """CPU seconds per sample it was on the stack in."""
        return self.ttot / self.nsamples if self.nsamples else 0.0


class ThreadStat(collections.namedtuple("ThreadStat", "name id tid ttot nsamples pid")):
    """One thread: `name` (threading's), `id` (Python thread id, ``threading.get_ident()``), `tid`
    (OS thread id), `ttot` (CPU seconds it used while recorded), `nsamples`, `pid` (its process)."""

    __slots__ = ()


_SORT_ALIASES = {
    "totaltime": "ttot", "tottime": "ttot", "subtime": "tsub", "ownertime": "tsub", "samples": "nsamples",
    "ncall": "nsamples", "callcount": "nsamples", "file": "module", "line": "lineno",
}


class _Stats(object):
    _fields = ()

    def __init__(self, items):
        self._items = list(items)

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._subset(self._items[index])
        return self._items[index]

    def __bool__(self):
        return bool(self._items)

    __nonzero__ = __bool__

    def __repr__(self):
        return "<%s: %d entries>" % (type(self).__name__, len(self._items))

    def empty(self):
        return not self._items

    def sort(self, sort_type="ttot", sort_order="desc"):
        """Sorts in place by a field (yappi's names work too: totaltime, subtime, ncall)."""
        field = _SORT_ALIASES.get(sort_type, sort_type)
        if field not in self._fields:
            raise ValueError("cannot sort by %r; use one of %s" % (sort_type, ", ".join(self._fields)))
        if sort_order not in ("asc", "desc"):
            raise ValueError("sort_order must be 'asc' or 'desc'")
        self._items.sort(key=lambda item: getattr(item, field), reverse=sort_order == "desc")
        return self


class FuncStats(_Stats):
    """The functions of a recording, most CPU time first: a sequence of FuncStat."""

    _fields = FuncStat._fields

    def __init__(self, profile, items=None, version=""):
        self._profile = profile
        self._version = version
        self._short_names = {}
        if items is None:
            items = _function_stats(profile, self._short_names)
        _Stats.__init__(self, items)

    def _subset(self, items):
        subset = FuncStats(self._profile, items, self._version)
        subset._short_names = self._short_names
        return subset

    @property
    def total_samples(self):
        return self._profile.total_samples

    def print_all(self, out=None, limit=None):
        """A readable table: function, location, samples, tsub, ttot."""
        out = out or sys.stdout
        rows = self._items if limit is None else self._items[:limit]
        total = self._profile.total_samples
        out.write("\nFunction stats (CPU seconds; %d samples at %s Hz over %.2f s)\n\n" % (
            total, _rate(self._profile.rate), self._profile.duration))
        name_width = max([len("name")] + [len(row.name) for row in rows])
        name_width = min(name_width, 48)
        locations = ["%s:%d" % (self._short_names.get((row.name, row.module), row.module), row.lineno)
                     for row in rows]
        location_width = min(max([len("location")] + [len(text) for text in locations]), 48)
        out.write("%-*s  %-*s  %9s  %10s  %10s\n" % (
            name_width, "name", location_width, "location", "nsamples", "tsub", "ttot"))
        for row, location in zip(rows, locations):
            out.write("%-*s  %-*s  %9d  %10.6f  %10.6f\n" % (
                name_width, _cut(row.name, name_width), location_width, _cut(location, location_width, True),
                row.nsamples, row.tsub, row.ttot))

    def save(self, path, type=None):
        """Writes the whole recording (every function, whatever this sequence holds) to `path` as
        `type`: flamegraph, speedscope, chrometrace, raw, pprof, pstat, callgrind or spyglass (the
        recording itself; default: from the file name, as ``spyglass record`` names its files).
        The bundled executable writes the file (``spyglass convert``), exactly as ``spyglass
        record`` writes that format."""
        from spyglass import _formats
        from spyglass._recorder import convert_profile

        kind = type or _formats.format_for_path(path)
        if kind is None:
            raise ValueError("cannot tell the format from %r; pass type= one of %s" % (
                path, ", ".join(_formats.FORMATS)))
        convert_profile(self._profile, _formats.binary_format(kind), path, self._version)
        return path


class ThreadStats(_Stats):
    """The threads of a recording, most CPU time first: a sequence of ThreadStat."""

    _fields = ThreadStat._fields

    def __init__(self, profile=None, items=None):
        if items is None:
            items = _thread_stats(profile)
        _Stats.__init__(self, items)

    def _subset(self, items):
        return ThreadStats(items=items)

    def print_all(self, out=None):
        out = out or sys.stdout
        rows = self._items
        name_width = min(max([len("name")] + [len(row.name or "") for row in rows]), 40)
        out.write("\n%-*s  %16s  %8s  %10s  %9s\n" % (name_width, "name", "id", "tid", "ttot", "nsamples"))
        for row in rows:
            out.write("%-*s  %16s  %8s  %10.6f  %9d\n" % (
                name_width, _cut(row.name or "", name_width), row.id if row.id is not None else "-",
                row.tid if row.tid is not None else "-", row.ttot, row.nsamples))


def _cut(text, width, keep_end=False):
    if len(text) <= width:
        return text
    return ".." + text[-(width - 2):] if keep_end else text[:width - 2] + ".."


def function_totals(profile):
    """Per function (name, filename, first line): [samples on stack, weight on stack, weight as
    leaf], weights in nanoseconds. A function counts once per sample however often it recurses.
    Pseudo-frames (threads, processes, tasks) are left out."""
    functions = {}
    real_stacks = {}
    for (_, stack), (count, weight) in profile.totals().items():
        real = real_stacks.get(stack)
        if real is None:
            real = real_stacks[stack] = [profile.frames[frame].function for frame in profile.stacks[stack]
                                         if not profile.frames[frame].is_pseudo]
        if not real:
            continue
        for function in set(real):
            entry = functions.setdefault(function, [0, 0, 0])
            entry[0] += count
            entry[1] += weight
        functions[real[-1]][2] += weight
    return functions


def _function_stats(profile, short_names):
    functions = function_totals(profile)
    lowest_line = {}
    for frame in profile.frames:
        function = frame.function
        short_names.setdefault((frame.name, frame.filename), frame.short_filename)
        if frame.line and (function not in lowest_line or frame.line < lowest_line[function]):
            lowest_line[function] = frame.line
    stats = []
    for function, (count, weight, own) in functions.items():
        name, filename, first_line = function
        stats.append(FuncStat(name, filename, first_line or lowest_line.get(function, 0), weight / 1e9, own / 1e9,
                              count))
    stats.sort(key=lambda stat: (-stat.ttot, -stat.nsamples, stat.module, stat.lineno, stat.name))
    return stats


def _thread_stats(profile):
    weights = {}
    for (thread, _), (count, weight) in profile.totals().items():
        weights[thread] = weights.get(thread, 0) + weight
    samples = profile.samples_per_thread()
    # Where the recorder could not tell a thread's OS id, a live thread of this process knows its own
    # (threading's native_id, 3.8+).
    native_ids = {}
    try:
        import threading

        for thread in threading.enumerate():
            if getattr(thread, "native_id", None) is not None:
                native_ids[(os.getpid(), thread.ident)] = thread.native_id
    except Exception:
        pass
    stats = []
    for index, info in enumerate(profile.threads):
        cpu = info.cpu_ns if info.cpu_ns is not None else weights.get(index, 0)
        tid = info.os_thread_id if info.os_thread_id is not None else native_ids.get((info.pid, info.thread_id))
        stats.append(ThreadStat(info.name, info.thread_id, tid, cpu / 1e9, samples.get(index, 0), info.pid))
    stats.sort(key=lambda stat: (-stat.ttot, -stat.nsamples, stat.pid, stat.tid or 0))
    return stats


def _rate(rate):
    """Samples a second as the command line prints them: 100, 0.5."""
    return str(int(rate)) if float(rate).is_integer() else ("%.1f" % rate)
