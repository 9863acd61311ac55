//===--- ContinuousProfilingTests.swift - record --upload and the agent, end to end ---===//
//
// The built spyglass uploading what it samples from real Python processes to its real consumers:
//   - `record --pid --upload` to a Pyroscope Push API receiver (its own decoder, written from
//     Pyroscope's published field numbers) and, with `--upload-format otlp`, to the real
//     OpenTelemetry Collector, which forwards to a sink decoding with PyPI's opentelemetry-proto:
//     the known-share workload's hot function at its true share (within 3 points), every sample
//     taken uploaded once (the counts equal those of the `-o` file written beside), the labels and
//     resource attributes the issue names, nothing a backend would refuse;
//   - `record --upload -- python ...` with `--native` and `--idle`: the launched program's
//     profile is uploaded too;
//   - `agent` on a changing host: 20 processes of every interpreter installed (chrooted Debian
//     builds included) starting and exiting while it runs, with four backends at once: a healthy
//     one, one down for the first 60 s, one answering 500, one that never answers. The rate holds,
//     every process gets its profile and labels, the late backend gets everything once it is up,
//     SIGTERM uploads the last interval and ends the agent within its bound.
// The suite runs in test.sh's timing-sensitive phase (one test at a time): the shares and the
// agent's achieved rate are measured.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassExport
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

private func interpreter(_ label: String) throws -> PythonInterpreter {
  guard let python = PythonInterpreter.all().first(where: { $0.label == label }) else {
    throw TestSupportError("interpreter \(label) is not installed; \(PythonInterpreter.coverageReport)")
  }
  return python
}

/// The f/g workload of bench/harness (f ≈ 75% of the CPU time), started and its window opened.
private final class KnownShareTarget {
  let process: PythonProcess
  let truthPath: String

  init(directory: String) throws {
    let workload = RepositoryFiles.path("bench/harness/workloads/accuracy_target.py")
    truthPath = directory + "/truth.json"
    process = try PythonProcess(
      try interpreter("3.12.1"), script: workload,
      arguments: ["--out", truthPath, "--cycle-ms", "10", "--seconds", "150"],
      isReady: { $0.hasPrefix("ready") }, timeout: .seconds(30))
    process.child.signal(SIGUSR1)
  }

  /// Closes the window; the target's CPU-time share of f among f and g.
  func truth() throws -> Double {
    process.child.signal(SIGUSR2)
    _ = process.child.wait(timeout: .seconds(20))
    let data = try #require(FileManager.default.contents(atPath: truthPath), "no truth: \(process.stderrText)")
    let truth = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let f = try #require(truth["cpu_f"] as? Double)
    let g = try #require(truth["cpu_g"] as? Double)
    return f / (f + g)
  }
}

/// One uploaded sample, whichever the format: its stack's function names (root first), its value
/// in nanoseconds and its labels or attributes.
private struct UploadedSample {
  let functions: [String]
  let files: [String]
  let value: Int
  let labels: [String: String]
}

/// One uploaded profile of one process.
private struct UploadedProfile {
  /// Pyroscope series labels, or OTLP resource attributes (as text).
  let labels: [String: String]
  let period: Int
  let timeNanos: Int
  let durationNanos: Int
  let samples: [UploadedSample]
}

private func text(_ value: Any?) -> String {
  switch value {
  case let string as String: string
  case let number as NSNumber: number.stringValue
  case nil: ""
  case let other?: "\(other)"
  }
}

/// The profiles of Pyroscope receiver records; fails the test on a violation.
private func pyroscopeProfiles(_ records: [[String: Any]]) -> [UploadedProfile] {
  var out: [UploadedProfile] = []
  for record in records {
    #expect((record["violations"] as? [Any] ?? []).isEmpty, "\(record["violations"] ?? "")")
    #expect(text(record["content_type"]) == "application/proto")
    #expect(text(record["connect_protocol_version"]) == "1")
    for series in record["series"] as? [[String: Any]] ?? [] {
      let labels = (series["labels"] as? [String: Any] ?? [:]).mapValues(text)
      for profile in series["profiles"] as? [[String: Any]] ?? [] {
        #expect(profile["sample_types"] as? [String] == ["cpu/nanoseconds"], "\(profile["sample_types"] ?? "")")
        #expect(profile["gzipped"] as? Bool == true)
        let samples = (profile["samples"] as? [[String: Any]] ?? []).map { sample in
          let frames = (sample["frames"] as? [[String: Any]] ?? []).reversed()
          return UploadedSample(
            functions: frames.map { text($0["name"]) }, files: frames.map { text($0["file"]) },
            value: (sample["values"] as? [Int])?.first ?? 0,
            labels: (sample["labels"] as? [String: Any] ?? [:]).mapValues(text))
        }
        out.append(
          UploadedProfile(
            labels: labels, period: profile["period"] as? Int ?? 0, timeNanos: profile["time_nanos"] as? Int ?? 0,
            durationNanos: profile["duration_nanos"] as? Int ?? 0, samples: samples))
      }
    }
  }
  return out
}

/// The profiles of OTLP sink records; fails the test on a violation.
private func otlpProfiles(_ records: [[String: Any]]) -> [UploadedProfile] {
  var out: [UploadedProfile] = []
  for record in records {
    #expect((record["violations"] as? [Any] ?? []).isEmpty, "\(record["violations"] ?? "")")
    for profile in record["profiles"] as? [[String: Any]] ?? [] {
      let resource = (profile["resource"] as? [String: Any] ?? [:]).mapValues(text)
      #expect(text(profile["sample_type"]) == "cpu/nanoseconds", "\(profile["sample_type"] ?? "")")
      let samples = (profile["samples"] as? [[String: Any]] ?? []).map { sample in
        let frames = (sample["frames"] as? [[String: Any]] ?? []).reversed()
        for frame in frames { #expect(["cpython", "native"].contains(text(frame["frame_type"])), "\(frame)") }
        return UploadedSample(
          functions: frames.map { text($0["function"]) }, files: frames.map { text($0["filename"]) },
          value: (sample["values"] as? [Int]).map { $0.reduce(0, +) } ?? 0,
          labels: (sample["attributes"] as? [String: Any] ?? [:]).mapValues(text))
      }
      out.append(
        UploadedProfile(
          labels: resource, period: profile["period"] as? Int ?? 0,
          timeNanos: profile["time_unix_nano"] as? Int ?? 0, durationNanos: profile["duration_nano"] as? Int ?? 0,
          samples: samples))
    }
  }
  return out
}

/// Sample counts of a collapsed file (`-f raw`), in total.
private func rawTotal(_ path: String) -> Int {
  let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
  return text.split(separator: "\n").reduce(0) { total, line in
    total + (line.split(separator: " ").last.flatMap { Int($0) } ?? 0)
  }
}

/// f's share of f and g in uploaded samples.
private func fShare(_ profiles: [UploadedProfile]) -> (share: Double, n: Int) {
  var f = 0
  var g = 0
  for profile in profiles {
    for sample in profile.samples {
      if sample.functions.contains("f") {
        f += sample.value
      } else if sample.functions.contains("g") {
        g += sample.value
      }
    }
  }
  let period = profiles.first?.period ?? 1
  return (Double(f) / Double(max(1, f + g)), (f + g) / max(1, period))
}

@Suite struct ContinuousProfilingTests {
  /// Records the known-share target for 20 s at 200 Hz, uploading every 5 s to `url` in `format`;
  /// returns the truth, the raw file's sample count and spyglass's output.
  private func recordKnownShares(url: String, format: UploadFormat, directory: String) throws -> (
    truth: Double, rawSamples: Int, result: CommandResult, pid: Int32
  ) {
    let target = try KnownShareTarget(directory: directory)
    defer { target.process.stop() }
    let output = directory + "/whole.txt"
    let result = try SpyglassRunner.run(
      [
        "record", "--pid", "\(target.process.pid)", "-r", "200", "-d", "20", "-f", "raw", "-o", output,
        "--upload", url, "--upload-format", format.rawValue, "--upload-interval", "5",
        "--label", "env=ci", "--label", "deploy.region=eu-west", "--service-name", "known-shares",
      ], timeout: .seconds(90))
    let truth = try target.truth()
    return (truth, rawTotal(output), result, target.process.pid)
  }

  /// The checks both formats share: every sample uploaded once, the share, the intervals.
  private func checkUploads(
    _ profiles: [UploadedProfile], truth: Double, rawSamples: Int, result: CommandResult, pid: Int32
  ) {
    #expect(result.exitCode == 0, "\(result)")
    #expect(profiles.count >= 4, "four 5-second intervals and the last one: \(profiles.count) profiles")
    #expect(Set(profiles.map(\.period)) == [5_000_000], "the period is 1e9/rate")
    let uploadedSamples = profiles.reduce(0) { $0 + $1.samples.reduce(0) { $0 + $1.value } } / 5_000_000
    #expect(uploadedSamples == rawSamples, "every sample the -o file holds is uploaded, once")
    #expect(rawSamples >= 3000, "20 s at 200 Hz: \(rawSamples) samples\n\(result)")
    for profile in profiles {
      #expect(profile.durationNanos > 0 && profile.durationNanos <= 6_000_000_000, "\(profile.durationNanos)")
      let now = Int(Date().timeIntervalSince1970 * 1e9)
      #expect(profile.timeNanos > now - 120_000_000_000 && profile.timeNanos <= now, "\(profile.timeNanos)")
    }
    let (share, n) = fShare(profiles)
    print(
      String(
        format: "upload share: f %.2f%% of %d samples, truth %.2f%%, error %+.2f pp", 100 * share, n,
        100 * truth, 100 * (share - truth)))
    #expect(abs(share - truth) <= 0.03, "uploaded f share \(share), truth \(truth)")
    let hot = profiles.flatMap(\.samples).first { $0.functions.last == "f" }
    #expect(hot?.files.last?.hasSuffix("accuracy_target.py") == true, "\(String(describing: hot))")
    #expect(hot?.labels["thread_id"] != nil || hot?.labels["thread.id"] != nil, "\(String(describing: hot))")
  }

  /// `record --pid --upload` to Pyroscope's Push API.
  @Test func recordUploadsToPyroscope() throws {
    let directory = try makeTemporaryDirectory("spyglass-upload-pyroscope")
    defer { removeDirectory(directory) }
    let receiver = try UploadReceiver(.pyroscope)
    defer { receiver.stop() }
    let (truth, rawSamples, result, pid) = try recordKnownShares(
      url: receiver.url, format: .pyroscope, directory: directory)
    let profiles = pyroscopeProfiles(try receiver.records())
    checkUploads(profiles, truth: truth, rawSamples: rawSamples, result: result, pid: pid)
    for profile in profiles {
      #expect(profile.labels["__name__"] == "process_cpu")
      #expect(profile.labels["service_name"] == "known-shares")
      #expect(profile.labels["process_pid"] == "\(pid)")
      #expect(profile.labels["process_runtime_version"] == "3.12.1")
      #expect(
        profile.labels["host_name"] == ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init)
          || profile.labels["host_name"] == ProcessInfo.processInfo.hostName, "\(profile.labels)")
      #expect(profile.labels["env"] == "ci")
      #expect(profile.labels["deploy_region"] == "eu-west", "a Prometheus-legal name: \(profile.labels)")
    }
    #expect(result.stderr.contains("Uploads to \(receiver.url)"), "\(result)")
    #expect(!result.stderr.contains("dropped"), "\(result)")
  }

  /// `record --pid --upload --upload-format otlp` through the real OpenTelemetry Collector.
  @Test func recordUploadsThroughTheCollector() throws {
    let directory = try makeTemporaryDirectory("spyglass-upload-otlp")
    defer { removeDirectory(directory) }
    let sink = try UploadReceiver(.otlp)
    defer { sink.stop() }
    let collector = try OTelCollector(forwardingTo: sink.url)
    defer { collector.stop() }
    let (truth, rawSamples, result, pid) = try recordKnownShares(
      url: collector.url, format: .otlp, directory: directory)
    // The collector forwards each request as it comes; give the last one a moment.
    var records = try sink.records()
    for _ in 0..<100 where otlpProfiles(records).count < 5 {
      usleep(50_000)
      records = try sink.records()
    }
    let profiles = otlpProfiles(records)
    checkUploads(profiles, truth: truth, rawSamples: rawSamples, result: result, pid: pid)
    for profile in profiles {
      #expect(profile.labels["service.name"] == "known-shares", "\(profile.labels)")
      #expect(profile.labels["process.pid"] == "\(pid)")
      #expect(profile.labels["process.runtime.name"] == "cpython")
      #expect(profile.labels["process.runtime.version"] == "3.12.1")
      #expect(!(profile.labels["host.name"] ?? "").isEmpty)
      #expect(profile.labels["env"] == "ci")
      #expect(profile.labels["deploy.region"] == "eu-west", "OTLP keeps the name as given: \(profile.labels)")
    }
    #expect(!collector.log.contains("\"error\""), "\(collector.log)")
  }

  /// `record --upload -- python script` with --native and --idle: the launched program's sleeping
  /// threads are uploaded with their native frames and their names, and the service name is the
  /// script's.
  @Test func recordLaunchedProgramUploadsWithNativeAndIdle() throws {
    let receiver = try UploadReceiver(.pyroscope)
    defer { receiver.stop() }
    let python = try interpreter("3.12.1")
    let result = try SpyglassRunner.run(
      [
        "record", "-r", "100", "-d", "3", "--native", "--idle", "--upload", receiver.url, "--upload-interval", "1",
        "--", python.path, Fixture.path("thread_names.py"),
      ], timeout: .seconds(60))
    #expect(result.exitCode == 0, "\(result)")
    #expect(!result.stderr.contains("Wrote"), "no -o, no file: \(result)")
    let profiles = pyroscopeProfiles(try receiver.records())
    #expect(profiles.count >= 3, "\(profiles.count)")
    #expect(Set(profiles.map { $0.labels["service_name"] ?? "" }) == ["thread_names"], "the script's name")
    let samples = profiles.flatMap(\.samples)
    let names = Set(samples.compactMap { $0.labels["thread_name"] })
    #expect(names == Set(["MainThread"] + (0..<10).map { "CustomThreadName-\($0)" }), "\(names)")
    #expect(Set(samples.compactMap { $0.labels["thread_id"] }).count == 11)
    #expect(
      samples.contains { $0.functions.contains("main") && $0.files.contains { !$0.hasSuffix(".py") && !$0.isEmpty } },
      "native frames (in libc or the interpreter) are uploaded with --native")
  }

  /// The agent on a host whose Python processes come and go, uploading to four backends at once.
  @Test func agentOnAChangingHostWithFaultyBackends() throws {
    let interpreters = try PythonInterpreter.requireAll()
    let marker = "spyglass-agent-test-\(UUID().uuidString.prefix(8))"
    let healthy = try UploadReceiver(.pyroscope)
    defer { healthy.stop() }
    let late = try UploadReceiver(.pyroscope, flags: ["--down-for", "60"])
    defer { late.stop() }
    let failing = try UploadReceiver(.pyroscope, flags: ["--status", "500"])
    defer { failing.stop() }
    let silent = try UploadReceiver(.pyroscope, flags: ["--hang"])
    defer { silent.stop() }

    var targets: [Int: PythonProcess] = [:]
    defer { for target in targets.values { target.stop() } }
    /// Target i: interpreter i mod n; its service name from OTEL_SERVICE_NAME (i%3 == 0), from
    /// PYROSCOPE_APPLICATION_NAME (1), else the script's name.
    func start(_ i: Int) throws {
      let python = interpreters[i % interpreters.count]
      var environment: [String: String] = [:]
      if i % 3 == 0 { environment["OTEL_SERVICE_NAME"] = "otel-\(i)" }
      if i % 3 == 1 { environment["PYROSCOPE_APPLICATION_NAME"] = "pyro-\(i)" }
      targets[i] = try PythonProcess(
        python, script: Fixture.path("hot.py"), arguments: [marker], environment: environment)
    }
    func serviceName(_ i: Int) -> String { i % 3 == 0 ? "otel-\(i)" : i % 3 == 1 ? "pyro-\(i)" : "hot" }

    for i in 0..<12 { try start(i) }
    let agent = try BackgroundCommand.spyglass([
      "agent", "--rate", "100", "--match", marker, "--upload-interval", "5", "--label", "cluster=test",
      "--upload", healthy.url, "--upload", late.url, "--upload", failing.url, "--upload", silent.url,
    ])
    defer { agent.stop() }
    let agentStart = Date()
    // New processes after the agent started, found within a few seconds; some exit half way.
    sleep(15)
    for i in 12..<20 { try start(i) }
    sleep(15)
    let exited = Array(0..<8)
    for i in exited { targets[i]?.stop() }
    // Long enough for the late backend (down 60 s) to come back and take its backlog.
    let endOfRun = agentStart.addingTimeInterval(100)
    while Date() < endOfRun {
      #expect(agent.isRunning, "\(agent.summary)")
      usleep(500_000)
    }
    let pids = targets.mapValues(\.pid)
    let sigterm = Date()
    agent.signal(SIGTERM)
    let status = agent.wait(timeout: .seconds(30))
    let stopSeconds = Date().timeIntervalSince(sigterm)
    #expect(status == .exited(0), "\(agent.summary)")
    #expect(stopSeconds < 20, "SIGTERM ends the agent within its bound, a silent backend included: \(stopSeconds) s")
    let log = agent.stderrText
    print("agent's output:\n\(log)")

    for (i, pid) in pids {
      #expect(log.contains("Sampling process \(pid):"), "process \(i) (\(pid)) was found\n\(log)")
    }
    for i in exited {
      if let pid = pids[i] { #expect(log.contains("Process \(pid) exited."), "\(i)\n\(log)") }
    }
    // The achieved rate: ticks at 100 Hz, every process sampled at each tick.
    let summary = log.split(separator: "\n").first { $0.contains("Hz achieved") }.map(String.init) ?? ""
    let achieved = summary.components(separatedBy: " ticks at ").last?.split(separator: " ").first
      .flatMap { Double($0) }
    #expect((achieved ?? 0) >= 99, "the agent keeps its rate: \(summary)")

    let profiles = pyroscopeProfiles(try healthy.records())
    let byPid = Dictionary(grouping: profiles) { Int32($0.labels["process_pid"] ?? "") ?? 0 }
    let hostName = profiles.first?.labels["host_name"] ?? ""
    #expect(!hostName.isEmpty)
    for (i, pid) in pids {
      let python = interpreters[i % interpreters.count]
      let mine = byPid[pid] ?? []
      #expect(!mine.isEmpty, "process \(i) (\(python.label), \(pid)) has profiles")
      for profile in mine {
        #expect(profile.labels["service_name"] == serviceName(i), "\(i): \(profile.labels)")
        #expect(
          profile.labels["process_runtime_version"]?.hasPrefix(python.version.description) == true,
          "\(python.label): \(profile.labels)")
        #expect(profile.labels["host_name"] == hostName)
        #expect(profile.labels["cluster"] == "test")
      }
      let samples = mine.flatMap(\.samples)
      let hot = samples.filter { $0.functions.last == "hot_function" }.reduce(0) { $0 + $1.value }
      let all = samples.reduce(0) { $0 + $1.value }
      #expect(all > 0 && Double(hot) / Double(all) > 0.9, "\(python.label): hot_function \(hot) of \(all)")
      // Every process alive the whole run was sampled at (nearly) every tick while it ran.
      if !exited.contains(i) && i < 12 {
        let seconds = Double(mine.reduce(0) { $0 + $1.durationNanos }) / 1e9
        let perSecond = Double(all) / 1e7 / max(seconds, 1)
        #expect(perSecond >= 90, "\(python.label) \(pid): \(perSecond) samples per second over \(seconds) s")
      }
    }
    // The last interval was sent at SIGTERM.
    let lastEnd = profiles.map { $0.timeNanos + $0.durationNanos }.max() ?? 0
    #expect(Double(lastEnd) / 1e9 >= sigterm.timeIntervalSince1970 - 1.5, "the last interval is uploaded")

    // The backend down for 60 s got everything once it came back, in order of interval.
    let lateProfiles = pyroscopeProfiles(try late.records())
    #expect(lateProfiles.count == profiles.count, "late \(lateProfiles.count), healthy \(profiles.count)\n\(log)")
    // The one answering 500 and the one never answering: counted, said, and nothing else harmed.
    #expect(!(try failing.records()).isEmpty)
    let failingLine = log.split(separator: "\n").first { $0.contains("Uploads to \(failing.url)") } ?? ""
    #expect(failingLine.contains("failed attempts") && failingLine.contains("500"), "\(failingLine)")
    let silentLine = log.split(separator: "\n").first { $0.contains("Uploads to \(silent.url)") } ?? ""
    #expect(silentLine.contains("0 profiles sent") && silentLine.contains("no answer"), "\(silentLine)")
    let healthyLine = log.split(separator: "\n").first { $0.contains("Uploads to \(healthy.url)") } ?? ""
    #expect(healthyLine.contains("profiles sent") && !healthyLine.contains("dropped"), "\(healthyLine)")
  }
}
