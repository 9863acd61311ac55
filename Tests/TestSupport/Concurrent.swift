//===--- Concurrent.swift - blocking jobs side by side, background commands -===//
//
// `parallelMap` runs blocking jobs (a 2-second `spyglass record`, a fixture, a validator) on
// dedicated threads, a few at a time. Swift concurrency's pool has one thread per core and blocking
// calls would hold them, so a task group of such jobs would run two at a time on a 2-core machine.
// The jobs return plain values; the caller checks them afterwards on the test's own task, where
// Swift Testing attributes the issues to the right test.
//
// `BackgroundCommand` starts a command that the test signals and waits for (Ctrl-C, SIGTERM,
// SIGUSR1 to a running `spyglass record`), with stdout and stderr in temporary files.
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `transform` on every item, at most `width` at a time, each on its own thread; returns the
/// results in the order of `items`.
package func parallelMap<Item: Sendable, Value: Sendable>(
  _ items: [Item], width: Int, _ transform: @escaping @Sendable (Item) throws -> Value
) -> [Result<Value, any Error>] {
  let slots = ResultSlots<Value>(count: items.count)
  let done = DispatchSemaphore(value: 0)
  let workers = max(1, min(width, items.count))
  for _ in 0..<workers {
    let thread = Thread {
      while true {
        slots.lock.lock()
        let index = slots.next
        slots.next += 1
        slots.lock.unlock()
        if index >= items.count { break }
        let result = Result { try transform(items[index]) }
        slots.lock.lock()
        slots.results[index] = result
        slots.lock.unlock()
      }
      done.signal()
    }
    thread.stackSize = 1 << 20
    thread.start()
  }
  for _ in 0..<workers { done.wait() }
  return slots.results.map { $0! }
}

/// The shared state of parallelMap's workers, guarded by `lock`.
private final class ResultSlots<Value>: @unchecked Sendable {
  let lock = NSLock()
  var next = 0
  var results: [Result<Value, any Error>?]
  init(count: Int) { results = Array(repeating: nil, count: count) }
}

/// A command running in the background, stdout and stderr in temporary files. SIGKILLed and
/// reaped by `stop()` or deinit if it is still running.
package final class BackgroundCommand {
  package let child: ChildProcess
  package let started: ContinuousClock.Instant
  private let stdoutPath: String
  private let stderrPath: String

  package init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
    let base = NSTemporaryDirectory() + "spyglass-background-\(getpid())-\(UUID().uuidString)"
    stdoutPath = base + ".stdout"
    stderrPath = base + ".stderr"
    var env = environment ?? ProcessInfo.processInfo.environment
    env["NO_COLOR"] = "1"
    env.removeValue(forKey: "CLICOLOR_FORCE")
    child = try ChildProcess(
      executable: executable, arguments: arguments, environment: env, stdout: .file(stdoutPath),
      stderr: .file(stderrPath))
    started = ContinuousClock.now
  }

  /// Starts the built spyglass with `arguments`.
  package static func spyglass(_ arguments: [String]) throws -> BackgroundCommand {
    try BackgroundCommand(try SpyglassRunner.executablePath(), arguments)
  }

  deinit { stop() }

  package var pid: pid_t { child.pid }
  package var isRunning: Bool { child.isAlive }
  package var stdoutText: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
  package var stderrText: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  package func signal(_ signal: Int32) { child.signal(signal) }

  /// Waits for the command to exit by itself; nil on timeout.
  package func wait(timeout: Duration) -> ExitStatus? { child.wait(timeout: timeout) }

  /// Waits until stderr contains `text`; false on timeout or when the command exits first.
  package func waitForStderr(_ text: String, timeout: Duration) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if stderrText.contains(text) { return true }
      if !child.isAlive { return stderrText.contains(text) }
      usleep(10_000)
    }
    return false
  }

  /// SIGKILL and reap if still running; removes the output files. Idempotent.
  package func stop() {
    child.stop()
    unlink(stdoutPath)
    unlink(stderrPath)
  }

  /// How it ended, with its output, for failure messages.
  package var summary: String {
    "$ \(child.command.joined(separator: " "))\n(\(child.exitStatus.map { "\($0)" } ?? "running"))\n"
      + "--- stdout ---\n\(stdoutText)\n--- stderr ---\n\(stderrText)"
  }
}

/// A fresh private directory under the temporary directory; remove it with `removeDirectory`.
package func makeTemporaryDirectory(_ prefix: String = "spyglass-test") throws -> String {
  var template = Array((NSTemporaryDirectory() + "\(prefix)-XXXXXX").utf8CString)
  let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
  guard result != nil else {
    throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))")
  }
  return String(cString: template)
}

package func removeDirectory(_ path: String) {
  try? FileManager.default.removeItem(atPath: path)
}

/// Runs the `python3` found on PATH (the one with jsonschema and protobuf installed).
package func runSystemPython3(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> CommandResult {
  guard let python3 = findOnPath("python3") else { throw TestSupportError("python3 is not on PATH") }
  var environment = ProcessInfo.processInfo.environment
  environment["PYTHONDONTWRITEBYTECODE"] = "1"
  environment["PYTHONIOENCODING"] = "utf-8"
  return try runCommand(python3, arguments, timeout: timeout, environment: environment)
}

/// The pids of running processes whose command line contains `marker` (zombies excluded).
package func processes(withArgument marker: String) -> [Int32] {
  guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
  var found: [Int32] = []
  for entry in entries {
    guard let pid = Int32(entry), pid != getpid() else { continue }
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { continue }
    if String(decoding: data, as: UTF8.self).contains(marker) { found.append(pid) }
  }
  return found
}
