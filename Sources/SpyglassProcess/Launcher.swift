//===--- Launcher.swift - starting the program to profile -----------------===//
//
// `record -- python app.py` starts the program with an empty signal mask and default signal
// dispositions (a child of a Swift process may otherwise inherit blocked signals), with Spyglass's
// stdout/stderr, and, when Spyglass runs as root under sudo, as the invoking user (SUDO_UID/GID).
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

public struct LaunchedProcess: Sendable {
  public let pid: Int32

  /// Non-blocking check: the exit status if the child has exited (and is reaped now). A child
  /// already reaped elsewhere (ptrace's waitpid can collect its exit while it is paused) counts as
  /// exited with status -1; it is never signalled after that.
  public func exitStatus() -> Int32? {
    var status: Int32 = 0
    let r = waitpid(pid, &status, WNOHANG)
    if r < 0 && errno == ECHILD { return -1 }
    guard r == pid else { return nil }
    if spy_wifexited(status) != 0 { return spy_wexitstatus(status) }
    if spy_wifsignaled(status) != 0 { return 128 + spy_wtermsig(status) }
    return nil
  }

  /// Sends `signal` to the child.
  public func send(_ signal: Int32) { kill(pid, signal) }

  /// Waits up to `timeout` seconds for the child to exit; returns its status or nil.
  public func wait(timeout: Double) -> Int32? {
    let deadline = monotonicSeconds() + timeout
    repeat {
      if let status = exitStatus() { return status }
      sleepSeconds(0.005)
    } while monotonicSeconds() < deadline
    return nil
  }
}

public enum Launcher {
  /// The uid/gid to run the child as: the sudo caller's when running as root under sudo.
  public static func invokingUser() -> (uid: uid_t, gid: gid_t)? {
    guard geteuid() == 0, let uidText = getenv("SUDO_UID"), let gidText = getenv("SUDO_GID"),
      let uid = UInt32(String(cString: uidText)), let gid = UInt32(String(cString: gidText)), uid != 0
    else { return nil }
    return (uid, gid)
  }

  /// Starts `arguments[0]` (searched on PATH) with the rest as its arguments.
  public static func launch(_ arguments: [String], asInvokingUser: Bool = true) throws(SystemError) -> LaunchedProcess {
    precondition(!arguments.isEmpty)
    let user = asInvokingUser ? invokingUser() : nil
    var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    cStrings.append(nil)
    defer { for pointer in cStrings { free(pointer) } }
    let pid = cStrings.withUnsafeBufferPointer { argv in
      spy_spawn(arguments[0], argv.baseAddress, user?.uid ?? uid_t.max, user?.gid ?? gid_t.max, 0)
    }
    if pid < 0 { throw SystemError(errno: spy_errno(), operation: "launch \(arguments[0])") }
    return LaunchedProcess(pid: pid)
  }
}
