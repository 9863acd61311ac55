# -*- coding: utf-8 -*-
"""Spyglass: a sampling profiler for CPython that reads the process from outside.

The wheel carries the ``spyglass`` executable (``spyglass record|top|dump``, py-spy's commands).
This package is a yappi-shaped API over it for profiling the running program itself::

    import spyglass

    spyglass.start(rate=200)            # any thread; the profiler is a child process
    ...
    stats = spyglass.get_func_stats()   # any thread, any time, while running or after stop
    stats.print_all()
    stats.save("profile.prof", type="pstat")   # or flamegraph, speedscope, chrometrace, raw, pprof, callgrind,
                                               # spyglass (the recording itself)
    for thread in spyglass.get_thread_stats():
        print(thread.name, thread.tid, thread.ttot)
    spyglass.stop()

    with spyglass.profile("block.svg"):         # or @spyglass.profile("function.svg")
        work()

Sampling runs in a ``spyglass record --pid <this process>`` child, which writes Spyglass's
lossless recording; files are rendered from it by the executable (``spyglass convert``), exactly
as ``spyglass record`` writes them. Nothing is added to this process but that child (no thread, no
signal handler, nothing at import). Its failures never reach the program: when it dies or its
output cannot be read, ``is_running()`` turns False and the next call raises ``spyglass.Error``
with its own sentence. At exit a running recording is
ended cleanly (``profile()`` files are written). Times are CPU seconds; the API needs Python 3.6+
(on 2.7 the package imports, and the ``spyglass`` command works).
"""

from __future__ import absolute_import, division, print_function

import functools
import os
import sys
import threading

from spyglass._recorder import Error, binary_path

try:
    from spyglass._version import __version__
except ImportError:  # a source checkout, not an installed wheel
    __version__ = "0+unknown"

__all__ = [
    "Error", "FuncStat", "FuncStats", "ThreadStat", "ThreadStats", "binary_path", "clear_stats",
    "get_func_stats", "get_thread_stats", "is_running", "profile", "start", "stop",
]

from spyglass._stats import FuncStat, FuncStats, ThreadStat, ThreadStats  # noqa: E402


def _require_api():
    if sys.version_info < (3, 6):
        raise Error("The spyglass Python API needs Python 3.6 or later (this is Python %d.%d); the spyglass "
                    "command works with this one too: spyglass record --pid PID, spyglass record -- python app.py."
                    % sys.version_info[:2])


class _State(object):
    def __init__(self):
        self.recorder = None  # the running Recorder
        self.options = None
        self.baseline = None  # what the recorder had when clear_stats was called
        self.kept = None  # stats of earlier recordings (and of this one up to a failure)
        self.pending = None  # the Error the next call raises
        self.at_exit = False
        self.profiles = set()  # profile() recordings running


_lock = threading.RLock()
_state = _State()


def _empty():
    from spyglass._profile import Profile

    return Profile()


def _register_at_exit():
    if not _state.at_exit:
        import atexit

        atexit.register(_at_exit)
        _state.at_exit = True


def _at_exit():
    with _lock:
        _check_alive()
        for recording in list(_state.profiles):
            try:
                recording._finish(None)
            except Exception:
                pass
        recorder = _state.recorder
        _state.recorder = None
        if recorder is not None:
            try:
                recorder.stop(timeout=10)
            except Exception:
                recorder.kill()
            recorder.remove_files()


def _raise_pending():
    error = _state.pending
    if error is not None:
        _state.pending = None
        raise error


def _fold(profile):
    """Adds what a recording had beyond its baseline to the kept stats."""
    if profile is not None:
        _state.kept = (_state.kept or _empty()).plus(profile.minus(_state.baseline))
    _state.baseline = None


def _fail(error):
    """The recorder failed: keep what it had written, drop it, and remember the error."""
    recorder = _state.recorder
    _state.recorder = None
    if recorder is not None:
        _fold(recorder.last)
        recorder.kill()
        recorder.remove_files()
    _state.pending = error if isinstance(error, Error) else Error(str(error))


def _check_alive():
    recorder = _state.recorder
    if recorder is None:
        return False
    if recorder.owner != os.getpid():  # a forked child: the recording is its parent's
        _state.recorder = None
        _state.baseline = None
        _state.profiles.clear()
        return False
    if not recorder.is_alive():
        _fail(recorder.failure())
    return _state.recorder is not None


def _current():
    """The stats so far: kept ones plus the running recording's (flushed now)."""
    recorder = _state.recorder
    if recorder is None:
        return _state.kept or _empty()
    try:
        live = recorder.flush()
    except Error as error:
        _fail(error)
        _raise_pending()
    return (_state.kept or _empty()).plus(live.minus(_state.baseline))


def start(rate=100, native=False, idle=False, gil=False, subprocesses=False, nonblocking=True, upload=None,
          upload_format=None, upload_interval=None, labels=None, service_name=None):
    """Starts sampling this process `rate` times a second (from any thread). `idle` keeps threads
    that sleep, `gil` only the thread holding the GIL, `subprocesses` adds child processes,
    `nonblocking` (the default) reads without pausing the threads. Does nothing when already
    running. Raises Error with the recorder's own sentence when it cannot attach.

    Continuous profiling: with `upload` (a URL, or a list of them) every `upload_interval` seconds
    (10) of samples are also sent to a Pyroscope server (`upload_format="pyroscope"`, the default)
    or an OpenTelemetry Collector (`"otlp"`), with `labels` ({key: value}) and `service_name` (by
    default this process's OTEL_SERVICE_NAME, PYROSCOPE_APPLICATION_NAME or script name); the
    stats stay available as without it."""
    _require_api()
    from spyglass._recorder import Recorder

    with _lock:
        _raise_pending()
        if _check_alive():
            return
        _raise_pending()
        options = dict(rate=rate, native=native, idle=idle, gil=gil, subprocesses=subprocesses,
                       nonblocking=nonblocking, upload=upload, upload_format=upload_format,
                       upload_interval=upload_interval, labels=labels, service_name=service_name)
        _state.recorder = Recorder(**options)
        _state.options = options
        _state.baseline = None
        _register_at_exit()


def stop():
    """Stops sampling (from any thread); the stats stay until clear_stats()."""
    _require_api()
    with _lock:
        _check_alive()
        _raise_pending()
        recorder = _state.recorder
        if recorder is None:
            return
        try:
            final = recorder.stop()
        except Error as error:
            _fail(error)
            _raise_pending()
        _state.recorder = None
        _fold(final)
        recorder.remove_files()


def is_running():
    """Whether a recording is running (False once it failed; the next call raises why)."""
    with _lock:
        return _check_alive()


def clear_stats():
    """Forgets the stats so far; a running recording goes on from now."""
    _require_api()
    with _lock:
        _check_alive()
        _raise_pending()
        _state.kept = None
        recorder = _state.recorder
        if recorder is not None:
            try:
                _state.baseline = recorder.flush()
            except Error as error:
                _fail(error)
                _state.kept = None
                _raise_pending()
        else:
            _state.baseline = None


def get_func_stats():
    """The functions sampled so far (a sequence of FuncStat, most CPU time first), from any thread,
    while running (without stopping) or after stop()."""
    _require_api()
    with _lock:
        _check_alive()
        _raise_pending()
        return FuncStats(_current(), version=__version__)


def get_thread_stats():
    """The threads sampled so far (a sequence of ThreadStat, most CPU time first)."""
    _require_api()
    with _lock:
        _check_alive()
        _raise_pending()
        return ThreadStats(_current())


class profile(object):
    """Records a block (``with spyglass.profile("out.svg"):``) or every call of a function
    (``@spyglass.profile("out.svg")``) into `path`, in `format` (flamegraph, speedscope,
    chrometrace, raw, pprof, pstat, callgrind, spyglass; default from the file name). The options
    are start()'s. Nested and concurrent uses of one profile object share one recording, written
    when the last one ends, by the executable (``spyglass convert`` of the recording: the file
    ``spyglass record -f FORMAT`` writes). Raises Error when the recording cannot start or be
    written."""

    def __init__(self, path, rate=100, format=None, native=False, idle=False, gil=False, subprocesses=False,
                 nonblocking=True):
        from spyglass import _formats

        self.path = path
        self.format = format or _formats.format_for_path(path)
        if self.format is None:
            raise ValueError("cannot tell the format of %r; pass format= one of %s" % (
                path, ", ".join(_formats.FORMATS)))
        self._binary_format = _formats.binary_format(self.format)
        self.options = dict(rate=rate, native=native, idle=idle, gil=gil, subprocesses=subprocesses,
                            nonblocking=nonblocking)
        self._lock = threading.Lock()
        self._depth = 0
        self._recorder = None
        self.stats = None  # FuncStats of the last recording

    def __enter__(self):
        _require_api()
        from spyglass._recorder import Recorder

        with self._lock:
            if self._depth == 0:
                # CPU time weights the statistics formats (as get_func_stats has them); the command
                # line's formats are weighted as `spyglass record` weights them by default.
                self._recorder = Recorder(weight_cpu=self._binary_format in ("pstats", "callgrind"), **self.options)
                with _lock:
                    _state.profiles.add(self)
                    _register_at_exit()
            self._depth += 1
        return self

    def __exit__(self, kind, value, traceback):
        with self._lock:
            self._depth -= 1
            if self._depth > 0:
                return False
        self._finish(kind)
        return False

    def _finish(self, exception_kind):
        from spyglass._recorder import convert_recording

        with _lock:
            _state.profiles.discard(self)
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        try:
            final = recorder.stop()
            self.stats = FuncStats(final, version=__version__)
            convert_recording(recorder.output, self._binary_format, self.path, recorder.binary)
        except Error:
            if exception_kind is None:  # never hide the block's own exception
                raise
        finally:
            recorder.remove_files()

    def __call__(self, function):
        @functools.wraps(function)
        def profiled(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        return profiled
