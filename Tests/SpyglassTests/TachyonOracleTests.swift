//===--- TachyonOracleTests.swift - spyglass dump beside CPython's own sampler ===//
//
// On CPython 3.15+ the interpreter ships its own out-of-process reader, Tachyon
// (`python3.15 -m profiling.sampling dump PID`, TestSupport/Tachyon.swift), written by the people
// who lay out the structures Spyglass reads. Here it is a third witness beside py-spy and the
// interpreter's own sys._current_frames(): a fixture is started and left asleep in a known stack,
// then `spyglass dump --json --pid PID` and Tachyon's dump of the same process must agree thread for
// thread (by OS thread id) and frame for frame (function name, file, line), and on which thread is
// the main one, which holds the GIL (none) and which runs (none). The threads block in sleeps and
// waits that never return, so the stacks cannot change between the two reads and the target need
// not be stopped; spyglass reads in its default, blocking mode.
//
// The self-tests at the end check Tachyon against sys._current_frames() and py-spy without
// spyglass, so a disagreement above is spyglass's, not the oracle's or its parser's.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

/// The interpreters Tachyon ships with.
private let tachyonInterpreters = PythonInterpreter.all().filter { Tachyon.isAvailable(for: $0) }

/// Starts `script` and waits until every thread is asleep in its blocking call.
private func startAsleep(_ python: PythonInterpreter, _ script: String) throws -> PythonProcess {
  switch script {
  case "oracle.py": return try Fixture.startOracle(python).0
  case "thread_names.py":
    let process = try Fixture.start(python, script)
    try process.waitUntilSleeping(threadCount: 11)
    return process
  default:
    let process = try Fixture.start(python, script)
    try process.waitUntilSleeping(threadCount: 1)
    return process
  }
}

/// `dump --json --pid PID` (blocking) by `reader` and Tachyon's dump of the same sleeping process:
/// the same OS thread ids, and per thread the same frames (name, full filename, line) innermost
/// first; the main thread is the one Tachyon calls so (and its OS id is the pid); nobody holds the
/// GIL or runs, for either reader.
private func compareWithTachyon(_ python: PythonInterpreter, script: String, reader: Reader) throws {
  let process = try startAsleep(python, script)
  let (reference, tachyon) = try Tachyon.dump(python, pid: process.pid)
  let dumped = try reader.dump(process)
  let context = "Tachyon:\n\(tachyon.stdout)\n\(reader):\n\(dumped)"
  #expect(
    Set(dumped.compactMap(\.osThreadID)) == Set(reference.map(\.threadID)) && dumped.count == reference.count,
    "thread ids differ: \(reader) \(dumped.map { $0.osThreadID ?? -1 }.sorted()), Tachyon \(reference.map(\.threadID).sorted())\n\(context)"
  )
  let byID = Dictionary(
    dumped.compactMap { thread in thread.osThreadID.map { ($0, thread) } }, uniquingKeysWith: { a, _ in a })
  for expected in reference {
    guard let thread = byID[expected.threadID] else { continue }
    let pair = "Tachyon:\n\(expected)\n\(reader):\n\(thread)"
    #expect(thread.frames.map(\.identity) == expected.frames, "frames differ:\n\(pair)")
    #expect(expected.isMainThread == (expected.threadID == Int(process.pid)), "\(pair)")
    #expect(!thread.ownsGIL && !expected.hasGIL, "nobody holds the GIL:\n\(pair)")
    #expect(!thread.active && !expected.isOnCPU, "nobody runs:\n\(pair)")
  }
  #expect(reference.filter(\.isMainThread).count == 1, "one main thread:\n\(tachyon.stdout)")
  #expect(process.isRunning)
}

/// The sleeping fixtures compared: one thread; six at different depths and in different kinds of
/// code; eleven under threading.py's frames.
private let sleepingScripts = ["longsleep.py", "oracle.py", "thread_names.py"]

@Suite("Tachyon (CPython 3.15's sampler) as an oracle", .timeLimit(.minutes(10)))
struct TachyonOracleTests {
  /// Tachyon ships with 3.15, which the suite must cover (3.15-sid, in its Debian root).
  @Test func coversPython315() throws {
    try PythonInterpreter.requireAll()
    #expect(
      tachyonInterpreters.contains { $0.version.major == 3 && $0.version.minor == 15 },
      "no 3.15 interpreter to run Tachyon with: \(PythonInterpreter.coverageReport)")
  }

  /// `compareWithTachyon` with spyglass as the reader.
  @Test("spyglass and Tachyon agree on a sleeping process", arguments: tachyonInterpreters, sleepingScripts)
  func agreesWithTachyon(_ python: PythonInterpreter, script: String) throws {
    try compareWithTachyon(python, script: script, reader: .spyglass)
  }
}

// MARK: - The oracle itself (no spyglass needed)

@Suite("Tachyon self-test", .timeLimit(.minutes(10)))
struct TachyonSelfTests {
  /// Tachyon's dump of oracle.py is what the interpreter reports with sys._current_frames(): the
  /// same threads (native_id), the same frames one for one, the main thread named MainThread.
  @Test("Tachyon agrees with sys._current_frames()", arguments: tachyonInterpreters)
  func agreesWithTheInterpreter(_ python: PythonInterpreter) throws {
    let (process, report) = try Fixture.startOracle(python)
    let (threads, tachyon) = try Tachyon.dump(python, pid: process.pid)
    let byID = Dictionary(threads.map { ($0.threadID, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(
      Set(threads.map(\.threadID)) == Set(report.threads.compactMap(\.nativeID))
        && threads.count == report.threads.count,
      "thread ids differ: Tachyon \(threads.map(\.threadID).sorted()), oracle \(report.threads.compactMap(\.nativeID).sorted())\n\(tachyon)"
    )
    for expected in report.threads {
      guard let nativeID = expected.nativeID, let thread = byID[nativeID] else {
        Issue.record("oracle thread missing from Tachyon's dump:\n\(expected)\n\(tachyon)")
        continue
      }
      #expect(thread.frames == expected.frames, "oracle:\n\(expected)\nTachyon:\n\(thread)")
      #expect(thread.isMainThread == (expected.name == "MainThread"), "oracle:\n\(expected)\nTachyon:\n\(thread)")
    }
  }

  /// The comparison above, with py-spy 0.4.3 as the reader: it holds for the reference tool, so a
  /// spyglass failure is spyglass's.
  @Test("py-spy and Tachyon agree on a sleeping process", arguments: tachyonInterpreters, sleepingScripts)
  func pyspyAgreesWithTachyon(_ python: PythonInterpreter, script: String) throws {
    _ = try #require(
      try? PySpy.executablePath(), "py-spy is required for this test (pip install py-spy==0.4.3): \(PySpy.location)")
    try compareWithTachyon(python, script: script, reader: .pyspy)
  }

  /// The parser reads every line shape `dump` prints (TestSupport/Tachyon.swift) and rejects others.
  @Test func parsesEveryLineShape() throws {
    let text = """
      Stack dump for PID 41, thread 43 (idle; most recent call last):
        File "/usr/lib/python3.15/threading.py", line 1181, in Thread._bootstrap
          self._bootstrap_inner()
        File "/tmp/a b.py", in <module>
        <native>

      Stack dump, thread 41 (main thread, has GIL, on CPU; most recent call last):
      No Python frames

      Stack dump, thread 44 (most recent call last):
        File "/tmp/x.py", line 3, in f
      """
    let (pid, threads) = try Tachyon.parse(text)
    #expect(pid == 41)
    try #require(threads.count == 3)
    #expect(threads[0].threadID == 43 && threads[0].status == ["idle"] && !threads[0].isMainThread)
    #expect(
      threads[0].frames == [
        OracleFrame(name: "<native>", filename: "", line: 0),
        OracleFrame(name: "<module>", filename: "/tmp/a b.py", line: 0),
        OracleFrame(name: "Thread._bootstrap", filename: "/usr/lib/python3.15/threading.py", line: 1181),
      ])
    #expect(threads[1].isMainThread && threads[1].hasGIL && threads[1].isOnCPU && threads[1].frames.isEmpty)
    #expect(threads[2].status.isEmpty && threads[2].frames == [OracleFrame(name: "f", filename: "/tmp/x.py", line: 3)])
    #expect(throws: TestSupportError.self) { try Tachyon.parse("Traceback (most recent call last):\n") }
    #expect(throws: TestSupportError.self) { try Tachyon.parse("") }
  }
}
