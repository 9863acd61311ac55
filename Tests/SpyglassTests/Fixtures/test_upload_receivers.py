#!/usr/bin/env python3
"""Unit tests of the upload test receivers (otlp_sink.py, pyroscope_receiver.py).

Run: python3 -m unittest discover -s Tests/SpyglassTests/Fixtures -p 'test_upload_receivers.py' -v
Needs the protobuf and opentelemetry-proto packages. Each test starts a receiver as the Swift
tests will (a subprocess that prints its port first) and posts hand-built requests to it.
"""

import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2  # noqa: E402
from opentelemetry.proto.profiles.v1development import profiles_pb2  # noqa: E402

import pprof_decode  # noqa: E402
import pyroscope_receiver  # noqa: E402


class Receiver:
    def __init__(self, script, *flags):
        self.records_path = tempfile.mktemp(suffix=".jsonl")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, script), self.records_path, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("receiver did not start: " + self.process.stderr.read())
        self.port = int(line)

    def post(self, path, body, headers, timeout=5.0):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def records(self):
        if not os.path.exists(self.records_path):
            return []
        with open(self.records_path, encoding="utf-8") as records:
            return [json.loads(line) for line in records]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()
        if os.path.exists(self.records_path):
            os.unlink(self.records_path)


def otlp_request():
    """Two frames of Python, a thread attribute, a trace link: what Spyglass will send."""
    request = profiles_service_pb2.ExportProfilesServiceRequest()
    d = request.dictionary
    d.string_table.extend(["", "cpu", "nanoseconds", "samples", "count", "work", "/app/main.py", "<module>",
                           "thread.name", "MainThread", "thread.id", "profile.frame.type", "cpython"])
    d.mapping_table.add()
    d.link_table.add()
    d.link_table.add(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)))
    d.function_table.add()
    d.function_table.add(name_strindex=5, filename_strindex=6, start_line=2)
    d.function_table.add(name_strindex=7, filename_strindex=6)
    d.attribute_table.add()
    d.attribute_table.add(key_strindex=11).value.string_value = "cpython"
    d.attribute_table.add(key_strindex=8).value.string_value_strindex = 9
    d.attribute_table.add(key_strindex=10).value.int_value = 4242
    d.location_table.add()
    d.location_table.add(attribute_indices=[1]).lines.add(function_index=1, line=3)
    d.location_table.add(attribute_indices=[1]).lines.add(function_index=2, line=10)
    d.stack_table.add()
    d.stack_table.add(location_indices=[1, 2])
    resource_profiles = request.resource_profiles.add()
    attribute = resource_profiles.resource.attributes.add(key="service.name")
    attribute.value.string_value = "demo"
    attribute = resource_profiles.resource.attributes.add(key="process.pid")
    attribute.value.int_value = 77
    scope_profiles = resource_profiles.scope_profiles.add()
    scope_profiles.scope.name = "spyglass"
    scope_profiles.scope.version = "0.1"
    profile = scope_profiles.profiles.add(time_unix_nano=1_700_000_000_000_000_000, duration_nano=10_000_000_000,
                                          period=10_000_000, profile_id=bytes(range(16)))
    profile.sample_type.type_strindex, profile.sample_type.unit_strindex = 3, 4
    profile.period_type.type_strindex, profile.period_type.unit_strindex = 1, 2
    profile.samples.add(stack_index=1, attribute_indices=[2, 3], link_index=1, values=[7])
    return request


def decode_with(script, body, *flags):
    """Runs RECEIVER.py --decode on `body` written to a file: (exit status, printed JSON)."""
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as file:
        file.write(body)
    try:
        result = subprocess.run([sys.executable, os.path.join(HERE, script), "--decode", file.name, *flags],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.unlink(file.name)
    return result.returncode, json.loads(result.stdout)


class OTLPSinkTests(unittest.TestCase):
    def start(self, *flags):
        receiver = Receiver("otlp_sink.py", *flags)
        self.addCleanup(receiver.stop)
        return receiver

    def test_records_a_gzipped_request_with_frames_attributes_and_link(self):
        sink = self.start()
        body = gzip.compress(otlp_request().SerializeToString())
        status, headers, answer = sink.post("/v1development/profiles", body, {
            "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/x-protobuf")
        response = profiles_service_pb2.ExportProfilesServiceResponse()
        response.ParseFromString(answer)
        [record] = sink.records()
        self.assertEqual(record["violations"], [])
        self.assertEqual(record["warnings"], [])
        self.assertEqual(record["content_encoding"], "gzip")
        self.assertEqual(record["status"], 200)
        [profile] = record["profiles"]
        self.assertEqual(profile["resource"], {"service.name": "demo", "process.pid": 77})
        self.assertEqual(profile["scope"], {"name": "spyglass", "version": "0.1", "attributes": {}})
        self.assertEqual(profile["sample_type"], "samples/count")
        self.assertEqual(profile["period_type"], "cpu/nanoseconds")
        self.assertEqual(profile["period"], 10_000_000)
        self.assertEqual(profile["time_unix_nano"], 1_700_000_000_000_000_000)
        self.assertEqual(profile["duration_nano"], 10_000_000_000)
        self.assertEqual(profile["profile_id"], bytes(range(16)).hex())
        [sample] = profile["samples"]
        self.assertEqual(sample["stack"], "<module>;work")
        self.assertEqual([(f["function"], f["filename"], f["line"], f["frame_type"]) for f in sample["frames"]],
                         [("work", "/app/main.py", 3, "cpython"), ("<module>", "/app/main.py", 10, "cpython")])
        self.assertEqual(sample["frames"][0]["start_line"], 2)
        self.assertEqual(sample["values"], [7])
        self.assertEqual(sample["attributes"], {"thread.name": "MainThread", "thread.id": 4242})
        self.assertEqual(sample["link"], {"trace_id": bytes(range(1, 17)).hex(), "span_id": bytes(range(1, 9)).hex()})
        self.assertEqual(record["dictionary"]["string_table"]["duplicates"], 0)

    def test_lists_what_breaks_the_dictionary_rules(self):
        sink = self.start()
        request = otlp_request()
        d = request.dictionary
        d.string_table[0] = "oops"
        d.function_table[0].name_strindex = 1           # entry 0 is not the zero value
        d.stack_table.add(location_indices=[1, 99])     # location out of range
        d.attribute_table.add(key_strindex=8).value.string_value = "other"  # thread.name again
        del d.link_table[:]                              # no zero entry, and the link index dangles
        d.link_table.add(trace_id=b"\x01" * 15, span_id=b"\x02" * 8)
        sample = request.resource_profiles[0].scope_profiles[0].profiles[0].samples
        sample.add(stack_index=2, attribute_indices=[2, 4], link_index=0)  # key twice; bad stack
        sample.add(stack_index=7, values=[1, 2], timestamps_unix_nano=[1_700_000_000_000_000_001])
        status, _, _ = sink.post("/v1development/profiles", request.SerializeToString(),
                                 {"Content-Type": "application/x-protobuf"})
        self.assertEqual(status, 200)  # like the collector: it decodes, so it is accepted
        [record] = sink.records()
        violations = "\n".join(record["violations"])
        for expected in [
            'string_table[0] is \'oops\', not ""',
            "dictionary.function_table[0] is not the zero value",
            "dictionary.link_table[0] is not the zero value",
            "samples[0]: link_table index 1 out of range",
            "stack_table[2]: location_table index 99 out of range",
            "attribute key 'thread.name' appears twice",
            "stack_table index 7 out of range",
            "2 values but 1 timestamps",
        ]:
            self.assertIn(expected, violations)

    def test_an_empty_value_in_the_zero_attribute_is_still_zero(self):
        # The collector forwards attribute_table[0] as KeyValueAndUnit{value: AnyValue{}}.
        sink = self.start()
        request = otlp_request()
        request.dictionary.attribute_table[0].value.SetInParent()
        self.assertEqual(request.dictionary.attribute_table[0].SerializeToString(), b"\x12\x00")
        sink.post("/v1development/profiles", request.SerializeToString(), {"Content-Type": "application/x-protobuf"})
        request.dictionary.attribute_table[0].value.string_value = ""
        sink.post("/v1development/profiles", request.SerializeToString(), {"Content-Type": "application/x-protobuf"})
        first, second = sink.records()
        self.assertEqual(first["violations"], [])
        self.assertEqual(second["violations"], ["dictionary.attribute_table[0] is not the zero value"])

    def test_missing_dictionary_and_zero_references(self):
        sink = self.start()
        request = otlp_request()
        request.ClearField("dictionary")
        sink.post("/v1development/profiles", request.SerializeToString(), {"Content-Type": "application/x-protobuf"})
        request = otlp_request()
        request.dictionary.stack_table[1].location_indices.append(0)
        request.resource_profiles[0].scope_profiles[0].profiles[0].samples[0].attribute_indices.append(0)
        sink.post("/v1development/profiles", request.SerializeToString(), {"Content-Type": "application/x-protobuf"})
        first, second = sink.records()
        self.assertIn("the request has profiles but no dictionary", first["violations"])
        self.assertIn("stack_table[1]: refers to location_table[0], the zero entry", second["violations"])
        self.assertTrue(any("refers to attribute_table[0]" in v for v in second["violations"]), second["violations"])

    def test_json_wrong_type_wrong_path_bad_body(self):
        sink = self.start()
        from google.protobuf import json_format
        status, _, _ = sink.post("/v1development/profiles", json_format.MessageToJson(otlp_request()).encode(),
                                 {"Content-Type": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(sink.post("/v1development/profiles", b"x", {"Content-Type": "text/plain"})[0], 415)
        self.assertEqual(sink.post("/v1/profiles", b"", {"Content-Type": "application/x-protobuf"})[0], 404)
        status, _, answer = sink.post("/v1development/profiles", b"\xff\xff\xff",
                                      {"Content-Type": "application/x-protobuf"})
        self.assertEqual(status, 400)
        self.assertEqual(answer[:2], b"\x08\x03")  # google.rpc.Status code 3 (INVALID_ARGUMENT)
        self.assertEqual(sink.post("/v1development/profiles", b"not gzip", {
            "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})[0], 400)
        records = sink.records()
        self.assertEqual([r["status"] for r in records], [200, 415, 404, 400, 400])
        self.assertEqual(records[0]["profiles"][0]["samples"][0]["stack"], "<module>;work")
        self.assertIn("undecodable", records[3]["error"])

    def test_decode_mode_prints_the_record_of_a_body_file(self):
        status, record = decode_with("otlp_sink.py", otlp_request().SerializeToString())
        self.assertEqual(status, 0)
        self.assertEqual((record["violations"], record["warnings"]), ([], []))
        self.assertEqual(record["content_type"], "application/x-protobuf")
        [profile] = record["profiles"]
        self.assertEqual(profile["samples"][0]["stack"], "<module>;work")
        self.assertEqual(profile["samples"][0]["attributes"], {"thread.name": "MainThread", "thread.id": 4242})
        self.assertNotIn("seq", record)
        status, record = decode_with("otlp_sink.py", b"\xff\xff\xff")
        self.assertEqual(status, 1)
        self.assertIn("undecodable", record["error"])

    def test_status_fail_count_and_retry_after(self):
        sink = self.start("--status", "503", "--fail-count", "1", "--retry-after", "2")
        body = otlp_request().SerializeToString()
        status, headers, _ = sink.post("/v1development/profiles", body, {"Content-Type": "application/x-protobuf"})
        self.assertEqual((status, headers.get("Retry-After")), (503, "2"))
        status, headers, _ = sink.post("/v1development/profiles", body, {"Content-Type": "application/x-protobuf"})
        self.assertEqual((status, headers.get("Retry-After")), (200, None))
        first, second = sink.records()
        self.assertEqual((first["status"], second["status"]), (503, 200))
        self.assertEqual(first["profiles"][0]["samples"][0]["stack"], "<module>;work")  # decoded all the same

    def test_hang_never_answers(self):
        sink = self.start("--hang")
        started = time.monotonic()
        with self.assertRaises(socket.timeout):
            sink.post("/v1development/profiles", otlp_request().SerializeToString(),
                      {"Content-Type": "application/x-protobuf"}, timeout=1.0)
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        [record] = sink.records()
        self.assertEqual((record["answered"], record["status"], record["violations"]), (False, None, []))

    def test_down_for_refuses_then_serves(self):
        sink = self.start("--down-for", "1.5")
        with self.assertRaises(ConnectionRefusedError):
            sink.post("/v1development/profiles", b"", {"Content-Type": "application/x-protobuf"})
        deadline = time.monotonic() + 5
        while True:
            try:
                status, _, _ = sink.post("/v1development/profiles", otlp_request().SerializeToString(),
                                         {"Content-Type": "application/x-protobuf"})
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
        self.assertEqual(status, 200)
        self.assertEqual(len(sink.records()), 1)


def pprof_profile(bad=False):
    Profile = pprof_decode.profile_class()
    profile = Profile()
    profile.string_table.extend(["", "cpu", "nanoseconds", "work", "/app/main.py", "<module>", "thread_name",
                                 "MainThread", "thread_id", "span_id", "0102030405060708"])
    profile.sample_type.add(type=1, unit=2)
    profile.period_type.type, profile.period_type.unit = 1, 2
    profile.period = 10_000_000
    profile.time_nanos = 1_700_000_000_000_000_000
    profile.duration_nanos = 10_000_000_000
    profile.function.add(id=1, name=3, system_name=3, filename=4, start_line=2)
    profile.function.add(id=2, name=5, system_name=5, filename=4)
    profile.location.add(id=1).line.add(function_id=1, line=3)
    profile.location.add(id=2).line.add(function_id=2, line=10)
    sample = profile.sample.add(location_id=[1, 2], value=[70_000_000])
    sample.label.add(key=6, str=7)
    sample.label.add(key=8, num=4242)
    sample.label.add(key=9, str=10)
    if bad:
        profile.string_table[0] = "x"
        profile.sample.add(location_id=[3], value=[1, 2])
        profile.string_table.append("cpu-time")
        profile.sample_type[0].type = len(profile.string_table) - 1
    return profile.SerializeToString()


def push_request(labels, raw_profiles):
    request = pyroscope_receiver.PushRequest()
    series = request.series.add()
    for name, value in labels:
        series.labels.add(name=name, value=value)
    for i, raw in enumerate(raw_profiles):
        series.samples.add(raw_profile=raw, ID="00000000-0000-4000-8000-%012d" % i)
    return request.SerializeToString()


LABELS = [("__name__", "process_cpu"), ("service_name", "demo"), ("pid", "77")]


class PyroscopeReceiverTests(unittest.TestCase):
    def start(self, *flags):
        receiver = Receiver("pyroscope_receiver.py", *flags)
        self.addCleanup(receiver.stop)
        return receiver

    def test_records_series_profiles_and_headers(self):
        receiver = self.start()
        body = gzip.compress(push_request(LABELS, [gzip.compress(pprof_profile()), pprof_profile()]))
        status, headers, answer = receiver.post("/push.v1.PusherService/Push", body, {
            "Content-Type": "application/proto", "Content-Encoding": "gzip", "Connect-Protocol-Version": "1",
            "X-Scope-OrgID": "tenant-a", "Authorization": "Basic dTpw"})
        self.assertEqual((status, headers["Content-Type"], answer), (200, "application/proto", b""))
        [record] = receiver.records()
        self.assertEqual(record["violations"], [])
        self.assertEqual(record["warnings"], [])
        self.assertEqual((record["tenant"], record["authorization"]), ("tenant-a", "Basic dTpw"))
        self.assertEqual(record["connect_protocol_version"], "1")
        [series] = record["series"]
        self.assertEqual(series["labels"], dict(LABELS))
        self.assertEqual(series["label_pairs"], [list(pair) for pair in LABELS])
        first, second = series["profiles"]
        self.assertEqual((first["gzipped"], second["gzipped"]), (True, False))
        self.assertEqual(first["id"], "00000000-0000-4000-8000-000000000000")
        for profile in (first, second):
            self.assertEqual(profile["sample_types"], ["cpu/nanoseconds"])
            self.assertEqual(profile["period_type"], "cpu/nanoseconds")
            self.assertEqual((profile["period"], profile["time_nanos"], profile["duration_nanos"]),
                             (10_000_000, 1_700_000_000_000_000_000, 10_000_000_000))
            [sample] = profile["samples"]
            self.assertEqual(sample["stack"], "<module>;work")
            self.assertEqual([(f["name"], f["file"], f["line"]) for f in sample["frames"]],
                             [("work", "/app/main.py", 3), ("<module>", "/app/main.py", 10)])
            self.assertEqual(sample["values"], [70_000_000])
            self.assertEqual(sample["labels"], {"thread_name": "MainThread", "thread_id": 4242,
                                                "span_id": "0102030405060708"})

    def test_lists_what_pyroscope_would_refuse(self):
        receiver = self.start()
        labels = [("__name__", "process_cpu"), ("service.name", "demo"), ("pid", "1"), ("pid", "2")]
        body = push_request(labels, [gzip.compress(pprof_profile(bad=True)), b"\x1f\x8b not gzip"])
        status, _, _ = receiver.post("/push.v1.PusherService/Push", body, {"Content-Type": "application/proto"})
        self.assertEqual(status, 200)
        [record] = receiver.records()
        violations = "\n".join(record["violations"])
        for expected in [
            "service_name is missing or empty",
            "invalid label name 'service.name'",
            "repeated label names ['pid']",
            'string_table[0] is not ""',
            "location id 3 is missing",
            "2 values for 1 sample types",
            "sample type 'cpu-time' contains '-'",
            "raw_profile is not valid gzip",
        ]:
            self.assertIn(expected, violations)

    def test_sample_string_labels_count_toward_the_series_limit(self):
        # pprof_profile's samples have the string labels thread_name and span_id (which Pyroscope
        # keeps on the samples) and the numeric thread_id (which it ignores): one label is added.
        labels = LABELS + [("extra_%02d" % i, "x") for i in range(26)]
        self.assertEqual(len(labels), 29)
        status, record = decode_with("pyroscope_receiver.py", push_request(labels, [pprof_profile()]))
        self.assertEqual((status, record["violations"]), (0, []))
        labels.append(("extra_26", "x"))
        status, record = decode_with("pyroscope_receiver.py", push_request(labels, [pprof_profile()]))
        self.assertEqual(record["violations"], [
            "series[0].samples[0]: 31 labels once the distributor adds the samples' string labels, more than 30"])

    def test_decode_mode_saves_the_raw_profiles(self):
        raw = gzip.compress(pprof_profile())
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        status, record = decode_with("pyroscope_receiver.py", push_request(LABELS, [raw, pprof_profile()]),
                                     "--profiles", folder)
        self.assertEqual((status, record["violations"], record["warnings"]), (0, [], []))
        [series] = record["series"]
        self.assertEqual(series["label_pairs"], [list(pair) for pair in LABELS])
        first, second = series["profiles"]
        self.assertEqual(first["samples"][0]["stack"], "<module>;work")
        with open(first["file"], "rb") as saved:
            self.assertEqual(saved.read(), raw)
        with open(second["file"], "rb") as saved:
            self.assertEqual(saved.read(), pprof_profile())
        status, record = decode_with("pyroscope_receiver.py", b"\x0a\x05\x0a")
        self.assertEqual(status, 1)
        self.assertIn("undecodable", record["error"])

    def test_connect_errors_and_failure_modes(self):
        receiver = self.start("--status", "429", "--fail-count", "1")
        body = push_request(LABELS, [pprof_profile()])
        status, headers, answer = receiver.post("/push.v1.PusherService/Push", body, {"Content-Type": "application/proto"})
        self.assertEqual((status, headers["Content-Type"]), (429, "application/json"))
        self.assertEqual(json.loads(answer)["code"], "unavailable")
        self.assertEqual(receiver.post("/push.v1.PusherService/Push", body, {"Content-Type": "application/proto"})[0], 200)
        self.assertEqual(receiver.post("/push.v1.PusherService/Push", body, {"Content-Type": "application/json"})[0], 415)
        self.assertEqual(receiver.post("/ingest", body, {"Content-Type": "application/proto"})[0], 404)
        self.assertEqual([r["status"] for r in receiver.records()], [429, 200, 415, 404])

    def test_hang_and_down_for(self):
        receiver = self.start("--hang", "--down-for", "1")
        with self.assertRaises(ConnectionRefusedError):
            receiver.post("/push.v1.PusherService/Push", b"", {"Content-Type": "application/proto"})
        time.sleep(1.3)
        with self.assertRaises(socket.timeout):
            receiver.post("/push.v1.PusherService/Push", push_request(LABELS, [pprof_profile()]),
                          {"Content-Type": "application/proto"}, timeout=1.0)
        [record] = receiver.records()
        self.assertEqual((record["answered"], record["violations"]), (False, []))


if __name__ == "__main__":
    unittest.main()
