# -*- coding: utf-8 -*-
"""Running the bundled ``spyglass`` executable against this very process.

A recording is one ``spyglass record --pid <this process>`` child: it reads this process's memory
from outside, as it reads any other. Nothing runs inside this process: no thread, no signal
handler. The child is started in a session of its own (a Ctrl-C at the terminal does not reach
it) through ``/bin/sh``, which waits for one line on its standard input before it execs the
executable: in between, this process names the child as its tracer with
``prctl(PR_SET_PTRACER, child)``, which ``kernel.yama.ptrace_scope = 1`` requires before a child
may read its parent (the pid stays the same across the exec). The child writes Spyglass's lossless
recording (``--format spyglass``) and a summary (``--summary-json``, written after it); statistics
while recording: SIGUSR1 makes it write both so far, read once the summary file is replaced. When a
spyglass command fails it writes a JSON report to the file ``SPYGLASS_ERROR_FILE`` names (its error
kind, its sentence, its exit status), which is the Error raised here; the "permission denied" kind
gets advice on what to do. Files are rendered by the executable too: ``convert_profile`` writes a
recording and runs ``spyglass convert`` on it.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

__all__ = ["Error", "Recorder", "binary_path", "convert_profile", "convert_recording", "permission_advice",
           "read_error_report"]


class Error(Exception):
    """A profiler failure: the sentence says what happened and what to do. `kind` is the
    executable's stable name for it (``permission_denied``, ``no_such_process``, …) when it came
    from the executable, else None."""

    def __init__(self, message, kind=None):
        Exception.__init__(self, message)
        self.kind = kind


#: The environment variable a spyglass command writes its failure report to.
ERROR_FILE_VARIABLE = "SPYGLASS_ERROR_FILE"


def read_error_report(path):
    """The report a failed spyglass command wrote: (kind, message, exit code), or None when there
    is none (the command did not fail, or died before it could write one)."""
    try:
        with io.open(path, "rb") as handle:
            report = json.loads(handle.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("message"), str):
        return None
    kind = report.get("kind") if isinstance(report.get("kind"), str) else "failure"
    code = report.get("exit_code") if isinstance(report.get("exit_code"), int) else 1
    return kind, report["message"], code


def error_from_report(report):
    """The Error of a failure report, with advice where the kernel refused access."""
    kind, message, _ = report
    if kind == "permission_denied":
        message += " " + permission_advice()
    return Error(message, kind)


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


def upload_options(upload, upload_format=None, upload_interval=None, labels=None, service_name=None):
    """The `record` options of continuous profiling: `upload` is a backend's URL or a list of them
    (each interval's profile is sent there while recording), `upload_format` "pyroscope" (the
    default) or "otlp", `upload_interval` seconds, `labels` a {key: value} dict every uploaded profile
    carries, `service_name` the profiles' service name. Raises ValueError on a wrong value."""
    if upload is None:
        if labels or upload_format or upload_interval is not None or service_name:
            raise ValueError("upload_format, upload_interval, labels and service_name need upload=URL")
        return []
    urls = [upload] if isinstance(upload, (type(u""), str)) else list(upload)
    if not urls or not all(isinstance(url, (type(u""), str)) and url for url in urls):
        raise ValueError("upload must be a URL or a list of URLs, not %r" % (upload,))
    arguments = []
    for url in urls:
        arguments += ["--upload", url]
    if upload_format is not None:
        if upload_format not in ("pyroscope", "otlp"):
            raise ValueError("upload_format must be 'pyroscope' or 'otlp', not %r" % (upload_format,))
        arguments += ["--upload-format", upload_format]
    if upload_interval is not None:
        arguments += ["--upload-interval", _number(upload_interval)]
    for key, value in sorted((labels or {}).items()):
        if not isinstance(key, (type(u""), str)) or not key or "=" in key:
            raise ValueError("a label's key must be a non-empty string without '=', not %r" % (key,))
        arguments += ["--label", "%s=%s" % (key, value)]
    if service_name is not None:
        if not service_name:
            raise ValueError("service_name must not be empty")
        arguments += ["--service-name", service_name]
    return arguments


class Recorder(object):
    """One ``spyglass record --pid <this process>`` child and its files."""

    def __init__(self, rate=100, native=False, idle=False, gil=False, subprocesses=False, nonblocking=True,
                 weight_cpu=True, start_timeout=30.0, upload=None, upload_format=None, upload_interval=None,
                 labels=None, service_name=None):
        rate_text = _number(rate)
        upload_arguments = upload_options(upload, upload_format, upload_interval, labels, service_name)
        self.owner = os.getpid()
        self.binary = binary_path()
        self.directory = tempfile.mkdtemp(prefix="spyglass-")
        self.output = os.path.join(self.directory, "recording.spyglass")
        self.summary_path = os.path.join(self.directory, "summary.json")
        self.stderr_path = os.path.join(self.directory, "stderr.txt")
        self.error_path = os.path.join(self.directory, "error.json")
        self.process = None
        self.last = None
        arguments = [self.binary, "record", "--pid", str(self.owner), "--rate", rate_text,
                     "--format", "spyglass", "--output", self.output, "--summary-json", self.summary_path]
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
        arguments += upload_arguments
        self.arguments = arguments
        self.rate = float(rate_text)
        environment = dict(os.environ)
        environment["NO_COLOR"] = "1"
        environment[ERROR_FILE_VARIABLE] = self.error_path
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
                raise self.failure()
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
        """Why the child ended (or failed): the Error of its report, or how it ended."""
        report = read_error_report(self.error_path)
        if report is not None:
            return error_from_report(report)
        code = self.process.returncode if self.process is not None else None
        if code is None:
            how = "is not responding"
        elif code < 0:
            how = "was killed by signal %d" % -code
        else:
            how = "exited with status %d without saying why" % code
        return Error("The spyglass recorder (pid %s) %s." % (self.pid, how))

    def _summary_stamp(self):
        try:
            info = os.stat(self.summary_path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def read(self):
        """The recording as last written (ValueError/IOError when unreadable)."""
        from spyglass._profile import read_recording

        profile = read_recording(self.output)
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
                raise self.failure()
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
        final profile."""
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
            raise self.failure()
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


def convert_recording(recording, kind, path, binary=None):
    """Runs ``spyglass convert RECORDING -f KIND -o PATH`` (`kind` the executable's format name);
    raises Error with the executable's own sentence when it fails."""
    binary = binary or binary_path()
    directory = tempfile.mkdtemp(prefix="spyglass-convert-")
    error_path = os.path.join(directory, "error.json")
    environment = dict(os.environ)
    environment["NO_COLOR"] = "1"
    environment[ERROR_FILE_VARIABLE] = error_path
    try:
        with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
            try:
                process = subprocess.Popen([binary, "convert", recording, "--format", kind, "--output", path],
                                           stdin=null_in, stdout=null_out, stderr=null_out, close_fds=True,
                                           env=environment)
            except OSError as error:
                raise Error("Could not start %s: %s." % (binary, os.strerror(error.errno or 0)))
            process.wait()
        if process.returncode != 0:
            report = read_error_report(error_path)
            if report is not None:
                raise error_from_report(report)
            how = ("was killed by signal %d" % -process.returncode if process.returncode < 0
                   else "exited with status %d" % process.returncode)
            raise Error("spyglass convert %s without saying why." % how)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return path


def convert_profile(profile, kind, path, version=""):
    """Writes `profile` as a recording to a temporary file and renders it to `path` as `kind` (the
    executable's format name) with ``spyglass convert``."""
    binary = binary_path()
    directory = tempfile.mkdtemp(prefix="spyglass-save-")
    try:
        recording = os.path.join(directory, "profile.spyglass")
        try:
            profile.write(recording, version)
        except (IOError, OSError) as error:
            raise Error("Could not write the recording to convert (%s): %s." % (recording, error))
        return convert_recording(recording, kind, path, binary)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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
