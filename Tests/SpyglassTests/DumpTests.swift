//===--- DumpTests.swift - `spyglass dump` against live interpreters ------===//
//
// py-spy's integration cases, re-created as fixture scripts (Fixtures/scripts/), run under every
// interpreter installed here (TestSupport.PythonInterpreter: nine pyenv builds, Debian's static
// python3.11, and Debian's python3.13, 3.14 and 3.15 chrooted in their roots, as in a container).
// Each case starts the fixture, waits for its readiness line and for it to block (or to burn CPU),
// runs `spyglass dump --pid PID --json`, and checks names, files, lines, thread names, idle/active
// and GIL exactly as py-spy's own tests do. On top of that:
//   - the oracle: the interpreter's own sys._current_frames() must match the dump frame for frame;
//   - py-spy 0.4.3 as a second reader of the same SIGSTOPped process (and, on 3.15, CPython's own
//     sampler Tachyon: TachyonOracleTests.swift);
//   - the text format, --nonblocking, and the error paths.
//
// The suite `TestSupportSelfTests` at the end checks the harness without spyglass: discovery,
// spawning, the oracle, and every expectation below applied to py-spy's reading of the fixtures.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

// MARK: - Fixtures and readers

enum Fixture {
  /// Fixtures/scripts in the test bundle's resources, else in the source tree.
  static let directory: String = {
    if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) {
      let scripts = url.appendingPathComponent("scripts").path
      if FileManager.default.fileExists(atPath: scripts + "/longsleep.py") { return scripts }
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/scripts")
      .path
  }()

  static func path(_ name: String) -> String { directory + "/" + name }

  static let unicodeName = "unicode\u{1F4A9}.py"

  /// Starts a fixture and waits for its readiness line.
  static func start(_ python: PythonInterpreter, _ name: String) throws -> PythonProcess {
    try PythonProcess(python, script: path(name))
  }

  /// Starts the oracle; returns the process (with the reporter thread gone) and its report.
  static func startOracle(_ python: PythonInterpreter) throws -> (PythonProcess, OracleReport) {
    let process = try PythonProcess(python, script: path("oracle.py"), isReady: { $0.hasPrefix("{") })
    let report = try OracleReport.decode(process.readyLine)
    // The reporter returns right after printing: wait for its OS thread to be gone too.
    try process.waitUntilSleeping(threadCount: report.threads.count)
    return (process, report)
  }
}

extension PythonProcess {
  /// The fixtures print `READY threading=0|1`: whether `threading` was imported (a site hook may
  /// import it), in which case the main thread has the name "MainThread".
  var expectedMainThreadName: String? { readyLine.contains("threading=1") ? "MainThread" : nil }
}

/// Who reads the process: the tool under test, or py-spy (the reference, in the self-tests).
enum Reader: String, Sendable, CustomStringConvertible {
  case spyglass
  case pyspy = "py-spy"
  var description: String { rawValue }

  func run(_ arguments: [String]) throws -> CommandResult {
    switch self {
    case .spyglass: return try SpyglassRunner.run(arguments, timeout: .seconds(20))
    case .pyspy: return try PySpy.run(arguments, timeout: .seconds(20))
    }
  }

  /// `dump --pid PID --json [--nonblocking]`, required to succeed, decoded strictly.
  func dump(
    _ process: PythonProcess, nonblocking: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> [DumpThread] {
    var arguments = ["dump", "--pid", "\(process.pid)", "--json"]
    if nonblocking { arguments.append("--nonblocking") }
    let result = try run(arguments)
    try #require(result.exitCode == 0, "\(self) failed:\n\(result)", sourceLocation: sourceLocation)
    do {
      return try DumpJSON.decode(result.stdout)
    } catch {
      Issue.record("\(self) printed JSON that is not py-spy's shape: \(error)", sourceLocation: sourceLocation)
      throw error
    }
  }
}

/// One expected frame: function name (co_name, or co_qualname on 3.11+), file, allowed lines.
struct ExpectedFrame: CustomStringConvertible {
  let name: String
  let file: String
  let lines: ClosedRange<Int>

  init(_ name: String, _ file: String, _ line: Int) {
    self.init(name, file, line...line)
  }
  init(_ name: String, _ file: String, _ lines: ClosedRange<Int>) {
    self.name = name
    self.file = file
    self.lines = lines
  }

  var description: String {
    "\(name) (\(file):\(lines.count == 1 ? "\(lines.lowerBound)" : "\(lines.lowerBound)...\(lines.upperBound)"))"
  }
}

/// Checks a thread's frames one for one: name, short_filename, full filename (the fixture's path),
/// line range; module and locals null (no --locals).
func expectFrames(
  _ thread: DumpThread, _ expected: [ExpectedFrame], sourceLocation: SourceLocation = #_sourceLocation
) {
  let context = "expected:\n    \(expected.map(\.description).joined(separator: "\n    "))\ngot:\n\(thread)"
  guard thread.frames.count == expected.count else {
    Issue.record("frame count \(thread.frames.count) != \(expected.count)\n\(context)", sourceLocation: sourceLocation)
    return
  }
  for (frame, want) in zip(thread.frames, expected) {
    #expect(frame.name == want.name, "\(context)", sourceLocation: sourceLocation)
    #expect(frame.shortFilename == want.file, "\(context)", sourceLocation: sourceLocation)
    #expect(frame.filename == Fixture.path(want.file), "\(context)", sourceLocation: sourceLocation)
    #expect(want.lines.contains(frame.line), "\(context)", sourceLocation: sourceLocation)
    #expect(frame.module == nil, sourceLocation: sourceLocation)
    #expect(frame.locals == nil, sourceLocation: sourceLocation)
  }
}

/// The crash markers that must never appear in an error message.
let crashMarkers = ["Fatal error", "Stack dump", "Swift runtime failure", "Illegal instruction", "Segmentation fault"]

// MARK: - Checks shared by spyglass's tests and the py-spy self-tests

enum Checks {
  /// longsleep.py, blocking: one idle thread without the GIL, longsleep:5 <- <module>:9.
  static func longSleep(_ python: PythonInterpreter, reader: Reader) throws {
    let process = try Fixture.start(python, "longsleep.py")
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process)
    try #require(threads.count == 1, "\(threads)")
    let thread = threads[0]
    expectFrames(thread, [.init("longsleep", "longsleep.py", 5), .init("<module>", "longsleep.py", 9)])
    #expect(thread.pid == Int(process.pid))
    #expect(thread.active == false, "\(thread)")
    #expect(thread.ownsGIL == false, "\(thread)")
    #expect(thread.threadName == process.expectedMainThreadName, "\(thread)")
    #expect(thread.threadID != 0)
    if let tid = thread.osThreadID { #expect(tid == Int(process.pid), "the main thread's OS id is the pid") }
  }

  /// busyloop.py, blocking: active, holding the GIL, busy_loop:2|3 <- <module>:7.
  static func busyLoop(_ python: PythonInterpreter, reader: Reader, nonblocking: Bool = false) throws {
    let process = try Fixture.start(python, "busyloop.py")
    try process.waitForCPU()
    let threads = try reader.dump(process, nonblocking: nonblocking)
    try #require(threads.count == 1, "\(threads)")
    let thread = threads[0]
    expectFrames(thread, [.init("busy_loop", "busyloop.py", 2...3), .init("<module>", "busyloop.py", 7)])
    #expect(thread.active == true, "\(thread)")
    #expect(thread.ownsGIL == true, "\(thread)")
    #expect(thread.threadName == process.expectedMainThreadName, "\(thread)")
  }

  /// unicode💩.py: a non-ASCII file name (also on 2.7).
  static func unicodeFilename(_ python: PythonInterpreter, reader: Reader) throws {
    let process = try Fixture.start(python, Fixture.unicodeName)
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process)
    try #require(threads.count == 1, "\(threads)")
    let thread = threads[0]
    expectFrames(thread, [.init("function1", Fixture.unicodeName, 6), .init("<module>", Fixture.unicodeName, 9)])
    #expect(thread.active == false, "\(thread)")
    #expect(thread.ownsGIL == false, "\(thread)")
  }

  /// cyrillic.py (Python 3 only): a non-ASCII function name.
  static func cyrillicName(_ python: PythonInterpreter, reader: Reader) throws {
    let process = try Fixture.start(python, "cyrillic.py")
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process)
    try #require(threads.count == 1, "\(threads)")
    let thread = threads[0]
    expectFrames(
      thread,
      [
        .init("\u{043A}\u{0438}\u{0440}\u{0438}\u{043B}\u{043B}\u{0438}\u{0446}\u{0430}", "cyrillic.py", 4),
        .init("<module>", "cyrillic.py", 7),
      ])
    #expect(thread.active == false, "\(thread)")
    #expect(thread.ownsGIL == false, "\(thread)")
  }

  /// recursive.py, 20 blocking dumps while it recurses: always a whole stack (py-spy #56):
  /// at most 22 frames, `<module>` (line 7 or 8) outermost, `recurse` everywhere else, each caller
  /// at line 4 (the recursive call).
  static func recursive(_ python: PythonInterpreter, reader: Reader, dumps: Int = 20) throws {
    let process = try Fixture.start(python, "recursive.py")
    try process.waitForCPU()
    for _ in 0..<dumps {
      let threads = try reader.dump(process)
      try #require(threads.count == 1, "\(threads)")
      let thread = threads[0]
      let frames = thread.frames
      try #require(!frames.isEmpty && frames.count <= 22, "\(thread)")
      let outermost = frames[frames.count - 1]
      #expect(outermost.name == "<module>" && (7...8).contains(outermost.line), "\(thread)")
      #expect(outermost.shortFilename == "recursive.py" && outermost.filename == Fixture.path("recursive.py"))
      for (index, frame) in frames.dropLast().enumerated() {
        #expect(frame.name == "recurse", "\(thread)")
        #expect(frame.filename == Fixture.path("recursive.py"), "\(thread)")
        // The leaf may be anywhere in the body; every caller is at its recursive call.
        #expect(index == 0 ? (1...4).contains(frame.line) : frame.line == 4, "\(thread)")
      }
      #expect(thread.active == true, "\(thread)")
      usleep(5_000)
    }
  }

  /// negative_linenumber_offsets.py: a multi-line comprehension whose element is above the
  /// `for` clause. 2.7 and 3.12+ inline it (PEP 709): f <- <module>. 3.6-3.11 have a separate
  /// comprehension frame, named `f.<locals>.<listcomp>` with 3.11's qualnames.
  static func negativeLineOffsets(_ python: PythonInterpreter, reader: Reader) throws {
    let file = "negative_linenumber_offsets.py"
    let process = try Fixture.start(python, file)
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process)
    try #require(threads.count == 1, "\(threads)")
    var expected: [ExpectedFrame] = [.init("f", file, 5...10), .init("<module>", file, 13)]
    if python.version.major == 3 && !python.version.atLeast(3, 12) {
      let name = python.usesQualifiedNames ? "f.<locals>.<listcomp>" : "<listcomp>"
      expected.insert(.init(name, file, 5...10), at: 0)
    }
    expectFrames(threads[0], expected)
    #expect(threads[0].active == false, "\(threads[0])")
  }

  /// thread_names.py: 11 idle threads named CustomThreadName-0...9 and MainThread (3.6+; py-spy
  /// reads no names on 2.7: there they must be all null, or all right). The main thread is in
  /// main:10 <- <module>:13; the others in the lambda at line 7, under threading.py's frames.
  static func threadNames(_ python: PythonInterpreter, reader: Reader) throws {
    let file = "thread_names.py"
    let process = try Fixture.start(python, file)
    try process.waitUntilSleeping(threadCount: 11)
    let threads = try reader.dump(process)
    try #require(threads.count == 11, "\(threads)")
    let expectedNames = Set((0..<10).map { "CustomThreadName-\($0)" } + ["MainThread"])
    let names = threads.map(\.threadName)
    if python.isPython2 && names.allSatisfy({ $0 == nil }) {
      // py-spy's behaviour on 2.7.
    } else {
      #expect(Set(names.compactMap { $0 }) == expectedNames && names.allSatisfy { $0 != nil }, "\(names)")
    }
    let mains = threads.filter { $0.frames.first?.name == "main" }
    try #require(mains.count == 1, "\(threads)")
    expectFrames(mains[0], [.init("main", file, 10), .init("<module>", file, 13)])
    if mains[0].threadName != nil { #expect(mains[0].threadName == "MainThread") }
    let lambda = python.usesQualifiedNames ? "main.<locals>.<lambda>" : "<lambda>"
    let threadingFrames: [String] =
      python.isPython2
      ? ["run", "__bootstrap_inner", "__bootstrap"]
      : python.usesQualifiedNames
        ? ["Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"] : ["run", "_bootstrap_inner", "_bootstrap"]
    for thread in threads where thread.threadID != mains[0].threadID {
      try #require(!thread.frames.isEmpty, "\(thread)")
      let leaf = thread.frames[0]
      #expect(leaf.name == lambda && leaf.line == 7 && leaf.filename == Fixture.path(file), "\(thread)")
      let rest = thread.frames.dropFirst()
      #expect(rest.map(\.name) == threadingFrames, "\(thread)")
      #expect(
        rest.allSatisfy { $0.filename.hasSuffix("/threading.py") && $0.shortFilename == "threading.py" }, "\(thread)")
      if let name = thread.threadName { #expect(name.hasPrefix("CustomThreadName-"), "\(thread)") }
    }
    for thread in threads {
      #expect(thread.active == false, "\(thread)")
      #expect(thread.ownsGIL == false, "\(thread)")
    }
  }

  /// The oracle: every thread the interpreter itself reports is in the dump (thread_id == ident),
  /// with the same name and the same frames, one for one (name, full filename, line). No other
  /// thread is in the dump (the reporter is gone). All are idle without the GIL.
  static func oracle(_ python: PythonInterpreter, reader: Reader) throws {
    let (process, report) = try Fixture.startOracle(python)
    let threads = try reader.dump(process)
    try compare(python, oracle: report, dump: threads)
    for thread in threads {
      #expect(thread.active == false, "\(thread)")
      #expect(thread.ownsGIL == false, "\(thread)")
    }
  }

  static func compare(_ python: PythonInterpreter, oracle report: OracleReport, dump threads: [DumpThread]) throws {
    #expect(report.threads.count == 6, "the oracle has 6 threads besides its reporter: \(report.threads)")
    let byID = Dictionary(threads.map { ($0.threadID, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(
      Set(threads.map(\.threadID)) == Set(report.threads.map(\.ident)) && threads.count == report.threads.count,
      "thread ids differ: dump \(threads.map(\.threadID).sorted()), oracle \(report.threads.map(\.ident).sorted())")
    for expected in report.threads {
      guard let thread = byID[expected.ident] else {
        Issue.record("oracle thread missing from the dump:\n\(expected)\ndump:\n\(threads)")
        continue
      }
      let context = "oracle:\n\(expected)\ndump:\n\(thread)"
      #expect(thread.frames.map(\.identity) == expected.frames, "\(context)")
      if python.isPython2 && thread.threadName == nil {
        // py-spy reads no thread names on 2.7.
      } else {
        #expect(thread.threadName == expected.name, "\(context)")
      }
      if let nativeID = expected.nativeID {
        // 3.11+ keep the OS id in the thread state; before, it has to be worked out (or omitted).
        if python.version.atLeast(3, 11) {
          #expect(thread.osThreadID == nativeID, "\(context)")
        } else if let tid = thread.osThreadID {
          #expect(tid == nativeID, "\(context)")
        }
      }
    }
  }

  /// The text format on longsleep.py, line for line:
  ///   Process <pid>: <cmdline>
  ///   Python v<version> (<exe>)
  ///   <blank>
  ///   Thread <os tid, or 0x<HEX thread_id> when unknown> (idle)[: "MainThread"]
  ///       longsleep (longsleep.py:5)
  ///       <module> (longsleep.py:9)
  static func textFormat(_ python: PythonInterpreter, reader: Reader) throws {
    let process = try Fixture.start(python, "longsleep.py")
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process)
    try #require(threads.count == 1)
    let result = try reader.run(["dump", "--pid", "\(process.pid)"])
    try #require(result.exitCode == 0, "\(result)")
    let thread = threads[0]
    let threadLabel = thread.osThreadID.map { String($0) } ?? String(format: "0x%llX", thread.threadID)
    let nameSuffix = process.expectedMainThreadName.map { ": \"\($0)\"" } ?? ""
    let executable = try ProcFS.executable(process.pid)
    let expected = [
      "Process \(process.pid): \(ProcFS.commandLine(process.pid).joined(separator: " "))",
      "Python v\(python.version) (\(executable))",
      "",
      "Thread \(threadLabel) (idle)\(nameSuffix)",
      "    longsleep (longsleep.py:5)",
      "    <module> (longsleep.py:9)",
    ]
    var lines = result.stdout.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    #expect(lines == expected, "\(result)")
    #expect(!result.stdout.contains("\u{1B}["), "no colour codes when stdout is not a terminal")
  }

  /// --nonblocking on longsleep.py: the target keeps running; frames and name are still right and
  /// nobody holds the GIL. (Idle detection may need the OS tid, which without pausing is not always
  /// known: `active` is not checked.)
  static func longSleepNonblocking(_ python: PythonInterpreter, reader: Reader) throws {
    let process = try Fixture.start(python, "longsleep.py")
    try process.waitUntilSleeping(threadCount: 1)
    let threads = try reader.dump(process, nonblocking: true)
    try #require(threads.count == 1, "\(threads)")
    expectFrames(threads[0], [.init("longsleep", "longsleep.py", 5), .init("<module>", "longsleep.py", 9)])
    #expect(threads[0].ownsGIL == false, "\(threads[0])")
    #expect(threads[0].threadName == process.expectedMainThreadName)
    #expect(process.isRunning)
  }
}

// MARK: - spyglass dump

@Suite("spyglass dump", .timeLimit(.minutes(10)))
struct DumpTests {
  /// Prints which interpreters (and which binaries) this run covers, and fails if any is missing.
  @Test func aaa_interpreterCoverage() throws {
    print(PythonInterpreter.coverageReport)
    print("spyglass under test: \((try? SpyglassRunner.executablePath()) ?? "NOT FOUND")")
    print("py-spy reference: \((try? PySpy.executablePath()) ?? "NOT FOUND")")
    try PythonInterpreter.requireAll()
  }

  @Test("longsleep.py: idle, longsleep:5 <- <module>:9", arguments: PythonInterpreter.all())
  func longSleep(_ python: PythonInterpreter) throws {
    try Checks.longSleep(python, reader: .spyglass)
  }

  @Test("busyloop.py: active+gil, busy_loop:2|3 <- <module>:7", arguments: PythonInterpreter.all())
  func busyLoop(_ python: PythonInterpreter) throws {
    try Checks.busyLoop(python, reader: .spyglass)
  }

  @Test("unicode💩.py: non-ASCII file name", arguments: PythonInterpreter.all())
  func unicodeFilename(_ python: PythonInterpreter) throws {
    try Checks.unicodeFilename(python, reader: .spyglass)
  }

  @Test("cyrillic.py: non-ASCII function name (Python 3)", arguments: PythonInterpreter.all().filter { !$0.isPython2 })
  func cyrillicName(_ python: PythonInterpreter) throws {
    try Checks.cyrillicName(python, reader: .spyglass)
  }

  @Test("recursive.py: 20 dumps, always whole stacks", arguments: PythonInterpreter.all())
  func recursive(_ python: PythonInterpreter) throws {
    try Checks.recursive(python, reader: .spyglass)
  }

  @Test("negative_linenumber_offsets.py: multi-line comprehension", arguments: PythonInterpreter.all())
  func negativeLineOffsets(_ python: PythonInterpreter) throws {
    try Checks.negativeLineOffsets(python, reader: .spyglass)
  }

  @Test("thread_names.py: 11 named threads", arguments: PythonInterpreter.all())
  func threadNames(_ python: PythonInterpreter) throws {
    try Checks.threadNames(python, reader: .spyglass)
  }

  @Test("oracle.py: the interpreter's own sys._current_frames() agrees", arguments: PythonInterpreter.all())
  func oracle(_ python: PythonInterpreter) throws {
    try Checks.oracle(python, reader: .spyglass)
  }

  @Test("text format on longsleep.py", arguments: PythonInterpreter.all())
  func textFormat(_ python: PythonInterpreter) throws {
    try Checks.textFormat(python, reader: .spyglass)
  }

  @Test("--nonblocking on longsleep.py", arguments: PythonInterpreter.all())
  func longSleepNonblocking(_ python: PythonInterpreter) throws {
    try Checks.longSleepNonblocking(python, reader: .spyglass)
  }

  @Test("--nonblocking on busyloop.py", arguments: PythonInterpreter.all())
  func busyLoopNonblocking(_ python: PythonInterpreter) throws {
    try Checks.busyLoop(python, reader: .spyglass, nonblocking: true)
  }

  // MARK: py-spy as a second reader

  /// The same SIGSTOPped process read by py-spy 0.4.3 and by spyglass (both --nonblocking): per
  /// thread (by thread_id) the frames' name, filename and line must agree, and so must thread names
  /// on 3.6+ (py-spy reads none on 2.7).
  ///
  /// Known py-spy 0.4.3 difference, allowed explicitly: on 3.11+ py-spy does not hide incomplete
  /// frames (a frame pushed whose first instruction has not run; CPython's sys._current_frames()
  /// hides them), so while `recursive.py` is stopped mid-call py-spy may show one extra leaf
  /// `recurse (recursive.py:1)`. That leaf is dropped from py-spy's side only if everything
  /// else matches. Before 3.11, a frame stopped before its first instruction (f_lasti -1) is on
  /// its `def` line for CPython (`frame.f_lineno`) and for spyglass, on the first statement's line
  /// for py-spy: that one leaf line may differ. Both tools print co_qualname on 3.11+.
  @Test(
    "py-spy and spyglass agree on a stopped process",
    arguments: PythonInterpreter.all(), ["longsleep.py", "recursive.py", "oracle.py"])
  func agreesWithPySpy(_ python: PythonInterpreter, script: String) throws {
    _ = try #require(
      try? PySpy.executablePath(), "py-spy is required for this test (pip install py-spy==0.4.3): \(PySpy.location)")
    let process: PythonProcess
    switch script {
    case "oracle.py": process = try Fixture.startOracle(python).0
    case "recursive.py":
      process = try Fixture.start(python, script)
      try process.waitForCPU()
    default:
      process = try Fixture.start(python, script)
      try process.waitUntilSleeping()
    }
    try process.suspend()
    defer { process.resume() }
    let reference = try Reader.pyspy.dump(process, nonblocking: true)
    let ours = try Reader.spyglass.dump(process, nonblocking: true)
    let referenceByID = Dictionary(reference.map { ($0.threadID, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(
      Set(ours.map(\.threadID)) == Set(reference.map(\.threadID)),
      "thread ids differ:\npy-spy:\n\(reference)\nspyglass:\n\(ours)")
    for thread in ours {
      guard let other = referenceByID[thread.threadID] else { continue }
      var theirs = other.frames.map(\.identity)
      let mine = thread.frames.map(\.identity)
      if python.version.atLeast(3, 11), script == "recursive.py", theirs.count == mine.count + 1,
        let leaf = theirs.first, leaf.name == "recurse", leaf.line == 1, Array(theirs.dropFirst()) == mine
      {
        theirs.removeFirst()  // py-spy's incomplete-frame leaf, see above
        print(
          "note: \(python) recursive.py: py-spy showed an incomplete leaf recurse (recursive.py:1); spyglass hid it")
      }
      if !python.version.atLeast(3, 11), script == "recursive.py", theirs.count == mine.count,
        let leaf = theirs.first, leaf.name == "recurse", leaf.line == 2,
        mine.first == OracleFrame(name: leaf.name, filename: leaf.filename, line: 1),
        Array(theirs.dropFirst()) == Array(mine.dropFirst())
      {
        theirs[0] = mine[0]  // a leaf stopped before its first instruction, see above
        print("note: \(python) recursive.py: leaf recurse before its first instruction (py-spy line 2, spyglass 1)")
      }
      #expect(mine == theirs, "frames differ:\npy-spy:\n\(other)\nspyglass:\n\(thread)")
      if !python.isPython2 {
        #expect(thread.threadName == other.threadName, "thread names differ:\npy-spy:\n\(other)\nspyglass:\n\(thread)")
      }
    }
  }

  // MARK: errors

  @Test func nonexistentPID() throws {
    var pid: Int32 = 999_999
    while ProcFS.processExists(pid) { pid -= 1 }
    let result = try SpyglassRunner.run(["dump", "--pid", "\(pid)"])
    #expect(result.exitCode == 1, "\(result)")
    let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(!message.isEmpty && !message.contains("\n"), "one line on stderr:\n\(result)")
    #expect(message.contains("\(pid)"), "\(result)")
    let lower = message.lowercased()
    #expect(
      ["no such process", "not found", "does not exist", "doesn't exist"].contains { lower.contains($0) }, "\(result)")
    for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
  }

  @Test func notAPythonProcess() throws {
    let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["100"], stdout: .discard, stderr: .discard)
    defer { sleeper.stop() }
    let result = try SpyglassRunner.run(["dump", "--pid", "\(sleeper.pid)"])
    #expect(result.exitCode == 1, "\(result)")
    let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(message.lowercased().contains("python"), "says it is not a Python process:\n\(result)")
    for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
    #expect(sleeper.isAlive, "the target survives")
  }

  @Test func missingPID() throws {
    let result = try SpyglassRunner.run(["dump"])
    #expect(result.exitCode != 0 && result.exitCode != nil, "\(result)")
    #expect((result.stderr + result.stdout).lowercased().contains("usage"), "\(result)")
    for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
  }

  /// An unprivileged user (nobody) cannot attach to a root-owned Python: exit 1 with advice.
  @Test func permissionDenied() throws {
    try #require(getuid() == 0, "this test drops privileges from root; run the suite as root (CI does)")
    let setpriv = (["/usr/bin/setpriv", "/bin/setpriv"] as [String]).first { access($0, X_OK) == 0 }
    let runuser = (["/usr/sbin/runuser", "/sbin/runuser"] as [String]).first { access($0, X_OK) == 0 }
    let wrapper: [String]
    if let setpriv {
      wrapper = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    } else if let runuser {
      wrapper = [runuser, "-u", "nobody", "--"]
    } else {
      Issue.record("neither setpriv nor runuser is installed (util-linux)")
      return
    }
    // A host interpreter: the test is about permissions, not about versions or roots.
    let python = try #require(PythonInterpreter.all().last { !$0.isPython2 && $0.root == nil })
    let process = try Fixture.start(python, "longsleep.py")
    try process.waitUntilSleeping(threadCount: 1)

    // A copy nobody can execute (the build folder may not be reachable for it).
    let directory = NSTemporaryDirectory() + "spyglass-nobody-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let copy = directory + "/spyglass"
    try copyExecutable(from: try SpyglassRunner.executablePath(), to: copy)
    chmod(directory, 0o755)

    let whoami = try runCommand(wrapper[0], Array(wrapper.dropFirst()) + ["/usr/bin/id", "-u"])
    try #require(whoami.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "65534", "\(whoami)")

    var result = try SpyglassRunner.run(["dump", "--pid", "\(process.pid)"], wrapper: wrapper, executable: copy)
    for _ in 0..<20 where result.stderr.contains("Text file busy") {
      // A child that another test spawned at the moment of the copy may still hold the write fd
      // (until it execs): wait for it.
      usleep(50_000)
      result = try SpyglassRunner.run(["dump", "--pid", "\(process.pid)"], wrapper: wrapper, executable: copy)
    }
    #expect(result.exitCode == 1, "\(result)")
    for needle in ["sudo", "CAP_SYS_PTRACE", "ptrace_scope"] {
      #expect(result.stderr.contains(needle), "the message mentions \(needle):\n\(result)")
    }
    for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
    #expect(process.isRunning)
  }
}

/// Copies a file to a new 0755 file whose descriptor is close-on-exec (so that no concurrently
/// spawned child keeps it open for writing, which would make exec fail with ETXTBSY).
func copyExecutable(from source: String, to destination: String) throws {
  let bytes = try ProcFS.readFile(source, limit: 1 << 30)
  let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
  guard fd >= 0 else { throw TestSupportError("cannot create \(destination): \(String(cString: strerror(errno)))") }
  defer { close(fd) }
  var offset = 0
  while offset < bytes.count {
    let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if n < 0 {
      if errno == EINTR { continue }
      throw TestSupportError("cannot write \(destination): \(String(cString: strerror(errno)))")
    }
    offset += n
  }
  fchmod(fd, 0o755)
}

// MARK: - The harness itself (no spyglass needed)

@Suite("TestSupport self-test", .timeLimit(.minutes(10)))
struct TestSupportSelfTests {
  @Test func interpretersAreAllThere() throws {
    print(PythonInterpreter.coverageReport)
    let all = try PythonInterpreter.requireAll()
    #expect(all.count == 13)
    #expect(all.map(\.label) == PythonInterpreter.expectedInterpreters.map(\.label))
    for python in all {
      if python.label.hasSuffix("-debian") || python.root != nil {
        // "3.11-debian", "3.13-trixie", "3.14-sid", "3.15-sid": Debian's builds, any micro version.
        #expect(python.label.hasPrefix("\(python.version.major).\(python.version.minor)-"))
        #expect(python.isStaticBuild, "Debian's \(python.path) links libpython statically")
        #expect(python.label == "3.11-debian" ? python.root == nil : python.command.count > 1)
      } else {
        #expect(python.label == "\(python.version)")
        #expect(!python.isStaticBuild, "pyenv's builds here use libpython.so")
      }
    }
  }

  @Test func commandsAreCapturedAndTimedOut() throws {
    let result = try runCommand("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
    #expect(result.stdout == "out\n" && result.stderr == "err\n" && result.exitCode == 3 && !result.timedOut)
    let slow = try runCommand("/bin/sleep", ["10"], timeout: .milliseconds(300))
    #expect(slow.timedOut && slow.status == nil && slow.elapsed < .seconds(3))
    let killed = try runCommand("/bin/sh", ["-c", "kill -9 $$"])
    #expect(killed.status == .signaled(9))
  }

  @Test func binariesAreFound() throws {
    let spyglass = try SpyglassRunner.executablePath()
    print("spyglass: \(spyglass)")
    #expect(access(spyglass, X_OK) == 0)
    let pyspy = try PySpy.executablePath()
    print("py-spy: \(pyspy)")
  }

  /// Each fixture starts, prints its readiness line and blocks; the child has an empty signal mask;
  /// stop() kills and reaps it.
  @Test("fixtures start and block", arguments: PythonInterpreter.all())
  func fixturesStartAndBlock(_ python: PythonInterpreter) throws {
    var scripts = ["longsleep.py", Fixture.unicodeName, "negative_linenumber_offsets.py"]
    if !python.isPython2 { scripts.append("cyrillic.py") }
    for script in scripts {
      let process = try Fixture.start(python, script)
      #expect(process.readyLine == "READY threading=0" || process.readyLine == "READY threading=1")
      try process.waitUntilSleeping(threadCount: 1)
      let status = try ProcFS.readString("/proc/\(process.pid)/status")
      let blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.map {
        $0.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces)
      }
      #expect(blocked == "0000000000000000", "the child's signal mask is empty")
      // /proc/PID/exe names the file as the host sees it: inside the root for a rooted interpreter.
      let exe = try ProcFS.executable(process.pid)
      #expect(exe == URL(fileURLWithPath: python.hostPath).resolvingSymlinksInPath().path)
      #expect(ProcFS.commandLine(process.pid).first == python.path, "in-root.sh execs the interpreter itself")
      let pid = process.pid
      process.stop()
      #expect(kill(pid, 0) == -1 && errno == ESRCH, "killed and reaped")
    }
    let threads = try Fixture.start(python, "thread_names.py")
    try threads.waitUntilSleeping(threadCount: 11)
    #expect(threads.threadIDs().count == 11)
    let busy = try Fixture.start(python, "busyloop.py")
    try busy.waitForCPU()
    try busy.suspend()
    #expect(busy.threadStates().values.allSatisfy { $0 == "T" })
    busy.resume()
  }

  /// The oracle reports its six threads at the places it blocks them, with co_qualname on 3.11+.
  @Test("oracle report", arguments: PythonInterpreter.all())
  func oracleReport(_ python: PythonInterpreter) throws {
    let (process, report) = try Fixture.startOracle(python)
    #expect(process.threadIDs().count == 6, "the reporter is gone")
    let byName = Dictionary(report.threads.map { ($0.name ?? "?", $0) }, uniquingKeysWith: { a, _ in a })
    #expect(
      Set(byName.keys) == ["MainThread", "deep-sleeper", "event-waiter", "nested-lambda", "generator", "lock-waiter"])
    let q = python.usesQualifiedNames
    func names(_ thread: String, _ count: Int) -> [String] {
      Array((byName[thread]?.frames ?? []).prefix(count).map(\.name))
    }
    #expect(names("MainThread", 3) == ["main_block", "main", "<module>"])
    #expect(names("deep-sleeper", 3) == ["a3", "a2", "a1"])
    #expect(
      names("event-waiter", 3)
        == (q ? ["Condition.wait", "Event.wait", "Worker.wait_here"] : ["wait", "wait", "wait_here"]))
    #expect(
      names("nested-lambda", 3)
        == (q
          ? ["outer.<locals>.inner.<locals>.<lambda>", "outer.<locals>.inner", "outer"]
          : ["<lambda>", "inner", "outer"]))
    #expect(names("generator", 2) == ["slow_values", "consume"])
    #expect(names("lock-waiter", 1) == [q ? "Holder.blocked" : "blocked"])
    for thread in report.threads {
      #expect(
        thread.frames.last?.name
          == (thread.name == "MainThread"
            ? "<module>" : q ? "Thread._bootstrap" : python.isPython2 ? "__bootstrap" : "_bootstrap"))
      #expect((thread.nativeID != nil) == python.version.atLeast(3, 8))
    }
    if let main = byName["MainThread"], python.version.atLeast(3, 8) { #expect(main.nativeID == Int(process.pid)) }
  }

  // The expectations of DumpTests, applied to py-spy's reading: they hold for the reference tool,
  // so a spyglass failure is spyglass's.

  @Test("py-spy meets the longsleep/unicode/cyrillic/negative expectations", arguments: PythonInterpreter.all())
  func pyspySleepers(_ python: PythonInterpreter) throws {
    try Checks.longSleep(python, reader: .pyspy)
    try Checks.unicodeFilename(python, reader: .pyspy)
    if !python.isPython2 { try Checks.cyrillicName(python, reader: .pyspy) }
    try Checks.negativeLineOffsets(python, reader: .pyspy)
    try Checks.textFormat(python, reader: .pyspy)
    try Checks.longSleepNonblocking(python, reader: .pyspy)
  }

  @Test("py-spy meets the busyloop/recursive expectations", arguments: PythonInterpreter.all())
  func pyspyBusy(_ python: PythonInterpreter) throws {
    try Checks.busyLoop(python, reader: .pyspy)
    try Checks.busyLoop(python, reader: .pyspy, nonblocking: true)
    try Checks.recursive(python, reader: .pyspy, dumps: 2)
  }

  @Test("py-spy meets the thread_names expectations and agrees with the oracle", arguments: PythonInterpreter.all())
  func pyspyThreads(_ python: PythonInterpreter) throws {
    try Checks.threadNames(python, reader: .pyspy)
    try Checks.oracle(python, reader: .pyspy)
  }
}
