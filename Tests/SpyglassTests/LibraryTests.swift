//===--- LibraryTests.swift - the Spyglass library as a client sees it ----===//
//
// `import Spyglass` and nothing else: `PythonSpy` reads every interpreter's stacks exactly (the
// oracle's own `sys._current_frames()` view), `Sampler` iterates at its rate and stops when the
// loop is left, errors carry the CLI's sentences; the engine's timer and CPU accounting on their
// own; and the example package under Examples/, a client outside this package that depends on it
// by path, builds and reads live processes.
//
//===----------------------------------------------------------------------===//

import Foundation
import Spyglass
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Library")
struct LibraryTests {
  @Test(arguments: PythonInterpreter.all())
  func pythonSpyReadsTheOracle(python: PythonInterpreter) throws {
    let (process, report) = try Fixture.startOracle(python)
    defer { process.stop() }
    let spy = try PythonSpy(pid: process.pid, config: Config(includeIdle: true))
    #expect(spy.version.hasPrefix("\(python.version.major).\(python.version.minor)."), "\(spy.version)")
    let traces = try spy.stackTraces()
    let byID = Dictionary(traces.map { ($0.threadID, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(Set(byID.keys) == Set(report.threads.map(\.ident)), "\(python.label): \(traces)")
    for expected in report.threads {
      let trace = try #require(byID[expected.ident], "\(python.label): thread \(expected.ident) missing")
      let frames = trace.frames.map { OracleFrame(name: $0.name, filename: $0.filename, line: $0.line) }
      #expect(frames == expected.frames, "\(python.label):\noracle \(expected)\nlibrary \(trace.frames)")
      if !python.isPython2 { #expect(trace.threadName == expected.name, "\(python.label)") }
      if python.version.atLeast(3, 11), let native = expected.nativeID {
        #expect(trace.osThreadID == UInt64(native), "\(python.label)")
      }
      #expect(trace.active == false && trace.ownsGIL == false, "\(python.label): \(trace)")
      #expect(trace.processInfo?.pid == process.pid)
      #expect(trace.frames.last?.isShimEntry == true)
    }
    // As py-spy's get_stack_traces: the default Config hands out every thread, idle ones too, each
    // with its `active` flag (the oracle's all sleep); leaving them out is the caller's choice.
    let defaults = try PythonSpy(pid: process.pid, config: Config()).stackTraces()
    #expect(Set(defaults.map(\.threadID)) == Set(report.threads.map(\.ident)), "\(python.label)")
    #expect(defaults.allSatisfy { !$0.active }, "\(python.label)")
  }

  @Test func configHasPySpysDefaults() {
    let config = Config()
    #expect(config.blocking == .lock)
    #expect(config.samplingRate == 100)
    #expect(config.lineNo == .lastInstruction)
    #expect(!config.native && !config.subprocesses && !config.includeIdle && !config.gilOnly)
    #expect(config.dumpLocals == 0 && !config.fullFilenames)
  }

  @Test func lineNumberModes() throws {
    let python = try #require(PythonInterpreter.all().last { $0.root == nil && !$0.isPython2 })
    let process = try Fixture.start(python, "longsleep.py")
    defer { process.stop() }
    try process.waitUntilSleeping(threadCount: 1)
    func leaf(_ lineNo: LineNo) throws -> Frame? {
      try PythonSpy(pid: process.pid, config: Config(lineNo: lineNo, includeIdle: true)).stackTraces().first?
        .frames.first
    }
    #expect(try leaf(.lastInstruction)?.line == 5)
    #expect(try leaf(.first)?.line == 4)
    #expect(try leaf(.noLine)?.line == 0)
    #expect(try leaf(.lastInstruction)?.shortFilename == "longsleep.py")
  }

  @Test func errorsAreTheCLIsSentences() throws {
    #expect(throws: SpyglassError.noSuchProcess(pid: 999_999_999)) {
      try PythonSpy(pid: 999_999_999, config: Config())
    }
    let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["100"], stdout: .discard, stderr: .discard)
    defer { sleeper.stop() }
    do {
      _ = try PythonSpy(pid: sleeper.pid, config: Config())
      Issue.record("a PythonSpy attached to /bin/sleep")
    } catch {
      guard case .notPython = error else {
        Issue.record("unexpected \(error)")
        return
      }
      let cli = try SpyglassRunner.run(["dump", "--pid", "\(sleeper.pid)"])
      #expect(cli.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == "spyglass: \(error)")
    }
    #expect(throws: SpyglassError.nativeNeedsBlocking) {
      try PythonSpy(pid: getpid(), config: Config(blocking: .nonBlocking, native: true))
    }
  }

  /// A Sampler on a busy target: samples come at its rate with the hot function in them, and
  /// leaving the loop stops its thread (the target keeps running, unpaused).
  @Test(arguments: PythonInterpreter.all().filter { $0.version.atLeast(3, 12) || $0.isPython2 })
  func samplerIterates(python: PythonInterpreter) throws {
    let process = try Fixture.start(python, "busyloop.py")
    defer { process.stop() }
    try process.waitForCPU()
    let sampler = try Sampler(pid: process.pid, config: Config(samplingRate: 200))
    var times: [Duration] = []
    var withBusy = 0
    for sample in sampler {
      times.append(sample.time)
      if sample.traces.contains(where: { $0.frames.contains { $0.name == "busy_loop" } }) { withBusy += 1 }
      if times.count == 100 { break }
    }
    #expect(times.count == 100)
    #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "times increase")
    #expect(withBusy >= 90, "\(python.label): \(withBusy) of 100 samples show the busy loop")
    let elapsed = try #require(times.last) - times[0]
    // 99 intervals at 200 Hz are about half a second; a generous bound (no timing assertion
    // beyond "it is paced, not a burst").
    #expect(elapsed > .milliseconds(200), "\(python.label): \(elapsed)")
    // Breaking out of the loop ended the iteration, and with it the sampling thread.
    let stopped = ContinuousClock.now + .seconds(2)
    while ContinuousClock.now < stopped && !sampler.isFinished { usleep(10_000) }
    #expect(sampler.isFinished, "\(python.label): the loop's end stopped sampling")
    let states = process.threadStates()
    #expect(!states.values.contains("t") && !states.values.contains("T"), "nothing left stopped: \(states)")
    #expect(process.isRunning)
  }

  @Test func samplerEndsWhenTheTargetExits() throws {
    let python = try #require(PythonInterpreter.all().last { $0.root == nil && !$0.isPython2 })
    let process = try Fixture.start(python, "busyloop.py")
    try process.waitForCPU()
    let sampler = try Sampler(pid: process.pid, config: Config(samplingRate: 100))
    var count = 0
    for _ in sampler {
      count += 1
      if count == 5 { process.stop() }
      if count > 1000 { break }
    }
    #expect(count >= 5 && count < 1000, "the sequence ended after the target did (\(count) samples)")
  }

  /// ProfileRecorder: a Sampler's samples into every format, without the command line; the
  /// recording it writes converts with `spyglass convert` to the very bytes it renders itself.
  @Test func profileRecorderWritesEveryFormat() throws {
    let python = try #require(PythonInterpreter.all().last { $0.root == nil && !$0.isPython2 })
    let process = try Fixture.start(python, "busyloop.py")
    defer { process.stop() }
    try process.waitForCPU()
    let sampler = try Sampler(pid: process.pid, config: Config(samplingRate: 200))
    let recorder = ProfileRecorder(rate: 200, title: "busyloop", pythonVersion: sampler.version)
    for sample in sampler.prefix(100) { recorder.add(sample) }
    #expect(recorder.sampleCount >= 90, "\(recorder.sampleCount) stacks from 100 samples of a busy thread")
    #expect(recorder.duration > .milliseconds(200))
    let names = ProfileFormat.all.map(\.name)
    #expect(
      Set(names).isSuperset(of: [
        "flamegraph", "speedscope", "chrometrace", "raw", "pprof", "pstats", "callgrind", "spyglass",
      ]), "\(names)")
    #expect(ProfileFormat(name: "nope") == nil)
    for format in ProfileFormat.all {
      #expect(try !recorder.render(format: format).isEmpty, "\(format)")
    }
    let raw = String(decoding: try recorder.render(format: try #require(ProfileFormat(name: "raw"))), as: UTF8.self)
    #expect(raw.contains("busy_loop (busyloop.py:"), "\(raw)")

    let directory = try makeTemporaryDirectory("spyglass-recorder")
    defer { removeDirectory(directory) }
    try recorder.write(to: directory + "/busy.spyglass", format: try #require(ProfileFormat(name: "spyglass")))
    for name in ["flamegraph", "speedscope", "pprof", "pstats"] {
      let format = try #require(ProfileFormat(name: name))
      let output = directory + "/converted." + format.fileExtension
      let result = try SpyglassRunner.run(["convert", directory + "/busy.spyglass", "-f", name, "-o", output])
      #expect(result.exitCode == 0, "\(result)")
      let converted = Array(try Data(contentsOf: URL(fileURLWithPath: output)))
      #expect(converted == (try recorder.render(format: format)), "\(name): convert gives the recorder's own bytes")
    }
    #expect(throws: SpyglassError.self) {
      try recorder.write(to: directory + "/missing/folder/x.svg", format: ProfileFormat.all[0])
    }
  }

  /// Examples/StackPrinter, a package outside this one that depends on Spyglass by path: with a
  /// default `Config`, it prints every thread of the oracle (whose threads are all parked) with
  /// the exact names, files and lines the interpreter's own `sys._current_frames()` gives, on
  /// every local interpreter; and the same stacks from a gcore core through `PythonCoreDump`.
  @Test func examplePackageBuildsAndRuns() throws {
    let root = RepositoryFiles.root
    let example = root + "/Examples/StackPrinter"
    let scratch = root + "/.build-example"
    let build = try runCommand(
      "/usr/bin/env", ["swift", "build", "--package-path", example, "--scratch-path", scratch],
      timeout: .seconds(900))
    try #require(build.exitCode == 0, "swift build of Examples/StackPrinter failed:\n\(build)")
    let binary = scratch + "/debug/StackPrinter"
    let pythons = PythonInterpreter.all()
    #expect(pythons.count >= 13, "\(PythonInterpreter.coverageReport)")
    for python in pythons {
      let (process, report) = try Fixture.startOracle(python)
      defer { process.stop() }
      let result = try runCommand(binary, ["\(process.pid)", "20"], timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(python.label): \(result)")
      let printed = Self.printedThreads(result.stdout)
      #expect(result.stdout.hasPrefix("Python \(python.version)\n"), "\(python.label): \(result.stdout)")
      Self.expectOracle(report, printed, python: python, what: "live")
      #expect(result.stdout.contains("Sampled 20 samples"), "\(python.label): \(result.stdout)")
    }
    // A core file through the public core API: a host interpreter and a rooted one. (gdb 13's
    // gcore of Debian sid's 3.14 and 3.15 in their root writes zeros where the threads' C stacks
    // hold their entry frames, so their cores end each thread's stack there: trixie's 3.13.)
    let folder = try makeTemporaryDirectory("spyglass-example-core")
    defer { removeDirectory(folder) }
    let rooted = pythons.last { $0.root != nil && !$0.version.atLeast(3, 14) }
    for python in [pythons.last { $0.root == nil && !$0.isPython2 }, rooted].compactMap({ $0 }) {
      let (process, report) = try Fixture.startOracle(python)
      defer { process.stop() }
      let dumped = try runCommand("gcore", ["-o", folder + "/core", "\(process.pid)"], timeout: .seconds(120))
      let core = folder + "/core.\(process.pid)"
      try #require(FileManager.default.fileExists(atPath: core), "gcore failed: \(dumped)")
      defer { try? FileManager.default.removeItem(atPath: core) }
      let result = try runCommand(binary, ["--core", core] + (python.root.map { [$0] } ?? []), timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(python.label): \(result)")
      Self.expectOracle(report, Self.printedThreads(result.stdout), python: python, what: "core")
    }
  }

  /// The threads StackPrinter printed: (ident, name, status, frames).
  static func printedThreads(_ output: String) -> [UInt64: (name: String, status: String, frames: [OracleFrame])] {
    var threads: [UInt64: (name: String, status: String, frames: [OracleFrame])] = [:]
    var current: UInt64?
    for line in output.split(separator: "\n").map(String.init) {
      if line.hasPrefix("Thread ") {
        let words = line.split(separator: " ").map(String.init)
        guard words.count >= 5, let ident = UInt64(words[1]) else { continue }
        current = ident
        threads[ident] = (words[3...].dropLast().joined(separator: " "), words.last ?? "", [])
      } else if line.hasPrefix("    "), let ident = current, let open = line.lastIndex(of: "("),
        let colon = line.lastIndex(of: ":"), colon > open
      {
        let name = String(line.dropFirst(4)[..<open]).trimmingCharacters(in: .whitespaces)
        let file = String(line[line.index(after: open)..<colon])
        let number = Int(line[line.index(after: colon)...].dropLast()) ?? -1
        threads[ident]?.frames.append(OracleFrame(name: name, filename: file, line: number))
      }
    }
    return threads
  }

  static func expectOracle(
    _ report: OracleReport, _ printed: [UInt64: (name: String, status: String, frames: [OracleFrame])],
    python: PythonInterpreter, what: String
  ) {
    #expect(Set(printed.keys) == Set(report.threads.map(\.ident)), "\(python.label) \(what): \(printed.keys)")
    for expected in report.threads {
      guard let thread = printed[expected.ident] else { continue }
      #expect(
        thread.frames == expected.frames, "\(python.label) \(what):\noracle \(expected)\nprinted \(thread.frames)")
      if !python.isPython2 { #expect(thread.name == (expected.name ?? "-"), "\(python.label) \(what)") }
      #expect(thread.status == "idle", "\(python.label) \(what): every thread is parked")
    }
  }
}

/// The engine under the library, on its own.
@Suite("Sampling engine")
struct EngineTests {
  /// The timer's instants: one per 1/rate interval, so a duration holds exactly rate × duration
  /// of them, with their phases inside the interval spread evenly.
  @Test func sampleTimerGrid() {
    var timer = SampleTimer(rate: 100, seed: 42)
    var phases = [Int](repeating: 0, count: 10)
    var count = 0
    while true {
      timer.advance()
      if timer.nextTick >= 20 { break }
      let slot = Int(timer.nextTick * 100)
      #expect(slot == count, "tick \(count) at \(timer.nextTick) is outside its interval")
      phases[Int((timer.nextTick * 100 - Double(slot)) * 10)] += 1
      count += 1
    }
    #expect(count == 2000, "20 s at 100 Hz")
    #expect(phases.allSatisfy { abs($0 - 200) <= 3 }, "phases spread evenly: \(phases)")
    var again = SampleTimer(rate: 100, seed: 42)
    again.advance()
    var first = SampleTimer(rate: 100, seed: 42)
    first.advance()
    #expect(again.nextTick == first.nextTick, "a seed gives the same instants")
  }

  /// CPU accounting on this very thread: it notices the CPU time it burns.
  @Test func cpuTimesFollowAThread() {
    let pid = getpid()
    // This thread's kernel id: /proc/thread-self is a link to PID/task/TID.
    let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    let tid = Int32(link.split(separator: "/").last ?? "") ?? 0
    var times = CPUTimes()
    #expect(times.delta(pid: pid, tid: tid) == nil, "the first reading only starts following")
    var x = 0.0
    let start = monotonicSeconds()
    while monotonicSeconds() - start < 0.05 { x += sin(x) }
    let used = times.delta(pid: pid, tid: tid) ?? 0
    #expect(used >= 10_000_000, "50 ms of spinning used \(used) ns (x = \(x))")
    times.refresh()
    #expect((times.total(pid: pid, tid: tid) ?? 0) >= used)
    #expect(times.total(pid: pid, tid: 999_999) == nil)
  }
}
