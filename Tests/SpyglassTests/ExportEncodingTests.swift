//===--- ExportEncodingTests.swift - upload bodies, read by their consumers -===//
//
// `UploadEncoding` turns interval profiles into Pyroscope's and OTLP's request bodies. Every body
// here is read by something that is not Spyglass: the test receivers' decoders (Fixtures/
// pyroscope_receiver.py from grafana/pyroscope's published field numbers, otlp_sink.py with PyPI's
// opentelemetry-proto), which also list what a real backend would refuse; each Pyroscope profile
// by `go tool pprof`; and the OTLP body by a real OpenTelemetry Collector, which must forward the
// same profiles. The fixture: two processes, one with two named threads (OS ids known), Python
// frames, two native frames of one library and synthetic thread frames (which uploads leave out),
// one weighted by CPU time with an unnamed thread whose OS id is unknown.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassModel
import SpyglassOutput
import SpyglassProfile
import TestSupport
import Testing

@testable import SpyglassExport

// MARK: - Fixtures

/// A reproducible generator for the random identifiers (SplitMix64).
private struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

private let start: UInt64 = 1_700_000_000_000_000_000
private let libz = "/usr/lib/x86_64-linux-gnu/libz.so.1.3"

/// Process 4242 ("shop"), 100 Hz over 10 s, 13 samples of 10 ms; 12 of them are uploaded:
///   MainThread (tid 4242): <module>;work ×3 and thread-frame;<module>;work ×1 (one stack once
///     the synthetic frame is gone: 40 ms), <module>;work;deflate ×2 (native, no source: 20 ms),
///     <module>;work;crc32_z ×1 (native with a source file: 10 ms)
///   worker (tid 4243): run;sleep ×5 (50 ms); a stack of only a synthetic frame ×1 (dropped)
private func shopInterval(labels: [Label] = [Label("deployment.environment", "test"), Label("team-name", "core")])
  -> IntervalProfile
{
  var profile = Profile(
    info: RecordingInfo(
      title: "spyglass record --upload http://secret@example -- python3 app.py", rate: 100, pythonVersion: "3.12.1",
      durationSeconds: 10, startUnixNanoseconds: start))
  let main = profile.intern(
    Frame(name: "<module>", filename: "/srv/app/app.py", shortFilename: "app.py", line: 7, firstLine: 1))
  let work = profile.intern(
    Frame(name: "work", filename: "/srv/app/app.py", shortFilename: "app.py", line: 3, firstLine: 2))
  let run = profile.intern(
    Frame(
      name: "run", filename: "/usr/lib/python3.12/threading.py", shortFilename: "threading.py", line: 990,
      firstLine: 980))
  let sleep = profile.intern(
    Frame(name: "sleep", filename: "/srv/app/util.py", shortFilename: "util.py", line: 5, firstLine: 4))
  let deflate = profile.intern(
    Frame(name: "deflate", filename: libz, module: libz, shortFilename: "libz.so.1.3", line: 0))
  let crc = profile.intern(
    Frame(
      name: "crc32_z", filename: "/usr/src/zlib/crc32.c", module: libz, shortFilename: "crc32.c", line: 700,
      firstLine: 700))
  let threadFrame = profile.intern(Frame(pseudo: "thread (0x7F0000001000): MainThread"))
  let t1 = profile.thread(ThreadInfo(pid: 4242, threadID: 0x7F00_0000_1000, osThreadID: 4242, name: "MainThread"))
  let t2 = profile.thread(ThreadInfo(pid: 4242, threadID: 0x7F00_0000_2000, osThreadID: 4243, name: "worker"))
  let samples: [(ThreadIndex, [FrameID], Int)] = [
    (t1, [main, work], 3), (t1, [threadFrame, main, work], 1), (t1, [main, work, deflate], 2),
    (t1, [main, work, crc], 1), (t2, [run, sleep], 5), (t2, [threadFrame], 1),
  ]
  for (thread, frames, count) in samples {
    let stack = profile.intern(stack: frames)
    for _ in 0..<count {
      profile.add(thread: thread, stack: stack, weightNanoseconds: 10_000_000, timeNanoseconds: 0)
    }
  }
  return IntervalProfile(
    profile: profile,
    process: ProcessIdentity(
      serviceName: "shop", pid: 4242, hostName: "host-1", runtimeVersion: "3.12.1", containerID: "c0ffee",
      labels: labels))
}

/// Process 5151 (no service name), 250 Hz over 9.5 s, weighted by CPU time: one thread with
/// neither a name nor a known OS id, one stack of 3 samples weighing 3 500 500 ns in all; another
/// thread with only a synthetic frame.
private func batchInterval() -> IntervalProfile {
  var profile = Profile(
    info: RecordingInfo(
      rate: 250, pythonVersion: "3.11.4", durationSeconds: 9.5, startUnixNanoseconds: start, weighting: .cpu))
  let main = profile.intern(Frame(name: "<module>", filename: "/opt/batch.py", shortFilename: "batch.py", line: 12))
  let thread = profile.thread(ThreadInfo(pid: 5151, threadID: 0x7F00_0000_3000))
  let stack = profile.intern(stack: [main])
  for weight: UInt64 in [1_000_000, 2_500_000, 500] {
    profile.add(thread: thread, stack: stack, weightNanoseconds: weight, timeNanoseconds: 0)
  }
  // A thread whose only stack is a synthetic frame: nothing of it is uploaded, not even its name.
  let idle = profile.thread(ThreadInfo(pid: 5151, threadID: 0x7F00_0000_4000, osThreadID: 5152, name: "idle"))
  let pseudo = profile.intern(stack: [profile.intern(Frame(pseudo: "thread (5152): idle"))])
  profile.add(thread: idle, stack: pseudo, weightNanoseconds: 7_000_000, timeNanoseconds: 0)
  return IntervalProfile(
    profile: profile, process: ProcessIdentity(serviceName: "", pid: 5151, hostName: "host-1", runtimeVersion: "3.11.4")
  )
}

/// What each uploaded stack of the shop process weighs (root first) and its thread.
private let shopStacks: [String: (weight: Int, thread: String)] = [
  "<module>;work": (40_000_000, "MainThread"),
  "<module>;work;deflate": (20_000_000, "MainThread"),
  "<module>;work;crc32_z": (10_000_000, "MainThread"),
  "run;sleep": (50_000_000, "worker"),
]

private func encode(_ profiles: [IntervalProfile], _ format: UploadFormat, seed: UInt64 = 1) throws -> EncodedRequest {
  var random = SeededGenerator(state: seed)
  return try UploadEncoding.encode(
    profiles, as: format, options: WriterOptions(fullFilenames: true), random: &random)
}

private func list(_ value: Any?) -> [[String: Any]] { value as? [[String: Any]] ?? [] }

/// The weight shares of `stacks` (value / total), to compare with exact fractions.
private func shares(_ stacks: [String: Int]) -> [String: Double] {
  let total = Double(stacks.values.reduce(0, +))
  return stacks.mapValues { Double($0) / total }
}

/// Whether `text` is a random (version 4) UUID in lower-case text form.
private func isUUID4(_ text: String?) -> Bool {
  guard let text else { return false }
  let groups = text.split(separator: "-", omittingEmptySubsequences: false)
  let hex = Set("0123456789abcdef")
  return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(hex.contains) }
    && groups[2].first == "4" && "89ab".contains(groups[3].first ?? "x")
}

/// Whether a decoded JSON value equals `expected` (numbers, strings, nulls, arrays, objects).
private func jsonEqual(_ actual: Any?, _ expected: Any) -> Bool {
  guard let actual else { return false }
  return NSArray(array: [actual]).isEqual(to: [expected])
}

/// The shop's stacks' shares of its 120 ms.
private let shopShares: [String: Double] = [
  "<module>;work": 40.0 / 120, "<module>;work;deflate": 20.0 / 120, "<module>;work;crc32_z": 10.0 / 120,
  "run;sleep": 50.0 / 120,
]

/// Go's pprof (Debian's golang-go, which test.sh installs), as OutputTests finds it.
private func goTool() throws -> String {
  let go = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].first {
    FileManager.default.isExecutableFile(atPath: $0)
  }
  return try #require(go, "go is not installed (apt-get install golang-go; test.sh does)")
}

private func goPprof(_ arguments: [String]) throws -> CommandResult {
  try runCommand(
    try goTool(), ["tool", "pprof"] + arguments, timeout: .seconds(120),
    environment: [
      "HOME": NSTemporaryDirectory(), "PATH": "/usr/bin:/bin", "GOCACHE": NSTemporaryDirectory() + "go-cache",
    ])
}

// MARK: - Tests

@Suite("Upload encoding", .timeLimit(.minutes(5)))
struct ExportEncodingTests {
  // MARK: Pyroscope

  @Test func pyroscopeBodyAsThePushAPIReadsIt() throws {
    let request = try encode([shopInterval(), batchInterval()], .pyroscope)
    #expect(request.path == "/push.v1.PusherService/Push")
    #expect(request.contentType == "application/proto")
    #expect(request.profileCount == 2)
    let folder = try makeTemporaryDirectory("spyglass-pyroscope-profiles")
    defer { removeDirectory(folder) }
    let record = try UploadDecoders.decode(request.body, as: .pyroscope, profilesDirectory: folder)
    #expect(record["violations"] as? [String] == [], "\(record["violations"] ?? "")")
    #expect(record["warnings"] as? [String] == [], "\(record["warnings"] ?? "")")
    let series = list(record["series"])
    try #require(series.count == 2)

    // Series labels: sorted, sanitised, derived ones first.
    #expect(
      series[0]["label_pairs"] as? [[String]] == [
        ["__name__", "process_cpu"], ["container_id", "c0ffee"], ["deployment_environment", "test"],
        ["host_name", "host-1"], ["process_pid", "4242"], ["process_runtime_version", "3.12.1"],
        ["service_name", "shop"], ["team_name", "core"],
      ])
    #expect(
      series[1]["label_pairs"] as? [[String]] == [
        ["__name__", "process_cpu"], ["host_name", "host-1"], ["process_pid", "5151"],
        ["process_runtime_version", "3.11.4"], ["service_name", "unspecified"],
      ])

    let shop = try #require(list(series[0]["profiles"]).first)
    let batch = try #require(list(series[1]["profiles"]).first)
    #expect(list(series[0]["profiles"]).count == 1)
    for profile in [shop, batch] {
      #expect(profile["gzipped"] as? Bool == true)
      #expect(profile["sample_types"] as? [String] == ["cpu/nanoseconds"])
      #expect(profile["period_type"] as? String == "cpu/nanoseconds")
      #expect(profile["time_nanos"] as? Int == Int(start))
      #expect(isUUID4(profile["id"] as? String), "\(profile["id"] ?? "")")
      // The command line stays home; the exporter and Python's version go.
      #expect((profile["comments"] as? [String])?.contains { $0.contains("secret") } == false)
    }
    #expect(shop["id"] as? String != batch["id"] as? String)
    #expect(shop["comments"] as? [String] == ["spyglass \(spyglassVersion)", "python 3.12.1"])
    #expect(shop["period"] as? Int == 10_000_000)
    #expect(shop["duration_nanos"] as? Int == 10_000_000_000)
    #expect(batch["period"] as? Int == 4_000_000)
    #expect(batch["duration_nanos"] as? Int == 9_500_000_000)

    // Samples: one per (thread, stack) left once synthetic frames are gone, the weight as value.
    let samples = list(shop["samples"])
    #expect(samples.count == shopStacks.count)
    var weights: [String: Int] = [:]
    for sample in samples {
      let stack = try #require(sample["stack"] as? String)
      let expected = try #require(shopStacks[stack], "unexpected stack \(stack)")
      #expect(sample["values"] as? [Int] == [expected.weight], "\(stack)")
      let labels = sample["labels"] as? [String: String]
      let tid = expected.thread == "MainThread" ? "4242" : "4243"
      #expect(labels == ["thread_id": tid, "thread_name": expected.thread], "\(stack)")
      weights[stack] = (sample["values"] as? [Int])?.first
      for frame in list(sample["frames"]) {
        #expect((frame["name"] as? String)?.hasPrefix("thread (") == false)
      }
    }
    #expect(shares(weights) == shopShares)

    // Frames as the pprof file has them: full file names, lines, first lines; a native frame's
    // file is its source file when known, else its library.
    func frames(_ stack: String) -> [[String: Any]] {
      list(samples.first { $0["stack"] as? String == stack }?["frames"])
    }
    func row(_ frame: [String: Any]) -> [String] {
      ["name", "file", "line", "start_line"].map { "\(frame[$0] ?? "nil")" }
    }
    #expect(
      frames("<module>;work;crc32_z").map(row) == [
        ["crc32_z", "/usr/src/zlib/crc32.c", "700", "700"], ["work", "/srv/app/app.py", "3", "2"],
        ["<module>", "/srv/app/app.py", "7", "1"],
      ])
    #expect(frames("<module>;work;deflate").first.map(row) == ["deflate", libz, "0", "0"])
    #expect(
      frames("run;sleep").map(row) == [
        ["sleep", "/srv/app/util.py", "5", "4"], ["run", "/usr/lib/python3.12/threading.py", "990", "980"],
      ])

    // The CPU-weighted process: the summed CPU time, the pthread id in hex, no thread name.
    let batchSamples = list(batch["samples"])
    #expect(batchSamples.count == 1)
    #expect(batchSamples.first?["values"] as? [Int] == [3_500_500])
    #expect(batchSamples.first?["labels"] as? [String: String] == ["thread_id": "0x7F0000003000"])
    #expect(batchSamples.first?["stack"] as? String == "<module>")

    // Go's pprof reads each raw profile: the shop's totals per function and its thread labels.
    let shopFile = try #require(shop["file"] as? String)
    let top = try goPprof(["-top", "-nodecount=100", "-unit=ms", shopFile])
    #expect(top.exitCode == 0, "\(top)")
    let rows = top.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    func goRow(_ name: String) -> [String]? { rows.first { $0.last == name } }
    // flat, flat%, sum%, cum, cum%, name.
    #expect(goRow("<module>")?[3] == "70ms", "\(top.stdout)")
    #expect(goRow("work")?[0] == "40ms", "\(top.stdout)")
    #expect(goRow("work")?[3] == "70ms", "\(top.stdout)")
    #expect(goRow("deflate")?[0] == "20ms", "\(top.stdout)")
    #expect(goRow("crc32_z")?[0] == "10ms", "\(top.stdout)")
    #expect(goRow("sleep")?[0] == "50ms", "\(top.stdout)")
    #expect(goRow("run")?[3] == "50ms", "\(top.stdout)")
    #expect(top.stdout.contains("Type: cpu\n"), "\(top.stdout)")
    #expect(top.stdout.contains("Duration: 10s, Total samples = 120ms"), "\(top.stdout)")
    let raw = try goPprof(["-raw", shopFile])
    #expect(raw.exitCode == 0, "\(raw)")
    #expect(raw.stdout.contains("PeriodType: cpu nanoseconds"), "\(raw.stdout)")
    #expect(raw.stdout.contains("Period: 10000000"), "\(raw.stdout)")
    #expect(raw.stdout.contains("Duration: 10s"), "\(raw.stdout)")
    #expect(raw.stdout.contains("thread_id:[4243] thread_name:[worker]"), "\(raw.stdout)")
    #expect(raw.stdout.contains("thread_id:[4242] thread_name:[MainThread]"), "\(raw.stdout)")
    let batchFile = try #require(batch["file"] as? String)
    let batchRaw = try goPprof(["-raw", batchFile])
    #expect(batchRaw.exitCode == 0, "\(batchRaw)")
    #expect(batchRaw.stdout.contains("3500500: 1 "), "\(batchRaw.stdout)")
    #expect(batchRaw.stdout.contains("thread_id:[0x7F0000003000]"), "\(batchRaw.stdout)")
    #expect(!batchRaw.stdout.contains("idle") && !batchRaw.stdout.contains("5152"), "\(batchRaw.stdout)")
  }

  /// Label names made Prometheus-legal, what `--label` may not take, and the limits.
  @Test func pyroscopeLabelsAreSanitisedAndCapped() throws {
    #expect(UploadEncoding.prometheusLabelName("deployment.environment") == "deployment_environment")
    #expect(UploadEncoding.prometheusLabelName("a-b c/d:e") == "a_b_c_d_e")
    #expect(UploadEncoding.prometheusLabelName("9lives") == "_9lives")
    #expect(UploadEncoding.prometheusLabelName("h\u{E9}llo\u{1F600}") == "h_llo_")
    #expect(UploadEncoding.prometheusLabelName("Ok_name9") == "Ok_name9")
    #expect(UploadEncoding.prometheusLabelName("") == "")
    #expect(UploadEncoding.prometheusLabelName(String(repeating: "k", count: 2000)).utf8.count == 1024)

    let odd = ProcessIdentity(
      serviceName: "svc", pid: 7, hostName: "", runtimeVersion: "3.13.0",
      labels: [
        Label("__name__", "hijack"), Label("__delta__", "false"), Label("service.name", "other"),
        Label("thread.id", "1"), Label("thread_name", "x"), Label("a.b", "first"), Label("a-b", "second"),
        Label("", "no key"), Label("empty", ""), Label("long", String(repeating: "\u{E9}", count: 1500)),
      ])
    let labels = UploadEncoding.pyroscopeLabels(odd)
    #expect(
      labels.map(\.key) == ["__name__", "a_b", "long", "process_pid", "process_runtime_version", "service_name"])
    #expect(labels.first { $0.key == "__name__" }?.value == "process_cpu")
    #expect(labels.first { $0.key == "service_name" }?.value == "svc")
    #expect(labels.first { $0.key == "a_b" }?.value == "first")
    let long = try #require(labels.first { $0.key == "long" }?.value)
    #expect(long.utf8.count == 2048 && long == String(repeating: "\u{E9}", count: 1024))

    // 40 --labels: the 6 derived labels and the first 22 given fit the 28 a series is sent with,
    // so that Pyroscope's two sample labels (thread_id, thread_name) keep it within 30.
    let many = (0..<40).map { Label("k\($0 < 10 ? "0" : "")\($0)", "v\($0)") }
    let capped = UploadEncoding.pyroscopeLabels(shopInterval(labels: many).process)
    #expect(UploadEncoding.pyroscopeSeriesLabelLimit == 28)
    #expect(capped.count == 28)
    #expect(capped.map(\.key) == capped.map(\.key).sorted())
    #expect(Set(capped.map(\.key)).isSuperset(of: ["__name__", "service_name", "process_pid", "container_id"]))
    #expect(capped.contains { $0.key == "k21" } && !capped.contains { $0.key == "k22" })

    // The receiver, which counts the sample labels as Pyroscope does, accepts it.
    let request = try encode([shopInterval(labels: many + odd.labels)], .pyroscope)
    let record = try UploadDecoders.decode(request.body, as: .pyroscope)
    #expect(record["violations"] as? [String] == [], "\(record["violations"] ?? "")")
    let pairs = try #require(list(record["series"]).first?["label_pairs"] as? [[String]])
    #expect(pairs.count == 28)
    #expect(pairs.first { $0.first == "service_name" }?.last == "shop")
  }

  // MARK: OTLP

  @Test func otlpBodyAsTheOpenTelemetryProtoReadsIt() throws {
    let request = try encode([shopInterval(), batchInterval()], .otlp)
    #expect(request.path == "/v1development/profiles")
    #expect(request.contentType == "application/x-protobuf")
    #expect(request.profileCount == 2)
    let record = try UploadDecoders.decode(request.body, as: .otlp)
    #expect(record["violations"] as? [String] == [], "\(record["violations"] ?? "")")
    #expect(record["warnings"] as? [String] == [], "\(record["warnings"] ?? "")")
    // Each table: its zero entry, no duplicate, nothing unused.
    let dictionary = try #require(record["dictionary"] as? [String: [String: Int]])
    #expect(dictionary.count == 7)
    for (table, summary) in dictionary {
      #expect(summary["duplicates"] == 0, "\(table)")
      #expect(summary["unused"] == 0, "\(table)")
      #expect((summary["entries"] ?? 0) >= 1, "\(table)")
    }
    #expect(dictionary["link_table"]?["entries"] == 1)
    // One mapping besides the zero one: libz, for both native frames.
    #expect(dictionary["mapping_table"]?["entries"] == 2)

    let profiles = list(record["profiles"])
    try #require(profiles.count == 2)
    let (shop, batch) = (profiles[0], profiles[1])
    let shopResource: [String: Any] = [
      "service.name": "shop", "process.pid": 4242, "host.name": "host-1", "process.runtime.name": "cpython",
      "process.runtime.version": "3.12.1", "container.id": "c0ffee", "deployment.environment": "test",
      "team-name": "core",
    ]
    let batchResource: [String: Any] = [
      "service.name": "unknown_service", "process.pid": 5151, "host.name": "host-1",
      "process.runtime.name": "cpython", "process.runtime.version": "3.11.4",
    ]
    let scope: [String: Any] = ["name": "spyglass", "version": spyglassVersion, "attributes": [String: Any]()]
    #expect(jsonEqual(shop["resource"], shopResource), "\(shop["resource"] ?? "")")
    #expect(jsonEqual(batch["resource"], batchResource), "\(batch["resource"] ?? "")")
    for profile in profiles {
      #expect(jsonEqual(profile["scope"], scope), "\(profile["scope"] ?? "")")
      #expect(profile["sample_type"] as? String == "cpu/nanoseconds")
      #expect(profile["period_type"] as? String == "cpu/nanoseconds")
      #expect(profile["time_unix_nano"] as? Int == Int(start))
      #expect((profile["profile_id"] as? String)?.count == 32)
      #expect(profile["original_payload_format"] is NSNull)
    }
    #expect(shop["profile_id"] as? String != batch["profile_id"] as? String)
    #expect(shop["period"] as? Int == 10_000_000)
    #expect(shop["duration_nano"] as? Int == 10_000_000_000)
    #expect(batch["period"] as? Int == 4_000_000)
    #expect(batch["duration_nano"] as? Int == 9_500_000_000)

    let samples = list(shop["samples"])
    #expect(samples.count == shopStacks.count)
    var weights: [String: Int] = [:]
    for sample in samples {
      let stack = try #require(sample["stack"] as? String)
      let expected = try #require(shopStacks[stack], "unexpected stack \(stack)")
      #expect(sample["values"] as? [Int] == [expected.weight], "\(stack)")
      #expect((sample["timestamps_unix_nano"] as? [Int])?.isEmpty == true)
      let attributes: [String: Any] = [
        "thread.id": expected.thread == "MainThread" ? 4242 : 4243, "thread.name": expected.thread,
      ]
      #expect(jsonEqual(sample["attributes"], attributes), "\(stack): \(sample["attributes"] ?? "")")
      weights[stack] = (sample["values"] as? [Int])?.first
    }
    #expect(shares(weights) == shopShares)
    func frames(_ stack: String) -> [[String]] {
      list(samples.first { $0["stack"] as? String == stack }?["frames"]).map { frame in
        ["function", "filename", "line", "start_line", "frame_type", "mapping", "system_name"].map {
          "\(frame[$0] ?? "nil")"
        }
      }
    }
    let module = ["<module>", "/srv/app/app.py", "7", "1", "cpython", "<null>", ""]
    let work = ["work", "/srv/app/app.py", "3", "2", "cpython", "<null>", ""]
    #expect(frames("<module>;work") == [work, module])
    #expect(
      frames("<module>;work;crc32_z") == [
        ["crc32_z", "/usr/src/zlib/crc32.c", "700", "700", "native", libz, ""], work, module,
      ])
    #expect(frames("<module>;work;deflate").first == ["deflate", libz, "0", "0", "native", libz, ""])
    #expect(
      frames("run;sleep") == [
        ["sleep", "/srv/app/util.py", "5", "4", "cpython", "<null>", ""],
        ["run", "/usr/lib/python3.12/threading.py", "990", "980", "cpython", "<null>", ""],
      ])

    let batchSamples = list(batch["samples"])
    #expect(batchSamples.count == 1)
    #expect(batchSamples.first?["values"] as? [Int] == [3_500_500])
    let pthreadID: [String: Any] = ["thread.id": Int(Int64(bitPattern: 0x7F00_0000_3000))]
    #expect(jsonEqual(batchSamples.first?["attributes"], pthreadID), "\(batchSamples)")
  }

  /// The dictionary's rules, on the message itself: every table starts with its zero value, every
  /// index is in range, and no entry is there twice.
  @Test func otlpDictionaryRules() throws {
    let request = try encode([shopInterval(), batchInterval()], .otlp)
    let message = try OTLPExportProfilesServiceRequest(serializedBytes: request.body)
    let dictionary = message.dictionary
    #expect(dictionary.stringTable.first == "")
    #expect(dictionary.mappingTable.first == OTLPMapping())
    #expect(dictionary.locationTable.first == OTLPLocation())
    #expect(dictionary.functionTable.first == OTLPFunction())
    #expect(dictionary.linkTable == [OTLPLink()])
    #expect(dictionary.attributeTable.first == OTLPKeyValueAndUnit())
    #expect(dictionary.stackTable.first == OTLPStack())
    func unique<T: Hashable>(_ values: [T]) -> Bool { Set(values).count == values.count }
    #expect(unique(dictionary.stringTable))
    #expect(unique(dictionary.mappingTable) && unique(dictionary.locationTable))
    #expect(unique(dictionary.functionTable) && unique(dictionary.stackTable) && unique(dictionary.attributeTable))
    let strings = 0..<Int32(dictionary.stringTable.count)
    let real = { (count: Int) in 1..<Int32(count) }
    for function in dictionary.functionTable {
      #expect(strings.contains(function.nameStrindex) && strings.contains(function.filenameStrindex))
    }
    for mapping in dictionary.mappingTable.dropFirst() {
      #expect(real(dictionary.stringTable.count).contains(mapping.filenameStrindex))
    }
    for location in dictionary.locationTable.dropFirst() {
      #expect(location.mappingIndex == 0 || real(dictionary.mappingTable.count).contains(location.mappingIndex))
      #expect(location.lines.count == 1)
      #expect(location.lines.allSatisfy { real(dictionary.functionTable.count).contains($0.functionIndex) })
      #expect(location.attributeIndices.count == 1)
      #expect(location.attributeIndices.allSatisfy(real(dictionary.attributeTable.count).contains))
    }
    for stack in dictionary.stackTable.dropFirst() {
      #expect(!stack.locationIndices.isEmpty)
      #expect(stack.locationIndices.allSatisfy(real(dictionary.locationTable.count).contains))
    }
    for attribute in dictionary.attributeTable.dropFirst() {
      #expect(real(dictionary.stringTable.count).contains(attribute.keyStrindex))
    }
    for profile in message.resourceProfiles.flatMap(\.scopeProfiles).flatMap(\.profiles) {
      #expect(strings.contains(profile.sampleType.typeStrindex) && strings.contains(profile.periodType.unitStrindex))
      for sample in profile.samples {
        #expect(real(dictionary.stackTable.count).contains(sample.stackIndex))
        #expect(sample.attributeIndices.allSatisfy(real(dictionary.attributeTable.count).contains))
        #expect(sample.linkIndex == 0)
        #expect(sample.values.count == 1)
      }
    }
  }

  /// OTLP keeps `--label` keys as they are; a derived attribute's key is not theirs to take.
  @Test func otlpResourceAttributesKeepDottedKeys() {
    let identity = ProcessIdentity(
      serviceName: "svc", pid: 9, hostName: "h", runtimeVersion: "3.12.0", containerID: nil,
      labels: [
        Label("deployment.environment", "prod"), Label("service.name", "other"), Label("k8s.pod.name", "p-1"),
        Label("deployment.environment", "again"), Label("", "x"),
      ])
    let attributes = UploadEncoding.otlpResourceAttributes(identity)
    #expect(
      attributes.map(\.key) == [
        "service.name", "process.pid", "host.name", "process.runtime.name", "process.runtime.version",
        "deployment.environment", "k8s.pod.name",
      ])
    #expect(attributes[0].value == .string("svc"))
    #expect(attributes[1].value == .int(9))
    #expect(attributes[5].value == .string("prod"))
  }

  // MARK: Both

  /// The same profiles and generator give the same bytes; another seed changes only the ids.
  @Test func encodingIsReproducible() throws {
    for format in UploadFormat.allCases {
      let first = try encode([shopInterval(), batchInterval()], format, seed: 7)
      let again = try encode([shopInterval(), batchInterval()], format, seed: 7)
      let other = try encode([shopInterval(), batchInterval()], format, seed: 8)
      #expect(first == again, "\(format)")
      #expect(first.body != other.body, "\(format)")
      #expect(first.body.count == other.body.count, "\(format)")
    }
  }

  /// An empty interval is still a well-formed request.
  @Test func noProfilesIsAnEmptyRequest() throws {
    for format in UploadFormat.allCases {
      let request = try encode([], format)
      #expect(request.profileCount == 0)
      let record = try UploadDecoders.decode(request.body, as: format)
      #expect(record["violations"] as? [String] == [], "\(format)")
    }
  }

  // MARK: Through a real collector

  /// The OTLP body through the OpenTelemetry Collector (OTLP/HTTP in, otlp_http out): it answers
  /// 200 and the sink behind it receives the same profiles, still well formed.
  @Test func otlpThroughTheCollector() throws {
    let request = try encode([shopInterval(), batchInterval()], .otlp)
    let sink = try UploadReceiver(.otlp)
    defer { sink.stop() }
    let collector = try OTelCollector(forwardingTo: sink.url)
    defer { collector.stop() }
    let answer = try UploadDecoders.post(
      request.body, to: collector.url + request.path, contentType: request.contentType)
    #expect(answer.status == 200, "\(collector.log)")
    let records = try #require(try sink.waitForRecords(1), "nothing reached the sink:\n\(collector.log)")
    #expect(records.count == 1)
    let forwarded = try #require(records.first)
    #expect(forwarded["path"] as? String == "/v1development/profiles")
    #expect((forwarded["headers"] as? [String: String])?["user-agent"]?.contains("OpenTelemetry Collector") == true)
    #expect(forwarded["violations"] as? [String] == [], "\(forwarded["violations"] ?? "")")
    let direct = try UploadDecoders.decode(request.body, as: .otlp)
    let sent = try #require(direct["profiles"] as? [Any])
    let received = try #require(forwarded["profiles"] as? [Any])
    #expect(received.count == 2)
    #expect(jsonEqual(received, sent), "sent \(sent)\nreceived \(received)")
  }

  /// The helper's receivers over HTTP: a Pyroscope body POSTed to the Push API receiver is
  /// recorded as its decoder reads it.
  @Test func pyroscopeReceiverOverHTTP() throws {
    let request = try encode([shopInterval()], .pyroscope)
    let receiver = try UploadReceiver(.pyroscope)
    defer { receiver.stop() }
    let answer = try UploadDecoders.post(
      request.body, to: receiver.url + request.path, contentType: request.contentType)
    #expect(answer.status == 200 && answer.answerBytes == 0)
    let record = try #require(try receiver.records().first)
    #expect(record["violations"] as? [String] == [])
    #expect(record["content_type"] as? String == "application/proto")
    let direct = try UploadDecoders.decode(request.body, as: .pyroscope)
    #expect(jsonEqual(record["series"], direct["series"] ?? []), "\(record)")
  }
}
