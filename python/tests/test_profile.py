"""The recording model: reading and writing the file, and adding and subtracting recordings."""

from __future__ import absolute_import, division, print_function

import gzip
import json
import os
import unittest

from spyglass._profile import FORMAT, VERSION, Frame, Profile, ThreadInfo, from_json, read_recording

from tests.support import MS, TemporaryDirectory, sample_profile


def stacks_by_value(profile):
    """Samples as (thread key, frame names, time, weight), for comparing profiles whatever their ids."""
    return [(profile.threads[t].key, tuple(profile.frames[f].name for f in profile.stacks[s]), time, weight)
            for t, s, time, weight in zip(profile.sample_threads, profile.sample_stacks, profile.sample_times,
                                          profile.sample_weights)]


class RecordingFileTests(unittest.TestCase):
    def test_round_trip_through_a_gzipped_file(self):
        profile = sample_profile()
        with TemporaryDirectory() as folder:
            path = os.path.join(folder, "r.spyglass")
            profile.write(path, "1.2.3")
            with gzip.open(path, "rb") as handle:
                document = json.loads(handle.read().decode("utf-8"))
            back = read_recording(path)
        self.assertEqual(document["format"], FORMAT)
        self.assertEqual(document["version"], VERSION)
        self.assertEqual(document["spyglass"], "1.2.3")
        self.assertEqual(document["info"]["sample_count"], 10)
        self.assertEqual(back.frames, profile.frames)
        self.assertEqual(back.stacks, profile.stacks)
        self.assertEqual([t.key for t in back.threads], [t.key for t in profile.threads])
        self.assertEqual(back.threads[0].cpu_ns, 70 * MS)
        self.assertIsNone(back.threads[1].cpu_ns)
        self.assertEqual(stacks_by_value(back), stacks_by_value(profile))
        self.assertEqual((back.title, back.rate, back.python_version, back.duration, back.start_ns, back.weighting),
                         (profile.title, 100.0, "3.12.1", 0.1, profile.start_ns, "cpu"))
        self.assertTrue(back.frames[3].is_pseudo)
        self.assertEqual(back.frames[4].short_filename, "threading.py")

    def test_plain_json_and_native_frames(self):
        document = sample_profile().to_json()
        document["frames"].append({"name": "deflate", "filename": "/usr/lib/libz.so.1", "short_filename": "libz.so.1",
                                   "line": 0, "first_line": 0, "pseudo": False, "library": "/usr/lib/libz.so.1"})
        document["stacks"].append([0, 6])
        for column, value in zip(("thread", "stack", "time", "weight"), (0, 4, 100 * MS, 10 * MS)):
            document["samples"][column].append(value)
        document["a_field_of_a_later_writer"] = {"anything": [1, 2]}
        with TemporaryDirectory() as folder:
            path = os.path.join(folder, "plain.json")
            with open(path, "w") as handle:
                json.dump(document, handle)
            profile = read_recording(path)
        self.assertEqual(profile.frames[6].library, "/usr/lib/libz.so.1")
        self.assertEqual(profile.total_samples, 11)

    def test_refuses_what_is_not_a_recording(self):
        good = sample_profile().to_json()
        cases = {
            "another format": dict(good, format="speedscope"),
            "a newer version": dict(good, version=VERSION + 1),
            "a frame out of range": dict(good, stacks=[[0, 99]]),
            "a stack out of range": dict(good, samples=dict(good["samples"], stack=[9] * 10)),
            "columns of different lengths": dict(good, samples=dict(good["samples"], time=[0])),
            "no threads": dict((k, v) for k, v in good.items() if k != "threads"),
            "a string for a line": dict(good, frames=[dict(good["frames"][0], line="7")] + good["frames"][1:]),
            "a list": [],
        }
        for name, document in cases.items():
            with self.assertRaises(ValueError, msg=name):
                from_json(document)
        with self.assertRaisesRegex(ValueError, "newer"):
            from_json(dict(good, version=VERSION + 1))


class CombiningTests(unittest.TestCase):
    def test_totals_and_samples_per_thread(self):
        profile = sample_profile()
        totals = profile.totals()
        self.assertEqual(totals[(0, 0)], [3, 30 * MS])
        self.assertEqual(totals[(1, 3)], [3, 30 * MS])
        self.assertEqual(profile.samples_per_thread(), {0: 7, 1: 3})

    def test_minus_an_earlier_look(self):
        full = sample_profile()
        early = full.copy()
        for column in ("sample_threads", "sample_stacks", "sample_times", "sample_weights"):
            setattr(early, column, getattr(full, column)[:4])
        early.duration = 0.04
        early.threads[0].cpu_ns = 30 * MS
        later = full.minus(early)
        self.assertEqual(later.total_samples, 6)
        self.assertAlmostEqual(later.duration, 0.06)
        self.assertEqual(later.start_ns, full.start_ns + 40 * MS)
        self.assertEqual(later.sample_times[0], 0)
        self.assertEqual(later.threads[0].cpu_ns, 40 * MS)
        self.assertEqual(stacks_by_value(later), [(k, s, t - 40 * MS, w) for k, s, t, w in stacks_by_value(full)[4:]])
        self.assertEqual(full.minus(None).total_samples, 10)

    def test_minus_leaves_out_what_only_the_earlier_look_used(self):
        full = sample_profile()
        early = full.copy()
        for column in ("sample_threads", "sample_stacks", "sample_times", "sample_weights"):
            setattr(early, column, getattr(full, column)[:9])
        later = full.minus(early)  # one sample: main in <module> > work
        self.assertEqual([t.name for t in later.threads], ["MainThread"])
        self.assertEqual([f.name for f in later.frames], ["<module>", "work"])
        self.assertEqual(later.stacks, [(0, 1)])

    def test_minus_of_another_recording_is_refused(self):
        other = sample_profile()
        other.sample_weights = [1] * 10
        with self.assertRaises(ValueError):
            sample_profile().minus(other)

    def test_plus_appends_a_later_recording(self):
        first = sample_profile()
        second = Profile()
        second.rate = 200.0
        second.duration = 0.5
        second.threads = [ThreadInfo(42, 1000, 42, "MainThread", 5 * MS), ThreadInfo(42, 3000, 44, "new", 1)]
        second.frames = [Frame("<module>", "/srv/app/app.py", "app.py", 7, 1), Frame("x", "/srv/x.py", "x.py", 1, 1)]
        second.stacks = [(0, 1)]
        second.sample_threads, second.sample_stacks = [0, 1], [0, 0]
        second.sample_times, second.sample_weights = [0, 5 * MS], [2, 3]
        both = first.plus(second)
        self.assertEqual(both.total_samples, 12)
        self.assertEqual(len(both.threads), 3)
        self.assertEqual(both.threads[0].cpu_ns, 75 * MS)
        self.assertEqual(len(both.frames), 7)  # <module> shared, x added
        self.assertEqual(both.sample_times[-1], 100 * MS + 5 * MS)
        self.assertEqual(stacks_by_value(both)[-1], ((42, 3000), ("<module>", "x"), 105 * MS, 3))
        self.assertAlmostEqual(both.duration, 0.6)
        self.assertEqual(both.rate, 200.0)
        self.assertEqual(Profile().plus(second).total_samples, 2)
        # The originals are untouched.
        self.assertEqual(first.total_samples, 10)
        self.assertEqual(first.threads[0].cpu_ns, 70 * MS)


if __name__ == "__main__":
    unittest.main()
