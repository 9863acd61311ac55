//===--- AsyncTests.swift - asyncio tasks against the target's own view ----===//
//
// `dump --async` and `record --async-aware` on every 3.11+ interpreter (local and Debian roots),
// with the C-accelerated asyncio and with the pure-Python one (`_asyncio` blocked), against a
// fixture of this project's own (Fixtures/scripts/async_tasks.py):
//   - the tree: a task awaiting a child task, a gather() of two, a TaskGroup of two, a finished task
//     still referenced, and a running task holding the loop. The fixture prints, as truth, its own
//     asyncio.all_tasks() with each task's get_coro()/cr_await chain and lines; `dump --async
//     --json` must agree exactly (ids, names, states, thread, files, lines, awaiters). On 3.14+
//     CPython's own remote reader (asyncio.tools.get_all_awaited_by, what `python -m asyncio
//     pstree` prints) must agree on names and awaiters, and pstree itself must show every task;
//   - sleepers: 20 tasks each in its own sleep and a CPU-bound one; `record --async-aware
//     --async-mode all -f raw` has 20 `<task sleeper-NN>` stacks at the await line, and the
//     spinner's share of busy samples is within 3 points of the target's own measurement;
//   - older versions get the plain sentence.
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

private struct TruthFrame: Codable, Equatable, CustomStringConvertible {
  let name: String
  let filename: String
  let line: Int
  var description: String { "\(name) (\(filename):\(line))" }
}

private struct TruthTask: Codable, CustomStringConvertible {
  let name: String
  let id: UInt64
  let state: String
  let threadID: UInt64?
  let frames: [TruthFrame]
  let awaitedBy: [String]
  enum CodingKeys: String, CodingKey {
    case name, id, state, frames
    case threadID = "thread_id"
    case awaitedBy = "awaited_by"
  }
  var description: String { "\(name) \(state) \(frames) awaited by \(awaitedBy)" }
}

private struct Truth: Codable {
  let version: [Int]
  let tasks: [TruthTask]
}

private struct AsyncDump: Decodable {
  let threads: [DumpThread]
  let tasks: [TruthTask]
  let tasksCut: Int
  enum CodingKeys: String, CodingKey {
    case threads, tasks
    case tasksCut = "tasks_cut"
  }
}

private enum AsyncScript {
  static let name = "async_tasks.py"

  static func line(of marker: String) throws -> Int {
    let text = try String(contentsOfFile: Fixture.path(name), encoding: .utf8)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return try #require(lines.firstIndex { $0.hasSuffix("# " + marker) }) + 1
  }
}

@Suite("asyncio tasks (dump --async, record --async-aware)")
struct AsyncTests {
  static let interpreters = PythonInterpreter.all().filter { $0.version.atLeast(3, 11) }
  static let older = PythonInterpreter.all().filter { !$0.version.atLeast(3, 11) }

  @Test("dump --async --json agrees with the target's own all_tasks()", arguments: interpreters, [false, true])
  func dumpAgreesWithTheTarget(_ python: PythonInterpreter, pure: Bool) throws {
    let label = "\(python.label)\(pure ? " (pure-Python asyncio)" : "")"
    let process = try PythonProcess(
      python, script: Fixture.path(AsyncScript.name), arguments: ["tree"] + (pure ? ["--pure"] : []),
      timeout: .seconds(30))
    defer { process.stop() }
    let truth = try JSONDecoder().decode(Truth.self, from: Data(process.readyLine.dropFirst(6).utf8))
    try #require(truth.tasks.count >= 10, "\(label): \(truth.tasks)")

    let result = try SpyglassRunner.run(
      ["dump", "--async", "--json", "--pid", "\(process.pid)"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(label): \(result)")
    let dump = try JSONDecoder().decode(AsyncDump.self, from: Data(result.stdout.utf8))
    #expect(dump.tasksCut == 0, "\(label)")
    #expect(!dump.threads.isEmpty, "\(label)")
    #expect(
      Set(dump.tasks.map(\.id)) == Set(truth.tasks.map(\.id)),
      "\(label): dump \(dump.tasks.map(\.name).sorted()) vs truth \(truth.tasks.map(\.name).sorted())")
    for expected in truth.tasks {
      guard let got = dump.tasks.first(where: { $0.id == expected.id }) else { continue }
      #expect(got.name == expected.name, "\(label): \(got) vs \(expected)")
      #expect(got.state == expected.state, "\(label): \(got) vs \(expected)")
      #expect(
        got.threadID == expected.threadID, "\(label): \(expected.name) thread \(String(describing: got.threadID))")
      #expect(
        got.frames == expected.frames, "\(label): \(expected.name)\n  dump  \(got.frames)\n  truth \(expected.frames)")
      #expect(Set(got.awaitedBy) == Set(expected.awaitedBy), "\(label): \(expected.name) awaited by \(got.awaitedBy)")
    }
    // The running task's frame is the top of the thread's stack.
    let running = try #require(dump.tasks.first { $0.state == "running" }, "\(label)")
    let thread = try #require(dump.threads.first { $0.threadID == running.threadID }, "\(label)")
    #expect(thread.frames.first?.name == running.frames.first?.name, "\(label): \(thread.frames)")

    if python.version.atLeast(3, 14) && !pure { try checkCPythonsOwnView(python, pid: process.pid, dump: dump, label) }
  }

  /// CPython's own remote reader of the tasks (3.14+): what `python -m asyncio pstree` draws.
  private func checkCPythonsOwnView(_ python: PythonInterpreter, pid: Int32, dump: AsyncDump, _ label: String) throws {
    let code = """
      import json, sys
      from asyncio import tools
      names, edges = {}, []
      for info in tools.get_all_awaited_by(int(sys.argv[1])):
          for task in info.awaited_by:
              names[task.task_id] = task.task_name
              for awaiter in task.awaited_by:
                  edges.append([awaiter.task_name, task.task_id])
      print(json.dumps({"names": {str(k): v for k, v in names.items()}, "edges": edges}))
      """
    // Run in the root with the roots folder bound at its own path: CPython's reader opens the
    // target's binaries by the paths its /proc maps give, which are host paths.
    var command = python.command
    if python.root != nil { command.insert(contentsOf: ["--bind", PythonInterpreter.debianRoots], at: 1) }
    let oracle = try runCommand(command[0], Array(command.dropFirst()) + ["-c", code, "\(pid)"], timeout: .seconds(60))
    try #require(oracle.exitCode == 0, "\(label): asyncio.tools: \(oracle)")
    struct View: Decodable {
      let names: [String: String]
      let edges: [[UInt64]]
    }
    let view = try JSONDecoder().decode(View.self, from: Data(oracle.stdout.utf8))
    let pending = dump.tasks.filter { $0.state != "done" }
    #expect(
      Set(view.names.keys.compactMap { UInt64($0) }) == Set(pending.map(\.id)),
      "\(label): CPython sees \(view.names.values.sorted()), Spyglass \(pending.map(\.name).sorted())")
    for task in pending {
      #expect(view.names[String(task.id)] == task.name, "\(label): \(task.name)")
      let awaiters = Set(
        view.edges.filter { $0.count == 2 && $0[1] == task.id }.compactMap { view.names[String($0[0])] })
      #expect(awaiters == Set(task.awaitedBy), "\(label): \(task.name): CPython \(awaiters) Spyglass \(task.awaitedBy)")
    }
    let pstree = try runCommand(
      command[0], Array(command.dropFirst()) + ["-m", "asyncio", "pstree", "\(pid)"], timeout: .seconds(60))
    try #require(pstree.exitCode == 0, "\(label): pstree: \(pstree)")
    for task in pending {
      #expect(pstree.stdout.contains("(T) \(task.name)"), "\(label): \(task.name) in\n\(pstree.stdout)")
    }
  }

  @Test("older versions get one plain sentence", arguments: older)
  func olderVersionsAreRefused(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("longsleep.py"))
    defer { process.stop() }
    for arguments in [["dump", "--async"], ["record", "--async-aware", "-d", "1", "-o", "/tmp/x.txt", "-f", "raw"]] {
      let result = try SpyglassRunner.run(arguments + ["--pid", "\(process.pid)"], timeout: .seconds(30))
      #expect(result.exitCode == 1, "\(python.label): \(result)")
      #expect(
        result.stderr.contains("asyncio awareness needs CPython 3.11 or later"), "\(python.label): \(result.stderr)")
    }
  }
}

/// The share check measures the target's CPU: it runs in test.sh's second phase, one test at a time.
@Suite("asyncio tasks: record --async-aware shares")
struct AsyncRecordTests {
  @Test(
    "record --async-aware --async-mode all: 20 sleeping tasks and a CPU-bound one's real share",
    arguments: AsyncTests.interpreters, [false, true])
  func recordShowsEveryTask(_ python: PythonInterpreter, pure: Bool) throws {
    let label = "\(python.label)\(pure ? " (pure-Python asyncio)" : "")"
    let process = try PythonProcess(
      python, script: Fixture.path(AsyncScript.name), arguments: ["sleepers"] + (pure ? ["--pure"] : []),
      timeout: .seconds(30))
    defer { process.stop() }
    func stat() throws -> (busy: Double, wall: Double) {
      var last: String?
      let deadline = ContinuousClock.now + .seconds(5)
      // The newest STAT line: drain what is queued, then take the next one.
      while ContinuousClock.now < deadline {
        guard let line = try process.readLine(timeout: .seconds(2)) else { break }
        if line.hasPrefix("STAT") {
          last = line
          if (try? process.readLine(timeout: .milliseconds(1))) == nil { break }
        }
      }
      let fields = try #require(last, "\(label): no STAT line").split(separator: " ").dropFirst()
        .map { Double($0.split(separator: "=")[1]) ?? -1 }
      return (fields[0], fields[1])
    }
    let output = NSTemporaryDirectory() + "spyglass-async-\(getpid())-\(UUID().uuidString).txt"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let before = try stat()
    let result = try SpyglassRunner.run(
      [
        "record", "--async-aware", "--async-mode", "all", "-f", "raw", "-r", "200", "-d", "3", "-o", output,
        "--pid", "\(process.pid)",
      ], timeout: .seconds(60))
    let after = try stat()
    try #require(result.exitCode == 0, "\(label): \(result)")
    let raw = try String(contentsOfFile: output, encoding: .utf8)
    var counts: [String: Int] = [:]
    for line in raw.split(separator: "\n") {
      guard let space = line.lastIndex(of: " "), let count = Int(line[line.index(after: space)...]) else { continue }
      counts[String(line[..<space]), default: 0] += count
    }
    let awaitLine = try AsyncScript.line(of: "SLEEPER-AWAIT")
    for index in 0..<20 {
      let root = String(format: "<task sleeper-%02d>", index)
      let stacks = counts.filter { $0.key.hasPrefix(root + ";") }
      #expect(stacks.count == 1, "\(label): \(root): \(stacks.keys.sorted())")
      #expect(
        stacks.keys.allSatisfy { $0.contains("sleeper (async_tasks.py:\(awaitLine))") }, "\(label): \(stacks.keys)")
    }
    let spinner = counts.filter { $0.key.hasPrefix("<task spinner>;") }
    let total = spinner.values.reduce(0, +)
    let busy = spinner.filter { $0.key.contains(";busy (") }.values.reduce(0, +)
    try #require(total > 100, "\(label): \(spinner)")
    let measured = (after.busy - before.busy) / (after.wall - before.wall)
    let profiled = Double(busy) / Double(total)
    #expect(abs(profiled - measured) <= 0.03, "\(label): profile \(profiled), the target's own \(measured)")
  }

  @Test(
    "record --async-aware (running): the running task under its root, no event-loop frames",
    arguments: AsyncTests.interpreters)
  func runningModeDropsTheLoop(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(
      python, script: Fixture.path(AsyncScript.name), arguments: ["sleepers"], timeout: .seconds(30))
    defer { process.stop() }
    let output = NSTemporaryDirectory() + "spyglass-async-running-\(getpid())-\(UUID().uuidString).txt"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let result = try SpyglassRunner.run(
      ["record", "--async-aware", "-f", "raw", "-r", "200", "-d", "2", "-o", output, "--pid", "\(process.pid)"],
      timeout: .seconds(60))
    try #require(result.exitCode == 0, "\(python.label): \(result)")
    let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
    let tasks = lines.filter { $0.hasPrefix("<task ") }
    #expect(
      tasks.contains { $0.hasPrefix("<task spinner>;spinner (async_tasks.py:") && $0.contains(";busy (") },
      "\(python.label): \(lines)")
    // Only the running task: no sleeper waits in a running-mode profile, and no task stack holds
    // the event loop's own frames.
    #expect(!tasks.contains { $0.hasPrefix("<task sleeper-") }, "\(python.label): \(tasks)")
    #expect(!tasks.contains { $0.contains("_run_once") || $0.contains("run_forever") }, "\(python.label): \(tasks)")
  }

  @Test("top --async-aware --async-mode all: tasks count as functions", arguments: AsyncTests.interpreters.prefix(1))
  func topShowsTasks(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(
      python, script: Fixture.path(AsyncScript.name), arguments: ["sleepers"], timeout: .seconds(30))
    defer { process.stop() }
    let folder = NSTemporaryDirectory() + "spyglass-async-top-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let top = try ChildProcess(
      executable: try SpyglassRunner.executablePath(),
      arguments: ["top", "--async-aware", "--async-mode", "all", "--pid", "\(process.pid)", "--delay", "0.5"],
      stdout: .pipe, stderr: .file(folder + "/stderr"))
    defer { top.stop() }
    usleep(2_000_000)
    top.signal(SIGINT)
    let status = top.wait(timeout: .seconds(5))
    let text = String(decoding: readToEnd(top.stdoutFD, timeout: 2), as: UTF8.self)
    #expect(status == .exited(0), "\(python.label): \(text)")
    #expect(text.contains("<task sleeper-0"), "\(python.label): \(text)")
    #expect(text.contains("sleeper (async_tasks.py)"), "\(python.label): \(text)")
  }
}
