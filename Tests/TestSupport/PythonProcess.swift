//===--- PythonProcess.swift - a Python fixture process -------------------===//
//
// `python script args` with stdout piped and stderr in a temporary file, started with the
// interpreter's `command` (so a rooted interpreter runs chrooted through tools/in-root.sh, under the
// pid the test was given, with the script's host path valid inside). The initializer returns only
// after the script printed its readiness line, so a test never reads /proc or the target's memory
// while the interpreter (or in-root.sh before it) is still starting. Printing the line is the
// script's last step before it blocks, not proof that it has blocked, so the tests also call
// `waitUntilSleeping` (every thread asleep in the kernel, steadily) or `waitForCPU` (a busy loop is
// burning CPU).
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess

#if canImport(Glibc)
  import Glibc
#endif

package final class PythonProcess {
  package let interpreter: PythonInterpreter
  package let script: String
  package let arguments: [String]
  package let child: ChildProcess
  package var pid: Int32 { child.pid }
  /// Every stdout line read so far, the readiness line included.
  package private(set) var lines: [String] = []
  /// The line that satisfied the readiness predicate.
  package private(set) var readyLine: String = ""
  private let reader: LineReader
  private let stderrPath: String

  /// The default readiness predicate: a line starting with "READY".
  package static let readyPrefix: @Sendable (String) -> Bool = { $0.hasPrefix("READY") }

  /// Starts `interpreter.command + [script] + arguments` and waits (up to `timeout`) for a stdout line
  /// satisfying `isReady`. Throws, with the script's stderr, if it exits or times out first.
  package init(
    _ interpreter: PythonInterpreter, script: String, arguments: [String] = [],
    environment extra: [String: String] = [:],
    isReady: (String) -> Bool = PythonProcess.readyPrefix,
    timeout: Duration = .seconds(15)
  ) throws {
    self.interpreter = interpreter
    self.script = script
    self.arguments = arguments
    stderrPath = NSTemporaryDirectory() + "spyglass-fixture-\(getpid())-\(UUID().uuidString).stderr"
    var environment = ProcessInfo.processInfo.environment
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment["PYTHONIOENCODING"] = "utf-8"
    environment.removeValue(forKey: "PYTHONPATH")
    environment.removeValue(forKey: "PYTHONSTARTUP")
    environment.removeValue(forKey: "PYTHONHOME")
    for (key, value) in extra { environment[key] = value }
    child = try ChildProcess(
      executable: interpreter.command[0], arguments: interpreter.command.dropFirst() + [script] + arguments,
      environment: environment, stdout: .pipe, stderr: .file(stderrPath))
    reader = LineReader(fd: child.stdoutFD)
    let deadline = ContinuousClock.now + timeout
    while true {
      switch reader.readLine(deadline: deadline) {
      case .line(let line):
        lines.append(line)
        if isReady(line) {
          readyLine = line
          return
        }
      case .endOfFile:
        let status = child.wait(timeout: .seconds(5))
        let message =
          "\(interpreter.label) \(script) exited (\(status.map { "\($0)" } ?? "?")) before its readiness line; "
          + "stdout: \(lines), stderr:\n\(stderrText)"
        stop()
        throw TestSupportError(message)
      case .timedOut:
        let message =
          "\(interpreter.label) \(script) printed no readiness line within \(timeout); stdout: \(lines), stderr:\n\(stderrText)"
        stop()
        throw TestSupportError(message)
      }
    }
  }

  deinit { stop() }

  /// What the script wrote to stderr so far.
  package var stderrText: String {
    (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
  }

  /// The next stdout line, nil at end of file; throws on timeout.
  package func readLine(timeout: Duration = .seconds(10)) throws -> String? {
    switch reader.readLine(deadline: ContinuousClock.now + timeout) {
    case .line(let line):
      lines.append(line)
      return line
    case .endOfFile: return nil
    case .timedOut: throw TestSupportError("no line from \(script) within \(timeout)")
    }
  }

  package var isRunning: Bool { child.isAlive }

  /// The OS thread ids (entries of /proc/PID/task).
  package func threadIDs() -> [Int32] { ProcFS.threadIDs(pid) }

  /// The one-letter state of each thread, by tid.
  package func threadStates() -> [Int32: Character] {
    var states: [Int32: Character] = [:]
    for tid in threadIDs() {
      if let stat = ProcStat.read(pid: pid, tid: tid) {
        states[tid] = Character(UnicodeScalar(stat.state))
      }
    }
    return states
  }

  /// Waits until every thread sleeps in the kernel (state S) — and there are `threadCount` of them
  /// when given — on several consecutive polls over at least `stableFor`. A thread waiting for the GIL
  /// is asleep too, but never for long while nobody runs, so a steady all-asleep picture means each
  /// thread is in its blocking call.
  package func waitUntilSleeping(
    threadCount: Int? = nil, stableFor: Duration = .milliseconds(60), timeout: Duration = .seconds(10)
  ) throws {
    let deadline = ContinuousClock.now + timeout
    var steadySince: ContinuousClock.Instant? = nil
    var last: [Int32: Character] = [:]
    while true {
      guard child.isAlive else {
        throw TestSupportError("\(script) exited while waiting for it to block; stderr:\n\(stderrText)")
      }
      let states = threadStates()
      let asleep =
        !states.isEmpty && states.values.allSatisfy { $0 == "S" }
        && (threadCount == nil || states.count == threadCount)
      if asleep && states.keys.sorted() == last.keys.sorted() {
        let since = steadySince ?? ContinuousClock.now
        steadySince = since
        if ContinuousClock.now - since >= stableFor { return }
      } else {
        steadySince = asleep ? ContinuousClock.now : nil
      }
      last = states
      if ContinuousClock.now >= deadline {
        throw TestSupportError(
          "\(interpreter.label) \(script): threads not all asleep within \(timeout)"
            + " (want \(threadCount.map(String.init) ?? "any number of") threads); states: \(states)")
      }
      usleep(10_000)
    }
  }

  /// CPU ticks (user + system) used by the whole process so far.
  package func cpuTicks() -> UInt64 {
    guard let stat = ProcStat.read(pid: pid) else { return 0 }
    return stat.userTicks + stat.systemTicks
  }

  /// Waits until the process has used `ticks` more clock ticks of CPU: proof that a busy loop that
  /// starts right after the readiness line is running.
  package func waitForCPU(ticks: UInt64 = 5, timeout: Duration = .seconds(10)) throws {
    let start = cpuTicks()
    let deadline = ContinuousClock.now + timeout
    while cpuTicks() < start + ticks {
      guard child.isAlive else {
        throw TestSupportError("\(script) exited while waiting for it to run; stderr:\n\(stderrText)")
      }
      if ContinuousClock.now >= deadline {
        throw TestSupportError("\(interpreter.label) \(script) used no CPU within \(timeout)")
      }
      usleep(10_000)
    }
  }

  /// SIGSTOP, then waits until every thread is stopped (state T), so that two readers see the same
  /// state. Undo with `resume()`.
  package func suspend(timeout: Duration = .seconds(10)) throws {
    child.signal(SIGSTOP)
    let deadline = ContinuousClock.now + timeout
    while true {
      let states = threadStates()
      if !states.isEmpty && states.values.allSatisfy({ $0 == "T" }) { return }
      if ContinuousClock.now >= deadline {
        throw TestSupportError("\(script) did not stop within \(timeout); states: \(states)")
      }
      usleep(2_000)
    }
  }

  package func resume() { child.signal(SIGCONT) }

  /// SIGKILL and reap; removes the stderr file. Idempotent; also run by deinit.
  package func stop() {
    child.stop()
    unlink(stderrPath)
  }
}
