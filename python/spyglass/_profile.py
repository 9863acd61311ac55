# -*- coding: utf-8 -*-
"""The recording as Python data: what the spyglass executable writes, read back.

A running ``spyglass record`` started by this package writes two files whenever it is asked
(SIGUSR1) and at its end: the profile as gzipped pprof (``--format pprof``: per thread and stack a
sample count and the CPU nanoseconds of those samples, ``--weight cpu``; functions with their full
file name and first line) and a JSON summary (``--summary-json``: per thread its Python and OS
thread ids, name, samples and CPU time). ``Profile`` is the two merged; profiles can be added and
subtracted (``clear_stats`` keeps the recording going and subtracts what it had so far).

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import json
import zlib

__all__ = ["Frame", "Profile", "ThreadInfo", "parse_pprof", "read_recording"]


class Frame(tuple):
    """One frame: (name, filename, first_line, line). A pseudo-frame (``process …``) has an empty
    filename and lines 0."""

    __slots__ = ()

    def __new__(cls, name, filename, first_line, line):
        return tuple.__new__(cls, (name, filename, first_line, line))

    name = property(lambda self: self[0])
    filename = property(lambda self: self[1])
    first_line = property(lambda self: self[2])
    line = property(lambda self: self[3])

    @property
    def is_pseudo(self):
        return not self[1]

    @property
    def function(self):
        """The function this frame is in: (name, filename, first_line)."""
        return self[:3]


class ThreadInfo(object):
    """A sampled thread. ``key`` is (pid, Python thread id) when known, else (pid, display id)."""

    __slots__ = ("pid", "thread_id", "os_thread_id", "name", "samples", "cpu_ns")

    def __init__(self, pid, thread_id=None, os_thread_id=None, name=None, samples=0, cpu_ns=None):
        self.pid = pid
        self.thread_id = thread_id
        self.os_thread_id = os_thread_id
        self.name = name
        self.samples = samples
        self.cpu_ns = cpu_ns

    def copy(self):
        return ThreadInfo(self.pid, self.thread_id, self.os_thread_id, self.name, self.samples, self.cpu_ns)

    @property
    def display_id(self):
        """As the executable names the thread: the OS id in decimal, else the Python id in hex."""
        if self.os_thread_id is not None:
            return str(self.os_thread_id)
        return "0x%X" % (self.thread_id or 0)


class Profile(object):
    """Samples per (thread key, stack) as [count, CPU nanoseconds], stacks root first (tuples of
    Frame), and the threads by key."""

    def __init__(self):
        self.samples = {}
        self.threads = {}
        self.rate = 100.0
        self.duration_ns = 0
        self.start_ns = 0
        self.errors = 0
        self.python_version = ""
        self.title = ""

    def copy(self):
        other = Profile()
        other.samples = dict((key, list(value)) for key, value in self.samples.items())
        other.threads = dict((key, info.copy()) for key, info in self.threads.items())
        other._copy_info(self)
        return other

    def _copy_info(self, source):
        self.rate = source.rate
        self.duration_ns = source.duration_ns
        self.start_ns = source.start_ns
        self.errors = source.errors
        self.python_version = source.python_version
        self.title = source.title

    @property
    def total_samples(self):
        return sum(value[0] for value in self.samples.values())

    def plus(self, other):
        """This profile with `other`'s samples and thread times added (a later recording)."""
        result = self.copy()
        for key, value in other.samples.items():
            entry = result.samples.setdefault(key, [0, 0])
            entry[0] += value[0]
            entry[1] += value[1]
        for key, info in other.threads.items():
            mine = result.threads.get(key)
            if mine is None:
                result.threads[key] = info.copy()
                continue
            mine.samples += info.samples
            if info.cpu_ns is not None:
                mine.cpu_ns = (mine.cpu_ns or 0) + info.cpu_ns
            mine.name = info.name or mine.name
            if info.os_thread_id is not None:
                mine.os_thread_id = info.os_thread_id
        if not self.samples and not self.threads:
            result._copy_info(other)
        else:
            result.duration_ns = self.duration_ns + other.duration_ns
            result.errors = self.errors + other.errors
            result.rate = other.rate
            result.python_version = other.python_version or self.python_version
        return result

    def minus(self, base):
        """What this profile holds beyond `base`, an earlier look at the same recording."""
        if base is None:
            return self.copy()
        result = Profile()
        result._copy_info(self)
        result.duration_ns = max(0, self.duration_ns - base.duration_ns)
        result.errors = max(0, self.errors - base.errors)
        result.start_ns = self.start_ns + base.duration_ns
        for key, value in self.samples.items():
            old = base.samples.get(key)
            count, weight = value
            if old is not None:
                count -= old[0]
                weight -= old[1]
            if count > 0:
                result.samples[key] = [count, max(0, weight)]
        for key, info in self.threads.items():
            old = base.threads.get(key)
            new = info.copy()
            if old is not None:
                new.samples = max(0, info.samples - old.samples)
                if info.cpu_ns is not None and old.cpu_ns is not None:
                    new.cpu_ns = max(0, info.cpu_ns - old.cpu_ns)
            if new.samples > 0 or old is None:
                result.threads[key] = new
        return result


# MARK: - pprof (perftools.profiles.Profile, Protos/profile.proto)


def _varint(data, i):
    result = 0
    shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _signed(value):
    return value - (1 << 64) if value >= (1 << 63) else value


def _fields(data, start, end):
    """(field number, wire type, value) of a message; a length-delimited value is (start, end)."""
    i = start
    while i < end:
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value = (i, i + length)
            i += length
            if i > end:
                raise ValueError("truncated field")
        elif wire == 1:
            value = data[i:i + 8]
            i += 8
        elif wire == 5:
            value = data[i:i + 4]
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def _integers(data, wire, value, into, signed=False):
    """Appends a repeated integer field's values (packed or not)."""
    if wire == 0:
        into.append(_signed(value) if signed else value)
    elif wire == 2:
        i, end = value
        while i < end:
            item, i = _varint(data, i)
            into.append(_signed(item) if signed else item)


def parse_pprof(blob):
    """Reads a gzipped (or plain) pprof profile written by ``spyglass record -f pprof``."""
    data = bytearray(blob)
    if data[:2] == b"\x1f\x8b":
        data = bytearray(zlib.decompress(bytes(data), 16 + zlib.MAX_WBITS))
    strings = []
    functions = {}
    locations = {}
    raw_samples = []
    sample_types = []
    comments = []
    info = {"time": 0, "duration": 0, "period": 0}
    for number, wire, value in _fields(data, 0, len(data)):
        if number == 6 and wire == 2:
            strings.append(bytes(data[value[0]:value[1]]).decode("utf-8", "replace"))
        elif number == 1 and wire == 2:
            pair = {}
            for n, w, v in _fields(data, value[0], value[1]):
                if w == 0:
                    pair[n] = v
            sample_types.append((pair.get(1, 0), pair.get(2, 0)))
        elif number == 5 and wire == 2:
            entry = {}
            for n, w, v in _fields(data, value[0], value[1]):
                if w == 0:
                    entry[n] = v
            functions[entry.get(1, 0)] = (entry.get(2, 0), entry.get(4, 0), _signed(entry.get(5, 0)))
        elif number == 4 and wire == 2:
            location_id = 0
            lines = []
            for n, w, v in _fields(data, value[0], value[1]):
                if n == 1 and w == 0:
                    location_id = v
                elif n == 4 and w == 2:
                    line = {}
                    for n2, w2, v2 in _fields(data, v[0], v[1]):
                        if w2 == 0:
                            line[n2] = v2
                    lines.append((line.get(1, 0), _signed(line.get(2, 0))))
            locations[location_id] = lines
        elif number == 2 and wire == 2:
            location_ids = []
            values = []
            labels = []
            for n, w, v in _fields(data, value[0], value[1]):
                if n == 1:
                    _integers(data, w, v, location_ids)
                elif n == 2:
                    _integers(data, w, v, values, signed=True)
                elif n == 3 and w == 2:
                    label = {}
                    for n2, w2, v2 in _fields(data, v[0], v[1]):
                        if w2 == 0:
                            label[n2] = v2
                    labels.append((label.get(1, 0), label.get(2, 0), _signed(label.get(3, 0))))
            raw_samples.append((location_ids, values, labels))
        elif number == 13:
            _integers(data, wire, value, comments, signed=True)
        elif number == 9 and wire == 0:
            info["time"] = _signed(value)
        elif number == 10 and wire == 0:
            info["duration"] = _signed(value)
        elif number == 12 and wire == 0:
            info["period"] = _signed(value)

    def string(index):
        if index < 0 or index >= len(strings):
            raise ValueError("string index %d out of range" % index)
        return strings[index]

    if strings and strings[0] != "":
        raise ValueError("the string table does not start with an empty string")
    types = [(string(t), string(u)) for t, u in sample_types]
    count_index = types.index(("samples", "count")) if ("samples", "count") in types else 0
    weight_index = types.index(("cpu", "nanoseconds")) if ("cpu", "nanoseconds") in types else 1

    frame_cache = {}

    def frames_of(location_id):
        cached = frame_cache.get(location_id)
        if cached is not None:
            return cached
        if location_id not in locations:
            raise ValueError("sample refers to a missing location %d" % location_id)
        result = []
        for function_id, line in locations[location_id]:  # innermost first
            if function_id not in functions:
                raise ValueError("location refers to a missing function %d" % function_id)
            name, filename, first_line = functions[function_id]
            result.append(Frame(string(name), string(filename), first_line, line))
        frame_cache[location_id] = result
        return result

    profile = Profile()
    for location_ids, values, labels in raw_samples:
        leaf_first = []
        for location_id in location_ids:
            leaf_first.extend(frames_of(location_id))
        stack = tuple(reversed(leaf_first))
        thread_label = ""
        pid = 0
        for key, text, number in labels:
            if string(key) == "thread":
                thread_label = string(text)
            elif string(key) == "pid":
                pid = number
        key = (pid, _display_id(thread_label))
        count = values[count_index] if count_index < len(values) else 0
        weight = values[weight_index] if weight_index < len(values) else 0
        entry = profile.samples.setdefault((key, stack), [0, 0])
        entry[0] += count
        entry[1] += weight
    profile.start_ns = info["time"]
    profile.duration_ns = info["duration"]
    if info["period"] > 0:
        profile.rate = 1e9 / info["period"]
    texts = [string(c) for c in comments if 0 <= c < len(strings)]
    for text in texts:
        if text.startswith("python "):
            profile.python_version = text[len("python "):]
    if len(texts) > 1:
        profile.title = texts[1]
    return profile


def _display_id(label):
    """The thread id in a pprof `thread` label: `[Process PID ]Thread ID "NAME"`."""
    start = label.find("Thread ")
    if start < 0:
        return label
    rest = label[start + len("Thread "):]
    return rest.split(" ", 1)[0]


def read_recording(pprof_bytes, summary_text):
    """The profile and summary of one moment of a recording, merged: samples keyed by (pid,
    Python thread id) wherever the summary knows the thread."""
    profile = parse_pprof(pprof_bytes)
    summary = json.loads(summary_text) if summary_text else {}
    if not isinstance(summary, dict):
        raise ValueError("the summary is not a JSON object")
    by_display = {}
    for entry in summary.get("threads") or []:
        pid = int(entry.get("pid") or 0)
        thread_id = entry.get("thread_id")
        info = ThreadInfo(
            pid,
            thread_id=int(thread_id) if thread_id is not None else None,
            os_thread_id=entry.get("os_thread_id"),
            name=entry.get("name"),
            samples=int(entry.get("samples") or 0),
            cpu_ns=entry.get("cpu_nanoseconds"),
        )
        key = (pid, info.thread_id) if info.thread_id is not None else (pid, info.display_id)
        profile.threads[key] = info
        by_display[(pid, info.display_id)] = key
    samples = {}
    for (thread_key, stack), value in profile.samples.items():
        key = by_display.get(thread_key)
        if key is None:  # a thread the summary does not list (no summary): count it here
            key = thread_key
            if key not in profile.threads:
                profile.threads[key] = ThreadInfo(thread_key[0], os_thread_id=_int_or_none(thread_key[1]))
            profile.threads[key].samples += value[0]
        entry = samples.setdefault((key, stack), [0, 0])
        entry[0] += value[0]
        entry[1] += value[1]
    profile.samples = samples
    if summary.get("duration_nanoseconds"):
        profile.duration_ns = int(summary["duration_nanoseconds"])
    if summary.get("errors"):
        profile.errors = int(summary["errors"])
    if summary.get("rate"):
        profile.rate = float(summary["rate"])
    return profile


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
