"""FuncStats and ThreadStats over a recording: CPU seconds, sample counts, sorting, printing."""

from __future__ import absolute_import, division, print_function

import io
import unittest

from spyglass._stats import FuncStats, ThreadStats, function_totals

from tests.support import sample_profile


class FuncStatsTests(unittest.TestCase):
    def test_times_and_samples_per_function(self):
        stats = FuncStats(sample_profile())
        by_name = dict((stat.name, stat) for stat in stats)
        # <module> is on 7 stacks (70 ms), work on 6, loop on 3 and the leaf of those; run and sleep 3.
        self.assertEqual(by_name["<module>"].nsamples, 7)
        self.assertAlmostEqual(by_name["<module>"].ttot, 0.07)
        self.assertAlmostEqual(by_name["<module>"].tsub, 0.01)
        self.assertAlmostEqual(by_name["work"].ttot, 0.06)
        self.assertAlmostEqual(by_name["work"].tsub, 0.03)
        self.assertAlmostEqual(by_name["loop"].tsub, 0.03)
        self.assertEqual(by_name["sleep"].module, "/srv/app/util.py")
        self.assertEqual(by_name["sleep"].lineno, 4)  # the function's first line
        self.assertNotIn("thread (43): worker", by_name)  # pseudo-frames are not functions
        self.assertEqual(stats[0].name, "<module>")  # most CPU time first
        self.assertEqual(stats.total_samples, 10)

    def test_recursion_counts_once_per_sample(self):
        profile = sample_profile()
        profile.stacks.append((0, 1, 1, 1))
        profile.sample_threads.append(0)
        profile.sample_stacks.append(4)
        profile.sample_times.append(100 * 10 ** 6)
        profile.sample_weights.append(10 ** 6)
        functions = function_totals(profile)
        self.assertEqual(functions[("work", "/srv/app/app.py", 2)][0], 7)

    def test_sort_slice_and_print(self):
        stats = FuncStats(sample_profile())
        stats.sort("nsamples", "asc")
        self.assertEqual(stats[0].nsamples, min(stat.nsamples for stat in stats))
        stats.sort("ncall")  # yappi's name
        self.assertEqual(stats[0].nsamples, 7)
        with self.assertRaises(ValueError):
            stats.sort("nonsense")
        self.assertEqual(len(stats[:2]), 2)
        self.assertIsInstance(stats[:2], FuncStats)
        out = io.StringIO()
        stats.print_all(out=out)
        text = out.getvalue()
        self.assertIn("10 samples at 100 Hz over 0.10 s", text)
        self.assertIn("app.py:2", text)  # short file names in the table
        self.assertNotIn("/srv/app", text)


class ThreadStatsTests(unittest.TestCase):
    def test_threads(self):
        stats = ThreadStats(sample_profile())
        by_name = dict((stat.name, stat) for stat in stats)
        self.assertEqual((by_name["MainThread"].id, by_name["MainThread"].tid), (1000, 42))
        self.assertAlmostEqual(by_name["MainThread"].ttot, 0.07)  # the thread's measured CPU time
        self.assertAlmostEqual(by_name["worker"].ttot, 0.03)  # unmeasured: its samples' weight
        self.assertEqual(by_name["worker"].nsamples, 3)
        self.assertEqual(stats[0].name, "MainThread")
        out = io.StringIO()
        stats.print_all(out=out)
        self.assertIn("worker", out.getvalue())


if __name__ == "__main__":
    unittest.main()
