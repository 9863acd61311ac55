"""Continuous profiling from the Python API: start(upload=...) passes its options to the recorder,
and the running recorder sends this process's profiles to a Push API endpoint while the stats
stay available. The bodies are decoded by the Swift suites' receivers; here a plain HTTP server
of the standard library checks that requests come, where, and with the labels inside."""

from __future__ import absolute_import, division, print_function

import threading
import time
import unittest

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
except ImportError:  # Python 2.7
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer

import spyglass
from spyglass._recorder import upload_options

from tests.support import needs_binary


class OptionTests(unittest.TestCase):
    def test_options_become_record_flags(self):
        self.assertEqual(upload_options(None), [])
        self.assertEqual(
            upload_options("http://a:4040", "otlp", 5, {"team": "payments", "env": "ci"}, "checkout"),
            ["--upload", "http://a:4040", "--upload-format", "otlp", "--upload-interval", "5",
             "--label", "env=ci", "--label", "team=payments", "--service-name", "checkout"])
        self.assertEqual(upload_options(["http://a", "http://b"]), ["--upload", "http://a", "--upload", "http://b"])

    def test_wrong_values_are_refused(self):
        for arguments in [(None, None, None, {"a": "b"}), ("http://a", "zipkin"), ([],), ("http://a", None, None, {"a=b": "c"}),
                          ("http://a", None, None, None, "")]:
            with self.assertRaises(ValueError, msg=repr(arguments)):
                upload_options(*arguments)


class Collected(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []


def make_handler(collected):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with collected.lock:
                collected.requests.append((self.path, self.headers.get("Content-Type"), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/proto")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *arguments):
            pass

    return Handler


def busy(seconds):
    end = time.time() + seconds
    total = 0
    while time.time() < end:
        for i in range(1000):
            total += i * i
    return total


class UploadTests(unittest.TestCase):
    @needs_binary
    def test_start_uploads_this_process(self):
        collected = Collected()
        server = HTTPServer(("127.0.0.1", 0), make_handler(collected))
        thread = threading.Thread(target=server.serve_forever)
        thread.daemon = True
        thread.start()
        try:
            url = "http://127.0.0.1:%d" % server.server_address[1]
            spyglass.clear_stats()
            spyglass.start(rate=100, upload=url, upload_interval=1, labels={"team": "payments"},
                           service_name="python-api-test")
            try:
                busy(3.5)
            finally:
                spyglass.stop()
            stats = spyglass.get_func_stats()
            self.assertTrue(any(entry.name == "busy" for entry in stats), "the stats stay available")
        finally:
            server.shutdown()
            server.server_close()
        with collected.lock:
            requests = list(collected.requests)
        self.assertGreaterEqual(len(requests), 3, "one request per 1-second interval and the last one")
        for path, content_type, body in requests:
            self.assertEqual(path, "/push.v1.PusherService/Push")
            self.assertEqual(content_type, "application/proto")
            # Protocol buffers keep strings as they are: the labels are in the body.
            for text in (b"service_name", b"python-api-test", b"team", b"payments", b"process_cpu"):
                self.assertIn(text, body)
        spyglass.clear_stats()


if __name__ == "__main__":
    unittest.main()
