# -*- coding: utf-8 -*-
"""Running the bundled ``spyglass`` executable against this very process.

A recording is one ``spyglass record --pid <this process>`` child: it reads this process's memory
from outside, as it reads any other. Nothing runs inside this process: no thread, no signal
handler. The child is started in a session of its own (a Ctrl-C at the terminal does not reach
it) through ``/bin/sh``, which waits for one line on its standard input before it execs the
executable: in between, this process names the child as its tracer with
``prctl(PR_SET_PTRACER, child)``, which ``kernel.yama.ptrace_scope = 1`` requires before a child
may read its parent (the pid stays the same across the exec). Statistics while recording: SIGUSR1
makes the child write its profile and summary so far; they are read once the summary file is
replaced. Its stderr goes to a file in the recording's temporary folder; when the child fails,
its own sentence (the line starting ``spyglass: ``) is the error.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

__all__ = ["Error", "Recorder", "binary_path", "permission_advice"]


class Error(Exception):
    """A profiler failure: the sentence says what happened and what to do."""


_PR_SET_PTRACER = 0x59616D61
_prctl = []


def _allow_tracer(pid):
    """prctl(PR_SET_PTRACER, pid): lets `pid` read this process under Yama's ptrace_scope 1. False
    where it cannot be done (no Yama: EINVAL, and then nothing needs it; no ctypes)."""
    if not _prctl:
        function = None
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            function = libc.prctl
            function.restype = ctypes.c_int
            function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        except (ImportError, OSError, AttributeError):
            function = None
        _prctl.append(function)
    function = _prctl[0]
    if function is None:
        return False
    return function(_PR_SET_PTRACER, pid, 0, 0, 0) == 0


def ptrace_scope():
    """kernel.yama.ptrace_scope, or None without Yama."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as handle:
            return int(handle.read().strip())
    except (IOError, OSError, ValueError):
        return None


def permission_advice():
    """What to do when the kernel refuses to let the recorder read this process."""
    scope = ptrace_scope()
    if scope == 2:
        why = ("kernel.yama.ptrace_scope is 2 (only a process with CAP_SYS_PTRACE may read another): "
               "run the program as root or give the spyglass executable CAP_SYS_PTRACE "
               "(setcap cap_sys_ptrace+ep $(which spyglass)), or set kernel.yama.ptrace_scope to 1")
    elif scope == 3:
        why = ("kernel.yama.ptrace_scope is 3 (no process may read another until the next reboot): "
               "profiling from outside is impossible on this machine until it is rebooted with a lower ptrace_scope")
    else:
        why = ("in a container, start it with --cap-add SYS_PTRACE (Docker) or the CAP_SYS_PTRACE capability; "
               "a process that made itself non-dumpable (prctl(PR_SET_DUMPABLE, 0), or after changing its user) "
               "can only be read by root")
    return ("spyglass.start() lets its recorder read this process (prctl(PR_SET_PTRACER)), and the kernel "
            "still refused: " + why + ".")


def _now():
    return time.monotonic() if hasattr(time, "monotonic") else time.time()


def binary_path():
    """The spyglass executable that came with this package (``$SPYGLASS_BINARY`` overrides)."""
    override = os.environ.get("SPYGLASS_BINARY")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise Error("SPYGLASS_BINARY=%s is not an executable file." % override)
    candidates = []
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = package_parent.split(os.sep)
    if len(parts) > 3 and parts[-1] in ("site-packages", "dist-packages"):
        # <prefix>/lib/pythonX.Y/site-packages: the scripts are in <prefix>/bin (a venv, a --user
        # install in ~/.local, /usr/local).
        candidates.append(os.path.join(os.sep.join(parts[:-3]) or os.sep, "bin", "spyglass"))
    try:
        import sysconfig

        candidates.append(os.path.join(sysconfig.get_path("scripts"), "spyglass"))
        user_scheme = "posix_user" if os.name == "posix" else None
        if user_scheme in sysconfig.get_scheme_names():
            candidates.append(os.path.join(sysconfig.get_path("scripts", user_scheme), "spyglass"))
    except (ImportError, KeyError, AttributeError, TypeError):
        pass
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "spyglass"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(os.path.join(directory, "spyglass"))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise Error("Cannot find the spyglass executable (it is installed with the spyglass wheel, pip install spyglass, "
                "beside the environment's python); looked at: " + ", ".join(candidates[:6]) + ".")


_SHIM = 'read _ || exit 97; exec "$@" </dev/null'


class Recorder(object):
    """One ``spyglass record --pid <this process>`` child and its files."""

    def __init__(self, rate=100, native=False, idle=False, gil=False, subprocesses=False, nonblocking=True,
                 output=None, format=None, weight_cpu=True, start_timeout=30.0):
        rate_text = _number(rate)
        self.owner = os.getpid()
        self.binary = binary_path()
        self.directory = tempfile.mkdtemp(prefix="spyglass-")
        self.output = output or os.path.join(self.directory, "profile.pb.gz")
        self.format = format or "pprof"
        self.summary_path = os.path.join(self.directory, "summary.json")
        self.stderr_path = os.path.join(self.directory, "stderr.txt")
        self.process = None
        self.last = None
        arguments = [self.binary, "record", "--pid", str(self.owner), "--rate", rate_text,
                     "--format", self.format, "--output", self.output, "--summary-json", self.summary_path]
        if weight_cpu:
            arguments += ["--weight", "cpu"]
        if native:
            arguments.append("--native")
        if idle:
            arguments.append("--idle")
        if gil:
            arguments.append("--gil")
        if subprocesses:
            arguments.append("--subprocesses")
        if nonblocking:
            arguments.append("--nonblocking")
        self.arguments = arguments
        self.rate = float(rate_text)
        environment = dict(os.environ)
        environment["NO_COLOR"] = "1"
        try:
            self._start(environment, start_timeout)
        except BaseException:
            self.kill()
            self.remove_files()
            raise

    def _start(self, environment, timeout):
        # O_APPEND: the file can be cut back (ftruncate) while the child keeps writing to it.
        self.stderr_file = io.open(self.stderr_path, "ab")
        shell = "/bin/sh" if os.access("/bin/sh", os.X_OK) else None
        command = ([shell, "-c", _SHIM, "spyglass"] if shell else []) + self.arguments
        with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
            try:
                self.process = subprocess.Popen(
                    command, stdin=subprocess.PIPE if shell else null_in, stdout=null_out, stderr=self.stderr_file,
                    close_fds=True, start_new_session=True, env=environment)
            except OSError as error:
                raise Error("Could not start %s: %s." % (self.binary, os.strerror(error.errno or 0)))
        _allow_tracer(self.process.pid)
        if shell:
            try:
                self.process.stdin.write(b"\n")
                self.process.stdin.close()
            except (IOError, OSError):
                pass
        deadline = _now() + timeout
        delay = 0.002
        while True:
            text = self.stderr_text()
            if "spyglass> Sampling process" in text:
                # The first sample comes within one interval; the caller stays blocked here (and
                # its thread alive) until it has been taken. Before 3.11 the recorder learns the
                # threads' OS ids from that sample, matching each thread against the task list, and
                # a thread exiting meanwhile (the caller returning from start()) would spoil it.
                time.sleep(min(1.0 / self.rate + 0.01, 0.5))
                return
            if not self._running():
                raise Error(self.failure())
            if _now() > deadline:
                raise Error("The spyglass recorder did not start sampling within %d seconds%s" % (
                    timeout, self._last_words(": ")))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def is_alive(self):
        if self.process is None or os.getpid() != self.owner:
            return False
        return self._running()

    def _running(self):
        if self.process.poll() is None:
            return True
        # With SIGCHLD ignored the kernel reaps children itself: waitpid fails with ECHILD and
        # Popen reports 0 at once, so ask /proc whether our child is still there.
        return self.process.returncode == 0 and _is_running_child(self.process.pid)

    def stderr_text(self):
        try:
            with io.open(self.stderr_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except (IOError, OSError):
            return ""

    def _last_words(self, prefix):
        """The child's last line of its own (not a progress line), after `prefix`."""
        lines = [line.strip() for line in self.stderr_text().splitlines()
                 if line.strip() and not line.startswith("spyglass> ")]
        return prefix + lines[-1].rstrip(".") if lines else ""

    def failure(self):
        """Why the child ended (or failed): its own sentence where it said one."""
        lines = self.stderr_text().splitlines()
        sentence = None
        for line in reversed(lines):
            if line.startswith("spyglass: "):
                sentence = line[len("spyglass: "):].strip()
                break
        if sentence is None:
            for line in reversed(lines):
                if line.startswith("Error: "):
                    sentence = line[len("Error: "):].strip()
                    break
        if sentence is None:
            code = self.process.returncode if self.process is not None else None
            if code is None:
                how = "is not responding"
            elif code < 0:
                how = "was killed by signal %d" % -code
            else:
                how = "exited with status %d" % code
            sentence = "The spyglass recorder (pid %s) %s%s." % (self.pid, how, self._last_words(": "))
        if "Permission denied reading process" in sentence:
            sentence += " " + permission_advice()
        return sentence

    def _summary_stamp(self):
        try:
            info = os.stat(self.summary_path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def read(self):
        """The profile and summary as last written (ValueError/IOError when unreadable)."""
        from spyglass._profile import read_recording

        with io.open(self.output, "rb") as handle:
            blob = handle.read()
        with io.open(self.summary_path, "rb") as handle:
            summary = handle.read().decode("utf-8")
        profile = read_recording(blob, summary)
        profile.title = _command_line(self.owner)
        return profile

    def flush(self, timeout=60.0):
        """Asks the child for its profile so far and returns it."""
        before = self._summary_stamp()
        try:
            os.kill(self.process.pid, signal.SIGUSR1)
        except OSError:
            pass
        deadline = _now() + timeout
        delay = 0.001
        while True:
            stamp = self._summary_stamp()
            if stamp is not None and stamp != before:
                break
            if not self._running():
                raise Error(self.failure())
            if _now() > deadline:
                raise Error("The spyglass recorder (pid %d) did not write its statistics within %d seconds%s" % (
                    self.process.pid, timeout, self._last_words(": ")))
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        # The line that says so follows the files; keep the file small in a long recording.
        try:
            if os.path.getsize(self.stderr_path) > 256 * 1024:
                os.ftruncate(self.stderr_file.fileno(), 0)
        except (OSError, ValueError):
            pass
        self.last = self._read_or_fail()
        return self.last

    def _read_or_fail(self):
        try:
            return self.read()
        except (IOError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise Error("Could not read the spyglass recorder's output (%s): %s." % (self.output, error))

    def stop(self, timeout=60.0):
        """Ends the recording (SIGTERM: the child writes everything and exits) and returns the
        final profile, or None when it was not asked to write one that can be read back."""
        if self.process is None or os.getpid() != self.owner:
            return None
        if self._running():
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except OSError:
                pass
            deadline = _now() + timeout
            delay = 0.001
            while self._running():
                if _now() > deadline:
                    self.kill()
                    raise Error("The spyglass recorder (pid %d) did not stop within %d seconds%s" % (
                        self.process.pid, timeout, self._last_words(": ")))
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        if self.process.returncode != 0:
            raise Error(self.failure())
        if self.format != "pprof":
            return None
        self.last = self._read_or_fail()
        return self.last

    def kill(self):
        if self.process is not None and self.process.poll() is None and os.getpid() == self.owner:
            try:
                self.process.kill()
                self.process.wait()
            except OSError as error:
                if error.errno != errno.ESRCH:
                    raise

    def remove_files(self):
        try:
            self.stderr_file.close()
        except (AttributeError, IOError, OSError):
            pass
        if os.getpid() == self.owner:
            shutil.rmtree(self.directory, ignore_errors=True)


def _command_line(pid):
    """This process's command line, for titles: `python app.py args (pid N)`."""
    try:
        with io.open("/proc/%d/cmdline" % pid, "rb") as handle:
            words = handle.read().decode("utf-8", "replace").rstrip("\0").split("\0")
    except (IOError, OSError):
        words = [sys.executable] + sys.argv
    return "%s (pid %d)" % (" ".join(os.path.basename(w) if i == 0 else w for i, w in enumerate(words)), pid)


def _is_running_child(pid):
    """Whether `pid` is a live (not zombie) child of this process, from /proc."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (IOError, OSError, IndexError):
        return False
    return fields[0] not in (b"Z", b"X") and int(fields[1]) == os.getpid()


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("rate must be a number of samples per second, not %r" % (value,))
    if not (0 < value <= 1000000):
        raise ValueError("rate must be between 0 and 1000000 samples per second, not %r" % (value,))
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
