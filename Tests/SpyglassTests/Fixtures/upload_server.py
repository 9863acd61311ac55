"""The HTTP side shared by the upload test receivers (otlp_sink.py, pyroscope_receiver.py).

A receiver is started as a subprocess by a test. It listens on 127.0.0.1 (a free port unless
--port is given) and prints that port as the first line of its standard output. Each request it
reads becomes one JSON line in the records file named on its command line, written and flushed
before the answer is sent, so a test that has its answer can read the record. What a line holds
besides the common fields below is the receiver's business.

Common fields of a record: seq (1, 2, ...), time (Unix seconds), method, path, headers (all of
them, names in lower case), body_bytes (as received), content_encoding, status (what was
answered; null with --hang), answered (false with --hang), error (why the body could not be
decoded, or null).

Failure modes, for testing a client's retries and timeouts:
  --status CODE       answer CODE instead of success (the body is still decoded and recorded)
  --fail-count N      ... for the first N requests only, then succeed
  --retry-after SECS  send Retry-After with those answers
  --hang              read and record each request, never answer (the connection stays open
                      until the client closes it)
  --down-for SECS     for the first SECS seconds the port is bound but not listening, so a
                      connection is refused (ECONNREFUSED); then serve. The port is printed at once.
--bodies DIR saves each request body (after Content-Encoding) as DIR/SEQ.bin, for a closer look.

Without a server: `RECEIVER.py --decode BODY.bin` decodes one request body read from a file (as
the server would, after Content-Encoding), prints what the server would record about it as one
JSON object (the receiver's own fields, without the HTTP ones) and exits 0; it exits 1, printing
{"error": ...}, when the body is not the receiver's request message. This is how the Swift tests
have Spyglass's encoded bodies read by the receivers' decoders without sending them.
--tls CERT KEY serves HTTPS with that certificate chain and key (PEM files); the handshake runs in
the connection's own thread, and a client that refuses the certificate leaves no record.
"""

import argparse
import gzip
import json
import os
import select
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("records", help="JSON-lines file to append one record per request to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--status", type=int, default=None, help="answer this HTTP status instead of success")
    parser.add_argument("--fail-count", type=int, default=None, help="fail only the first N requests")
    parser.add_argument("--retry-after", type=int, default=None, help="Retry-After seconds on failures")
    parser.add_argument("--hang", action="store_true", help="never answer")
    parser.add_argument("--down-for", type=float, default=0.0, help="refuse connections for this many seconds")
    parser.add_argument("--bodies", default=None, help="folder to save each request body in, decoded (SEQ.bin)")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None,
                        help="serve HTTPS with this certificate chain and key (PEM)")
    parser.add_argument("--verbose", action="store_true", help="log each request to standard error")
    return parser


class Answer:
    """What a receiver's handler answers: status, content type, body and the record's fields."""

    def __init__(self, status, content_type="text/plain", body=b"", record=None, error=None, retry_after=None):
        self.status = status
        self.retry_after = retry_after
        self.content_type = content_type
        self.body = body
        self.record = record or {}
        self.error = error


class Records:
    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = 0

    def next_seq(self):
        with self._lock:
            self._seq += 1
            return self._seq

    def write(self, record):
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def read_body(handler):
    """The request body, de-chunked; raises ValueError on a malformed one."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = handler.rfile.readline(1024)
            if not size_line:
                raise ValueError("connection closed inside a chunked body")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(1024)
    length = int(handler.headers.get("Content-Length", "0") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def decode_content(body, encoding):
    """Undoes Content-Encoding (gzip, deflate or none); raises ValueError if it cannot."""
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError("body is not valid %s: %s" % (encoding, error))
    if encoding == "identity":
        return body
    raise ValueError("unsupported Content-Encoding %r" % encoding)


def serve(args, handle, failure):
    """Runs the server until killed.

    handle(method, path, headers, body) -> Answer, the body already decoded from its
    Content-Encoding. failure(status, message) -> Answer for the forced failures of --status.
    """
    records = Records(args.records)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of a collector

        def log_message(self, format, *rest):
            if args.verbose:
                sys.stderr.write("%s %s\n" % (self.address_string(), format % rest))

        def do_GET(self):
            self._serve()

        def do_PUT(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self):
            seq = records.next_seq()
            record = {
                "seq": seq,
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "content_encoding": self.headers.get("Content-Encoding"),
                "error": None,
            }
            try:
                raw = read_body(self)
            except (ValueError, OSError) as error:
                record.update(body_bytes=None, error="unreadable body: %s" % error, status=400, answered=True)
                records.write(record)
                self._answer(Answer(400, body=b"unreadable body"), close=True)
                return
            record["body_bytes"] = len(raw)
            try:
                body = decode_content(raw, self.headers.get("Content-Encoding"))
                if args.bodies:
                    with open(os.path.join(args.bodies, "%d.bin" % seq), "wb") as saved:
                        saved.write(body)
                answer = handle(self.command, self.path.split("?")[0], self.headers, body)
            except ValueError as error:
                answer = Answer(400, body=str(error).encode(), error=str(error))
            record.update(answer.record)
            record["error"] = answer.error
            if args.hang:
                record.update(status=None, answered=False)
                records.write(record)
                self._hold()
                return
            if args.status is not None and (args.fail_count is None or seq <= args.fail_count):
                answer = failure(args.status, "failure forced by --status %d" % args.status)
                if args.retry_after is not None:
                    answer.retry_after = args.retry_after
            record.update(status=answer.status, answered=True)
            records.write(record)
            self._answer(answer)

        def _answer(self, answer, close=False):
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            if answer.retry_after is not None:
                self.send_header("Retry-After", str(answer.retry_after))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer.body)

        def _hold(self):
            # Never answer: wait for the client to give up and close, then drop the connection.
            self.close_connection = True
            connection = self.connection
            while True:
                readable, _, _ = select.select([connection], [], [], 1.0)
                if readable:
                    try:
                        if not connection.recv(65536):
                            return
                    except OSError:
                        return

    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls[0], args.tls[1])

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def get_request(self):
            connection, address = self.socket.accept()
            if tls is not None:
                # The handshake happens at the first read, in the connection's thread.
                connection = tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
            return connection, address

        def handle_error(self, request, client_address):
            error = sys.exc_info()[1]
            if isinstance(error, (ssl.SSLError, ConnectionError)):
                if args.verbose:
                    sys.stderr.write("%s: %s\n" % (client_address[0], error))
                return
            super().handle_error(request, client_address)

    server = Server((args.host, args.port), Handler, bind_and_activate=False)
    try:
        server.server_bind()
    except OSError:
        server.server_close()
        raise
    if args.down_for > 0:
        # Bound but not listening: the kernel refuses connections to the port until listen().
        print(server.server_address[1], flush=True)
        time.sleep(args.down_for)
        server.server_activate()
    else:
        # Listening before the port is printed: a client that read it is never refused.
        server.server_activate()
        print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def decode_command(description, decode, add_arguments=None, argv=None):
    """Runs `--decode BODY`: decode(body, args) -> record (raising ValueError or a DecodeError for
    a body that is not the request); prints the record as JSON. Returns the exit status."""
    parser = argparse.ArgumentParser(description=description + ": decode one request body from a file")
    parser.add_argument("--decode", required=True, metavar="BODY", help="a request body (after Content-Encoding)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    with open(args.decode, "rb") as file:
        body = file.read()
    try:
        record = decode(body, args)
    except Exception as error:  # the receivers' decoders raise DecodeError, ValueError or their kin
        print(json.dumps({"error": "undecodable request: %s: %s" % (type(error).__name__, error)}))
        return 1
    print(json.dumps(record, sort_keys=True))
    return 0


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rpc_status(code, message):
    """A serialized google.rpc.Status{code=1, message=2}: the body of an OTLP/HTTP error."""
    text = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text
