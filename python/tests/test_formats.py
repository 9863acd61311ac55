"""What a save means: yappi's type names and file extensions onto the executable's formats."""

from __future__ import absolute_import, division, print_function

import unittest

from spyglass._formats import FORMATS, binary_format, format_for_path


class FormatTests(unittest.TestCase):
    def test_types_map_to_the_executables_names(self):
        self.assertEqual(binary_format("pstat"), "pstats")
        self.assertEqual(binary_format("ystat"), "pstats")
        self.assertEqual(binary_format("callgrind"), "callgrind")
        self.assertEqual(binary_format("svg"), "flamegraph")
        self.assertEqual(binary_format("pprof.gz"), "pprof")
        for kind in FORMATS:
            self.assertTrue(binary_format(kind))
        with self.assertRaises(ValueError):
            binary_format("html")

    def test_file_names(self):
        cases = {
            "a.svg": "flamegraph", "a.speedscope.json": "speedscope", "a.json": "speedscope",
            "a.trace.json": "chrometrace", "a.txt": "raw", "a.folded": "raw", "a.pb.gz": "pprof",
            "a.pprof": "pprof", "a.prof": "pstat", "x/a.PSTATS": "pstat", "callgrind.out.1": "callgrind",
            "a.callgrind": "callgrind", "a.spyglass": "spyglass", "a.html": None, "noextension": None,
        }
        for path, expected in cases.items():
            self.assertEqual(format_for_path(path), expected, path)


if __name__ == "__main__":
    unittest.main()
