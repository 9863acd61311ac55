//===--- RecordTests.swift - `spyglass record` end to end -----------------===//
//
// Every test records a real Python process with the built spyglass and checks what it wrote:
//   - every format on 2.7, 3.12 and 3.13 (launched with `-- python hot.py`), raw on all thirteen
//     interpreters (`--pid`), each one's hot stack exact (name, file, line) and dominant;
//   - `-t` thread pseudo-frames, `--gil`, `--idle`, `-s` with multiprocessing children;
//   - the target killed mid-recording, Ctrl-C / SIGTERM / SIGUSR1 sent to spyglass;
//   - attribution accuracy on the project's known-share workload;
//   - error paths (output path, option combinations, programs that cannot be profiled);
//   - the flame graph rendered by headless Chromium, and `--weight cpu`.
// Recordings run side by side on their own threads (`parallelMap`), each one its own process, and
// are checked afterwards on the test's task. The suite's tests run one after the other: several
// of them measure timing (a sleeping target seen asleep, shares of CPU) that the others' busy
// targets would disturb on a 2-core machine.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

// MARK: - The hot fixture and the formats

/// hot.py: `hot_function` (defined on line 7) loops on line 9, called from `<module>` at line 14;
/// the module's first statement is on line 3.
private enum Hot {
  static let script = "hot.py"
  static let moduleLine = 14
  static let functionLine = 9
  static let functionStartLine = 7
  static let firstStatementLine = 3
  static var path: String { Fixture.path(script) }
  /// The hot stack as a collapsed (raw/flamegraph) line, root first.
  static let collapsed = "<module> (hot.py:14);hot_function (hot.py:9)"
}

/// The record formats and their file extensions.
private let recordFormats: [(name: String, ext: String)] = [
  ("flamegraph", "svg"), ("speedscope", "json"), ("chrometrace", "json"), ("raw", "txt"), ("pprof", "pb.gz"),
]

private func formatExtension(_ format: String) -> String {
  recordFormats.first { $0.name == format }?.ext ?? "out"
}

private let speedscopeSchemaPath = URL(fileURLWithPath: Fixture.directory).deletingLastPathComponent()
  .appendingPathComponent("speedscope-file-format.schema.json").path
private let pprofDecoderPath = URL(fileURLWithPath: Fixture.directory).deletingLastPathComponent()
  .appendingPathComponent("pprof_decode.py").path
private let pngStatsPath = URL(fileURLWithPath: Fixture.directory).deletingLastPathComponent()
  .appendingPathComponent("png_stats.py").path

/// Lists every pprof function as [name, filename, start_line], using pprof_decode.py's message classes.
private let pprofFunctionsScript = """
  import gzip, json, sys
  sys.path.insert(0, sys.argv[1])
  import pprof_decode
  profile = pprof_decode.profile_class()()
  profile.ParseFromString(gzip.decompress(open(sys.argv[2], "rb").read()))
  strings = list(profile.string_table)
  print(json.dumps(sorted([strings[f.name], strings[f.filename], str(f.start_line)] for f in profile.function)))
  """

// MARK: - Reading what spyglass wrote

/// One collapsed-stack line, `a;b;c N`.
private struct RawLine: CustomStringConvertible {
  let frames: [String]
  let count: Int
  var stack: String { frames.joined(separator: ";") }
  var description: String { "\(stack) \(count)" }
}

/// Parses raw output strictly: every line must be `labels count` with a positive count.
private func parseCollapsed(_ text: String) throws -> [RawLine] {
  var lines: [RawLine] = []
  for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
    if line.isEmpty { continue }
    guard let space = line.lastIndex(of: " "), let count = Int(line[line.index(after: space)...]), count > 0,
      space > line.startIndex
    else {
      throw TestSupportError("not a collapsed-stack line: \(line.debugDescription)")
    }
    lines.append(RawLine(frames: line[..<space].split(separator: ";").map(String.init), count: count))
  }
  if !text.isEmpty && !text.hasSuffix("\n") { throw TestSupportError("raw output does not end with a newline") }
  return lines
}

/// The `Samples: N` of the summary spyglass prints.
private func summarySamples(_ stderr: String) -> Int? {
  guard let range = stderr.range(of: "Samples: ") else { return nil }
  return Int(stderr[range.upperBound...].prefix { $0.isNumber })
}

private func decodeJSONBytes(_ bytes: [UInt8]) throws -> Any {
  try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
}

/// How a spyglass command ended: from runCommand, or from a background command the test signalled.
private struct RecordOutcome: Sendable, CustomStringConvertible {
  let command: [String]
  let stdout: String
  let stderr: String
  let status: TestSupport.ExitStatus?
  let elapsed: Duration

  init(_ result: CommandResult) {
    command = result.command
    stdout = result.stdout
    stderr = result.stderr
    status = result.status
    elapsed = result.elapsed
  }

  init(_ background: BackgroundCommand, status: TestSupport.ExitStatus?, elapsed: Duration) {
    command = background.child.command
    stdout = background.stdoutText
    stderr = background.stderrText
    self.status = status
    self.elapsed = elapsed
  }

  var exitCode: Int32? { status?.exitCode }

  var description: String {
    "$ \(command.joined(separator: " "))\n(\(status.map { "\($0)" } ?? "still running"), \(elapsed))\n"
      + "--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
  }
}

/// A finished recording: the command, what it printed, the file, and the validators' verdicts.
private struct RecordRun: Sendable, CustomStringConvertible {
  let label: String
  let python: PythonInterpreter
  let format: String
  let outputPath: String
  let result: RecordOutcome
  let output: [UInt8]?
  /// The external validator (minidom, jsonschema, pprof_decode.py), when the format has one.
  let validation: CommandResult?
  /// pprof only: the functions as [[name, filename, start_line]].
  let functions: CommandResult?
  /// The fixture's stdout readiness line (--pid runs) or spyglass's stdout (launched runs).
  let programOutput: String

  var description: String { "\(label):\n\(result)" }
  var text: String { String(decoding: output ?? [], as: UTF8.self) }
  var samples: Int? { summarySamples(result.stderr) }
}

/// Records hot.py for 2 s at 200 Hz in `format`, launched or attached with --pid, and runs the
/// format's validator on the file.
private func recordHot(_ python: PythonInterpreter, format: String, viaPID: Bool) throws -> RecordRun {
  let directory = try makeTemporaryDirectory("spyglass-record")
  defer { removeDirectory(directory) }
  let output = "\(directory)/out.\(formatExtension(format))"
  var arguments = ["record", "-f", format, "-o", output, "-d", "2", "-r", "200"]
  var target: PythonProcess? = nil
  if viaPID {
    let process = try Fixture.start(python, Hot.script)
    try process.waitForCPU()
    target = process
    arguments += ["--pid", "\(process.pid)"]
  } else {
    arguments += ["--"] + python.command + [Hot.path]
  }
  let result = try SpyglassRunner.run(arguments, timeout: .seconds(40))
  let readyLine = target?.readyLine ?? result.stdout
  target?.stop()
  let bytes = FileManager.default.contents(atPath: output).map { [UInt8]($0) }
  var validation: CommandResult? = nil
  var functions: CommandResult? = nil
  if bytes != nil {
    switch format {
    case "flamegraph": validation = try validateXML(output)
    case "speedscope": validation = try validateSpeedscope(output)
    case "pprof":
      validation = try runSystemPython3([pprofDecoderPath, output])
      functions = try runSystemPython3([
        "-c", pprofFunctionsScript, URL(fileURLWithPath: pprofDecoderPath).deletingLastPathComponent().path, output,
      ])
    default: break
    }
  }
  return RecordRun(
    label: "\(python.label) \(format) (\(viaPID ? "--pid" : "launched"))", python: python, format: format,
    outputPath: output, result: RecordOutcome(result), output: bytes, validation: validation, functions: functions,
    programOutput: readyLine)
}

private func validateXML(_ path: String) throws -> CommandResult {
  try runSystemPython3([
    "-c", "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1]); print('well-formed')", path,
  ])
}

private func validateSpeedscope(_ path: String) throws -> CommandResult {
  try runSystemPython3([
    "-c",
    "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')",
    path, speedscopeSchemaPath,
  ])
}

// MARK: - Per-format checks of the hot profile

/// Spyglass exited 0, wrote the file and reported a positive sample count.
private func expectRecorded(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) -> Int? {
  #expect(run.result.exitCode == 0, "\(run)", sourceLocation: sourceLocation)
  #expect(run.output != nil, "no output file: \(run)", sourceLocation: sourceLocation)
  for marker in crashMarkers { #expect(!run.result.stderr.contains(marker), "\(run)", sourceLocation: sourceLocation) }
  guard let samples = run.samples, samples > 0 else {
    Issue.record("no positive sample count in the summary: \(run)", sourceLocation: sourceLocation)
    return nil
  }
  return samples
}

/// raw: every line well-formed, counts add up to the summary, the hot stack ≥ 80%.
private func checkHotRaw(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
  guard let samples = expectRecorded(run, sourceLocation: sourceLocation) else { return }
  let lines = try parseCollapsed(run.text)
  let total = lines.reduce(0) { $0 + $1.count }
  #expect(total == samples, "\(run.label): raw counts \(total) != summary \(samples)", sourceLocation: sourceLocation)
  let hot = lines.filter { $0.stack == Hot.collapsed }.reduce(0) { $0 + $1.count }
  #expect(
    hot * 5 >= total * 4, "\(run.label): hot stack \(hot)/\(total):\n\(run.text)", sourceLocation: sourceLocation)
}

/// flamegraph: well-formed (minidom), the hot frame's label, the sample count in the subtitle.
private func checkHotFlamegraph(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) {
  guard let samples = expectRecorded(run, sourceLocation: sourceLocation) else { return }
  #expect(
    run.validation?.exitCode == 0 && run.validation?.stdout == "well-formed\n",
    "\(run.label): not well-formed XML: \(run.validation.map { "\($0)" } ?? "-")", sourceLocation: sourceLocation)
  let svg = run.text
  #expect(svg.contains("hot_function (hot.py:\(Hot.functionLine))"), "\(run.label)", sourceLocation: sourceLocation)
  #expect(svg.contains("&lt;module&gt; (hot.py:\(Hot.moduleLine))"), "\(run.label)", sourceLocation: sourceLocation)
  #expect(
    svg.contains(">\(samples) samples"), "\(run.label): the subtitle shows \(samples) samples",
    sourceLocation: sourceLocation)
}

/// speedscope: schema-valid, indices in range, one weight per sample, the hot frames exact and
/// the hot stack ≥ 80% of the samples, sample total = summary.
private func checkHotSpeedscope(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
  guard let samples = expectRecorded(run, sourceLocation: sourceLocation) else { return }
  #expect(
    run.validation?.exitCode == 0 && run.validation?.stdout == "valid\n",
    "\(run.label): not valid against the speedscope schema: \(run.validation.map { "\($0)" } ?? "-")",
    sourceLocation: sourceLocation)
  let document = try #require(try decodeJSONBytes(run.output ?? []) as? [String: Any], sourceLocation: sourceLocation)
  let frames = try #require(
    (document["shared"] as? [String: Any])?["frames"] as? [[String: Any]], sourceLocation: sourceLocation)
  let profiles = try #require(document["profiles"] as? [[String: Any]], sourceLocation: sourceLocation)
  func index(_ name: String, _ line: Int) -> Int? {
    frames.firstIndex {
      $0["name"] as? String == name && $0["file"] as? String == Hot.path && $0["line"] as? Int == line
    }
  }
  let module = index("<module>", Hot.moduleLine)
  let hot = index("hot_function", Hot.functionLine)
  #expect(module != nil && hot != nil, "\(run.label): hot frames missing: \(frames)", sourceLocation: sourceLocation)
  var total = 0
  var hotSamples = 0
  for profile in profiles {
    let stacks = try #require(profile["samples"] as? [[Int]], sourceLocation: sourceLocation)
    let weights = try #require(profile["weights"] as? [Double], sourceLocation: sourceLocation)
    #expect(stacks.count == weights.count, "\(run.label)", sourceLocation: sourceLocation)
    #expect(
      stacks.allSatisfy { $0.allSatisfy { frames.indices.contains($0) } }, "\(run.label): frame index out of range",
      sourceLocation: sourceLocation)
    total += stacks.count
    if let module, let hot { hotSamples += stacks.filter { $0 == [module, hot] }.count }
  }
  #expect(total == samples, "\(run.label): \(total) samples != summary \(samples)", sourceLocation: sourceLocation)
  #expect(hotSamples * 5 >= total * 4, "\(run.label): hot \(hotSamples)/\(total)", sourceLocation: sourceLocation)
}

/// chrometrace: a JSON array, B/E properly nested and balanced per thread, thread_name metadata
/// for every thread with events, hot_function among the B events with its file and line.
private func checkHotChrometrace(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
  guard expectRecorded(run, sourceLocation: sourceLocation) != nil else { return }
  let events = try #require(try decodeJSONBytes(run.output ?? []) as? [[String: Any]], sourceLocation: sourceLocation)
  try checkChromeEvents(events, label: run.label, sourceLocation: sourceLocation)
  let hot = events.filter {
    $0["ph"] as? String == "B" && $0["name"] as? String == "hot_function"
      && ($0["args"] as? [String: Any])?["filename"] as? String == Hot.path
      && ($0["args"] as? [String: Any])?["line"] as? Int == Hot.functionLine
  }
  #expect(!hot.isEmpty, "\(run.label): no B event for hot_function", sourceLocation: sourceLocation)
}

/// The structural rules of a Chrome trace.
private func checkChromeEvents(
  _ events: [[String: Any]], label: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
  var open: [Int: [String]] = [:]
  var named = Set<Int>()
  var withEvents = Set<Int>()
  var lastTime: [Int: Int] = [:]
  for event in events {
    let phase = event["ph"] as? String
    let tid = try #require(
      event["tid"] as? Int, "\(label): event without tid: \(event)", sourceLocation: sourceLocation)
    #expect(event["pid"] is Int, "\(label): event without pid: \(event)", sourceLocation: sourceLocation)
    switch phase {
    case "M":
      if event["name"] as? String == "thread_name",
        let name = (event["args"] as? [String: Any])?["name"] as? String, !name.isEmpty
      {
        named.insert(tid)
      }
    case "B", "E":
      withEvents.insert(tid)
      let name = try #require(event["name"] as? String, sourceLocation: sourceLocation)
      let time = try #require(event["ts"] as? Int, "\(label): \(event)", sourceLocation: sourceLocation)
      #expect(time >= lastTime[tid, default: 0], "\(label): time goes back: \(event)", sourceLocation: sourceLocation)
      lastTime[tid] = time
      if phase == "B" {
        open[tid, default: []].append(name)
      } else {
        let top = open[tid]?.popLast()
        #expect(top == name, "\(label): E \(name) closes \(top ?? "nothing")", sourceLocation: sourceLocation)
      }
    default:
      Issue.record("\(label): unexpected phase: \(event)", sourceLocation: sourceLocation)
    }
  }
  let unclosed = open.filter { !$0.value.isEmpty }
  #expect(unclosed.isEmpty, "\(label): unclosed frames \(unclosed)", sourceLocation: sourceLocation)
  #expect(!withEvents.isEmpty, "\(label): no B/E events", sourceLocation: sourceLocation)
  #expect(withEvents.isSubset(of: named), "\(label): threads without thread_name", sourceLocation: sourceLocation)
}

/// pprof: decodes (pprof_decode.py checks the invariants), sample total = summary, the hot stack
/// ≥ 80%, hot_function with its file name.
private func checkHotPprof(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
  guard let samples = expectRecorded(run, sourceLocation: sourceLocation) else { return }
  let decoded = try #require(run.validation, sourceLocation: sourceLocation)
  try #require(decoded.exitCode == 0, "\(run.label): \(decoded)", sourceLocation: sourceLocation)
  let summary = try #require(
    try decodeJSONBytes(Array(decoded.stdout.utf8)) as? [String: Any], sourceLocation: sourceLocation)
  let totals = summary["totals"] as? [Int] ?? []
  #expect(totals.first == samples, "\(run.label): totals \(totals) vs \(samples)", sourceLocation: sourceLocation)
  let stacks = summary["stacks"] as? [String: Int] ?? [:]
  let hot = stacks["<module>:\(Hot.moduleLine);hot_function:\(Hot.functionLine)"] ?? 0
  #expect(hot > 0 && hot * 5 >= samples * 4, "\(run.label): \(stacks)", sourceLocation: sourceLocation)
  let functions = try #require(run.functions, sourceLocation: sourceLocation)
  let list = try decodeJSONBytes(Array(functions.stdout.utf8)) as? [[String]] ?? []
  #expect(
    list.contains(["hot_function", Hot.path, "\(Hot.functionStartLine)"]), "\(run.label): \(functions)",
    sourceLocation: sourceLocation)
  // A module's code starts on line 1 from 3.10 on, before that on its first statement.
  let moduleStart = run.python.version.atLeast(3, 10) ? 1 : Hot.firstStatementLine
  #expect(
    list.contains(["<module>", Hot.path, "\(moduleStart)"]), "\(run.label): \(functions)",
    sourceLocation: sourceLocation)
}

private func checkHot(_ run: RecordRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
  switch run.format {
  case "raw": try checkHotRaw(run, sourceLocation: sourceLocation)
  case "flamegraph": checkHotFlamegraph(run, sourceLocation: sourceLocation)
  case "speedscope": try checkHotSpeedscope(run, sourceLocation: sourceLocation)
  case "chrometrace": try checkHotChrometrace(run, sourceLocation: sourceLocation)
  case "pprof": try checkHotPprof(run, sourceLocation: sourceLocation)
  default: Issue.record("unknown format \(run.format)", sourceLocation: sourceLocation)
  }
}

/// Unwraps a parallelMap result, recording the error as an issue.
private func jobValue<T>(_ result: Result<T, any Error>, sourceLocation: SourceLocation = #_sourceLocation) -> T? {
  switch result {
  case .success(let value): return value
  case .failure(let error):
    Issue.record("\(error)", sourceLocation: sourceLocation)
    return nil
  }
}

private func installedPython(_ label: String) throws -> PythonInterpreter {
  guard let python = PythonInterpreter.all().first(where: { $0.label == label }) else {
    throw TestSupportError("interpreter \(label) is not installed; \(PythonInterpreter.coverageReport)")
  }
  return python
}

/// `nice -n -20` when the tests run as root: a timing-sensitive recording (a sleeping target must
/// be seen asleep, shares must not be skewed by other tests' load on a 2-core machine) runs ahead of
/// the rest of the test run. The target inherits it when spyglass launches it.
private let recordHighPriority: [String] = geteuid() == 0 ? ["nice", "-n", "-20"] : []

/// Starts `spyglass record --pid` (200 Hz, no duration) in the background and waits until it says
/// it is sampling.
private func startBackgroundRecord(_ target: PythonProcess, format: String, output: String) throws -> BackgroundCommand
{
  let command = try BackgroundCommand.spyglass([
    "record", "--pid", "\(target.pid)", "-f", format, "-o", output, "-r", "200",
  ])
  guard command.waitForStderr("Sampling process", timeout: .seconds(10)) else {
    throw TestSupportError("spyglass did not start sampling:\n\(command.summary)")
  }
  return command
}

/// Waits for a background spyglass to exit; returns how it ended (nil: still running) and how long
/// that took.
private func waitForExit(_ command: BackgroundCommand, timeout: Duration = .seconds(5)) -> (
  TestSupport.ExitStatus?, Duration
) {
  let start = ContinuousClock.now
  let status = command.wait(timeout: timeout)
  return (status, ContinuousClock.now - start)
}

// MARK: - The suite

@Suite("spyglass record", .serialized, .timeLimit(.minutes(5)))
struct RecordTests {
  /// Every format on 2.7, 3.12 and 3.13 (launched), raw on every interpreter (--pid).
  @Test func everyFormatOnEveryInterpreter() throws {
    let all = try PythonInterpreter.requireAll()
    let fullLabels = ["2.7.18", "3.12.1", "3.13.0"]
    var jobs: [(python: PythonInterpreter, format: String, viaPID: Bool)] = []
    for label in fullLabels {
      let python = try installedPython(label)
      for format in recordFormats { jobs.append((python, format.name, false)) }
    }
    for python in all { jobs.append((python, "raw", true)) }
    let specs = jobs.map { [$0.python.label, $0.format, $0.viaPID ? "pid" : "launch"] }
    let results = parallelMap(specs, width: 8) { spec -> RecordRun in
      let python = PythonInterpreter.all().first { $0.label == spec[0] }!
      return try recordHot(python, format: spec[1], viaPID: spec[2] == "pid")
    }
    for result in results {
      guard let run = jobValue(result) else { continue }
      try checkHot(run)
    }
    let covered = Set(results.compactMap { try? $0.get() }.filter { $0.result.exitCode == 0 }.map(\.python.label))
    print(
      "spyglass record covered: all 5 formats (launched) on \(fullLabels.joined(separator: ", ")); raw (--pid) on "
        + all.map(\.label).filter(covered.contains).joined(separator: ", "))
    print(PythonInterpreter.coverageReport)
    #expect(covered.count == all.count, "every interpreter recorded: \(covered.sorted())")
  }

  /// `-t --idle`: a `thread (tid): name` root frame for each of the 11 threads, one stack each,
  /// the same number of samples each.
  @Test func threadPseudoFrames() throws {
    let all = try PythonInterpreter.requireAll()
    let labels = all.map(\.label)
    let results = parallelMap(labels, width: 10) { label -> (CommandResult, [Int32], Int32, String) in
      let python = PythonInterpreter.all().first { $0.label == label }!
      let process = try Fixture.start(python, "thread_names.py")
      try process.waitUntilSleeping(threadCount: 11)
      let directory = try makeTemporaryDirectory("spyglass-threads")
      defer { removeDirectory(directory) }
      let output = directory + "/threads.txt"
      let result = try SpyglassRunner.run(
        ["record", "--pid", "\(process.pid)", "--idle", "-t", "-f", "raw", "-o", output, "-d", "1", "-r", "50"],
        timeout: .seconds(30))
      let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
      return (result, process.threadIDs(), process.pid, text)
    }
    for (label, result) in zip(labels, results) {
      guard let (command, tids, pid, text) = jobValue(result) else { continue }
      let python = try installedPython(label)
      #expect(command.exitCode == 0, "\(command)")
      let lines = try parseCollapsed(text)
      var names: [Int32: String] = [:]
      var counts: [Int32: Int] = [:]
      var stacks: [Int32: [String]] = [:]
      for line in lines {
        let root = line.frames.first ?? ""
        guard root.hasPrefix("thread ("), let close = root.firstIndex(of: ")"),
          let tid = Int32(root[root.index(root.startIndex, offsetBy: 8)..<close]),
          root[close...].hasPrefix("): ")
        else {
          Issue.record("\(label): no thread pseudo-frame: \(line)")
          continue
        }
        let name = String(root[root.index(close, offsetBy: 3)...])
        #expect(names[tid] == nil, "\(label): thread \(tid) has more than one line:\n\(text)")
        names[tid] = name
        counts[tid] = line.count
        stacks[tid] = Array(line.frames.dropFirst())
      }
      let expectedNames = Set((0..<10).map { "CustomThreadName-\($0)" } + ["MainThread"])
      #expect(Set(names.values) == expectedNames && names.count == 11, "\(label):\n\(text)")
      #expect(Set(names.keys) == Set(tids), "\(label): tids \(names.keys.sorted()) vs /proc \(tids.sorted())")
      #expect(names[pid] == "MainThread", "\(label): the main thread is the pid:\n\(text)")
      #expect(Set(counts.values).count == 1 && (counts.values.first ?? 0) > 0, "\(label): \(counts)")
      let file = "thread_names.py"
      #expect(stacks[pid] == ["<module> (\(file):13)", "main (\(file):10)"], "\(label):\n\(text)")
      let lambda = python.usesQualifiedNames ? "main.<locals>.<lambda>" : "<lambda>"
      let threading: [String] =
        python.isPython2
        ? ["__bootstrap", "__bootstrap_inner", "run"]
        : python.usesQualifiedNames
          ? ["Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run"] : ["_bootstrap", "_bootstrap_inner", "run"]
      for (tid, stack) in stacks where tid != pid {
        #expect(stack.last == "\(lambda) (\(file):7)", "\(label): \(stack)")
        let outer = stack.dropLast()
        #expect(outer.map { $0.components(separatedBy: " (").first ?? "" } == threading, "\(label): \(stack)")
        #expect(outer.allSatisfy { $0.contains(" (threading.py:") }, "\(label): \(stack)")
      }
    }
  }

  /// longsleep.py for 2 s at 100 Hz: `--gil` ≤ 10 samples; `--idle`: the sleeping stack ≥ 95%;
  /// neither: (almost) nothing, ≤ 10 samples. On 3.12 and 2.7.
  @Test func gilAndIdle() throws {
    let modes = ["--gil", "--idle", "none"]
    var specs: [[String]] = []
    for label in ["3.12.1", "2.7.18"] { for mode in modes { specs.append([label, mode]) } }
    let results = parallelMap(specs, width: 6) { spec -> (CommandResult, String) in
      let python = PythonInterpreter.all().first { $0.label == spec[0] }!
      let directory = try makeTemporaryDirectory("spyglass-gil")
      defer { removeDirectory(directory) }
      let output = directory + "/sleep.txt"
      var arguments = ["record", "-f", "raw", "-o", output, "-d", "2", "-r", "100"]
      if spec[1] != "none" { arguments.append(spec[1]) }
      arguments += ["--"] + python.command + [Fixture.path("longsleep.py")]
      let result = try SpyglassRunner.run(arguments, timeout: .seconds(30), wrapper: recordHighPriority)
      return (result, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
    for (spec, result) in zip(specs, results) {
      guard let (command, text) = jobValue(result) else { continue }
      let label = "\(spec[0]) \(spec[1])\(recordHighPriority.isEmpty ? "" : " (nice -20)")"
      #expect(command.exitCode == 0, "\(command)")
      let lines = try parseCollapsed(text)
      let total = lines.reduce(0) { $0 + $1.count }
      #expect(total == summarySamples(command.stderr), "\(label): \(command)")
      switch spec[1] {
      case "--idle":
        let top = lines.max { $0.count < $1.count }
        #expect(top?.stack == "<module> (longsleep.py:9);longsleep (longsleep.py:5)", "\(label):\n\(text)")
        #expect((top?.count ?? 0) * 100 >= total * 95 && total >= 100, "\(label): \(total) samples:\n\(text)")
      default:
        #expect(total <= 10, "\(label): \(total) samples:\n\(text)")
      }
    }
  }

  /// `-s` on a multiprocessing parent with two CPU-bound children: three process root frames
  /// (parent, child, child) labelled with pid and command line; each child in child_work.
  @Test func subprocesses() throws {
    let labels = ["3.12.1", "2.7.18"]
    let results = parallelMap(labels, width: 2) { label -> (CommandResult, String) in
      let python = PythonInterpreter.all().first { $0.label == label }!
      let directory = try makeTemporaryDirectory("spyglass-mp")
      defer { removeDirectory(directory) }
      let output = directory + "/mp.txt"
      let result = try SpyglassRunner.run(
        ["record", "-s", "-f", "raw", "-o", output, "-d", "3", "-r", "100", "--"] + python.command + [
          Fixture.path("multiprocess.py")
        ], timeout: .seconds(40))
      return (result, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
    for (label, result) in zip(labels, results) {
      guard let (command, text) = jobValue(result) else { continue }
      let python = try installedPython(label)
      #expect(command.exitCode == 0, "\(command)")
      // READY parent=P children=A,B (the launched program's stdout is spyglass's).
      let ready = command.stdout.split(separator: "\n").first { $0.hasPrefix("READY ") } ?? ""
      let fields = Dictionary(
        ready.split(separator: " ").dropFirst().compactMap { field -> (String, String)? in
          let parts = field.split(separator: "=", maxSplits: 1)
          return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
      let parent = try #require(fields["parent"].flatMap { Int32($0) }, "\(label): \(command)")
      let children = (fields["children"] ?? "").split(separator: ",").compactMap { Int32($0) }
      try #require(children.count == 2, "\(label): \(command)")
      let commandLine = "\(python.path) \(Fixture.path("multiprocess.py"))"
      func processLabel(_ pid: Int32) -> String { "process \(pid):\"\(commandLine)\"" }
      let lines = try parseCollapsed(text)
      #expect(!lines.isEmpty, "\(label): \(command)")
      var labelsSeen = Set<String>()
      for line in lines {
        #expect(line.frames.first == processLabel(parent), "\(label): \(line)")
        labelsSeen.formUnion(line.frames.filter { $0.hasPrefix("process ") })
      }
      #expect(labelsSeen == Set(([parent] + children).map(processLabel)), "\(label): \(labelsSeen.sorted())")
      for child in children {
        let own = lines.filter { $0.frames.count > 1 && $0.frames[1] == processLabel(child) }
        let total = own.reduce(0) { $0 + $1.count }
        let working = own.filter { $0.frames.last?.hasPrefix("child_work (multiprocess.py:1") == true }
          .reduce(0) { $0 + $1.count }
        #expect(total > 0 && working * 5 >= total * 4, "\(label): child \(child): \(own)")
        #expect(
          own.contains { $0.frames.last == "child_work (multiprocess.py:13)" }, "\(label): child \(child): \(own)")
      }
    }
  }

  /// The target is SIGKILLed mid-recording: spyglass stops at once, exits 0, says why, and the
  /// speedscope file is complete.
  @Test func targetKilledMidRecording() throws {
    let python = try installedPython("3.12.1")
    let target = try Fixture.start(python, Hot.script)
    try target.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-killed")
    defer { removeDirectory(directory) }
    let output = directory + "/out.json"
    let command = try startBackgroundRecord(target, format: "speedscope", output: output)
    defer { command.stop() }
    usleep(1_000_000)
    target.stop()
    let (status, elapsed) = waitForExit(command)
    #expect(status == .exited(0), "\(command.summary)")
    #expect(elapsed < .seconds(3), "spyglass took \(elapsed) to notice")
    #expect(command.stderrText.contains("Stopped sampling because the process exited"), "\(command.summary)")
    let validation = try validateSpeedscope(output)
    #expect(validation.exitCode == 0 && validation.stdout == "valid\n", "\(validation)")
    let bytes = try #require(FileManager.default.contents(atPath: output).map { [UInt8]($0) })
    let run = RecordRun(
      label: "killed target", python: python, format: "speedscope", outputPath: output,
      result: RecordOutcome(command, status: status, elapsed: elapsed), output: bytes, validation: validation,
      functions: nil, programOutput: "")
    try checkHotSpeedscope(run)
  }

  /// Ctrl-C (flamegraph, raw) and SIGTERM (chrometrace) to a running record: exit 0 promptly,
  /// the whole profile written.
  @Test func stopSignals() throws {
    let specs: [[String]] = [["SIGINT", "flamegraph"], ["SIGINT", "raw"], ["SIGTERM", "chrometrace"]]
    let results = parallelMap(specs, width: 3) { spec -> RecordRun in
      let python = PythonInterpreter.all().first { $0.label == "3.12.1" }!
      let target = try Fixture.start(python, Hot.script)
      try target.waitForCPU()
      let directory = try makeTemporaryDirectory("spyglass-signal")
      defer { removeDirectory(directory) }
      let output = directory + "/out.\(formatExtension(spec[1]))"
      let command = try startBackgroundRecord(target, format: spec[1], output: output)
      defer { command.stop() }
      usleep(1_000_000)
      command.signal(spec[0] == "SIGINT" ? SIGINT : SIGTERM)
      let (status, elapsed) = waitForExit(command)
      let bytes = FileManager.default.contents(atPath: output).map { [UInt8]($0) }
      let validation = spec[1] == "flamegraph" && bytes != nil ? try validateXML(output) : nil
      return RecordRun(
        label: "\(spec[0]) \(spec[1])", python: python, format: spec[1], outputPath: output,
        result: RecordOutcome(command, status: status, elapsed: elapsed), output: bytes, validation: validation,
        functions: nil,
        programOutput: "")
    }
    for (spec, result) in zip(specs, results) {
      guard let run = jobValue(result) else { continue }
      #expect(run.result.elapsed < .seconds(3), "\(run.label): exit took \(run.result.elapsed)")
      let reason = spec[0] == "SIGINT" ? "Control-C pressed" : "SIGTERM received"
      #expect(run.result.stderr.contains("Stopped sampling because \(reason)."), "\(run)")
      try checkHot(run)
    }
  }

  /// SIGUSR1 writes the profile so far and recording goes on; the final profile has more samples.
  @Test func flushOnSIGUSR1() throws {
    let python = try installedPython("3.12.1")
    let target = try Fixture.start(python, Hot.script)
    try target.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-usr1")
    defer { removeDirectory(directory) }
    let output = directory + "/out.txt"
    let command = try startBackgroundRecord(target, format: "raw", output: output)
    defer { command.stop() }
    usleep(1_500_000)
    #expect(!FileManager.default.fileExists(atPath: output), "nothing is written before the flush")
    command.signal(SIGUSR1)
    let deadline = ContinuousClock.now + .seconds(1)
    var flushed = ""
    while ContinuousClock.now < deadline {
      flushed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
      if !flushed.isEmpty { break }
      usleep(20_000)
    }
    try #require(!flushed.isEmpty, "no profile within 1 s of SIGUSR1:\n\(command.summary)")
    #expect(command.isRunning, "spyglass goes on recording after SIGUSR1:\n\(command.summary)")
    #expect(command.stderrText.contains("Wrote the profile so far to '\(output)'"), "\(command.summary)")
    let flushedLines = try parseCollapsed(flushed)
    let flushedTotal = flushedLines.reduce(0) { $0 + $1.count }
    #expect(flushedLines.map(\.stack) == [Hot.collapsed], "\(flushed)")
    usleep(1_000_000)
    command.signal(SIGINT)
    let (status, _) = waitForExit(command)
    #expect(status == .exited(0), "\(command.summary)")
    let final = try parseCollapsed((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    let finalTotal = final.reduce(0) { $0 + $1.count }
    #expect(finalTotal > flushedTotal, "final \(finalTotal) vs flushed \(flushedTotal)")
    #expect(finalTotal == summarySamples(command.stderrText), "\(command.summary)")
  }

  /// The benchmark harness's known-share workload (bench/harness/workloads/accuracy_target.py,
  /// f ≈ 75%, g ≈ 25%) at the default rate, 100 Hz: the recorded f share among f+g samples is within
  /// 2 percentage points of the target's own measurement over the recorded window.
  ///
  /// 60 s, because sampling alone scatters the share: the binomial standard error is 1.4 pp for the
  /// ~950 samples of 10 s (a 2 pp bound would fail one run in six for a perfect profiler) and 0.56 pp
  /// for the ~5,700 of 60 s. `--cycle-ms 10` makes the workload's own timing calls (three per f+g
  /// cycle, which the truth partly counts inside f's and g's windows and sampling attributes to
  /// `main`) ten times rarer. The target and spyglass run at nice -20 (as root) and the suite runs
  /// alone (test.sh's phase 2): preempted, the target waits mostly right after its timing system
  /// calls, which skews both the wall-time truth and what any sampler sees (py-spy 0.4.3 included).
  /// The truth is the target's CPU-time split; the wall-time split is printed.
  @Test func accuracyOnKnownShares() throws {
    let python = try installedPython("3.12.1")
    let workload = RepositoryFiles.path("bench/harness/workloads/accuracy_target.py")
    try #require(FileManager.default.fileExists(atPath: workload), "\(workload) is missing")
    let directory = try makeTemporaryDirectory("spyglass-accuracy")
    defer { removeDirectory(directory) }
    let truthPath = directory + "/truth.json"
    let output = directory + "/accuracy.txt"
    let target = try PythonProcess(
      python, script: workload, arguments: ["--out", truthPath, "--cycle-ms", "10", "--seconds", "150"],
      isReady: { $0.hasPrefix("ready") }, timeout: .seconds(30))
    let niced =
      !recordHighPriority.isEmpty
      && setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(target.pid), -20) == 0
    target.child.signal(SIGUSR1)  // start of the window: the target zeroes its counters
    let result = try SpyglassRunner.run(
      ["record", "--pid", "\(target.pid)", "-r", "100", "-d", "60", "-f", "raw", "-o", output],
      timeout: .seconds(120), wrapper: niced ? recordHighPriority : [])
    target.child.signal(SIGUSR2)  // end of the window: the target writes its truth and exits
    let exit = target.child.wait(timeout: .seconds(20))
    #expect(exit == .exited(0), "the workload exits after writing its truth: \(target.stderrText)")
    #expect(result.exitCode == 0, "\(result)")
    let truthData = try #require(FileManager.default.contents(atPath: truthPath), "no truth: \(target.stderrText)")
    let truth = try #require(try JSONSerialization.jsonObject(with: truthData) as? [String: Any])
    let cpuF = try #require(truth["cpu_f"] as? Double)
    let cpuG = try #require(truth["cpu_g"] as? Double)
    let wallF = try #require(truth["wall_f"] as? Double)
    let wallG = try #require(truth["wall_g"] as? Double)
    let lines = try parseCollapsed((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    var inF = 0
    var inG = 0
    var other = 0
    for line in lines {
      let names = line.frames.map { $0.components(separatedBy: " (").first ?? "" }
      if names.contains("f") {
        inF += line.count
      } else if names.contains("g") {
        inG += line.count
      } else {
        other += line.count
      }
    }
    let n = inF + inG
    try #require(n >= 4000, "too few samples in f or g: \(n)\n\(result)")
    let measured = Double(inF) / Double(n)
    let expected = cpuF / (cpuF + cpuG)
    let wallShare = wallF / (wallF + wallG)
    let standardError = (expected * (1 - expected) / Double(n)).squareRoot()
    print(
      String(
        format:
          "accuracy (3.12, 100 Hz, 60 s%@): f share measured %.2f%% (f %d, g %d, other %d), truth cpu %.2f%% wall %.2f%%, error %+.2f pp (%.1f standard errors)",
        niced ? ", nice -20" : "", 100 * measured, inF, inG, other, 100 * expected, 100 * wallShare,
        100 * (measured - expected), (measured - expected) / standardError))
    #expect(abs(measured - expected) <= 0.02, "measured \(measured), truth \(expected) (wall \(wallShare))\n\(result)")
    #expect(abs(1 - measured - (1 - expected)) <= 0.02)
  }

  /// An output path that is not a plain file is written into, not replaced: `-o /dev/null` leaves
  /// /dev/null a character device (renaming a temporary file over it, as root, made it a regular
  /// file), a FIFO stays a FIFO and its reader gets the profile, and a symbolic link stays a link
  /// while the file it names gets the profile.
  @Test func outputThatIsNotAPlainFile() throws {
    let python = try installedPython("3.12.1")
    let target = try Fixture.start(python, Hot.script)
    defer { target.stop() }
    try target.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-outputs")
    defer { removeDirectory(directory) }
    func record(_ output: String) throws -> CommandResult {
      try SpyglassRunner.run(
        ["record", "-d", "1", "-r", "100", "-f", "raw", "-o", output, "--pid", "\(target.pid)"], timeout: .seconds(30))
    }
    func kind(_ path: String) -> mode_t {
      var info = stat()
      return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
    }

    let null = try record("/dev/null")
    #expect(null.exitCode == 0, "\(null)")
    #expect(kind("/dev/null") == S_IFCHR, "/dev/null is no longer a character device")
    let strays = (try? FileManager.default.contentsOfDirectory(atPath: "/dev"))?.filter { $0.contains(".spyglass-") }
    #expect(strays == [], "\(strays ?? [])")

    let fifo = directory + "/pipe"
    try #require(mkfifo(fifo, 0o644) == 0)
    let received = directory + "/received.txt"
    let reader = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "cat \"$0\" > \"$1\"", fifo, received])
    let piped = try record(fifo)
    #expect(piped.exitCode == 0, "\(piped)")
    #expect(reader.wait(timeout: .seconds(10)) == .exited(0))
    #expect(kind(fifo) == S_IFIFO)
    let pipedText = (try? String(contentsOfFile: received, encoding: .utf8)) ?? ""
    #expect(pipedText.contains(Hot.collapsed), "\(pipedText.prefix(500))")

    let real = directory + "/real.txt"
    let link = directory + "/link.txt"
    try "old".write(toFile: real, atomically: false, encoding: .utf8)
    try #require(symlink(real, link) == 0)
    let linked = try record(link)
    #expect(linked.exitCode == 0, "\(linked)")
    #expect(kind(link) == S_IFLNK, "the symbolic link was replaced")
    let linkedText = (try? String(contentsOfFile: real, encoding: .utf8)) ?? ""
    #expect(linkedText.contains(Hot.collapsed), "\(linkedText.prefix(500))")
  }

  /// Errors found before sampling, option checks, programs that cannot be profiled.
  @Test func errorPaths() throws {
    let python = try installedPython("3.12.1")
    func expectPlain(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(result.exitCode != nil && result.exitCode != 0, "\(result)", sourceLocation: sourceLocation)
      #expect(!result.stderr.isEmpty, "\(result)", sourceLocation: sourceLocation)
      for marker in crashMarkers {
        #expect(!result.stderr.contains(marker), "\(result)", sourceLocation: sourceLocation)
      }
    }
    // An output path that cannot be written: found before anything is launched or sampled.
    let marker = "spyglass-marker-\(UUID().uuidString)"
    let path = "/nonexistent-dir/x.svg"
    let unwritable = try SpyglassRunner.run(
      ["record", "-o", path, "--"] + python.command + [Hot.path, marker], timeout: .seconds(20))
    expectPlain(unwritable)
    #expect(unwritable.exitCode == 1, "\(unwritable)")
    #expect(unwritable.elapsed < .seconds(3), "\(unwritable)")
    #expect(unwritable.stderr.contains(path) && unwritable.stderr.contains("Cannot write"), "\(unwritable)")
    #expect(!unwritable.stderr.contains("Sampling process"), "\(unwritable)")
    usleep(100_000)
    let leftovers = processes(withArgument: marker)
    #expect(leftovers.isEmpty, "the program was launched and left running: \(leftovers)")
    for pid in leftovers { kill(pid, SIGKILL) }

    // --function/-F with --nolineno.
    for flag in ["--function", "-F"] {
      let result = try SpyglassRunner.run(["record", flag, "--nolineno", "-o", "/tmp/x.svg", "--", "/bin/true"])
      expectPlain(result)
      #expect(
        result.stderr.contains("--function & --nolineno can't be used together"), "\(flag) --nolineno:\n\(result)")
    }

    // --rate 0.
    let rate = try SpyglassRunner.run(["record", "--rate", "0", "-o", "/tmp/x.svg", "--", "/bin/true"])
    expectPlain(rate)
    #expect(rate.stderr.contains("--rate"), "\(rate)")

    // A program that does not exist.
    let directory = try makeTemporaryDirectory("spyglass-errors")
    defer { removeDirectory(directory) }
    let missing = try SpyglassRunner.run(["record", "-o", directory + "/a.svg", "--", "/nonexistent/python"])
    expectPlain(missing)
    #expect(missing.exitCode == 1, "\(missing)")
    let missingLines = missing.stderr.split(separator: "\n")
    #expect(missingLines.count == 1 && missingLines.first?.hasPrefix("spyglass: ") == true, "\(missing)")
    #expect(missing.stderr.contains("/nonexistent/python") && missing.stderr.contains("No such file"), "\(missing)")
    #expect(!FileManager.default.fileExists(atPath: directory + "/a.svg"))

    // A program that exits at once.
    let quick = try SpyglassRunner.run(
      ["record", "-o", directory + "/b.svg", "--"] + python.command + ["-c", "pass"], timeout: .seconds(30))
    expectPlain(quick)
    let quickLines = quick.stderr.split(separator: "\n").filter { !$0.hasPrefix("spyglass> ") }
    #expect(quickLines.count == 1 && quickLines.first?.hasPrefix("spyglass: ") == true, "\(quick)")
    #expect(quick.stderr.contains("exited"), "\(quick)")
    #expect(!FileManager.default.fileExists(atPath: directory + "/b.svg"))

    // A program that only sleeps and ends: attached, but every sample was of an idle thread.
    let sleeper = try SpyglassRunner.run(
      ["record", "-o", directory + "/c.svg", "--"] + python.command + ["-c", "import time; time.sleep(0.5)"],
      timeout: .seconds(30))
    expectPlain(sleeper)
    #expect(sleeper.exitCode == 1, "\(sleeper)")
    let sleeperLines = sleeper.stderr.split(separator: "\n").filter { !$0.hasPrefix("spyglass> ") }
    #expect(sleeperLines.count == 1 && sleeperLines.first?.contains("--idle") == true, "\(sleeper)")
    #expect(!FileManager.default.fileExists(atPath: directory + "/c.svg"))
  }

  /// Headless Chromium renders the flame graph into a non-blank picture; the SVG's title is the
  /// recorded command and it embeds the search and zoom script.
  @Test func chromiumRendersTheFlameGraph() throws {
    let python = try installedPython("3.12.1")
    let chromium = try #require(
      findOnPath("chromium"), "chromium is not installed (apt-get install chromium); ./test.sh installs it")
    let directory = try makeTemporaryDirectory("spyglass-chromium")
    defer { removeDirectory(directory) }
    let svgPath = directory + "/fg.svg"
    let arguments =
      ["record", "-f", "flamegraph", "-o", svgPath, "-d", "1", "-r", "200", "--"] + python.command + [Hot.path]
    let result = try SpyglassRunner.run(arguments, timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
    let title = "spyglass " + arguments.joined(separator: " ")
    let escapedTitle = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;")
    #expect(svg.contains("<title>\(escapedTitle)</title>"), "the title is the command: \(title)")
    #expect(svg.contains("<script"), "an embedded script")
    for function in ["function search(", "function zoom(", "function unzoom("] {
      #expect(svg.contains(function), "the script has \(function)")
    }
    let png = directory + "/fg.png"
    let shot = try runCommand(
      chromium,
      [
        "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(directory)/profile",
        "--screenshot=\(png)", "--window-size=1200,600", "file://\(svgPath)",
      ], timeout: .seconds(90))
    try #require(FileManager.default.fileExists(atPath: png), "no screenshot:\n\(shot)")
    let stats = try runSystemPython3([pngStatsPath, png])
    try #require(stats.exitCode == 0, "\(stats)")
    let summary = try #require(try decodeJSONBytes(Array(stats.stdout.utf8)) as? [String: Any])
    #expect(summary["width"] as? Int == 1200 && summary["height"] as? Int == 600, "\(summary)")
    #expect((summary["distinct"] as? Int ?? 0) > 5, "the picture is not blank: \(summary)")
    #expect((summary["background_share"] as? Double ?? 1) < 0.99, "\(summary)")
  }

  /// `--weight cpu --idle`: the sleeping thread weighs (almost) nothing, the busy one its CPU time;
  /// the summary reports CPU time per thread.
  @Test func weightByCPU() throws {
    let python = try installedPython("3.12.1")
    let target = try Fixture.start(python, "busy_and_idle.py")
    try target.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-weight")
    defer { removeDirectory(directory) }
    let output = directory + "/weights.json"
    let pid = target.pid
    func mainThreadCPU() -> Double {
      guard let stat = ProcStat.read(pid: pid, tid: pid) else { return 0 }
      return Double(stat.userTicks + stat.systemTicks) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    let before = mainThreadCPU()
    let result = try SpyglassRunner.run(
      ["record", "--pid", "\(pid)", "--idle", "--weight", "cpu", "-f", "speedscope", "-o", output, "-d", "2"],
      timeout: .seconds(30))
    let used = mainThreadCPU() - before
    try #require(result.exitCode == 0, "\(result)")
    let validation = try validateSpeedscope(output)
    #expect(validation.exitCode == 0 && validation.stdout == "valid\n", "\(validation)")
    let data = try #require(FileManager.default.contents(atPath: output))
    let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let profiles = try #require(document["profiles"] as? [[String: Any]])
    let tids = target.threadIDs()
    let sleeperTID = try #require(tids.first { $0 != pid }, "\(tids)")
    func weights(_ name: String) -> (sum: Double, count: Int)? {
      guard let profile = profiles.first(where: { $0["name"] as? String == name }),
        let weights = profile["weights"] as? [Double]
      else { return nil }
      return (weights.reduce(0, +), weights.count)
    }
    let busy = try #require(weights("Thread \(pid) \"MainThread\""), "\(profiles.map { $0["name"] ?? "?" })")
    let sleeper = try #require(weights("Thread \(sleeperTID) \"sleeper\""), "\(profiles.map { $0["name"] ?? "?" })")
    #expect(sleeper.count > 50 && busy.count > 50, "both threads sampled (--idle): \(busy.count), \(sleeper.count)")
    #expect(sleeper.sum <= 0.05, "the sleeping thread used no CPU: \(sleeper.sum) s")
    #expect(busy.sum <= used + 0.03, "busy weights \(busy.sum) s, CPU used \(used) s")
    #expect(busy.sum >= used - 0.3, "busy weights \(busy.sum) s, CPU used \(used) s")
    let cpuLines: [String] = result.stderr.components(separatedBy: "\n").filter {
      $0.hasPrefix("spyglass> CPU time per thread: ")
    }
    try #require(cpuLines.count == 1, "\(result)")
    let line = cpuLines[0]
    // The sleeper's own CPU time is not quite 0: in blocking mode every sample interrupts its sleep
    // (the kernel restarts the call), some tens of microseconds each.
    #expect(line.contains("\"MainThread\" (\(pid)) "), "\(line)")
    if let range = line.range(of: "\"sleeper\" (\(sleeperTID)) ") {
      let reported = Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? -1
      #expect(reported >= 0 && reported <= 0.02, "the sleeper's CPU time: \(line)")
    } else {
      Issue.record("no CPU time for the sleeper: \(line)")
    }
    // The busy thread's reported CPU time is its weights' sum (to the summary's 0.01 s) plus what
    // it used after the last sample: the recording ends at the first tick past the duration, up
    // to two intervals (1.618/rate at most with the golden-ratio phases) after the last sample.
    if let range = line.range(of: "\"MainThread\" (\(pid)) ") {
      let reported = Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? -1
      let tail = 2.0 / 100
      #expect(
        reported >= busy.sum - 0.011 && reported <= busy.sum + tail + 0.011,
        "summary \(reported) s vs weights \(busy.sum) s")
    }
  }
}
