"""What the package's unit tests share: a small recording built in memory."""

from __future__ import absolute_import, division, print_function

import os
import shutil
import subprocess
import tempfile
import unittest

from spyglass._profile import Frame, Profile, ThreadInfo

MS = 1000000


def sample_profile():
    """Two threads of process 42: main runs <module> > work (> loop), a worker sleeps in run >
    sleep; a pseudo-frame roots the worker's stacks. Ten samples of 10 ms, 100 Hz."""
    profile = Profile()
    profile.title = "python app.py (pid 42)"
    profile.rate = 100.0
    profile.python_version = "3.12.1"
    profile.duration = 0.1
    profile.start_ns = 1700000000 * 10 ** 9
    profile.weighting = "cpu"
    profile.threads = [ThreadInfo(42, 1000, 42, "MainThread", 70 * MS), ThreadInfo(42, 2000, 43, "worker", None)]
    profile.frames = [
        Frame("<module>", "/srv/app/app.py", "app.py", 7, 1),
        Frame("work", "/srv/app/app.py", "app.py", 3, 2),
        Frame("loop", "/srv/app/app.py", "app.py", 12, 10),
        Frame("thread (43): worker", "", "", 0, 0, pseudo=True),
        Frame("run", "/usr/lib/python3.12/threading.py", "threading.py", 990, 980),
        Frame("sleep", "/srv/app/util.py", "util.py", 5, 4),
    ]
    profile.stacks = [(0, 1), (0, 1, 2), (0,), (3, 4, 5)]
    schedule = [(0, 0), (1, 3), (0, 0), (0, 1), (1, 3), (0, 1), (0, 1), (1, 3), (0, 2), (0, 0)]
    for i, (thread, stack) in enumerate(schedule):
        profile.sample_threads.append(thread)
        profile.sample_stacks.append(stack)
        profile.sample_times.append(i * 10 * MS)
        profile.sample_weights.append(10 * MS)
    return profile


def binary():
    """The spyglass executable the integration tests run (SPYGLASS_BINARY), or None."""
    path = os.environ.get("SPYGLASS_BINARY")
    return path if path and os.access(path, os.X_OK) else None


def needs_binary(test):
    return unittest.skipUnless(binary(), "SPYGLASS_BINARY names no spyglass executable (test.sh sets it)")(test)


class TemporaryDirectory(object):
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="spyglass-pytest-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def run(arguments, environment=None):
    """Runs a command; returns (exit status, stdout, stderr) as text."""
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
    out, err = process.communicate()
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
