//===--- DeploymentTests.swift - what real deployments do that the other suites do not ---===//
//
// Deep stacks, chains that loop, and process trees whose root is not Python, each against real
// processes:
//   - a 5,000-frame recursion (`sys.setrecursionlimit(10000)` territory) is read whole on every
//     interpreter, every frame's name and line exact; one deeper than the walk's bound (100,000
//     frames, on 3.12) keeps its innermost 100,000 frames under a `<stack cut: …>` root;
//   - a frame chain that loops (made with ctypes in the target) fails each sample with a bounded
//     walk, and a recording in which nothing could be kept exits 1 with the reason, writing no
//     file;
//   - a shell with Python processes under it: `dump -s` dumps them, `dump` and `record` without
//     `-s` say to add it;
//   - an embedded interpreter with no frame at all (gdb's, idle) is attached and dumped;
//   - `record -- bash -c …`: the launcher is followed to its Python, and nothing it started is
//     left running afterwards.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
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

/// deep.py's lines: the innermost `deep` spins on line 10, each caller waits on line 11, the
/// module calls it on line 17.
private enum Deep {
  static let spinLine = 10
  static let callLine = 11
  static let moduleLine = 17
}

@Suite struct DeploymentTests {
  /// deep.py at 5,000 frames: `dump --json` gives the whole stack, exact.
  @Test("A 5,000-frame recursion is read whole", arguments: PythonInterpreter.all())
  func deepRecursionReadWhole(python: PythonInterpreter) throws {
    let target = try PythonProcess(python, script: Fixture.path("deep.py"), arguments: ["5000"])
    defer { target.stop() }
    try target.waitForCPU()
    let result = try SpyglassRunner.run(["dump", "--pid", "\(target.pid)", "--json"], timeout: .seconds(60))
    try #require(result.exitCode == 0, "\(result)")
    let threads = try DumpJSON.decode(result.stdout)
    let frames = try #require(threads.first?.frames)
    #expect(frames.count == 5001, "\(python.label): \(frames.count) frames")
    #expect(frames.first?.name == "deep" && frames.first?.line == Deep.spinLine, "\(String(describing: frames.first))")
    #expect(frames.last?.name == "<module>" && frames.last?.line == Deep.moduleLine)
    let callers = frames.dropFirst().dropLast()
    #expect(callers.allSatisfy { $0.name == "deep" && $0.line == Deep.callLine && $0.filename.hasSuffix("deep.py") })
  }

  /// Deeper than the walk's bound: the innermost 100,000 frames under a root that says so.
  @Test func stackDeeperThanTheBoundIsCut() throws {
    let target = try PythonProcess(
      try interpreter("3.12.1"), script: Fixture.path("deep.py"), arguments: ["100010"], timeout: .seconds(60))
    defer { target.stop() }
    try target.waitForCPU()
    let result = try SpyglassRunner.run(["dump", "--pid", "\(target.pid)", "--json"], timeout: .seconds(120))
    try #require(result.exitCode == 0, "\(result)")
    let frames = try #require(try DumpJSON.decode(result.stdout).first?.frames)
    #expect(frames.count == 100_001)
    #expect(frames.first?.name == "deep" && frames.first?.line == Deep.spinLine)
    #expect(frames.last?.name == "<stack cut: deeper than 100000 frames>", "\(String(describing: frames.last))")
    #expect(frames.dropFirst().dropLast().allSatisfy { $0.name == "deep" && $0.line == Deep.callLine })
  }

  /// `record` of a 5,000-frame recursion: every sample kept, each the whole stack.
  @Test func recordDeepRecursion() throws {
    let target = try PythonProcess(try interpreter("3.12.1"), script: Fixture.path("deep.py"), arguments: ["5000"])
    defer { target.stop() }
    try target.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-deep")
    defer { removeDirectory(directory) }
    let output = directory + "/deep.txt"
    let result = try SpyglassRunner.run(
      ["record", "--pid", "\(target.pid)", "-d", "2", "-f", "raw", "-o", output], timeout: .seconds(60))
    #expect(result.exitCode == 0, "\(result)")
    let lines = ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n")
    try #require(!lines.isEmpty, "\(result)")
    for line in lines {
      let stack = line.split(separator: " ").dropLast().joined(separator: " ")
      let frames = stack.components(separatedBy: ";")
      #expect(frames.count == 5001, "\(frames.count) frames")
      #expect(
        frames.first == "<module> (deep.py:\(Deep.moduleLine))" && frames.last == "deep (deep.py:\(Deep.spinLine))")
    }
    #expect(result.stderr.contains("Errors: 0"), "\(result)")
  }

  /// A frame chain that loops: each sample fails (the walk is bounded) and a recording that kept
  /// nothing exits 1 with the reason, leaving no file.
  @Test func loopingFrameChainFailsEverySampleAndSaysWhy() throws {
    let target = try PythonProcess(try interpreter("3.12.1"), script: Fixture.path("frame_cycle.py"))
    defer { target.stop() }
    try target.waitUntilSleeping()
    let directory = try makeTemporaryDirectory("spyglass-cycle")
    defer { removeDirectory(directory) }
    let output = directory + "/cycle.txt"
    let record = try BackgroundCommand.spyglass([
      "record", "--pid", "\(target.pid)", "-d", "3", "-f", "raw", "-o", output,
    ])
    defer { record.stop() }
    try #require(record.waitForStderr("Sampling process", timeout: .seconds(20)), "\(record.summary)")
    target.child.signal(SIGUSR1)  // the loop is made now
    let status = record.wait(timeout: .seconds(30))
    #expect(status == .exited(1), "\(record.summary)")
    #expect(record.stderrText.contains("so no profile was written"), "\(record.summary)")
    #expect(record.stderrText.contains("frame chain cycles"), "\(record.summary)")
    #expect(!FileManager.default.fileExists(atPath: output))
    // dump fails in one sentence, promptly: the walk is bounded.
    let dump = try SpyglassRunner.run(["dump", "--pid", "\(target.pid)"], timeout: .seconds(30))
    #expect(dump.exitCode == 1 && dump.stderr.split(separator: "\n").count == 1, "\(dump)")
  }

  /// gdb's embedded Python, idle: no thread holds a frame, which is a valid state to read
  /// (attaching used to wait for a frame and give up with "may still be starting up").
  @Test func idleEmbeddedInterpreter() throws {
    let gdb = try #require(findOnPath("gdb"), "gdb is not installed (test.sh installs it)")
    let child = try ChildProcess(
      executable: gdb, arguments: ["-nx", "-batch", "-ex", "python import sys", "-ex", "shell sleep 60"],
      environment: ProcessInfo.processInfo.environment, stdout: .discard, stderr: .discard)
    defer {
      for pid in ProcessTree.descendants(of: child.pid).map(\.pid) { kill(pid, SIGKILL) }
      child.stop()
    }
    // gdb has run its Python command once it has started the shell.
    var started = false
    for _ in 0..<100 {
      started = ProcessTree.descendants(of: child.pid).contains {
        ProcFS.commandLine($0.pid).joined(separator: " ").contains("sleep 60")
      }
      if started { break }
      usleep(100_000)
    }
    try #require(started, "gdb did not start its shell")
    let result = try SpyglassRunner.run(["dump", "--pid", "\(child.pid)", "--json"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let threads = try DumpJSON.decode(result.stdout)
    #expect(threads.count == 1 && threads.allSatisfy { $0.frames.isEmpty && !$0.active }, "\(threads)")
    #expect(threads.first?.osThreadID == Int(child.pid))
  }

  /// `record -- bash -c '…'`: a launcher that is not Python is followed to the Python it starts
  /// (as `-s` does), said at once, and nothing it started is left behind at the end, an orphan it
  /// left running included.
  @Test func launcherIsFollowedAndNothingIsLeftBehind() throws {
    let python = try interpreter("3.12.1")
    let directory = try makeTemporaryDirectory("spyglass-launcher")
    defer { removeDirectory(directory) }
    let marker = "launcher-\(UUID().uuidString.prefix(8))"
    defer { for pid in processes(withArgument: marker) { kill(pid, SIGKILL) } }
    let cases = [
      // The shell waits for Python, then prints: Python is its child.
      ("waits", "\(python.path) \(Fixture.path("hot.py")) \(marker); echo done", ["-d", "3"]),
      // The shell leaves Python running in the background and exits at once: an orphan.
      ("leaves", "\(python.path) \(Fixture.path("hot.py")) \(marker) & exit 0", ["-d", "3"]),
      // The shell outlives the recording, Python running under it.
      ("outlives", "\(python.path) \(Fixture.path("hot.py")) \(marker) & sleep 100 # \(marker)", ["-d", "3"]),
    ]
    for (name, script, options) in cases {
      let output = directory + "/\(name).txt"
      let result = try SpyglassRunner.run(
        ["record"] + options + ["-f", "raw", "-o", output, "--", "/bin/bash", "-c", script], timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(name): \(result)")
      #expect(
        result.stderr.contains("'/bin/bash' is not Python: sampling the Python processes it starts"),
        "\(name): \(result)")
      let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
      #expect(text.contains("hot_function (hot.py:9)"), "\(name): \(text)")
      usleep(200_000)
      #expect(processes(withArgument: marker).isEmpty, "\(name): left behind: \(processes(withArgument: marker))")
    }
  }

  /// A shell running two Pythons: `dump -s` reads both; without `-s`, dump and record say to add it.
  @Test func pythonUnderAShell() throws {
    let pythons = [try interpreter("3.12.1"), try interpreter("2.7.18")]
    let script = pythons.map { "\($0.path) \(Fixture.path("longsleep.py")) &" }.joined(separator: " ") + " wait"
    let shell = try ChildProcess(
      executable: "/bin/bash", arguments: ["-c", script], environment: ProcessInfo.processInfo.environment,
      stdout: .discard, stderr: .discard)
    defer {
      for pid in ProcessTree.descendants(of: shell.pid).map(\.pid) { kill(pid, SIGKILL) }
      shell.stop()
    }
    // Both interpreters up and asleep in their script.
    var children: [Int32] = []
    for _ in 0..<500 {
      children = ProcessTree.descendants(of: shell.pid).map(\.pid).filter { pid in
        ProcFS.commandLine(pid).contains { $0.hasSuffix("longsleep.py") } && ProcFS.mapsMentionPython(pid)
      }
      if children.count == 2 { break }
      usleep(20_000)
    }
    try #require(children.count == 2, "the shell's two Pythons")
    usleep(500_000)
    let dump = try SpyglassRunner.run(["dump", "-s", "--pid", "\(shell.pid)"], timeout: .seconds(60))
    #expect(dump.exitCode == 0, "\(dump)")
    for pid in children { #expect(dump.stdout.contains("Process \(pid):"), "\(dump)") }
    #expect(dump.stdout.contains("Python v3.12.1") && dump.stdout.contains("Python v2.7.18"), "\(dump)")
    for command in [["dump"], ["record", "-d", "1", "-o", "/dev/null"]] {
      let result = try SpyglassRunner.run(command + ["--pid", "\(shell.pid)"], timeout: .seconds(60))
      #expect(result.exitCode == 1, "\(result)")
      #expect(result.stderr.contains("is not a Python program, but Python runs under it"), "\(result)")
      #expect(result.stderr.contains("add --subprocesses (-s)"), "\(result)")
      for pid in children { #expect(result.stderr.contains("\(pid)"), "\(result)") }
    }
  }
}
