//===--- TopTests.swift - `spyglass top` ------------------------------------===//
//
// The live view end to end, as a user sees it: in a real terminal (a detached tmux pane, 160x40)
// the table shows the hot function on the first row, `q` quits with status 0 and leaves the
// terminal as it found it (canonical mode and echo on, main screen back); with stdout in a pipe it
// prints plain tables without a single escape byte; it ends by itself, with status 0, when the
// program it watches exits. Below those, the counting and the layout without a process.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

@testable import SpyglassCLI
@testable import SpyglassStacks

#if canImport(Glibc)
  import Glibc
#endif

/// A program that spends nearly all its time in `hot_function`.
private let busyScript = """
  import sys

  def hot_function():
      total = 0
      for i in range(200000):
          total += i * i
      return total

  def main():
      print("READY", flush=True)
      while True:
          hot_function()

  main()
  """

private func python312() throws -> PythonInterpreter {
  try #require(
    PythonInterpreter.all().first { $0.version.major == 3 && $0.version.minor == 12 },
    "Python 3.12 is needed: \(PythonInterpreter.coverageReport)")
}

/// A fresh temporary folder holding the busy script.
private func scratchFolder() throws -> String {
  let folder = NSTemporaryDirectory() + "spyglass-top-\(getpid())-\(UUID().uuidString.prefix(8))"
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  try busyScript.write(toFile: folder + "/busy.py", atomically: true, encoding: .utf8)
  return folder
}

/// Everything readable from `fd` until end of file or `timeout`.
func readToEnd(_ fd: Int32, timeout: Double) -> [UInt8] {
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  let deadline = monotonicSeconds() + timeout
  while monotonicSeconds() < deadline {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let r = poll(&descriptor, 1, 100)
    if r == 0 { continue }
    if r < 0 {
      if errno == EINTR { continue }
      break
    }
    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n > 0 {
      bytes.append(contentsOf: chunk[0..<n])
    } else if n == 0 || errno != EINTR {
      break
    }
  }
  return bytes
}

/// The direct children of `pid` (from /proc/PID/task/PID/children).
private func children(of pid: Int32) -> [Int32] {
  let text =
    (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
  return text.split(separator: " ").compactMap {
    Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
  }
}

/// A private tmux server (its own socket, no user configuration).
private final class Tmux {
  let socket = "spyglass-top-\(getpid())-\(UUID().uuidString.prefix(8))"
  let session = "top"
  let executable: String
  let configuration: String
  var environment: [String: String]

  init(folder: String) throws {
    executable = try #require(findOnPath("tmux"), "tmux is needed (apt-get install tmux)")
    configuration = folder + "/tmux.conf"
    try "set-option -g remain-on-exit on\n".write(
      toFile: configuration, atomically: true, encoding: .utf8)
    environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "TMUX")
    environment["TERM"] = "xterm-256color"
  }

  @discardableResult
  func run(_ arguments: [String]) throws -> CommandResult {
    try runCommand(
      executable, ["-L", socket, "-f", configuration] + arguments, timeout: .seconds(10),
      environment: environment)
  }

  func capture() throws -> String { try run(["capture-pane", "-p", "-t", session]).stdout }

  func display(_ format: String) throws -> String {
    try run(["display-message", "-p", "-t", session, format]).stdout.trimmingCharacters(
      in: .whitespacesAndNewlines)
  }

  func killServer() { _ = try? run(["kill-server"]) }
}

@Suite("spyglass top", .timeLimit(.minutes(5)))
struct TopTests {
  @Test("in a terminal: hot function first, q quits with 0, terminal restored")
  func fullScreenInTmux() throws {
    let python = try python312()
    let spyglass = try SpyglassRunner.executablePath()
    let folder = try scratchFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let tmux = try Tmux(folder: folder)
    defer { tmux.killServer() }

    let program = (python.command + ["\(folder)/busy.py"]).map { "'\($0)'" }.joined(separator: " ")
    let script =
      "'\(spyglass)' top --rate 200 -- \(program); echo $? > '\(folder)/status'; "
      + "stty -a > '\(folder)/stty'"
    try #require(
      tmux.run([
        "new-session", "-d", "-s", tmux.session, "-x", "160", "-y", "40", "sh", "-c", script,
      ]).exitCode == 0)

    // The launched Python, to check it is ended by q (and to kill it if something fails).
    var pythonPID: Int32?
    defer { if let pythonPID, ProcFS.processExists(pythonPID) { kill(pythonPID, SIGKILL) } }

    // Wait for a table whose first row is hot_function with most of the samples.
    var screen = ""
    var firstRow = ""
    let deadline = monotonicSeconds() + 10
    while monotonicSeconds() < deadline {
      usleep(250_000)
      if pythonPID == nil, let shell = Int32(try tmux.display("#{pane_pid}")),
        let top = children(of: shell).first
      {
        pythonPID = children(of: top).first
      }
      screen = try tmux.capture()
      let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      if let header = lines.firstIndex(where: { $0.contains("%Own") && $0.contains("Function") }),
        header + 1 < lines.count
      {
        firstRow = lines[header + 1]
        if firstRow.contains("hot_function"), let own = ownPercent(firstRow), own > 50,
          monotonicSeconds() > deadline - 7
        {
          break
        }
      }
    }
    #expect(screen.contains("Collecting samples from"), "screen:\n\(screen)")
    #expect(screen.contains("(python v3.12"), "screen:\n\(screen)")
    #expect(screen.contains("Total Samples"), "screen:\n\(screen)")
    #expect(screen.contains("GIL: "), "screen:\n\(screen)")
    #expect(
      screen.contains("  %Own   %Total  OwnTime  TotalTime  Function (filename)"),
      "screen:\n\(screen)")
    #expect(firstRow.contains("hot_function (busy.py)"), "screen:\n\(screen)")
    #expect((ownPercent(firstRow) ?? 0) > 50, "screen:\n\(screen)")
    for line in screen.split(separator: "\n") { #expect(line.count <= 160) }

    try tmux.run(["send-keys", "-t", tmux.session, "q"])
    let exitDeadline = monotonicSeconds() + 5
    var dead = ""
    while monotonicSeconds() < exitDeadline {
      dead = try tmux.display("#{pane_dead} #{pane_dead_status}")
      if dead == "1 0" || (dead == "1" && FileManager.default.fileExists(atPath: folder + "/stty")) { break }
      usleep(100_000)
    }
    // tmux can mark the pane dead a moment before it records the shell's status ("1"); the
    // status of spyglass itself is in the status file, checked next.
    #expect(dead == "1 0" || dead == "1", "the pane's shell did not end cleanly: '\(dead)'")
    let status = (try? String(contentsOfFile: folder + "/status", encoding: .utf8)) ?? "(missing)"
    #expect(
      status.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "spyglass top exit status")

    // The terminal as it was: canonical input, echo and signals on, and the main screen back.
    let stty = (try? String(contentsOfFile: folder + "/stty", encoding: .utf8)) ?? ""
    let flags = Set(stty.split(whereSeparator: { " \n;".contains($0) }).map(String.init))
    #expect(
      flags.contains("icanon") && flags.contains("echo") && flags.contains("isig"),
      "stty -a:\n\(stty)")
    #expect(
      !flags.contains("-icanon") && !flags.contains("-echo") && !flags.contains("-isig"),
      "stty -a:\n\(stty)")
    let after = try tmux.capture()
    #expect(!after.contains("Total Samples"), "the alternate screen is still shown:\n\(after)")

    // The program top started is ended with it.
    if let pythonPID {
      let gone = monotonicSeconds() + 3
      while ProcFS.processExists(pythonPID) && monotonicSeconds() < gone { usleep(50_000) }
      #expect(!ProcFS.processExists(pythonPID), "the launched program still runs")
    } else {
      Issue.record("did not find the launched Python process")
    }
  }

  @Test("stdout in a pipe: plain tables, no escapes, Ctrl-C exits 0")
  func plainOutput() throws {
    let python = try python312()
    let folder = try scratchFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try PythonProcess(python, script: folder + "/busy.py")
    defer { target.stop() }
    let top = try ChildProcess(
      executable: try SpyglassRunner.executablePath(),
      arguments: ["top", "--pid", String(target.pid), "--delay", "0.5"], stdout: .pipe,
      stderr: .file(folder + "/stderr"))
    defer { top.stop() }
    usleep(2_000_000)
    top.signal(SIGINT)
    let status = top.wait(timeout: .seconds(5))
    let output = readToEnd(top.stdoutFD, timeout: 2)
    let text = String(decoding: output, as: UTF8.self)
    let stderr = (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? ""
    #expect(status == .exited(0), "stdout:\n\(text)\nstderr:\n\(stderr)")
    #expect(text.contains("Collecting samples from"), "stdout:\n\(text)")
    #expect(text.contains("hot_function (busy.py)"), "stdout:\n\(text)")
    #expect(!output.contains(0x1B), "stdout has an escape byte:\n\(text)")
    // A table every 0.5 s over 2 s, then the summary.
    let tables = text.components(separatedBy: "Total Samples").count - 1
    #expect(tables >= 3, "stdout:\n\(text)")
    #expect(target.isRunning, "top must leave a process it attached to running")
  }

  @Test("the program ends: top ends too, with status 0")
  func targetExits() throws {
    let python = try python312()
    let result = try SpyglassRunner.run(
      ["top", "--"] + python.command + ["-c", "import time; time.sleep(1)"], timeout: .seconds(15))
    #expect(result.exitCode == 0, "\(result)")
    #expect(result.stdout.contains(/process \d+ ended/), "\(result)")
    #expect(!result.stdout.utf8.contains(0x1B), "\(result)")
    #expect(result.elapsed < .seconds(10), "\(result)")
  }

  @Test("a launched program's output is kept off the screen, and shown when it fails")
  func launchedOutputCaptured() throws {
    let python = try python312()
    let code =
      "import sys; print('hello from the program'); sys.stderr.write('failing now\\n'); sys.exit(3)"
    let result = try SpyglassRunner.run(
      ["top", "--"] + python.command + ["-c", code], timeout: .seconds(15))
    // The program's own line, not the command line that the summary quotes when a sample was taken
    // before the program ended.
    let ownLines = result.stdout.split(separator: "\n").filter { $0 == "hello from the program" }
    #expect(ownLines.isEmpty, "\(result)")
    #expect(
      result.stderr.contains("hello from the program") && result.stderr.contains("failing now"),
      "\(result)")
  }

  @Test("bad --delay is refused")
  func badDelay() throws {
    let result = try SpyglassRunner.run(
      ["top", "--delay", "0", "--pid", "1"], timeout: .seconds(10))
    #expect(result.exitCode != 0 && result.exitCode != nil, "\(result)")
    #expect(result.stderr.contains("--delay"), "\(result)")
  }
}

/// The %Own value of a table row ("  96.00%  96.00% ...").
private func ownPercent(_ row: String) -> Double? {
  guard let first = row.split(separator: " ").first, first.hasSuffix("%") else { return nil }
  return Double(first.dropLast())
}

@Suite("top: counting and layout")
struct TopViewTests {
  private func frame(_ code: CodeID, _ line: Int32) -> SampledFrame {
    .python(code: code, line: line, address: 0, isEntry: false)
  }

  private func name(_ frame: SampledFrame) -> String {
    let function = ["main", "recurse", "leaf"][Int(frame.code ?? 0)]
    return frame.line == 0 ? "\(function) (app.py)" : "\(function) (app.py:\(frame.line))"
  }

  @Test func ownAndTotalOncePerStackUnderRecursion() {
    var stats = TopStats()
    // leaf <- recurse <- recurse <- recurse <- main, innermost first.
    let stack = [frame(2, 30), frame(1, 20), frame(1, 21), frame(1, 21), frame(0, 10)]
    for _ in 0..<3 {
      stats.add(pid: 1, frames: stack, ownsGIL: true, active: true, label: name)
      stats.endTick(threads: 1, processes: 1)
    }
    stats.add(
      pid: 1, frames: [frame(1, 20), frame(0, 10)], ownsGIL: false, active: true, label: name)
    stats.endTick(threads: 1, processes: 1)

    let rows = stats.sortedRows(perLine: false, column: .totalTime, source: .current)
    let byLabel = Dictionary(uniqueKeysWithValues: rows.map { ($0.label, $0.overall) })
    #expect(byLabel["main (app.py)"] == TopCounts(own: 0, total: 4))
    #expect(byLabel["recurse (app.py)"] == TopCounts(own: 1, total: 4))
    #expect(byLabel["leaf (app.py)"] == TopCounts(own: 3, total: 3))
    #expect(rows.map(\.label) == ["recurse (app.py)", "main (app.py)", "leaf (app.py)"])
    #expect(
      stats.sortedRows(perLine: false, column: .ownTime, source: .current).first?.label
        == "leaf (app.py)")

    let lines = Dictionary(
      uniqueKeysWithValues: stats.sortedRows(perLine: true, column: .ownTime, source: .current).map {
        ($0.label, $0.overall)
      })
    #expect(lines["recurse (app.py:21)"] == TopCounts(own: 0, total: 3))
    #expect(lines["recurse (app.py:20)"] == TopCounts(own: 1, total: 4))
    #expect(stats.current == TopInterval(samples: 4, gil: 3, active: 4))

    // The interval ends: its counts move to the percentage columns, the run's counts stay.
    stats.endInterval()
    #expect(stats.current == TopInterval())
    #expect(stats.source(overallPercentages: false) == .shown)
    stats.add(pid: 1, frames: [frame(0, 10)], ownsGIL: true, active: true, label: name)
    stats.endTick(threads: 2, processes: 1)
    let shown = stats.sortedRows(perLine: false, column: .ownPercent, source: .shown)
    #expect(shown.first { $0.label == "leaf (app.py)" }?.interval == TopCounts(own: 3, total: 3))
    #expect(stats.overall.samples == 5 && stats.threads == 2)

    stats.reset()
    #expect(stats.sortedRows(perLine: false, column: .ownTime, source: .current).isEmpty)
    #expect(stats.overall == TopInterval() && stats.shown == nil)
  }

  @Test func timesAsPySpyShowsThem() {
    #expect(TopView.formatTopTime(0.07) == "0.070s")
    #expect(TopView.formatTopTime(0) == "0.000s")
    #expect(TopView.formatTopTime(1.93) == "1.93s")
    #expect(TopView.formatTopTime(99.994) == "99.99s")
    #expect(TopView.formatTopTime(100) == "100.0s")
    #expect(TopView.formatTopTime(999.96) == "1000.0s")
    #expect(TopView.formatTopTime(1234.5) == "1235s")
    #expect(TopView.fixed(96, 2) == "96.00")
    #expect(TopView.fixed(0.005, 2) == "0.01")
    #expect(TopView.fixed(-1.5, 1) == "-1.5")
  }

  @Test func screenLayout() {
    var stats = TopStats()
    for index in 0..<200 {
      let stack = index < 192 ? [frame(2, 30), frame(0, 10)] : [frame(0, 11)]
      stats.add(pid: 1, frames: stack, ownsGIL: true, active: true, label: name)
      stats.endTick(threads: 1, processes: 1)
    }
    let header = TopHeader(
      command: "python3 app.py", pythonVersion: "3.12.1", subprocesses: false, errors: 0, ticks: 200
    )
    let lines = TopView.lines(
      header: header, stats: stats, layout: TopLayout(rate: 100), width: 200, height: 40)
    #expect(
      lines == [
        "Collecting samples from 'python3 app.py' (python v3.12.1)",
        "Total Samples 200",
        "GIL: 100.00%, Active: 100.00%, Threads: 1",
        "",
        "  %Own   %Total  OwnTime  TotalTime  Function (filename)",
        " 96.00%  96.00%    1.92s     1.92s   leaf (app.py)",
        "  4.00% 100.00%   0.080s     2.00s   main (app.py)",
      ])

    // Subprocesses, an error rate of 1% or more, a cut to the width and to the height.
    let busy = TopHeader(
      command: "x", pythonVersion: "3.12.1", subprocesses: true, errors: 5, ticks: 200)
    let small = TopView.lines(
      header: busy, stats: stats, layout: TopLayout(rate: 100), width: 30, height: 6)
    #expect(small.count == 6)
    #expect(small.allSatisfy { TopView.displayWidth($0) <= 30 })
    let wide = TopView.lines(
      header: busy, stats: stats, layout: TopLayout(rate: 100), width: 300, height: 40)
    #expect(wide[0].hasSuffix(" and subprocesses"))
    #expect(wide[1] == "Total Samples 200, Error Rate 2.50%")
    #expect(wide[2].hasSuffix(", Processes: 1"))
    let plain = TopView.lines(
      header: header, stats: stats, layout: TopLayout(perLine: true, rate: 100), width: 300,
      height: nil, maxRows: 1)
    #expect(plain.count == 6 && plain[4].hasSuffix("Function (filename:line)"))
  }

  @Test func widthInTerminalColumns() {
    #expect(TopView.displayWidth("abc") == 3)
    #expect(TopView.displayWidth("日本") == 4)
    #expect(TopView.displayWidth("💩.py") == 5)
    #expect(TopView.displayWidth("e\u{301}") == 1)
    #expect(TopView.truncate("日本語", toWidth: 5) == "日本")
    #expect(TopView.truncate("abcdef", toWidth: 3) == "abc")
    #expect(TopView.truncate("abc", toWidth: 0) == "")
  }
}
