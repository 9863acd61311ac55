//===--- ConvertTests.swift - recordings and `spyglass convert` -------------===//
//
// Spyglass's own recording format end to end, on real processes:
//   - for every registered format X (recording mixed.py: three threads, varied stacks) and several
//     sets of options (threads and idle threads with
//     CPU weights and full file names, --function, --nolineno, --native, --subprocesses),
//     `record -f X -o out --save-recording rec` then `convert rec -f X -o conv` gives `out` byte
//     for byte;
//   - the SIGUSR1 flush writes the recording beside the output, and it converts to that output;
//   - Python's standard library (gzip, json) reads a recording with the documented fields;
//   - convert of a missing, garbage, cut, damaged or newer-version recording is one sentence and
//     exit 1, with a SPYGLASS_ERROR_FILE report; the output path is checked first; -o defaults to
//     the recording's name with the format's extension;
//   - the reader in-process on thousands of mutated recordings: never a crash, never more than the
//     input holds.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassModel
import SpyglassProcess
import SpyglassProfile
import TestSupport
import Testing

@testable import SpyglassOutput

#if canImport(Glibc)
  import Glibc
#endif

private func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

private func size(_ path: String) -> Int {
  ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}

/// `spyglass ARGS` with SPYGLASS_ERROR_FILE set to `errorFile`.
private func spyglass(_ arguments: [String], errorFile: String, timeout: Duration = .seconds(60)) throws
  -> CommandResult
{
  var environment = ProcessInfo.processInfo.environment
  environment["NO_COLOR"] = "1"
  environment["SPYGLASS_ERROR_FILE"] = errorFile
  return try runCommand(
    try SpyglassRunner.executablePath(), arguments, timeout: timeout, environment: environment)
}

/// The SPYGLASS_ERROR_FILE report: kind, message, exit code.
private func report(_ path: String) throws -> (kind: String, message: String, exitCode: Int) {
  let object = try #require(
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
  return (
    object["kind"] as? String ?? "", object["message"] as? String ?? "",
    (object["exit_code"] as? NSNumber)?.intValue ?? -1
  )
}

@Suite("Recordings and convert", .timeLimit(.minutes(10)))
struct ConvertTests {
  static var python: PythonInterpreter? { PythonInterpreter.all().first { $0.label == "3.12.1" } }

  static let identityInterpreters = PythonInterpreter.all().filter { ["2.7.18", "3.12.1"].contains($0.label) }

  /// The hard requirement: converting a recording gives the very file recording straight into the
  /// format gave, for every registered format.
  @Test(arguments: identityInterpreters)
  func convertGivesTheRecordedBytesForEveryFormat(python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("mixed.py"))
    defer { process.stop() }
    try process.waitForCPU()
    let folder = try makeTemporaryDirectory("spyglass-convert")
    defer { removeDirectory(folder) }
    let variants: [[String]] = [
      ["--threads", "--idle", "--weight", "cpu", "--full-filenames"],
      ["--function"],
      ["--nolineno", "--idle"],
      ["--native", "--idle"],
    ]
    var sizes: [String: (output: Int, recording: Int)] = [:]
    for (index, format) in OutputFormat.all.enumerated() {
      for options in [[]] + [variants[index % variants.count]] {
        let label = ([format.name] + options).joined(separator: " ")
        let output = folder + "/out.\(index).\(format.fileExtension)"
        let recording = folder + "/rec.\(index).spyglass"
        let converted = folder + "/conv.\(index).\(format.fileExtension)"
        let recorded = try SpyglassRunner.run(
          [
            "record", "--pid", "\(process.pid)", "-d", "1", "-r", "200", "-f", format.name, "-o", output,
            "--save-recording", recording,
          ] + options, timeout: .seconds(60))
        try #require(recorded.exitCode == 0, "\(label): \(recorded)")
        let convert = try SpyglassRunner.run(["convert", recording, "-f", format.name, "-o", converted])
        try #require(convert.exitCode == 0, "\(label): \(convert)")
        let direct = try bytes(output)
        #expect(!direct.isEmpty, "\(label)")
        #expect(
          try bytes(converted) == direct,
          "\(label): convert differs from record (\(size(converted)) vs \(size(output)) bytes)")
        if options.isEmpty { sizes[format.name] = (size(output), size(recording)) }
      }
    }
    let table = sizes.sorted { $0.key < $1.key }.map {
      "\($0.key) \($0.value.output) B (recording \($0.value.recording) B)"
    }
    print("\(python.label): sizes of one second at 200 Hz of mixed.py: " + table.joined(separator: ", "))
  }

  /// Several processes: the process pseudo-frames and every process's threads survive the trip.
  @Test func convertWithSubprocesses() throws {
    let python = try #require(Self.python, "\(PythonInterpreter.coverageReport)")
    let folder = try makeTemporaryDirectory("spyglass-convert-family")
    defer { removeDirectory(folder) }
    for format in ["speedscope", "pprof", "raw"] {
      let output = folder + "/out." + format
      let recording = folder + "/rec.spyglass"
      let recorded = try SpyglassRunner.run(
        ["record", "-s", "-d", "2", "-r", "100", "-f", format, "-o", output, "--save-recording", recording, "--"]
          + python.command + [Fixture.path("multiprocess.py")], timeout: .seconds(60))
      try #require(recorded.exitCode == 0, "\(format): \(recorded)")
      let convert = try SpyglassRunner.run(["convert", recording, "-f", format, "-o", folder + "/conv." + format])
      try #require(convert.exitCode == 0, "\(convert)")
      #expect(try bytes(folder + "/conv." + format) == bytes(output), "\(format)")
    }
  }

  /// SIGUSR1 writes the recording with the output, at the same moment: the two agree then, and
  /// again at the end.
  @Test func flushWritesTheRecordingToo() throws {
    let python = try #require(Self.python, "\(PythonInterpreter.coverageReport)")
    let process = try PythonProcess(python, script: Fixture.path("busy_and_idle.py"))
    defer { process.stop() }
    try process.waitForCPU()
    let folder = try makeTemporaryDirectory("spyglass-convert-flush")
    defer { removeDirectory(folder) }
    let output = folder + "/out.txt"
    let recording = folder + "/rec.spyglass"
    let record = try BackgroundCommand.spyglass(
      ["record", "--pid", "\(process.pid)", "-r", "200", "-f", "raw", "-o", output, "--save-recording", recording])
    defer { record.stop() }
    try #require(record.waitForStderr("Sampling process", timeout: .seconds(20)), "\(record.summary)")
    usleep(700_000)
    record.signal(SIGUSR1)
    try #require(record.waitForStderr("Wrote the profile so far", timeout: .seconds(20)), "\(record.summary)")
    let flushed = try SpyglassRunner.run(["convert", recording, "-f", "raw", "-o", folder + "/flushed.txt"])
    try #require(flushed.exitCode == 0, "\(flushed)")
    #expect(try bytes(folder + "/flushed.txt") == bytes(output), "the flushed recording converts to the flushed output")
    #expect(try !bytes(output).isEmpty)
    usleep(500_000)
    record.signal(SIGINT)
    #expect(record.wait(timeout: .seconds(20)) == .exited(0), "\(record.summary)")
    let final = try SpyglassRunner.run(["convert", recording, "-f", "raw", "-o", folder + "/final.txt"])
    try #require(final.exitCode == 0, "\(final)")
    #expect(try bytes(folder + "/final.txt") == bytes(output))
    #expect(size(folder + "/final.txt") >= size(folder + "/flushed.txt"))
  }

  /// Python's standard library reads a recording as docs/recording-format.md describes it.
  @Test func pythonReadsTheDocumentedFields() throws {
    let python = try #require(Self.python, "\(PythonInterpreter.coverageReport)")
    let folder = try makeTemporaryDirectory("spyglass-convert-python")
    defer { removeDirectory(folder) }
    let recording = folder + "/busy.spyglass"
    let recorded = try SpyglassRunner.run(
      ["record", "-d", "1", "-r", "100", "-f", "spyglass", "-o", recording, "--"] + python.command
        + [Fixture.path("busy_and_idle.py")], timeout: .seconds(60))
    try #require(recorded.exitCode == 0, "\(recorded)")
    let check = try runSystemPython3([
      "-c",
      """
      import gzip, json, sys
      doc = json.loads(gzip.open(sys.argv[1]).read().decode("utf-8"))
      assert doc["format"] == "spyglass-recording" and doc["version"] == 1, doc["format"]
      assert set(doc) >= {"spyglass", "info", "frame_options", "threads", "frames", "stacks", "samples"}, set(doc)
      info = doc["info"]
      assert set(info) == {"title", "rate", "python_version", "duration_seconds", "start_unix_nanoseconds",
                           "sample_count", "error_count", "weighting"}, set(info)
      assert set(doc["frame_options"]) == {"line_mode", "full_filenames", "thread_frames", "process_frames"}
      for t in doc["threads"]:
          assert set(t) == {"pid", "thread_id", "os_thread_id", "name", "cpu_nanoseconds"}, t
      for f in doc["frames"]:
          assert set(f) == {"name", "filename", "short_filename", "line", "first_line", "pseudo", "library"}, f
      s = doc["samples"]
      n = len(s["time"])
      assert n == len(s["thread"]) == len(s["stack"]) == len(s["weight"]) == info["sample_count"] > 50
      assert s["time"] == sorted(s["time"]), "time order"
      assert all(0 <= i < len(doc["frames"]) for stack in doc["stacks"] for i in stack)
      assert all(w == 10000000 for w in s["weight"]), "1/rate in nanoseconds"
      names = set(doc["frames"][stack[-1]]["name"] for stack in (doc["stacks"][i] for i in s["stack"]))
      print(json.dumps(sorted(names)))
      """,
      recording,
    ])
    #expect(check.exitCode == 0, "\(check)")
    #expect(check.stdout.contains("\"spin\""), "\(check.stdout)")
  }

  /// What convert says about files it cannot read: one sentence, exit 1, a report.
  @Test func convertRefusesWhatIsNotARecording() throws {
    let folder = try makeTemporaryDirectory("spyglass-convert-refuse")
    defer { removeDirectory(folder) }
    var profile = Profile(info: RecordingInfo(title: "t", rate: 100), keepsTimeline: true)
    let frame = profile.intern(Frame(name: "f", filename: "/a.py", shortFilename: "a.py", line: 1))
    let thread = profile.thread(ThreadInfo(pid: 1, threadID: 2))
    for i in 0..<50 {
      profile.add(
        thread: thread, stack: profile.intern(stack: [frame]), weightNanoseconds: 10, timeNanoseconds: UInt64(i))
    }
    let json = try RecordingWriter.json(profile, options: WriterOptions())
    let good = try Compression.gzip(json)
    let text = String(decoding: json, as: UTF8.self)
    let newer = try Compression.gzip(Array(text.replacingOccurrences(of: "\"version\":1", with: "\"version\":7").utf8))
    let badStack = try Compression.gzip(Array(text.replacingOccurrences(of: "\n[0]", with: "\n[5]").utf8))
    let cases: [(name: String, contents: [UInt8]?, kind: String, says: String)] = [
      ("missing", nil, "recording_unreadable", "No such file or directory"),
      ("garbage", Array("not a recording at all\n".utf8), "not_a_recording", "not a Spyglass recording"),
      ("svg", Array("<?xml version=\"1.0\"?><svg/>".utf8), "not_a_recording", "not a Spyglass recording"),
      ("other json", Array("{\"format\":\"speedscope\",\"version\":1}".utf8), "not_a_recording", "not a Spyglass"),
      ("cut", Array(good.prefix(good.count / 2)), "recording_truncated", "cut short"),
      (
        "damaged", good.enumerated().map { $0.offset == good.count / 2 ? $0.element ^ 0x5A : $0.element },
        "recording_corrupt", "damaged"
      ),
      ("newer", newer, "recording_newer_version", "newer Spyglass (recording format version 7"),
      ("bad stack", badStack, "recording_invalid", "stack 0 names a frame that does not exist"),
      ("empty", [], "not_a_recording", "not a Spyglass recording"),
    ]
    for entry in cases {
      let path = folder + "/\(entry.name).spyglass"
      if let contents = entry.contents { try Data(contents).write(to: URL(fileURLWithPath: path)) }
      let errorFile = folder + "/\(entry.name).error.json"
      let result = try spyglass(["convert", path, "-o", folder + "/out.svg"], errorFile: errorFile)
      #expect(result.exitCode == 1, "\(entry.name): \(result)")
      let lines = result.stderr.split(separator: "\n")
      #expect(lines.count == 1 && lines[0].hasPrefix("spyglass: Cannot read the recording '\(path)': "), "\(result)")
      #expect(result.stderr.contains(entry.says), "\(entry.name): \(result.stderr)")
      let written = try report(errorFile)
      #expect(written.kind == entry.kind, "\(entry.name): \(written)")
      #expect("spyglass: " + written.message == lines.first.map(String.init), "\(entry.name): \(written)")
      #expect(written.exitCode == 1)
      #expect(!FileManager.default.fileExists(atPath: folder + "/out.svg"), "\(entry.name): nothing written")
    }

    // The output is checked before the recording is read; -o defaults to the recording's name.
    let errorFile = folder + "/output.error.json"
    let unwritable = try spyglass(
      ["convert", folder + "/garbage.spyglass", "-o", folder + "/no/such/folder/out.svg"], errorFile: errorFile)
    #expect(unwritable.exitCode == 1 && unwritable.stderr.contains("Cannot write the output file"), "\(unwritable)")
    #expect(try report(errorFile).kind == "output_not_writable")
    try Data(good).write(to: URL(fileURLWithPath: folder + "/good.spyglass"))
    let defaulted = try SpyglassRunner.run(["convert", folder + "/good.spyglass", "-f", "pstats"])
    #expect(defaulted.exitCode == 0, "\(defaulted)")
    #expect(size(folder + "/good.prof") > 0, "\(defaulted)")
    let usage = try spyglass(["convert", folder + "/good.spyglass", "-f", "html"], errorFile: errorFile)
    #expect(usage.exitCode == 2, "\(usage)")
    #expect(try report(errorFile).kind == "usage_error")
  }

  /// The reader on mutated recordings, in-process: every failure a RecordingProblem, never a trap,
  /// and nothing read holds more than the input did. What it reads renders in every format.
  @Test func readerSurvivesMutatedRecordings() throws {
    var profile = Profile(
      info: RecordingInfo(title: "fuzz \u{1B}]0;x\u{7}", rate: 250, pythonVersion: "3.13.0", durationSeconds: 1.5),
      keepsTimeline: true)
    let names = ["<module>", "work", "nul\u{0}", "é😀", "\u{FFFE}", "]]><script>", "a;b"]
    let frames = names.enumerated().map { index, name in
      profile.intern(
        Frame(
          name: name, filename: "/srv/\(name).py", module: index == 3 ? "/usr/lib/libz.so.1" : nil,
          shortFilename: "\(name).py", line: index * 7, firstLine: index))
    }
    let pseudo = profile.intern(Frame(pseudo: "thread (9): x"))
    var threads: [ThreadIndex] = []
    for index in 0..<3 {
      let os: Int32? = index == 1 ? nil : Int32(index)
      threads.append(profile.thread(ThreadInfo(pid: 40 + Int32(index), threadID: UInt64(index) << 40, osThreadID: os)))
    }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state >> 17
    }
    for i in 0..<400 {
      let depth = Int(next() % UInt64(frames.count)) + 1
      let stack = [pseudo] + (0..<depth).map { _ in frames[Int(next() % UInt64(frames.count))] }
      profile.add(
        thread: threads[i % 3], stack: profile.intern(stack: stack), weightNanoseconds: next() % 20_000_000,
        timeNanoseconds: UInt64(i) * 4_000_000)
    }
    let json = try RecordingWriter.json(profile, options: WriterOptions())
    let gzipped = try Compression.gzip(json)
    // The unmutated file reads back as the profile it came from.
    let back = try RecordingReader.read(gzipped)
    for format in OutputFormat.all {
      #expect(
        try format.render(back, options: WriterOptions()) == format.render(profile, options: WriterOptions()),
        "\(format)")
    }

    let interesting: [[UInt8]] = [
      Array("0".utf8), Array("99999999999999999999".utf8), Array("-1".utf8), Array("1e309".utf8), Array("null".utf8),
      Array("\"".utf8), Array("[".utf8), Array("{".utf8), Array("]".utf8), Array(",".utf8), Array("\\u".utf8),
      Array("4294967295".utf8), Array("true".utf8), Array(String(repeating: "[", count: 200).utf8),
    ]
    var read = 0
    for round in 0..<3000 {
      var mutated = json
      for _ in 0..<(1 + Int(next() % 4)) {
        let at = Int(next() % UInt64(mutated.count))
        switch next() % 6 {
        case 0: mutated[at] ^= UInt8(truncatingIfNeeded: next() | 1)
        case 1: mutated.removeSubrange(at..<min(mutated.count, at + Int(next() % 16) + 1))
        case 2: mutated.insert(contentsOf: interesting[Int(next() % UInt64(interesting.count))], at: at)
        case 3: mutated.removeSubrange(at...)
        case 4: mutated.replaceSubrange(at..<min(mutated.count, at + 1), with: Array("1".utf8))
        default:
          let source = Int(next() % UInt64(mutated.count))
          let piece = Array(mutated[source..<min(mutated.count, source + Int(next() % 64))])
          mutated.insert(contentsOf: piece, at: at)
        }
        if mutated.isEmpty { mutated = Array("{".utf8) }
      }
      // Half the rounds mutate the JSON, the other half the compressed bytes.
      var input: [UInt8]
      if round % 2 == 0 {
        input = try Compression.gzip(mutated)
      } else {
        input = gzipped
        for _ in 0..<(1 + Int(next() % 3)) {
          let at = Int(next() % UInt64(input.count))
          input[at] ^= UInt8(truncatingIfNeeded: next() | 1)
        }
        if next() % 4 == 0 { input.removeSubrange(Int(next() % UInt64(input.count))...) }
      }
      guard let result = try? RecordingReader.read(input) else { continue }
      read += 1
      let source = round % 2 == 0 ? mutated.count : json.count
      let held = result.frames.count + result.stacks.count + result.timeline.count + result.threads.count
      #expect(held <= source, "round \(round): \(held) entries from \(source) bytes")
      for format in OutputFormat.all {
        _ = try? format.render(result, options: WriterOptions(result.info.frameOptions))
      }
    }
    print("Mutated recordings read successfully: \(read) of 3000")
  }
}
