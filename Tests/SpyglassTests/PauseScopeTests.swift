//===--- PauseScopeTests.swift - blocking mode pauses Python threads only --===//
//
// A target with four OS threads that have no Python thread state (Fixtures/scripts/
// native_threads.py: pthread_create through ctypes, each parked in pause()) is recorded in
// blocking mode with --idle (every Python thread is paused at every sample). A thread parked in
// pause() is switched out only when something wakes it, and a ptrace interrupt does: its context
// switch counts in /proc must not move while Spyglass records, while the Python main thread's
// must (it is paused 400 times). py-spy pauses every thread of the process (py-spy #872).
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

@Suite("Blocking mode pauses only Python threads")
struct PauseScopeTests {
  /// voluntary + nonvoluntary context switches of one thread.
  static func switches(_ pid: Int32, _ tid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8)
    var total = 0
    for line in status.split(separator: "\n") {
      if line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
        total += Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
      }
    }
    return total
  }

  @Test("native threads are never paused", arguments: PythonInterpreter.all())
  func nativeThreadsKeepRunning(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(
      python, script: Fixture.path("native_threads.py"), isReady: { $0.hasPrefix("READY native=") },
      timeout: .seconds(30))
    defer { process.stop() }
    let native = process.readyLine.dropFirst("READY native=".count).split(separator: ",").compactMap { Int32($0) }
    try #require(native.count == 4, "\(python.label): \(process.readyLine)")
    let pid = process.pid
    let before = try native.map { try Self.switches(pid, $0) }
    let mainBefore = try Self.switches(pid, pid)
    let directory = try makeTemporaryDirectory("spyglass-pause-scope")
    defer { removeDirectory(directory) }
    let output = directory + "/out.txt"
    let result = try SpyglassRunner.run(
      ["record", "--idle", "-r", "200", "-d", "2", "-f", "raw", "-o", output, "--pid", "\(pid)"],
      timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(python.label): \(result)")
    let after = try native.map { try Self.switches(pid, $0) }
    let mainAfter = try Self.switches(pid, pid)
    // The first sample cannot tell the threads apart yet and pauses every one (a stop and a
    // resume: 3 or 4 switches here); after that, none. Paused at every sample, each would switch
    // at least 400 times.
    for (tid, (old, new)) in zip(native, zip(before, after)) {
      #expect(new - old <= 8, "\(python.label): native thread \(tid) switched \(new - old) times")
    }
    #expect(mainAfter - mainBefore >= 100, "\(python.label): main thread switched \(mainAfter - mainBefore) times")
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    #expect(text.contains("main (native_threads.py:"), "\(python.label): \(text)")
  }
}
