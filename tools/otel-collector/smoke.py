#!/usr/bin/env python3
"""Checks the collector end to end: start it with profiles.yaml in front of the test sink, post a
hand-built profiles request, and see the sink receive it forwarded, decoded and well formed.

Usage: tools/otel-collector/smoke.py [COLLECTOR]   (default: the binary tools/otel-collector.sh
built; it is built first if missing). Needs PyPI's opentelemetry-proto, as the sink does.
Prints what it saw; exits non-zero if the collector did not start, did not answer 200, or the
sink did not get the profile back intact.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "Tests", "SpyglassTests", "Fixtures")
sys.path.insert(0, FIXTURES)

from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2  # noqa: E402

from test_upload_receivers import otlp_request  # noqa: E402


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def exercise(process, port, records, started, failures):
    if not wait_for_port(port, 10):
        failures.append("the collector did not open 127.0.0.1:%d" % port)
        return
    print("collector listening after %.0f ms, RSS %d KiB" % ((time.monotonic() - started) * 1000, rss_kib(process.pid)))
    request = otlp_request()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/v1development/profiles", body=request.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"})
    response = connection.getresponse()
    body = response.read()
    answer = profiles_service_pb2.ExportProfilesServiceResponse()
    answer.ParseFromString(body)
    print("collector answered %d, partial_success rejected=%d %r" % (
        response.status, answer.partial_success.rejected_profiles, answer.partial_success.error_message))
    if response.status != 200:
        failures.append("the collector answered %d" % response.status)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (os.path.exists(records) and os.path.getsize(records)):
        time.sleep(0.05)
    if not os.path.exists(records) or not os.path.getsize(records):
        failures.append("nothing reached the sink")
        return
    with open(records) as lines:
        record = json.loads(lines.readline())
    print("sink got %s %s (%s, %d bytes on the wire) from %r" % (
        record["method"], record["path"], record["content_encoding"], record["body_bytes"],
        record["headers"].get("user-agent")))
    print("violations: %s" % record["violations"])
    print("warnings: %s" % record["warnings"])
    [profile] = record["profiles"]
    [sample] = profile["samples"]
    print("profile: %s every %d %s; sample %s %s %s link %s" % (
        profile["sample_type"], profile["period"], profile["period_type"], sample["stack"], sample["values"],
        sample["attributes"], sample["link"]))
    if record["violations"]:
        failures.append("the forwarded request breaks dictionary rules")
    if sample["stack"] != "<module>;work" or sample["attributes"].get("thread.name") != "MainThread":
        failures.append("the forwarded sample differs from the one sent")


def main():
    if len(sys.argv) > 1:
        collector = sys.argv[1]
    else:
        collector = subprocess.run([os.path.join(ROOT, "tools", "otel-collector.sh")], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    work = tempfile.mkdtemp(prefix="otelcol-smoke.")
    records = os.path.join(work, "sink.jsonl")
    sink = subprocess.Popen([sys.executable, os.path.join(FIXTURES, "otlp_sink.py"), records, "--bodies", work],
                            stdout=subprocess.PIPE, text=True)
    port = free_port()
    sink_port = int(sink.stdout.readline())
    env = dict(os.environ, OTELCOL_HTTP_PORT=str(port), OTELCOL_SINK="http://127.0.0.1:%d" % sink_port)
    started = time.monotonic()
    log = open(os.path.join(work, "collector.log"), "w")
    process = subprocess.Popen([collector, "--config=" + os.path.join(HERE, "profiles.yaml"),
                                "--feature-gates=+service.profilesSupport"], env=env, stdout=log, stderr=log)
    failures = []
    try:
        exercise(process, port, records, started, failures)
    finally:
        process.terminate()
        process.wait(timeout=10)
        sink.terminate()
        sink.wait(timeout=10)
        log.close()
        for failure in failures:
            print("FAILED: " + failure)
        if failures:
            print("the collector's log, the sink's records and the bodies it got: %s" % work)
        else:
            shutil.rmtree(work)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
