//===--- Subprocess.swift - spawning children for the tests ---------------===//
//
// Children are started with posix_spawn so that they get an empty signal mask and default signal
// dispositions: a test worker thread runs with signals blocked, and a child inheriting that mask
// would, for instance, never see SIGTERM. Every pipe is created close-on-exec, so a child spawned
// concurrently by another test never inherits (and holds open) one of our pipe ends.
//
// Nothing here uses Foundation's Process; the tests own their children's whole lifetime: they
// kill them with SIGKILL and reap them with waitpid.
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A failure of the test infrastructure itself (spawning, waiting, locating tools).
package struct TestSupportError: Error, CustomStringConvertible, Sendable {
  package let description: String
  package init(_ description: String) { self.description = description }
}

/// Where a child's stdout or stderr goes.
package enum ChildOutput: Sendable {
  /// A pipe whose read end the parent keeps.
  case pipe
  /// A file, created or truncated.
  case file(String)
  /// /dev/null.
  case discard
}

/// How a child ended.
package enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Int32)

  /// Decodes a raw waitpid status (the W* macros are not importable into Swift).
  init(waitStatus status: Int32) {
    let low = status & 0x7f
    if low == 0 {
      self = .exited((status >> 8) & 0xff)
    } else {
      self = .signaled(low)
    }
  }

  package var exitCode: Int32? {
    if case .exited(let code) = self { return code }
    return nil
  }

  package var description: String {
    switch self {
    case .exited(let code): return "exit code \(code)"
    case .signaled(let signal): return "killed by signal \(signal)"
    }
  }
}

/// Seconds in a Duration, as a Double.
func seconds(_ duration: Duration) -> Double {
  let parts = duration.components
  return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}

/// A process started by the tests. Not thread-safe: one test owns it.
package final class ChildProcess {
  package let pid: pid_t
  package let command: [String]
  /// The read end of the stdout pipe, or -1.
  package private(set) var stdoutFD: Int32
  /// The read end of the stderr pipe, or -1.
  package private(set) var stderrFD: Int32
  /// Set once the child has been reaped.
  package private(set) var exitStatus: ExitStatus?

  /// Starts `executable` (looked up on PATH when it has no slash) with `arguments`.
  /// `environment` replaces the whole environment when given. stdin is /dev/null.
  package init(
    executable: String, arguments: [String], environment: [String: String]? = nil,
    stdout: ChildOutput = .pipe, stderr: ChildOutput = .pipe
  ) throws {
    command = [executable] + arguments
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }

    // Empty signal mask and default dispositions in the child.
    var emptySet = sigset_t()
    sigemptyset(&emptySet)
    posix_spawnattr_setsigmask(&attributes, &emptySet)
    var defaultSet = sigset_t()
    sigfillset(&defaultSet)
    sigdelset(&defaultSet, SIGKILL)
    sigdelset(&defaultSet, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &defaultSet)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    var parentEnds: [Int32] = []
    var childEnds: [Int32] = []
    func cleanUp() {
      for fd in parentEnds + childEnds { close(fd) }
    }
    func route(_ output: ChildOutput, to target: Int32) throws -> Int32 {
      switch output {
      case .pipe:
        var fds: [Int32] = [-1, -1]
        guard makePipe(&fds) == 0 else {
          throw TestSupportError("pipe2 failed: \(String(cString: strerror(errno)))")
        }
        parentEnds.append(fds[0])
        childEnds.append(fds[1])
        posix_spawn_file_actions_adddup2(&actions, fds[1], target)
        return fds[0]
      case .file(let path):
        posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        return -1
      case .discard:
        posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
        return -1
      }
    }
    let outRead: Int32
    let errRead: Int32
    do {
      outRead = try route(stdout, to: 1)
      errRead = try route(stderr, to: 2)
    } catch {
      cleanUp()
      throw error
    }

    let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    let envStrings: [String] =
      environment.map { env in env.map { "\($0.key)=\($0.value)" } }
      ?? ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
    let envp: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
    defer { for pointer in envp { free(pointer) } }

    var childPID: pid_t = 0
    var result: Int32 = 0
    // ETXTBSY: an executable a test has just copied is still open for writing in a child another
    // test thread forked meanwhile (the descriptor lives until that child's exec): try again.
    for attempt in 0..<50 {
      if executable.contains("/") {
        result = posix_spawn(&childPID, executable, &actions, &attributes, argv, envp)
      } else {
        result = posix_spawnp(&childPID, executable, &actions, &attributes, argv, envp)
      }
      if result != ETXTBSY || attempt == 49 { break }
      usleep(20_000)
    }
    for fd in childEnds { close(fd) }
    guard result == 0 else {
      for fd in parentEnds { close(fd) }
      throw TestSupportError("cannot start \(executable): \(String(cString: strerror(result)))")
    }
    pid = childPID
    stdoutFD = outRead
    stderrFD = errRead
  }

  deinit { stop() }

  /// Whether the child has not been reaped yet (it may be a zombie).
  package var isAlive: Bool {
    if exitStatus != nil { return false }
    _ = reap(blocking: false)
    return exitStatus == nil
  }

  /// waitpid; returns the status once the child has been reaped.
  @discardableResult
  package func reap(blocking: Bool) -> ExitStatus? {
    if let exitStatus { return exitStatus }
    var status: Int32 = 0
    while true {
      let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
      if r == pid {
        exitStatus = ExitStatus(waitStatus: status)
        return exitStatus
      }
      if r == 0 { return nil }
      if errno == EINTR { continue }
      // ECHILD: somebody else reaped it; treat it as gone.
      exitStatus = .signaled(0)
      return exitStatus
    }
  }

  /// Waits for the child to exit by itself, up to `timeout`. Returns nil on timeout.
  package func wait(timeout: Duration) -> ExitStatus? {
    let deadline = ContinuousClock.now + timeout
    while true {
      if let status = reap(blocking: false) { return status }
      if ContinuousClock.now >= deadline { return nil }
      usleep(2_000)
    }
  }

  package func signal(_ signal: Int32) {
    guard exitStatus == nil else { return }
    kill(pid, signal)
  }

  /// SIGKILL (it works even on a stopped or masked child), reap, close the pipes. Idempotent.
  package func stop() {
    if exitStatus == nil {
      kill(pid, SIGKILL)
      reap(blocking: true)
    }
    closePipes()
  }

  func closePipes() {
    if stdoutFD >= 0 {
      close(stdoutFD)
      stdoutFD = -1
    }
    if stderrFD >= 0 {
      close(stderrFD)
      stderrFD = -1
    }
  }
}

/// pipe2(fds, O_CLOEXEC): atomic close-on-exec, so that a child spawned concurrently by another
/// thread cannot inherit the pipe. Glibc's module does not export pipe2 (it needs _GNU_SOURCE), so
/// it is looked up at run time.
private let pipe2Function: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32)? = {
  guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else { return nil }
  return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
}()

private func makePipe(_ fds: inout [Int32]) -> Int32 {
  guard let pipe2Function else {  // not reached on glibc
    guard pipe(&fds) == 0 else { return -1 }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return 0
  }
  return fds.withUnsafeMutableBufferPointer { pipe2Function($0.baseAddress!, O_CLOEXEC) }
}

/// Reads a pipe line by line with a deadline.
final class LineReader {
  let fd: Int32
  private var buffer: [UInt8] = []
  private(set) var atEOF = false

  init(fd: Int32) { self.fd = fd }

  enum Outcome {
    case line(String)
    case endOfFile
    case timedOut
  }

  func readLine(deadline: ContinuousClock.Instant) -> Outcome {
    while true {
      if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: buffer[..<newline], as: UTF8.self)
        buffer.removeSubrange(...newline)
        return .line(line)
      }
      if atEOF {
        if buffer.isEmpty { return .endOfFile }
        let line = String(decoding: buffer, as: UTF8.self)
        buffer.removeAll()
        return .line(line)
      }
      switch waitReadable(fd, deadline: deadline) {
      case false: return .timedOut
      case true:
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
          if errno == EINTR || errno == EAGAIN { continue }
          atEOF = true
        } else if n == 0 {
          atEOF = true
        } else {
          buffer.append(contentsOf: chunk[0..<n])
        }
      }
    }
  }
}

/// poll() for readability (or hang-up) until the deadline. False on timeout.
func waitReadable(_ fd: Int32, deadline: ContinuousClock.Instant) -> Bool {
  while true {
    let remaining = deadline - ContinuousClock.now
    if remaining <= .zero { return false }
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let milliseconds = Int32(min(seconds(remaining) * 1000 + 1, 60_000))
    let r = poll(&descriptor, 1, milliseconds)
    if r > 0 { return true }
    if r < 0 && errno != EINTR { return true }  // let read() report the error
  }
}

/// What a finished command printed and how it ended.
package struct CommandResult: Sendable, CustomStringConvertible {
  package let command: [String]
  package let stdout: String
  package let stderr: String
  /// nil when the command was killed for exceeding its time limit.
  package let status: ExitStatus?
  package let timedOut: Bool
  package let elapsed: Duration

  package var exitCode: Int32? { status?.exitCode }

  package var description: String {
    var text = "$ \(command.joined(separator: " "))\n"
    text += timedOut ? "(timed out after \(elapsed), killed)\n" : "(\(status.map { "\($0)" } ?? "?"), \(elapsed))\n"
    text += "--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    return text
  }
}

/// Runs a command to completion, capturing stdout and stderr, killing it (SIGKILL) after `timeout`.
package func runCommand(
  _ executable: String, _ arguments: [String], timeout: Duration = .seconds(30),
  environment: [String: String]? = nil
) throws -> CommandResult {
  let start = ContinuousClock.now
  let deadline = start + timeout
  let child = try ChildProcess(executable: executable, arguments: arguments, environment: environment)
  defer { child.stop() }
  var outputs: [Int32: [UInt8]] = [child.stdoutFD: [], child.stderrFD: []]
  var open: [Int32] = [child.stdoutFD, child.stderrFD]
  var timedOut = false
  var chunk = [UInt8](repeating: 0, count: 65536)
  while !open.isEmpty {
    let remaining = deadline - ContinuousClock.now
    if remaining <= .zero {
      timedOut = true
      break
    }
    var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let milliseconds = Int32(min(seconds(remaining) * 1000 + 1, 60_000))
    let r = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
    if r < 0 {
      if errno == EINTR { continue }
      throw TestSupportError("poll failed: \(String(cString: strerror(errno)))")
    }
    for descriptor in descriptors where descriptor.revents != 0 {
      let n = chunk.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
      if n > 0 {
        outputs[descriptor.fd, default: []].append(contentsOf: chunk[0..<n])
      } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
        open.removeAll { $0 == descriptor.fd }
      }
    }
  }
  var status: ExitStatus? = nil
  if !timedOut {
    // Both pipes are closed; the child is exiting (or detached its output: give it the rest of
    // the time limit).
    status = child.wait(timeout: max(deadline - ContinuousClock.now, .milliseconds(100)))
    if status == nil { timedOut = true }
  }
  let stdoutBytes = outputs[child.stdoutFD] ?? []
  let stderrBytes = outputs[child.stderrFD] ?? []
  child.stop()
  return CommandResult(
    command: child.command,
    stdout: String(decoding: stdoutBytes, as: UTF8.self),
    stderr: String(decoding: stderrBytes, as: UTF8.self),
    status: timedOut ? nil : status,
    timedOut: timedOut,
    elapsed: ContinuousClock.now - start)
}

/// The first executable file named `name` on PATH.
package func findOnPath(_ name: String) -> String? {
  let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
  for directory in path.split(separator: ":") where !directory.isEmpty {
    let candidate = "\(directory)/\(name)"
    if access(candidate, X_OK) == 0 { return candidate }
  }
  return nil
}
