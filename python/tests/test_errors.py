"""Structured errors: the executable's SPYGLASS_ERROR_FILE report becomes spyglass.Error."""

from __future__ import absolute_import, division, print_function

import json
import os
import stat
import unittest

import spyglass
from spyglass import _recorder
from spyglass._recorder import Error, Recorder, convert_recording, error_from_report, read_error_report

from tests.support import TemporaryDirectory, binary, needs_binary, run


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


class ReportTests(unittest.TestCase):
    def test_reading_a_report(self):
        with TemporaryDirectory() as folder:
            path = os.path.join(folder, "error.json")
            self.assertIsNone(read_error_report(path))  # no report
            write(path, '{"kind": "no_such_process", "message": "No such process: 7.", "exit_code": 1}\n')
            self.assertEqual(read_error_report(path), ("no_such_process", "No such process: 7.", 1))
            write(path, '{"message": "Something.", "exit_code": 2}')
            self.assertEqual(read_error_report(path), ("failure", "Something.", 2))
            for garbage in ("", "{", "[]", '{"kind": "x"}', '{"message": 3}'):
                write(path, garbage)
                self.assertIsNone(read_error_report(path), garbage)

    def test_errors_carry_the_kind_and_permission_advice(self):
        error = error_from_report(("permission_denied", "Permission denied reading process 7: run it as root.", 1))
        self.assertIsInstance(error, spyglass.Error)
        self.assertEqual(error.kind, "permission_denied")
        self.assertTrue(str(error).startswith("Permission denied reading process 7: run it as root. "))
        self.assertIn("PR_SET_PTRACER", str(error))
        plain = error_from_report(("no_such_process", "No such process.", 1))
        self.assertEqual((str(plain), plain.kind), ("No such process.", "no_such_process"))

    def test_a_recorder_fails_with_its_report(self):
        with TemporaryDirectory() as folder:
            recorder = Recorder.__new__(Recorder)
            recorder.error_path = os.path.join(folder, "error.json")
            recorder.process = None
            self.assertEqual(str(recorder.failure()), "The spyglass recorder (pid None) is not responding.")
            write(recorder.error_path, json.dumps(
                {"kind": "usage_error", "message": "Can't get native stack traces with the --nonblocking option.",
                 "exit_code": 2}))
            error = recorder.failure()
            self.assertEqual(error.kind, "usage_error")
            self.assertEqual(str(error), "Can't get native stack traces with the --nonblocking option.")

    def test_convert_raises_the_executables_sentence(self):
        # A stand-in executable that fails the way spyglass does: a report, then exit 1.
        with TemporaryDirectory() as folder:
            fake = os.path.join(folder, "spyglass")
            write(fake, '#!/bin/sh\nprintf \'{"kind":"recording_corrupt","message":"Cannot read it.","exit_code":1}\' '
                        '> "$SPYGLASS_ERROR_FILE"\necho "spyglass: noise on stderr" >&2\nexit 1\n')
            os.chmod(fake, stat.S_IRWXU)
            with self.assertRaises(Error) as caught:
                convert_recording(os.path.join(folder, "in.spyglass"), "flamegraph", os.path.join(folder, "out.svg"),
                                  fake)
            self.assertEqual((str(caught.exception), caught.exception.kind), ("Cannot read it.", "recording_corrupt"))
            write(fake, "#!/bin/sh\nkill -9 $$\n")
            with self.assertRaisesRegex(Error, "killed by signal 9"):
                convert_recording("x", "raw", os.path.join(folder, "o"), fake)

    @needs_binary
    def test_the_executable_reports_failures(self):
        with TemporaryDirectory() as folder:
            report = os.path.join(folder, "error.json")
            environment = dict(os.environ, SPYGLASS_ERROR_FILE=report)
            status, _, err = run([binary(), "convert", os.path.join(folder, "missing.spyglass")], environment)
            self.assertEqual(status, 1)
            kind, message, code = read_error_report(report)
            self.assertEqual((kind, code), ("recording_unreadable", 1))
            self.assertIn(message, err)
            os.unlink(report)
            status, _, _ = run([binary(), "record", "--no-such-option"], environment)
            self.assertEqual(status, 2)
            self.assertEqual(read_error_report(report)[0], "usage_error")
            with self.assertRaises(Error) as caught:
                convert_recording(os.path.join(folder, "missing.spyglass"), "raw", os.path.join(folder, "o"), binary())
            self.assertEqual(caught.exception.kind, "recording_unreadable")
            self.assertIn("missing.spyglass", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
