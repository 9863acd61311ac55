//===--- UploaderTests.swift - the uploader against the real test receivers ---===//
//
// The receivers of Fixtures/ (pyroscope_receiver.py, otlp_sink.py over upload_server.py) run as
// subprocesses on 127.0.0.1 and write one JSON line per request they read; their failure modes
// (--status, --fail-count, --retry-after, --hang, --down-for, --tls) play the failing backends.
// The encoder is a fake of the tests' own: a small valid PushRequest whose service name says which
// batch it carries, so order and content can be read back from the receiver's records. Every
// wait is bounded, and the settings' timeouts are short so that the suite takes seconds. Those
// short timeouts and the retries' delays are measured, so the receivers' suite runs in test.sh's
// timing-sensitive phase, one test at a time (under phase 1's load a 1-second bound was missed).
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassModel
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import Synchronization
import TestSupport
import Testing

@testable import SpyglassExport

// MARK: - Receivers

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
  .path

/// One receiver subprocess: its port, its records, stopped (SIGKILL) when released.
private final class Receiver: @unchecked Sendable {
  let child: ChildProcess
  let folder: String
  let port: Int
  var recordsPath: String { folder + "/records.jsonl" }
  var bodies: String { folder + "/bodies" }

  init(_ script: String = "pyroscope_receiver.py", _ flags: [String] = []) async throws {
    folder = try makeScratchFolder("upload-receiver")
    try FileManager.default.createDirectory(atPath: folder + "/bodies", withIntermediateDirectories: true)
    child = try ChildProcess(
      executable: "/usr/bin/env",
      arguments: ["python3", fixtures + "/" + script, folder + "/records.jsonl", "--bodies", folder + "/bodies"]
        + flags,
      stdout: .file(folder + "/stdout"), stderr: .file(folder + "/stderr"))
    let deadline = ContinuousClock.now + .seconds(15)
    var port: Int? = nil
    while port == nil {
      let text = (try? String(contentsOfFile: folder + "/stdout", encoding: .utf8)) ?? ""
      if let line = text.split(separator: "\n").first, text.contains("\n") { port = Int(line) }
      if port == nil {
        if !child.isAlive || ContinuousClock.now > deadline {
          let errors = (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? ""
          child.stop()
          throw TestSupportError("\(script) \(flags) did not start (python3 with protobuf is needed):\n\(errors)")
        }
        try await Task.sleep(for: .milliseconds(20))
      }
    }
    self.port = port!
  }

  deinit {
    child.stop()
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// The records so far, one dictionary per request read.
  func records() -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: recordsPath, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
  }

  func body(_ seq: Int) -> [UInt8]? {
    (try? Data(contentsOf: URL(fileURLWithPath: "\(bodies)/\(seq).bin"))).map { [UInt8]($0) }
  }
}

/// The service name of each series of a Pyroscope record: which batch it carried.
private func batchNames(_ record: [String: Any]) -> [String] {
  ((record["series"] as? [[String: Any]]) ?? []).compactMap { ($0["labels"] as? [String: String])?["service_name"] }
}

private func headers(_ record: [String: Any]) -> [String: String] { (record["headers"] as? [String: String]) ?? [:] }

// MARK: - The fake encoder

/// A valid push.v1.PushRequest, written by hand: one series per profile, labelled with the
/// profile's service name, and a sample whose ID is `padding` bytes long (to size requests).
private func pushRequest(_ profiles: [IntervalProfile], padding: Int) -> [UInt8] {
  func varint(_ value: Int) -> [UInt8] {
    var value = UInt64(value)
    var out: [UInt8] = []
    while value >= 0x80 {
      out.append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    return out + [UInt8(value)]
  }
  func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(bytes.count) + bytes }
  func label(_ name: String, _ value: String) -> [UInt8] {
    field(1, field(1, Array(name.utf8)) + field(2, Array(value.utf8)))
  }
  // The least pprof Pyroscope takes: a sample type and period type cpu/nanoseconds, no samples.
  let valueType: [UInt8] = [0x08, 1, 0x10, 2]
  let pprof =
    field(1, valueType) + field(6, []) + field(6, Array("cpu".utf8)) + field(6, Array("nanoseconds".utf8))
    + field(11, valueType)
  var body: [UInt8] = []
  for profile in profiles {
    let series =
      label("__name__", "process_cpu") + label("service_name", profile.process.serviceName)
      + field(2, field(1, pprof) + field(2, [UInt8](repeating: UInt8(ascii: "x"), count: padding)))
    body += field(1, series)
  }
  return body
}

/// What the fake encoder saw: each call's format and whether it ran on the submitting thread.
private final class FakeEncoder: Sendable {
  let padding: Int
  let submitter = Mutex<pthread_t?>(nil)
  let calls = Mutex<[(UploadFormat, onSubmitter: Bool)]>([])

  init(padding: Int = 16) { self.padding = padding }

  var encode: UploadEncoder {
    { [self] (profiles, format) throws(SpyglassError) -> EncodedRequest in
      let me = pthread_self()
      let onSubmitter = submitter.withLock { $0.map { pthread_equal($0, me) != 0 } ?? false }
      calls.withLock { $0.append((format, onSubmitter)) }
      switch format {
      case .pyroscope:
        return EncodedRequest(
          path: "/push.v1.PusherService/Push", contentType: "application/proto",
          body: pushRequest(profiles, padding: padding), profileCount: profiles.count)
      case .otlp:
        // An empty ExportProfilesServiceRequest: valid, and the sink takes it.
        return EncodedRequest(
          path: "/v1development/profiles", contentType: "application/x-protobuf", body: [], profileCount: profiles.count
        )
      }
    }
  }
}

private func batch(_ names: String...) -> [IntervalProfile] {
  names.map {
    IntervalProfile(
      profile: Profile(info: RecordingInfo()),
      process: SpyglassExport.ProcessIdentity(serviceName: $0, pid: 42, hostName: "test", runtimeVersion: "3.12.1"))
  }
}

/// Sentences the uploader reported.
private final class Sentences: Sendable {
  let lines = Mutex<[String]>([])
  var report: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
  var all: [String] { lines.withLock { $0 } }
  func matching(_ part: String) -> [String] { all.filter { $0.contains(part) } }
}

/// Waits until `condition` holds, up to `seconds`; whether it did.
private func eventually(_ seconds: Double, _ condition: () -> Bool) async throws -> Bool {
  let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
  while !condition() {
    if ContinuousClock.now > deadline { return false }
    try await Task.sleep(for: .milliseconds(20))
  }
  return true
}

private func elapsed(since start: ContinuousClock.Instant) -> Double {
  let parts = (ContinuousClock.now - start).components
  return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}

private func destination(_ receiver: Receiver, _ format: UploadFormat = .pyroscope, user: String = "")
  throws -> UploadDestination
{
  try UploadDestination(url: "http://\(user)127.0.0.1:\(receiver.port)", format: format)
}

/// Settings for tests: short timeouts and back-offs.
private func quick(_ destinations: [UploadDestination]) -> UploadSettings {
  UploadSettings(
    destinations: destinations, requestTimeout: 2, connectTimeout: 1, retryInitialDelay: 0.1, retryMaxDelay: 0.4)
}

// MARK: - Against the receivers

@Suite("Uploader against the test receivers", .timeLimit(.minutes(2)))
struct UploaderTests {
  @Test("Bodies and headers arrive as sent, in order; encoding runs off the submitting thread")
  func successPath() async throws {
    let pyroscope = try await Receiver()
    let otlp = try await Receiver("otlp_sink.py")
    let encoder = FakeEncoder()
    let sentences = Sentences()
    var settings = quick([
      try destination(pyroscope, user: "alice:s3cr%40t@"), try destination(otlp, .otlp),
    ])
    settings.tenant = "tenant-a"
    settings.bearerToken = "token-1"
    let uploader = try Uploader(settings, encode: encoder.encode, report: sentences.report)
    encoder.submitter.withLock { $0 = pthread_self() }
    uploader.submit(batch("batch-0"))
    uploader.submit(batch("batch-1a", "batch-1b"))
    uploader.submit(batch("batch-2"))
    uploader.submit([])  // nothing to send: ignored
    #expect(try await eventually(10) { uploader.counts.allSatisfy { $0.sentRequests == 3 } })
    let counts = uploader.finish(within: 2)

    let records = pyroscope.records()
    try #require(records.count == 3, "\(records)")
    #expect(records.map(batchNames) == [["batch-0"], ["batch-1a", "batch-1b"], ["batch-2"]])
    for (index, record) in records.enumerated() {
      #expect(record["status"] as? Int == 200)
      #expect((record["violations"] as? [String])?.isEmpty == true, "\(record)")
      let sent = headers(record)
      #expect(record["path"] as? String == "/push.v1.PusherService/Push")
      #expect(sent["content-type"] == "application/proto")
      #expect(sent["user-agent"] == "spyglass/\(spyglassVersion)")
      #expect(sent["x-scope-orgid"] == "tenant-a")
      // The URL's user wins over the bearer token: alice:s3cr@t.
      #expect(sent["authorization"] == "Basic YWxpY2U6czNjckB0")
      #expect(sent["connect-protocol-version"] == "1")
      #expect(sent["connect-timeout-ms"] == "2000")
      let names = [["batch-0"], ["batch-1a", "batch-1b"], ["batch-2"]][index]
      let expected = pushRequest(
        names.map {
          IntervalProfile(
            profile: Profile(),
            process: SpyglassExport.ProcessIdentity(serviceName: $0, pid: 42, hostName: "test", runtimeVersion: "3"))
        }, padding: 16)
      #expect(pyroscope.body(index + 1) == expected, "body \(index + 1) differs from what was encoded")
    }
    let otlpRecords = otlp.records()
    try #require(otlpRecords.count == 3, "\(otlpRecords)")
    for record in otlpRecords {
      #expect(record["status"] as? Int == 200)
      #expect(record["path"] as? String == "/v1development/profiles")
      #expect(headers(record)["content-type"] == "application/x-protobuf")
      #expect(headers(record)["authorization"] == "Bearer token-1")
      #expect(headers(record)["connect-protocol-version"] == nil)
    }

    #expect(counts.count == 2)
    for (index, count) in counts.enumerated() {
      #expect(count.sentRequests == 3)
      #expect(count.sentProfiles == 4)
      #expect(count.queuedRequests == 0 && count.queuedBytes == 0)
      #expect(count.droppedProfiles == 0 && count.droppedBytes == 0)
      #expect(count.failedAttempts == 0)
      #expect(count.lastError == nil)
      #expect(count.url == "http://127.0.0.1:\([pyroscope.port, otlp.port][index])")
    }
    // Once per batch and format, never on the submitting thread.
    let calls = encoder.calls.withLock { $0 }
    #expect(calls.count == 6)
    #expect(calls.allSatisfy { !$0.onSubmitter })
    #expect(sentences.all.isEmpty, "\(sentences.all)")
  }

  @Test("A 500 is retried: sent once, the failed attempt counted, the recovery told")
  func retriesServerError() async throws {
    let receiver = try await Receiver("pyroscope_receiver.py", ["--status", "500", "--fail-count", "1"])
    let sentences = Sentences()
    let uploader = try Uploader(
      quick([try destination(receiver)]), encode: FakeEncoder().encode, report: sentences.report)
    uploader.submit(batch("only"))
    #expect(try await eventually(10) { uploader.counts[0].sentRequests == 1 })
    let counts = uploader.finish(within: 1)[0]
    let records = receiver.records()
    #expect(records.map { $0["status"] as? Int } == [500, 200])
    #expect(records.map(batchNames) == [["only"], ["only"]])
    #expect(receiver.body(1) == receiver.body(2))
    #expect(counts.sentRequests == 1 && counts.sentProfiles == 1)
    #expect(counts.failedAttempts == 1)
    #expect(counts.droppedProfiles == 0)
    #expect(counts.lastError?.hasPrefix("HTTP 500 Internal Server Error") == true, "\(counts)")
    let failed = sentences.matching("failed")
    #expect(failed.count == 1)
    #expect(
      failed.first?.hasPrefix("Upload to http://127.0.0.1:\(receiver.port) failed (HTTP 500 Internal Server Error")
        == true,
      "\(sentences.all)")
    #expect(failed.first?.contains("; retrying in ") == true)
    #expect(failed.first?.hasSuffix(", 1 profile queued.") == true)
    #expect(sentences.all.last == "Upload to http://127.0.0.1:\(receiver.port) works again.")
  }

  @Test("429 and 503 with Retry-After: the retry waits that long, not less")
  func honoursRetryAfter() async throws {
    let tooMany = try await Receiver(
      "pyroscope_receiver.py", ["--status", "429", "--fail-count", "1", "--retry-after", "2"])
    let unavailable = try await Receiver(
      "otlp_sink.py", ["--status", "503", "--fail-count", "1", "--retry-after", "2"])
    var settings = quick([try destination(tooMany), try destination(unavailable, .otlp)])
    settings.retryInitialDelay = 0.05  // without Retry-After, the retry would come at once
    let uploader = try Uploader(settings, encode: FakeEncoder().encode, report: Sentences().report)
    uploader.submit(batch("a"))
    #expect(try await eventually(10) { uploader.counts.allSatisfy { $0.sentRequests == 1 } })
    let counts = uploader.finish(within: 1)
    for (receiver, status) in [(tooMany, 429), (unavailable, 503)] {
      let records = receiver.records()
      try #require(records.count == 2, "\(records)")
      #expect(records.map { $0["status"] as? Int } == [status, 200])
      let gap = (records[1]["time"] as? Double ?? 0) - (records[0]["time"] as? Double ?? 0)
      #expect(gap >= 2.0 && gap < 3.5, "retried after \(gap) s, asked for 2 s (\(status))")
    }
    #expect(counts.allSatisfy { $0.failedAttempts == 1 && $0.sentProfiles == 1 })
  }

  @Test("A 400 is not retried: dropped, counted, and told in one sentence")
  func badRequestIsDropped() async throws {
    let receiver = try await Receiver("pyroscope_receiver.py", ["--status", "400"])
    let sentences = Sentences()
    let encoder = FakeEncoder()
    let uploader = try Uploader(quick([try destination(receiver)]), encode: encoder.encode, report: sentences.report)
    uploader.submit(batch("a", "b"))
    uploader.submit(batch("c"))
    #expect(try await eventually(10) { uploader.counts[0].droppedProfiles == 3 })
    try await Task.sleep(for: .milliseconds(600))  // time for a retry, were there one
    let counts = uploader.finish(within: 1)[0]
    #expect(receiver.records().map { $0["status"] as? Int } == [400, 400])
    #expect(counts.sentRequests == 0 && counts.failedAttempts == 0)
    #expect(counts.droppedProfiles == 3)
    #expect(
      counts.droppedBytes == pushRequest(batch("a", "b"), padding: 16).count
        + pushRequest(batch("c"), padding: 16).count)
    #expect(counts.queuedRequests == 0)
    #expect(counts.lastError?.hasPrefix("HTTP 400 Bad Request: {\"code\": \"invalid_argument\"") == true, "\(counts)")
    // Told once (the second refusal came within the report interval).
    let refused = sentences.matching("refused")
    #expect(refused.count == 1, "\(sentences.all)")
    #expect(
      refused.first?.hasPrefix("Upload to http://127.0.0.1:\(receiver.port) was refused (HTTP 400 Bad Request: ")
        == true)
    #expect(refused.first?.hasSuffix("; dropped 2 profiles, not retried.") == true, "\(sentences.all)")
  }

  @Test("A 404 under a base path: the path is appended to it, and the request is not retried")
  func basePathAndNotFound() async throws {
    let receiver = try await Receiver()
    let uploader = try Uploader(
      quick([try UploadDestination(url: "http://localhost:\(receiver.port)/tenant/x/", format: .pyroscope)]),
      encode: FakeEncoder().encode, report: Sentences().report)
    uploader.submit(batch("a"))
    #expect(try await eventually(10) { uploader.counts[0].droppedProfiles == 1 })
    let counts = uploader.finish(within: 1)[0]
    let records = receiver.records()
    #expect(records.map { $0["path"] as? String } == ["/tenant/x/push.v1.PusherService/Push"])
    #expect(records.map { $0["status"] as? Int } == [404])
    #expect(counts.url == "http://localhost:\(receiver.port)/tenant/x")
    #expect(counts.lastError?.hasPrefix("HTTP 404 Not Found") == true)
  }

  @Test("A backend that never answers: bounded timeout, a bounded queue dropping the oldest, submit never waits")
  func hangingBackend() async throws {
    let receiver = try await Receiver("pyroscope_receiver.py", ["--hang"])
    let sentences = Sentences()
    let encoder = FakeEncoder(padding: 1000)
    let requestBytes = pushRequest(batch("batch-00"), padding: 1000).count
    var settings = quick([try destination(receiver)])
    settings.requestTimeout = 0.5
    settings.queueLimitBytes = requestBytes * 3 + requestBytes / 2  // three requests fit
    let uploader = try Uploader(settings, encode: encoder.encode, report: sentences.report)
    let started = ContinuousClock.now
    var slowest = 0.0
    for index in 0..<10 {
      let before = ContinuousClock.now
      uploader.submit(batch(String(format: "batch-%02d", index)))
      slowest = max(slowest, elapsed(since: before))
      try await Task.sleep(for: .milliseconds(30))
    }
    #expect(slowest < 0.05, "submit took \(slowest) s")
    #expect(try await eventually(5) { uploader.counts[0].failedAttempts >= 1 })
    let firstFailure = elapsed(since: started)
    #expect(firstFailure >= 0.5 && firstFailure < 2, "the first timeout came after \(firstFailure) s")
    var counts = uploader.counts[0]
    #expect(counts.lastError == "no answer within 0.5 s")
    #expect(counts.queuedRequests == 3, "\(counts)")
    #expect(counts.queuedBytes == 3 * requestBytes)
    #expect(counts.droppedProfiles == 7 && counts.droppedBytes == 7 * requestBytes)
    #expect(counts.sentRequests == 0)
    // The oldest, batch-00, was on the wire and is kept; the next oldest went.
    let tried = Set(receiver.records().flatMap(batchNames))
    #expect(tried == ["batch-00"], "\(tried)")
    #expect(sentences.matching("is full").first?.contains("dropped the oldest") == true, "\(sentences.all)")
    #expect(sentences.matching("failed (no answer within 0.5 s); retrying in").count == 1, "\(sentences.all)")

    let finishing = ContinuousClock.now
    counts = uploader.finish(within: 0.3)[0]
    #expect(elapsed(since: finishing) < 1.0, "finish took \(elapsed(since: finishing)) s")
    #expect(counts.queuedRequests == 0 && counts.queuedBytes == 0)
    #expect(counts.droppedProfiles == 10 && counts.droppedBytes == 10 * requestBytes)
  }

  @Test("A backend down for a while: connection refused at once, then everything queued drains in order")
  func downThenBack() async throws {
    let receiver = try await Receiver("pyroscope_receiver.py", ["--down-for", "3"])
    let sentences = Sentences()
    var settings = quick([try destination(receiver)])
    settings.retryInitialDelay = 0.2
    settings.retryMaxDelay = 0.5
    let uploader = try Uploader(settings, encode: FakeEncoder().encode, report: sentences.report)
    let started = ContinuousClock.now
    uploader.submit(batch("b0"))
    #expect(try await eventually(5) { uploader.counts[0].failedAttempts >= 1 })
    #expect(elapsed(since: started) < 1.0, "a refused connection took \(elapsed(since: started)) s to surface")
    #expect(uploader.counts[0].lastError == "connection refused")
    for index in 1..<5 {
      uploader.submit(batch("b\(index)"))
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(try await eventually(10) { uploader.counts[0].sentRequests == 5 })
    let counts = uploader.finish(within: 1)[0]
    #expect(receiver.records().map(batchNames) == [["b0"], ["b1"], ["b2"], ["b3"], ["b4"]])
    #expect(counts.droppedProfiles == 0 && counts.sentProfiles == 5)
    #expect(counts.failedAttempts >= 3)
    #expect(sentences.all.first?.contains("failed (connection refused); retrying in") == true, "\(sentences.all)")
    #expect(sentences.all.last == "Upload to http://127.0.0.1:\(receiver.port) works again.")
  }

  @Test("Two destinations: one hangs, the other is not held up")
  func failingDestinationDelaysNoOther() async throws {
    let hanging = try await Receiver("pyroscope_receiver.py", ["--hang"])
    let working = try await Receiver()
    var settings = quick([try destination(hanging), try destination(working)])
    settings.requestTimeout = 5
    let uploader = try Uploader(settings, encode: FakeEncoder().encode, report: Sentences().report)
    let started = ContinuousClock.now
    for index in 0..<3 {
      uploader.submit(batch("b\(index)"))
      try await Task.sleep(for: .milliseconds(50))
    }
    #expect(try await eventually(3) { uploader.counts[1].sentRequests == 3 })
    #expect(elapsed(since: started) < 2, "the working destination took \(elapsed(since: started)) s")
    #expect(working.records().map(batchNames) == [["b0"], ["b1"], ["b2"]])
    #expect(uploader.counts[0].sentRequests == 0)
    #expect(uploader.counts[0].queuedRequests == 3)
    let finishing = ContinuousClock.now
    let counts = uploader.finish(within: 0.5)
    let took = elapsed(since: finishing)
    #expect(took >= 0.4 && took < 1.5, "finish(within: 0.5) took \(took) s")
    #expect(counts[0].droppedProfiles == 3 && counts[0].queuedRequests == 0)
    #expect(counts[1].sentProfiles == 3 && counts[1].droppedProfiles == 0)
  }

  @Test("finish sends what is queued and returns as soon as it is sent; later submissions are ignored")
  func finishDrains() async throws {
    let receiver = try await Receiver()
    let uploader = try Uploader(quick([try destination(receiver)]), encode: FakeEncoder().encode)
    for index in 0..<5 { uploader.submit(batch("b\(index)")) }
    let finishing = ContinuousClock.now
    let counts = uploader.finish(within: 5)[0]
    #expect(elapsed(since: finishing) < 3, "finish took \(elapsed(since: finishing)) s")
    #expect(counts.sentRequests == 5 && counts.droppedProfiles == 0 && counts.queuedRequests == 0)
    #expect(receiver.records().map(batchNames) == [["b0"], ["b1"], ["b2"], ["b3"], ["b4"]])
    uploader.submit(batch("late"))
    #expect(uploader.finish(within: 1) == [counts])
    #expect(receiver.records().count == 5)
  }

  @Test("HTTPS: trusted through caFile, refused without it with a clear sentence")
  func https() async throws {
    let folder = try makeScratchFolder("upload-tls")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try makeTestCertificates(in: folder)
    let receiver = try await Receiver(
      "pyroscope_receiver.py", ["--tls", folder + "/server.pem", folder + "/server.key"])
    let url = "https://localhost:\(receiver.port)"

    var trusted = quick([try UploadDestination(url: url, format: .pyroscope)])
    trusted.caFile = folder + "/ca.pem"
    let good = try Uploader(trusted, encode: FakeEncoder().encode, report: Sentences().report)
    good.submit(batch("over-tls"))
    #expect(try await eventually(10) { good.counts[0].sentRequests == 1 })
    #expect(good.finish(within: 1)[0].failedAttempts == 0)
    #expect(receiver.records().map(batchNames) == [["over-tls"]])

    let sentences = Sentences()
    let bad = try Uploader(
      quick([try UploadDestination(url: url, format: .pyroscope)]), encode: FakeEncoder().encode,
      report: sentences.report)
    bad.submit(batch("untrusted"))
    #expect(try await eventually(10) { bad.counts[0].failedAttempts >= 1 })
    let counts = bad.finish(within: 0.2)[0]
    #expect(counts.sentRequests == 0 && counts.droppedProfiles == 1)
    #expect(counts.lastError?.contains("certificate is not trusted") == true, "\(counts)")
    #expect(
      sentences.all.first?.hasPrefix("Upload to \(url) failed (the server's certificate is not trusted") == true,
      "\(sentences.all)")
    #expect(receiver.records().count == 1)

    // A CA file that is not there, or not PEM: a sentence before anything starts.
    #expect(
      throws: SpyglassError.uploadCAFileUnreadable(path: folder + "/none.pem", reason: "No such file or directory")
    ) {
      var settings = trusted
      settings.caFile = folder + "/none.pem"
      _ = try Uploader(settings, encode: FakeEncoder().encode)
    }
    #expect {
      var settings = trusted
      settings.caFile = folder + "/server.csr"
      _ = try Uploader(settings, encode: FakeEncoder().encode)
    } throws: { error in
      (error as? SpyglassError)?.kind == "upload_ca_file_unreadable"
    }
  }

  @Test("Names resolved from /etc/hosts (localhost and another) reach the receiver")
  func hostsFileNames() async throws {
    let receiver = try await Receiver()
    let hosts = try String(contentsOfFile: "/etc/hosts", encoding: .utf8)
    let names = hosts.split(separator: "\n").flatMap { line -> [String] in
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard fields.first == "127.0.0.1" else { return [] }
      return fields.dropFirst().prefix(while: { !$0.hasPrefix("#") }).map(String.init)
    }
    let other = try #require(
      names.first { $0 != "localhost" }, "/etc/hosts names nothing but localhost for 127.0.0.1: \(hosts)")
    let uploader = try Uploader(
      quick([
        try UploadDestination(url: "http://localhost:\(receiver.port)", format: .pyroscope),
        try UploadDestination(url: "http://\(other):\(receiver.port)", format: .pyroscope),
      ]), encode: FakeEncoder().encode, report: Sentences().report)
    uploader.submit(batch("by-name"))
    #expect(try await eventually(10) { uploader.counts.allSatisfy { $0.sentRequests == 1 } })
    _ = uploader.finish(within: 1)
    #expect(
      Set(receiver.records().compactMap { headers($0)["host"] }) == [
        "localhost:\(receiver.port)", "\(other):\(receiver.port)",
      ])
  }
}

/// A test CA and a certificate for localhost and 127.0.0.1 signed by it, made with openssl.
private func makeTestCertificates(in folder: String) throws {
  guard let openssl = findOnPath("openssl") else {
    throw TestSupportError("openssl is not installed (apt-get install openssl)")
  }
  try "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".write(
    toFile: folder + "/server.ext", atomically: true, encoding: .utf8)
  let steps: [[String]] = [
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
      folder + "/ca.key", "-out", folder + "/ca.pem", "-days", "2", "-subj", "/CN=Spyglass test CA", "-addext",
      "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ],
    [
      "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", folder + "/server.key",
      "-out", folder + "/server.csr", "-subj", "/CN=localhost",
    ],
    [
      "x509", "-req", "-in", folder + "/server.csr", "-CA", folder + "/ca.pem", "-CAkey", folder + "/ca.key",
      "-CAcreateserial", "-out", folder + "/server.pem", "-days", "2", "-extfile", folder + "/server.ext",
    ],
  ]
  for step in steps {
    let result = try runCommand(openssl, step, timeout: .seconds(30))
    guard result.exitCode == 0 else { throw TestSupportError("openssl failed:\n\(result)") }
  }
}

// MARK: - The pure parts

@Suite("Uploader: URLs, retry policy, queue")
struct UploaderUnitTests {
  @Test("Upload URLs: what is kept, and a sentence for what is refused")
  func destinations() throws {
    let plain = try UploadDestination(url: "http://collector:4040", format: .pyroscope)
    #expect((plain.scheme, plain.host, plain.port, plain.basePath) == ("http", "collector", 4040, ""))
    #expect(plain.requestURL(path: "/push.v1.PusherService/Push") == "http://collector:4040/push.v1.PusherService/Push")
    #expect(plain.basicAuthorization == nil)

    let full = try UploadDestination(url: "HTTPS://u%20se:p%40ss%3A@Example.org/base/path//", format: .otlp)
    #expect((full.scheme, full.host, full.port, full.basePath) == ("https", "Example.org", 443, "/base/path"))
    #expect(full.url == "https://Example.org/base/path")
    #expect(full.basicAuthorization == "Basic " + base64(Array("u se:p@ss:".utf8)))
    #expect(
      full.requestURL(path: "/v1development/profiles") == "https://Example.org:443/base/path/v1development/profiles")

    let v6 = try UploadDestination(url: "http://[::1]:9/", format: .otlp)
    #expect((v6.host, v6.port, v6.url) == ("::1", 9, "http://[::1]:9"))
    #expect(v6.requestURL(path: "/x") == "http://[::1]:9/x")

    let refused: [(String, String)] = [
      ("collector:4040", "it must start with http:// or https://"),
      ("ftp://host", "the scheme 'ftp' is not supported: use http:// or https://"),
      ("http://", "it names no host"),
      ("http://:80/x", "it names no host"),
      ("http://host:0", "the port '0' is not a number from 1 to 65535"),
      ("http://host:99999", "the port '99999' is not a number from 1 to 65535"),
      ("http://host:", "it has a ':' but no port after it"),
      ("http://host/x?tenant=a", "a query (?…) or fragment (#…) cannot be sent with uploads: give the base URL only"),
      ("http://ho st", "it contains a space (write it as %20)"),
      ("http://h_ost!", "its host name contains '!'"),
      ("http://[::1", "its IPv6 address has no closing ']'"),
      ("http://host/a b", "it contains a space (write it as %20)"),
      ("http://host/a<b", "its path contains '<' (percent-encode it)"),
      ("http://@host", "it has an '@' but no user name before it"),
      ("http://u:%zz@host", "its user name or password has a % not followed by two hexadecimal digits"),
      ("http://a%3Ab:c@host", "its user name contains ':', which basic authentication cannot carry"),
    ]
    for (url, reason) in refused {
      // The URL is shown without its password.
      #expect(throws: SpyglassError.invalidUploadURL(url: UploadDestination.redacted(url), reason: reason)) {
        _ = try UploadDestination(url: url, format: .pyroscope)
      }
    }
    // The password never shows.
    do {
      _ = try UploadDestination(url: "ftp://user:hunter2@host/", format: .pyroscope)
      Issue.record("ftp:// was taken")
    } catch {
      #expect(
        error.description
          == "The upload URL 'ftp://user:***@host/' cannot be used: the scheme 'ftp' is not supported: use http:// or https://."
      )
      #expect(error.kind == "invalid_upload_url")
    }
    #expect(UploadDestination.redacted("https://token@host") == "https://***@host")
    #expect(UploadDestination.redacted("http://u:%zz@host/p@q") == "http://u:***@host/p@q")
    #expect(UploadDestination.redacted("http://host/a") == "http://host/a")

    #expect(throws: SpyglassError.invalidUploadHeader(name: "X-Scope-OrgID", reason: "its value contains a line break"))
    {
      _ = try Uploader(
        UploadSettings(destinations: [plain], tenant: "a\r\nX-Evil: 1"), encode: FakeEncoder().encode)
    }
    #expect(
      throws: SpyglassError.invalidUploadHeader(
        name: "Bad Name", reason: "a header name is letters, digits and !#$%&'*+-.^_`|~ only")
    ) {
      _ = try UploadDestination(url: "http://host", format: .otlp, headers: [Label("Bad Name", "x")])
    }
  }

  @Test("Retry policy: which answers are retried, back-off bounds, Retry-After forms")
  func retryPolicy() {
    func outcome(_ status: Int, _ retryAfter: String? = nil) -> AttemptOutcome {
      RetryPolicy.outcome(status: status, reasonPhrase: "", retryAfter: retryAfter, excerpt: "", nowUnixSeconds: 0)
    }
    #expect(outcome(200) == .sent)
    #expect(outcome(204) == .sent)
    for status in [408, 429, 500, 502, 503, 504] {
      #expect(outcome(status) == .retry(reason: "HTTP \(status)", retryAfter: nil))
    }
    #expect(outcome(503, "7") == .retry(reason: "HTTP 503", retryAfter: 7))
    for status in [400, 401, 403, 404, 413, 415] {
      #expect(outcome(status) == .rejected(reason: "HTTP \(status)"))
    }
    #expect(outcome(301) == .rejected(reason: "HTTP 301 (redirects are not followed: give the URL it points to)"))

    #expect(RetryPolicy.backoff(failures: 1, initial: 1, maximum: 60, random: 1) == 1)
    #expect(RetryPolicy.backoff(failures: 1, initial: 1, maximum: 60, random: 0) == 0.5)
    #expect(RetryPolicy.backoff(failures: 4, initial: 1, maximum: 60, random: 1) == 8)
    #expect(RetryPolicy.backoff(failures: 7, initial: 1, maximum: 60, random: 1) == 60)
    #expect(RetryPolicy.backoff(failures: 10_000, initial: 1, maximum: 60, random: 0.5) == 45)

    let date = 784_111_777.0  // Sun, 06 Nov 1994 08:49:37 GMT
    #expect(RetryPolicy.delay(retryAfter: "120", nowUnixSeconds: 0) == 120)
    #expect(RetryPolicy.delay(retryAfter: " 0 ", nowUnixSeconds: 0) == 0)
    #expect(RetryPolicy.delay(retryAfter: "Sun, 06 Nov 1994 08:49:37 GMT", nowUnixSeconds: date - 30) == 30)
    #expect(RetryPolicy.delay(retryAfter: "Sunday, 06-Nov-94 08:49:37 GMT", nowUnixSeconds: date - 30) == 30)
    #expect(RetryPolicy.delay(retryAfter: "Sun Nov  6 08:49:37 1994", nowUnixSeconds: date - 30) == 30)
    #expect(RetryPolicy.delay(retryAfter: "Sun, 06 Nov 1994 08:49:37 GMT", nowUnixSeconds: date + 30) == 0)
    #expect(RetryPolicy.httpDate("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
    #expect(RetryPolicy.httpDate("Tue, 29 Feb 2028 23:59:59 GMT") == 1_835_481_599)
    for garbage in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"] {
      #expect(RetryPolicy.delay(retryAfter: garbage, nowUnixSeconds: 0) == nil, "\(garbage)")
    }
  }

  @Test("The queue drops the oldest to stay within bytes and count, never the request on the wire")
  func queue() {
    func request(_ bytes: Int, profiles: Int = 1) -> EncodedRequest {
      EncodedRequest(
        path: "/p", contentType: "t", body: [UInt8](repeating: UInt8(bytes % 256), count: bytes), profileCount: profiles
      )
    }
    var queue = UploadQueue(limitBytes: 100, limitRequests: 3)
    #expect(queue.append(request(40, profiles: 2), keepFirst: false) == .init())
    #expect(queue.append(request(40), keepFirst: false) == .init())
    #expect(queue.append(request(30), keepFirst: true) == .init(requests: 1, profiles: 1, bytes: 40))
    #expect((queue.count, queue.bytes, queue.profiles) == (2, 70, 3))
    #expect(queue.first?.body.count == 40)  // the one on the wire stayed
    #expect(queue.append(request(10), keepFirst: false) == .init())
    #expect(queue.append(request(20), keepFirst: false) == .init(requests: 1, profiles: 2, bytes: 40))  // count limit
    #expect(queue.removeFirst().body.count == 30)
    #expect(queue.append(request(500), keepFirst: false) == .init(requests: 3, profiles: 3, bytes: 530))
    #expect(queue.isEmpty && queue.bytes == 0)
    #expect(queue.append(request(60), keepFirst: false) == .init())
    #expect(queue.append(request(200), keepFirst: true) == .init(requests: 1, profiles: 1, bytes: 200))
    #expect(queue.removeAll() == .init(requests: 1, profiles: 1, bytes: 60))
    // Many pass through: memory is given back as they go.
    for index in 0..<1000 {
      _ = queue.append(request(1), keepFirst: false)
      if index % 2 == 1 { _ = queue.removeFirst() }
    }
    #expect(queue.count == 2)
  }

  @Test("Wakeup: a notification is never lost, a deadline ends the wait")
  func wakeup() {
    let wakeup = Wakeup()
    wakeup.notify()
    let start = monotonicNanoseconds()
    wakeup.wait(until: nil)  // the earlier notification ends it at once
    wakeup.wait(until: monotonicNanoseconds() + 50_000_000)
    let waited = Double(monotonicNanoseconds() - start) / 1e9
    #expect(waited >= 0.05 && waited < 1, "\(waited)")
  }
}
