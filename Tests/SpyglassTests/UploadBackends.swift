//===--- UploadBackends.swift - test receivers and a real collector, started and stopped ---===//
//
// What the upload tests send to, in one place so every upload test starts and stops them the same
// way:
//
// - `UploadReceiver`: one of the Python test receivers of Fixtures/ (`pyroscope_receiver.py`, a
//   Pyroscope Push API; `otlp_sink.py`, an OTLP/HTTP profiles endpoint) as a subprocess on a free
//   port of 127.0.0.1, with the receiver's flags (`--status 503 --fail-count 1`, `--hang`, …:
//   upload_server.py lists them). `records()` reads the JSON line it writes per request (what it
//   decoded and what a real backend would refuse, in `violations`).
// - `OTelCollector`: the real OpenTelemetry Collector (0.152, built and cached by
//   tools/otel-collector.sh) running tools/otel-collector/profiles.yaml: its OTLP/HTTP receiver
//   on a free port, forwarding every profiles request (otlp_http exporter, no queue, no retries)
//   to a receiver, normally an `otlp_sink.py`.
// - `UploadDecoders.decode`: a receiver's decoder run on one body without a server
//   (`--decode BODY`), and `UploadDecoders.post`: a body POSTed with Python's urllib.
//
// Everything started is stopped by `stop()` (SIGTERM, then SIGKILL and a reap), which deinit also
// calls, so a test that fails half way leaves nothing running; its temporary folder goes with it.
// A missing checker (python3, PyPI's opentelemetry-proto, the collector binary) throws an error
// that says how to get it: test.sh installs and builds all of them.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassExport
import TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The folder of the receivers (the test bundle's Fixtures, else the source tree's).
let uploadFixtures = URL(fileURLWithPath: Fixture.directory).deletingLastPathComponent().path

/// The environment the Python helpers run with: ours, without bytecode files in the fixtures.
private func pythonEnvironment() -> [String: String] {
  var environment = ProcessInfo.processInfo.environment
  environment["PYTHONDONTWRITEBYTECODE"] = "1"
  environment["PYTHONIOENCODING"] = "utf-8"
  return environment
}

private func python3() throws -> String {
  guard let python = findOnPath("python3") else {
    throw TestSupportError("python3 is not on PATH (the upload receivers run on it; test.sh installs their packages)")
  }
  return python
}

/// A port nothing listens on now (the kernel's pick for a socket bound to 127.0.0.1:0).
func freeLocalPort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw TestSupportError("socket failed: \(String(cString: strerror(errno)))") }
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
      bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
    }
  }
  guard bound else { throw TestSupportError("bind failed: \(String(cString: strerror(errno)))") }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func acceptsConnections(port: Int) -> Bool {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { return false }
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = UInt16(port).bigEndian
  return withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
    }
  }
}

private func text(ofFile path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

/// A Python test receiver (see the file's header), listening until stopped.
final class UploadReceiver {
  /// Which receiver: the Push API or OTLP/HTTP profiles.
  let format: UploadFormat
  let port: Int
  /// `http://127.0.0.1:PORT`: the `--upload` URL of a test (the receivers serve their paths under it).
  var url: String { "http://127.0.0.1:\(port)" }
  /// The folder of its records, output and (with `--bodies`) saved bodies.
  let directory: String
  let recordsPath: String
  private let child: ChildProcess
  private let stdoutPath: String
  private let stderrPath: String

  /// The receiver's script in Fixtures.
  static func script(_ format: UploadFormat) -> String {
    switch format {
    case .pyroscope: uploadFixtures + "/pyroscope_receiver.py"
    case .otlp: uploadFixtures + "/otlp_sink.py"
    }
  }

  /// Starts the receiver of `format` with `flags` and waits (up to `timeout`) for the port it
  /// prints. Throws with its standard error if it does not start.
  init(_ format: UploadFormat, flags: [String] = [], timeout: Duration = .seconds(30)) throws {
    self.format = format
    directory = try makeTemporaryDirectory("spyglass-\(format.rawValue)-receiver")
    recordsPath = directory + "/records.jsonl"
    stdoutPath = directory + "/stdout"
    stderrPath = directory + "/stderr"
    do {
      child = try ChildProcess(
        executable: try python3(), arguments: [Self.script(format), recordsPath] + flags,
        environment: pythonEnvironment(), stdout: .file(stdoutPath), stderr: .file(stderrPath))
    } catch {
      removeDirectory(directory)
      throw error
    }
    let deadline = ContinuousClock.now + timeout
    var port: Int?
    while port == nil {
      if let line = text(ofFile: stdoutPath).split(separator: "\n").first, let number = Int(line) {
        port = number
      } else if !child.isAlive || ContinuousClock.now >= deadline {
        let why =
          child.isAlive ? "printed no port in \(timeout)" : "exited (\(child.exitStatus.map { "\($0)" } ?? "?"))"
        let message = "\(Self.script(format)) \(why):\n\(text(ofFile: stderrPath))"
        child.stop()
        removeDirectory(directory)
        throw TestSupportError(message)
      } else {
        usleep(10_000)
      }
    }
    self.port = port!
  }

  deinit { stop() }

  /// Every record written so far, one per request, in order.
  func records() throws -> [[String: Any]] {
    try text(ofFile: recordsPath).split(separator: "\n").map { line in
      guard let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw TestSupportError("a record that is not a JSON object: \(line)")
      }
      return record
    }
  }

  /// The records once there are at least `count` (nil if there are fewer after `timeout`).
  func waitForRecords(_ count: Int, timeout: Duration = .seconds(30)) throws -> [[String: Any]]? {
    let deadline = ContinuousClock.now + timeout
    while true {
      let records = try self.records()
      if records.count >= count { return records }
      if ContinuousClock.now >= deadline || !child.isAlive { return nil }
      usleep(20_000)
    }
  }

  /// What it printed on standard error (with `--verbose`, a line per request).
  var stderrText: String { text(ofFile: stderrPath) }

  /// Stops it (SIGTERM, then SIGKILL) and removes its folder. Idempotent.
  func stop() {
    if child.isAlive {
      child.signal(SIGTERM)
      _ = child.wait(timeout: .seconds(5))
    }
    child.stop()
    removeDirectory(directory)
  }
}

/// The real OpenTelemetry Collector in front of a receiver (see the file's header).
final class OTelCollector {
  /// The port of its OTLP/HTTP receiver on 127.0.0.1.
  let port: Int
  /// `http://127.0.0.1:PORT`: where to POST `/v1development/profiles`.
  var url: String { "http://127.0.0.1:\(port)" }
  private let child: ChildProcess
  private let directory: String
  private let logPath: String

  /// The binary: `$SPYGLASS_OTELCOL`, else where tools/otel-collector.sh caches it. Throws, saying
  /// how to build it, when it is missing.
  static func binary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["SPYGLASS_OTELCOL"], !path.isEmpty {
      guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestSupportError("SPYGLASS_OTELCOL=\(path) is not an executable file")
      }
      return path
    }
    let script = RepositoryFiles.path("tools/otel-collector.sh")
    let printed = try runCommand(script, ["--print"], timeout: .seconds(30))
    let path = printed.stdout.split(separator: "\n").last.map(String.init) ?? ""
    guard printed.exitCode == 0, FileManager.default.isExecutableFile(atPath: path) else {
      throw TestSupportError(
        "the OpenTelemetry Collector is not built (expected at '\(path)'): run tools/otel-collector.sh "
          + "(test.sh does), or set SPYGLASS_OTELCOL\n\(printed)")
    }
    return path
  }

  /// Starts the collector with tools/otel-collector/profiles.yaml forwarding to `sinkURL` (a
  /// receiver's `url`), and waits up to `timeout` for its receiver to accept connections.
  /// `logLevel` and `debugVerbosity` go to the config's OTELCOL_LOG_LEVEL and
  /// OTELCOL_DEBUG_VERBOSITY (`detailed` logs every sample).
  init(
    forwardingTo sinkURL: String, logLevel: String = "info", debugVerbosity: String = "basic",
    timeout: Duration = .seconds(30)
  ) throws {
    let binary = try Self.binary()
    directory = try makeTemporaryDirectory("spyglass-otelcol")
    logPath = directory + "/collector.log"
    var started: (ChildProcess, Int)?
    var failures: [String] = []
    // The port is free when picked but could be taken before the collector binds it: try again.
    for _ in 0..<3 where started == nil {
      let port: Int
      let child: ChildProcess
      do {
        port = try freeLocalPort()
        var environment = ProcessInfo.processInfo.environment
        environment["OTELCOL_HTTP_PORT"] = String(port)
        environment["OTELCOL_SINK"] = sinkURL
        environment["OTELCOL_LOG_LEVEL"] = logLevel
        environment["OTELCOL_DEBUG_VERBOSITY"] = debugVerbosity
        child = try ChildProcess(
          executable: binary,
          arguments: [
            "--config=" + RepositoryFiles.path("tools/otel-collector/profiles.yaml"),
            "--feature-gates=+service.profilesSupport",
          ], environment: environment, stdout: .file(logPath), stderr: .file(logPath + ".stderr"))
      } catch {
        removeDirectory(directory)
        throw error
      }
      let deadline = ContinuousClock.now + timeout
      while child.isAlive && ContinuousClock.now < deadline && !acceptsConnections(port: port) { usleep(10_000) }
      if child.isAlive && acceptsConnections(port: port) {
        started = (child, port)
      } else {
        failures.append(
          "collector on port \(port): \(child.isAlive ? "not listening after \(timeout)" : "exited")\n"
            + text(ofFile: logPath + ".stderr"))
        child.stop()
      }
    }
    guard let (child, port) = started else {
      removeDirectory(directory)
      throw TestSupportError("the collector did not start:\n" + failures.joined(separator: "\n"))
    }
    self.child = child
    self.port = port
  }

  deinit { stop() }

  /// Its log (the collector logs to standard error).
  var log: String { text(ofFile: logPath) + text(ofFile: logPath + ".stderr") }

  /// Stops it (SIGTERM: it shuts its pipeline down; then SIGKILL) and removes its folder. Idempotent.
  func stop() {
    if child.isAlive {
      child.signal(SIGTERM)
      _ = child.wait(timeout: .seconds(10))
    }
    child.stop()
    removeDirectory(directory)
  }
}

/// The receivers' decoders on a body, and a plain POST.
enum UploadDecoders {
  /// The record the receiver of `format` makes of `body` (`RECEIVER.py --decode`), as a JSON
  /// object. With `profilesDirectory`, Pyroscope's raw profiles are saved there (each profile's
  /// `file`). Throws when the receiver cannot decode the body.
  static func decode(_ body: [UInt8], as format: UploadFormat, profilesDirectory: String? = nil) throws
    -> [String: Any]
  {
    let folder = try makeTemporaryDirectory("spyglass-decode")
    defer { removeDirectory(folder) }
    let file = folder + "/body.bin"
    try Data(body).write(to: URL(fileURLWithPath: file))
    var arguments = [UploadReceiver.script(format), "--decode", file]
    if let profilesDirectory { arguments += ["--profiles", profilesDirectory] }
    let result = try runCommand(try python3(), arguments, timeout: .seconds(120), environment: pythonEnvironment())
    guard result.exitCode == 0,
      let record = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw TestSupportError("the \(format.rawValue) receiver could not decode the body:\n\(result)") }
    return record
  }

  /// POSTs `body` to `url` with `contentType` (Python's urllib); the status and the answer's
  /// length. A refused connection or a timeout throws.
  static func post(_ body: [UInt8], to url: String, contentType: String, timeout: Duration = .seconds(30)) throws
    -> (status: Int, answerBytes: Int)
  {
    let folder = try makeTemporaryDirectory("spyglass-post")
    defer { removeDirectory(folder) }
    let file = folder + "/body.bin"
    try Data(body).write(to: URL(fileURLWithPath: file))
    let script = """
      import sys, urllib.error, urllib.request
      url, path, kind, seconds = sys.argv[1:5]
      request = urllib.request.Request(url, data=open(path, "rb").read(), headers={"Content-Type": kind}, method="POST")
      try:
          with urllib.request.urlopen(request, timeout=float(seconds)) as answer:
              print(answer.status, len(answer.read()))
      except urllib.error.HTTPError as error:
          print(error.code, len(error.read()))
      """
    let result = try runCommand(
      try python3(), ["-c", script, url, file, contentType, String(Int(seconds(timeout)))],
      timeout: timeout + .seconds(10), environment: pythonEnvironment())
    let fields = result.stdout.split(separator: " ").compactMap {
      Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    guard result.exitCode == 0, fields.count == 2 else { throw TestSupportError("POST \(url) failed:\n\(result)") }
    return (fields[0], fields[1])
  }

  private static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
  }
}
