"""Every save type, written by the executable from a recording the package writes (needs
SPYGLASS_BINARY, which test.sh sets to the build it tests)."""

from __future__ import absolute_import, division, print_function

import gzip
import json
import os
import pstats
import unittest
import xml.dom.minidom

from spyglass._formats import FORMATS
from spyglass._profile import read_recording
from spyglass._stats import FuncStats

from tests.support import TemporaryDirectory, needs_binary, sample_profile


@needs_binary
class SavingTests(unittest.TestCase):
    def setUp(self):
        self._binary = os.environ.get("SPYGLASS_BINARY")

    def test_every_type(self):
        stats = FuncStats(sample_profile(), version="test")
        with TemporaryDirectory() as folder:
            paths = {}
            for kind in FORMATS:
                paths[kind] = stats.save(os.path.join(folder, "stats." + kind), type=kind)
                self.assertGreater(os.path.getsize(paths[kind]), 0, kind)
            loaded = pstats.Stats(paths["pstat"])
            names = set(key[2] for key in loaded.stats)
            self.assertEqual(names, set(["<module>", "work", "loop", "run", "sleep"]))
            work = loaded.stats[("/srv/app/app.py", 2, "work")]
            self.assertEqual(work[:2], (6, 6))  # samples where calls go
            self.assertAlmostEqual(work[3], 0.06)
            with open(paths["raw"]) as handle:
                raw = handle.read()
            self.assertIn("<module> (app.py:7);work (app.py:3);loop (app.py:12) 3\n", raw)
            self.assertIn("thread (43): worker;run (threading.py:990);sleep (util.py:5) 3\n", raw)
            with open(paths["speedscope"]) as handle:
                speedscope = json.load(handle)
            self.assertEqual(sorted(p["name"] for p in speedscope["profiles"]),
                             ['Thread 42 "MainThread"', 'Thread 43 "worker"'])
            with open(paths["chrometrace"]) as handle:
                events = json.load(handle)
            self.assertEqual(sum(1 for e in events if e["ph"] == "B"), sum(1 for e in events if e["ph"] == "E"))
            xml.dom.minidom.parse(paths["flamegraph"])
            with gzip.open(paths["pprof"]) as handle:
                self.assertGreater(len(handle.read()), 100)
            with open(paths["callgrind"]) as handle:
                callgrind = handle.read()
            self.assertTrue(callgrind.startswith("# callgrind format\n"))
            self.assertIn("events: cpu_ns samples\n", callgrind)
            back = read_recording(paths["spyglass"])
            self.assertEqual(back.frames, sample_profile().frames)
            self.assertEqual(back.sample_times, sample_profile().sample_times)
            self.assertEqual(back.title, "python app.py (pid 42)")

    def test_type_from_the_file_name(self):
        stats = FuncStats(sample_profile())
        with TemporaryDirectory() as folder:
            path = stats.save(os.path.join(folder, "out.prof"))
            self.assertTrue(pstats.Stats(path).stats)
            with self.assertRaises(ValueError):
                stats.save(os.path.join(folder, "out.unknown"))


if __name__ == "__main__":
    unittest.main()
