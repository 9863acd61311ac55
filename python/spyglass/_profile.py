# -*- coding: utf-8 -*-
"""A recording as Python data: Spyglass's own lossless format, read and written.

The ``spyglass record`` child this package starts writes its recording with ``--format spyglass``
(docs/recording-format.md in the repository): gzipped JSON holding the recording's facts, the
options that shaped its frames, its threads, frames and stacks, and every sample in time order
(thread, stack, nanoseconds since the start, weight in nanoseconds). ``Profile`` is that file in
memory. Profiles can be added (a later recording) and subtracted (an earlier look at the same
recording: ``clear_stats`` keeps the recording going and subtracts what it had so far), and are
written back in the same format for ``spyglass convert`` to render.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import gzip
import io
import json

__all__ = ["FORMAT", "VERSION", "Frame", "Profile", "ThreadInfo", "read_recording"]

#: The ``format`` field of every recording, and the newest version this package reads.
FORMAT = "spyglass-recording"
VERSION = 1


class Frame(tuple):
    """One frame: (name, filename, short_filename, line, first_line, pseudo, library). A
    pseudo-frame (``thread …``, ``process …``) has an empty filename; a native frame has its
    library's path in ``library`` (None for Python frames)."""

    __slots__ = ()

    def __new__(cls, name, filename, short_filename, line, first_line, pseudo=False, library=None):
        return tuple.__new__(cls, (name, filename, short_filename, line, first_line, bool(pseudo), library))

    name = property(lambda self: self[0])
    filename = property(lambda self: self[1])
    short_filename = property(lambda self: self[2])
    line = property(lambda self: self[3])
    first_line = property(lambda self: self[4])
    is_pseudo = property(lambda self: self[5])
    library = property(lambda self: self[6])

    @property
    def function(self):
        """The function this frame is in: (name, filename, first_line)."""
        return (self[0], self[1], self[4])


class ThreadInfo(object):
    """A sampled thread: its process, Python thread id (``threading.get_ident()``), OS thread id,
    name and the CPU time it used while recorded (None when unmeasured)."""

    __slots__ = ("pid", "thread_id", "os_thread_id", "name", "cpu_ns")

    def __init__(self, pid, thread_id, os_thread_id=None, name=None, cpu_ns=None):
        self.pid = pid
        self.thread_id = thread_id
        self.os_thread_id = os_thread_id
        self.name = name
        self.cpu_ns = cpu_ns

    @property
    def key(self):
        return (self.pid, self.thread_id)

    def copy(self):
        return ThreadInfo(self.pid, self.thread_id, self.os_thread_id, self.name, self.cpu_ns)


class Profile(object):
    """A recording: ``threads``, ``frames`` and ``stacks`` (tuples of frame indices, root first) in
    the file's order, and the samples as four parallel lists (``sample_threads``, ``sample_stacks``,
    ``sample_times`` in nanoseconds since the start, ``sample_weights`` in nanoseconds)."""

    def __init__(self):
        self.title = ""
        self.rate = 100.0
        self.python_version = ""
        self.duration = 0.0  # seconds
        self.start_ns = 0
        self.errors = 0
        self.weighting = "samples"
        self.frame_options = {"line_mode": "current", "full_filenames": False, "thread_frames": False,
                              "process_frames": False}
        self.threads = []
        self.frames = []
        self.stacks = []
        self.sample_threads = []
        self.sample_stacks = []
        self.sample_times = []
        self.sample_weights = []

    # MARK: Reading what the samples hold

    @property
    def total_samples(self):
        return len(self.sample_stacks)

    @property
    def duration_ns(self):
        return int(round(self.duration * 1e9))

    def totals(self):
        """{(thread index, stack index): [samples, weight in nanoseconds]}."""
        result = {}
        for key in zip(self.sample_threads, self.sample_stacks, self.sample_weights):
            entry = result.get(key[:2])
            if entry is None:
                result[key[:2]] = [1, key[2]]
            else:
                entry[0] += 1
                entry[1] += key[2]
        return result

    def _sample(self, index):
        """Sample `index` by value: (thread key, frames, time, weight)."""
        stack = tuple(self.frames[frame] for frame in self.stacks[self.sample_stacks[index]])
        return (self.threads[self.sample_threads[index]].key, stack, self.sample_times[index],
                self.sample_weights[index])

    def samples_per_thread(self):
        """{thread index: samples}."""
        counts = {}
        for thread in self.sample_threads:
            counts[thread] = counts.get(thread, 0) + 1
        return counts

    # MARK: Combining recordings

    def copy(self):
        other = Profile()
        other._copy_info(self)
        other.threads = [info.copy() for info in self.threads]
        other.frames = list(self.frames)
        other.stacks = list(self.stacks)
        other.sample_threads = list(self.sample_threads)
        other.sample_stacks = list(self.sample_stacks)
        other.sample_times = list(self.sample_times)
        other.sample_weights = list(self.sample_weights)
        return other

    def _copy_info(self, source):
        self.title = source.title
        self.rate = source.rate
        self.python_version = source.python_version
        self.duration = source.duration
        self.start_ns = source.start_ns
        self.errors = source.errors
        self.weighting = source.weighting
        self.frame_options = dict(source.frame_options)

    def _is_empty(self):
        return not self.sample_stacks and not self.threads

    def plus(self, other):
        """This profile followed by `other` (a later recording): its samples come after this one's
        end, its threads, frames and stacks are merged into this one's tables."""
        if self._is_empty():
            return other.copy()
        result = self.copy()
        thread_index = dict((info.key, i) for i, info in enumerate(result.threads))
        frame_index = dict((frame, i) for i, frame in enumerate(result.frames))
        stack_index = dict((stack, i) for i, stack in enumerate(result.stacks))
        thread_map = []
        for info in other.threads:
            index = thread_index.get(info.key)
            if index is None:
                index = thread_index[info.key] = len(result.threads)
                result.threads.append(info.copy())
            else:
                mine = result.threads[index]
                if info.cpu_ns is not None:
                    mine.cpu_ns = (mine.cpu_ns or 0) + info.cpu_ns
                mine.name = info.name or mine.name
                if info.os_thread_id is not None:
                    mine.os_thread_id = info.os_thread_id
            thread_map.append(index)
        frame_map = []
        for frame in other.frames:
            index = frame_index.get(frame)
            if index is None:
                index = frame_index[frame] = len(result.frames)
                result.frames.append(frame)
            frame_map.append(index)
        stack_map = []
        for stack in other.stacks:
            mapped = tuple(frame_map[frame] for frame in stack)
            index = stack_index.get(mapped)
            if index is None:
                index = stack_index[mapped] = len(result.stacks)
                result.stacks.append(mapped)
            stack_map.append(index)
        offset = self.duration_ns
        result.sample_threads.extend(thread_map[thread] for thread in other.sample_threads)
        result.sample_stacks.extend(stack_map[stack] for stack in other.sample_stacks)
        result.sample_times.extend(time + offset for time in other.sample_times)
        result.sample_weights.extend(other.sample_weights)
        result.duration = self.duration + other.duration
        result.errors = self.errors + other.errors
        result.rate = other.rate
        result.python_version = other.python_version or self.python_version
        result.weighting = other.weighting
        return result

    def minus(self, base):
        """What this profile holds beyond `base`, an earlier look at the same recording (whose
        samples are the first ones of this one's): the later samples, times counted from the
        earlier look's end, and each thread's CPU time since then."""
        if base is None:
            return self.copy()
        count = len(base.sample_stacks)
        if count > len(self.sample_stacks) or (count and base._sample(count - 1) != self._sample(count - 1)):
            raise ValueError("the earlier look is not part of this recording")
        result = Profile()
        result._copy_info(self)
        shift = base.duration_ns
        result.duration = max(0.0, self.duration - base.duration)
        result.errors = max(0, self.errors - base.errors)
        result.start_ns = self.start_ns + shift
        old_threads = dict((info.key, info) for info in base.threads)
        threads = []
        for info in self.threads:
            new = info.copy()
            old = old_threads.get(info.key)
            if old is not None and info.cpu_ns is not None and old.cpu_ns is not None:
                new.cpu_ns = max(0, info.cpu_ns - old.cpu_ns)
            threads.append(new)
        result.threads = threads
        result.frames = list(self.frames)
        result.stacks = list(self.stacks)
        result.sample_threads = self.sample_threads[count:]
        result.sample_stacks = self.sample_stacks[count:]
        result.sample_times = [max(0, time - shift) for time in self.sample_times[count:]]
        result.sample_weights = self.sample_weights[count:]
        # Threads the earlier look knew that have no sample since are left out.
        sampled = set(result.sample_threads)
        return result.compacted(keep_threads=set(
            i for i, info in enumerate(threads) if i in sampled or info.key not in old_threads))

    def compacted(self, keep_threads=()):
        """The same profile with only the threads, frames and stacks its samples use (and the
        threads in `keep_threads`), in their order."""
        used_threads = sorted(set(self.sample_threads) | set(keep_threads))
        used_stacks = sorted(set(self.sample_stacks))
        used_frames = sorted(set(frame for stack in used_stacks for frame in self.stacks[stack]))
        thread_map = dict((old, new) for new, old in enumerate(used_threads))
        stack_map = dict((old, new) for new, old in enumerate(used_stacks))
        frame_map = dict((old, new) for new, old in enumerate(used_frames))
        result = Profile()
        result._copy_info(self)
        result.threads = [self.threads[i].copy() for i in used_threads]
        result.frames = [self.frames[i] for i in used_frames]
        result.stacks = [tuple(frame_map[f] for f in self.stacks[i]) for i in used_stacks]
        result.sample_threads = [thread_map[t] for t in self.sample_threads]
        result.sample_stacks = [stack_map[s] for s in self.sample_stacks]
        result.sample_times = list(self.sample_times)
        result.sample_weights = list(self.sample_weights)
        return result

    # MARK: The file

    def to_json(self, version=""):
        """The recording as the JSON document the executable reads."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "spyglass": version,
            "info": {
                "title": self.title, "rate": float(self.rate), "python_version": self.python_version,
                "duration_seconds": float(self.duration), "start_unix_nanoseconds": int(self.start_ns),
                "sample_count": self.total_samples, "error_count": int(self.errors), "weighting": self.weighting,
            },
            "frame_options": dict(self.frame_options),
            "threads": [
                {"pid": info.pid, "thread_id": info.thread_id, "os_thread_id": info.os_thread_id, "name": info.name,
                 "cpu_nanoseconds": info.cpu_ns} for info in self.threads],
            "frames": [
                {"name": frame.name, "filename": frame.filename, "short_filename": frame.short_filename,
                 "line": frame.line, "first_line": frame.first_line, "pseudo": frame.is_pseudo,
                 "library": frame.library} for frame in self.frames],
            "stacks": [list(stack) for stack in self.stacks],
            "samples": {"thread": self.sample_threads, "stack": self.sample_stacks, "time": self.sample_times,
                        "weight": self.sample_weights},
        }

    def write(self, path, version=""):
        """Writes the recording (gzipped JSON) to `path`."""
        text = json.dumps(self.to_json(version), separators=(",", ":"))
        with gzip.open(path, "wb") as handle:
            handle.write(text.encode("utf-8"))


def _field(mapping, key, kinds, default=None, required=False):
    value = mapping.get(key, default) if isinstance(mapping, dict) else default
    if value is None and not required:
        return default
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError("%s is not %s" % (key, kinds[0].__name__))
    if not isinstance(value, kinds):
        raise ValueError("%s is missing or not %s" % (key, kinds[0].__name__))
    return value


def _text_types():
    try:
        return (str, unicode)  # noqa: F821 (2.7)
    except NameError:
        return (str,)


def from_json(document):
    """The Profile a recording's JSON document holds (ValueError when it is not one)."""
    text = _text_types()
    number = (int, float)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a Spyglass recording")
    version = _field(document, "version", (int,), required=True)
    if version > VERSION:
        raise ValueError("a recording of format version %d, newer than this package reads (%d)" % (version, VERSION))
    profile = Profile()
    info = document.get("info") or {}
    profile.title = _field(info, "title", text, "")
    profile.rate = float(_field(info, "rate", number, 100.0))
    profile.python_version = _field(info, "python_version", text, "")
    profile.duration = float(_field(info, "duration_seconds", number, 0.0))
    profile.start_ns = _field(info, "start_unix_nanoseconds", (int,), 0)
    profile.errors = _field(info, "error_count", (int,), 0)
    profile.weighting = _field(info, "weighting", text, "samples")
    options = document.get("frame_options") or {}
    for key in ("full_filenames", "thread_frames", "process_frames"):
        profile.frame_options[key] = _field(options, key, (bool,), False)
    profile.frame_options["line_mode"] = _field(options, "line_mode", text, "current")
    for entry in _field(document, "threads", (list,), required=True):
        profile.threads.append(ThreadInfo(
            _field(entry, "pid", (int,), required=True), _field(entry, "thread_id", (int,), required=True),
            _field(entry, "os_thread_id", (int,)), _field(entry, "name", text), _field(entry, "cpu_nanoseconds", (int,))))
    for entry in _field(document, "frames", (list,), required=True):
        filename = _field(entry, "filename", text, required=True)
        profile.frames.append(Frame(
            _field(entry, "name", text, required=True), filename, _field(entry, "short_filename", text, filename),
            _field(entry, "line", (int,), 0), _field(entry, "first_line", (int,), 0),
            _field(entry, "pseudo", (bool,), False), _field(entry, "library", text)))
    frame_count = len(profile.frames)
    for stack in _field(document, "stacks", (list,), required=True):
        if not isinstance(stack, list) or not all(isinstance(f, int) and 0 <= f < frame_count for f in stack):
            raise ValueError("a stack names a frame that does not exist")
        profile.stacks.append(tuple(stack))
    samples = _field(document, "samples", (dict,), required=True)
    columns = [_field(samples, key, (list,), required=True) for key in ("thread", "stack", "time", "weight")]
    if len(set(len(column) for column in columns)) != 1:
        raise ValueError("the sample columns differ in length")
    for column, bound in zip(columns, (len(profile.threads), len(profile.stacks), None, None)):
        for value in column:
            if not isinstance(value, int) or value < 0 or (bound is not None and value >= bound):
                raise ValueError("a sample names a thread or stack that does not exist")
    profile.sample_threads, profile.sample_stacks, profile.sample_times, profile.sample_weights = columns
    return profile


def read_recording(path):
    """The Profile of a recording file (gzipped or plain JSON)."""
    with io.open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
    return from_json(json.loads(data.decode("utf-8")))
