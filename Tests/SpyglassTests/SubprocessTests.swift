//===--- SubprocessTests.swift - `--subprocesses` on families of processes -===//
//
// py-spy's Rust tests of subprocesses (test_subprocesses, test_subprocesses_zombiechild,
// test_delayed_subprocess, test_dump_subprocesses_no_duplication), restated over Spyglass's CLI on
// every interpreter, with a fixture of this project's own (Fixtures/scripts/family.py):
//   - `dump --subprocesses` finds the parent and both multiprocessing children, each child parked
//     in child_sleep (3.14+ start children from a forkserver, which is shown too);
//   - a zombie child does not stop `dump --subprocesses` from showing the parent;
//   - a parent with four threads and a child prints each process's header exactly once;
//   - `record --subprocesses --pid` of a shell that starts Python half a second later samples it.
// One differential check: the text dump's process and thread lines are py-spy 0.4.3's.
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// "READY parent=P children=A,B" from family.py.
private struct Family {
  let parent: Int32
  let children: [Int32]

  init(_ line: String) throws {
    var fields: [String: String] = [:]
    for field in line.split(separator: " ").dropFirst() {
      let parts = field.split(separator: "=", maxSplits: 1)
      if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    parent = try #require(fields["parent"].flatMap { Int32($0) }, "\(line)")
    children = (fields["children"] ?? "").split(separator: ",").compactMap { Int32($0) }
  }
}

private enum FamilyScript {
  static let name = "family.py"
  /// child_sleep's `time.sleep(0.05)`.
  static let childSleepLine = 20
  /// thread_sleep's `time.sleep(0.05)`.
  static let threadSleepLine = 29
  /// main's own `time.sleep(0.05)`, where the parent waits.
  static let mainSleepLine = 76

  static func start(_ python: PythonInterpreter, _ mode: String) throws -> (PythonProcess, Family) {
    let process = try PythonProcess(python, script: Fixture.path(name), arguments: [mode], timeout: .seconds(30))
    return (process, try Family(process.readyLine))
  }
}

@Suite("Subprocesses (py-spy's subprocess tests)")
struct SubprocessTests {
  @Test("dump --subprocesses: the parent and both children", arguments: PythonInterpreter.all())
  func dumpFindsTheChildren(_ python: PythonInterpreter) throws {
    let (process, family) = try FamilyScript.start(python, "children")
    defer { process.stop() }
    try #require(family.children.count == 2, "\(python.label): \(process.readyLine)")
    let result = try SpyglassRunner.run(
      ["dump", "--subprocesses", "--json", "--pid", "\(family.parent)"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(python.label): \(result)")
    let threads = try DumpJSON.decode(result.stdout)
    let pids = Set(threads.map { Int32($0.pid) })
    #expect(pids.isSuperset(of: [family.parent] + family.children), "\(python.label): \(pids.sorted()) \(family)")
    #expect(pids.count >= 3, "\(python.label): \(pids.sorted())")
    for child in family.children {
      let own = threads.filter { Int32($0.pid) == child }
      #expect(
        own.contains { thread in
          thread.frames.first.map { $0.name == "child_sleep" && $0.line == FamilyScript.childSleepLine } ?? false
            && thread.frames.last?.name == "<module>"
        }, "\(python.label): child \(child): \(own)")
    }
    let parent = threads.filter { Int32($0.pid) == family.parent }
    #expect(
      parent.contains { $0.frames.first?.line == FamilyScript.mainSleepLine && $0.frames.last?.name == "<module>" },
      "\(python.label): parent: \(parent)")
  }

  @Test("dump --subprocesses beside a zombie child", arguments: PythonInterpreter.all())
  func dumpBesideAZombie(_ python: PythonInterpreter) throws {
    let (process, family) = try FamilyScript.start(python, "zombie")
    defer { process.stop() }
    let zombie = try #require(family.children.first, "\(python.label): \(process.readyLine)")
    for format in [["--json"], []] {
      let result = try SpyglassRunner.run(
        ["dump", "--subprocesses", "--pid", "\(family.parent)"] + format, timeout: .seconds(30))
      try #require(result.exitCode == 0, "\(python.label): \(result)")
      if format.isEmpty {
        #expect(result.stdout.hasPrefix("Process \(family.parent): "), "\(python.label): \(result.stdout)")
        #expect(!result.stdout.contains("Process \(zombie):"), "\(python.label): \(result.stdout)")
      } else {
        let threads = try DumpJSON.decode(result.stdout)
        #expect(Set(threads.map { Int32($0.pid) }) == [family.parent], "\(python.label): \(threads)")
      }
    }
  }

  @Test("dump --subprocesses: each process's header once, threads and all", arguments: PythonInterpreter.all())
  func eachProcessOnce(_ python: PythonInterpreter) throws {
    let (process, family) = try FamilyScript.start(python, "threads")
    defer { process.stop() }
    let child = try #require(family.children.first, "\(python.label): \(process.readyLine)")
    let result = try SpyglassRunner.run(["dump", "--subprocesses", "--pid", "\(family.parent)"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(python.label): \(result)")
    let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    func headers(_ pid: Int32) -> Int { lines.filter { $0.hasPrefix("Process \(pid): ") }.count }
    #expect(headers(family.parent) == 1, "\(python.label): \(result.stdout)")
    #expect(headers(child) == 1, "\(python.label): \(result.stdout)")
    #expect(
      lines.filter { $0.hasPrefix("Parent Process \(family.parent): ") }.count == 1, "\(python.label): \(result.stdout)"
    )
    // The parent's five threads: four in thread_sleep, the main one in main.
    let workers = lines.filter { $0 == "    thread_sleep (family.py:\(FamilyScript.threadSleepLine))" }.count
    #expect(workers == 4, "\(python.label): \(result.stdout)")
  }

  @Test(
    "record --subprocesses --pid of a shell that starts Python later", arguments: PythonInterpreter.all())
  func delayedChild(_ python: PythonInterpreter) throws {
    let directory = try makeTemporaryDirectory("spyglass-delayed")
    defer { removeDirectory(directory) }
    let output = directory + "/delayed.txt"
    // The shell runs where the interpreter runs (inside its root for Debian's).
    let shell = ["/bin/sh", "-c", "sleep 0.5; \(python.path) -c 'import time; time.sleep(60)'"]
    let command = python.root == nil ? shell : Array(python.command.dropLast()) + shell
    let launcher = try ChildProcess(
      executable: command[0], arguments: Array(command.dropFirst()), stdout: .file("/dev/null"),
      stderr: .file("/dev/null"))
    defer {
      // The shell's Python child first (the shell does not pass SIGKILL on).
      let children =
        (try? String(contentsOfFile: "/proc/\(launcher.pid)/task/\(launcher.pid)/children", encoding: .utf8))
      for child in (children ?? "").split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
      launcher.stop()
    }
    let result = try SpyglassRunner.run(
      [
        "record", "--subprocesses", "--idle", "-f", "raw", "-r", "50", "-d", "3", "-o", output, "--pid",
        "\(launcher.pid)",
      ],
      timeout: .seconds(40))
    try #require(result.exitCode == 0, "\(python.label): \(result)")
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    let child = text.split(separator: "\n").filter {
      $0.contains(";process ") && $0.contains("time.sleep(60)") && $0.contains(";<module> (<string>:1) ")
    }
    #expect(!child.isEmpty, "\(python.label): \(text)\n\(result)")
  }

  /// The text dump of the threads family, beside py-spy 0.4.3's of the same processes: the same
  /// process, Python, parent and thread lines, and the same blank lines and rules between processes.
  @Test func textDumpHasPySpysLines() throws {
    let python = try #require(PythonInterpreter.all().first { $0.label == "3.12.1" })
    let (process, family) = try FamilyScript.start(python, "threads")
    defer { process.stop() }
    let arguments = ["dump", "--subprocesses", "--pid", "\(family.parent)"]
    let ours = try SpyglassRunner.run(arguments, timeout: .seconds(30))
    let theirs = try PySpy.run(arguments, timeout: .seconds(30))
    try #require(ours.exitCode == 0 && theirs.exitCode == 0, "\(ours)\n\(theirs)")
    // Frames move between the two dumps; everything else must match. py-spy lists processes in
    // no fixed order, so each process's block is compared as a whole.
    // Threads may be listed in another order within a process, so a block's lines are sorted.
    func blocks(_ text: String) -> Set<[Substring]> {
      let rule = String(repeating: "-", count: 80)
      return Set(
        text.components(separatedBy: rule + "\n").map { block in
          block.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("    ") }.sorted()
        })
    }
    #expect(blocks(ours.stdout) == blocks(theirs.stdout), "Spyglass:\n\(ours.stdout)\npy-spy:\n\(theirs.stdout)")
  }
}
