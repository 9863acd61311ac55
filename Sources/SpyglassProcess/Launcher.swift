//===--- Launcher.swift - starting the program to profile -----------------===//
//
// `record -- python app.py` starts the program with an empty signal mask and default signal
// dispositions (a child of a Swift process may otherwise inherit blocked signals), with Spyglass's
// stdout/stderr, and, when Spyglass runs as root under sudo, as the invoking user (SUDO_UID/GID).
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

package struct LaunchedProcess: Sendable {
  package let pid: Int32

  /// Non-blocking check: the exit status if the child has exited (and is reaped now). A child
  /// already reaped elsewhere (ptrace's waitpid can collect its exit while it is paused) counts as
  /// exited with status -1; it is never signalled after that.
  package func exitStatus() -> Int32? {
    var status: Int32 = 0
    let r = waitpid(pid, &status, WNOHANG)
    if r < 0 && errno == ECHILD { return -1 }
    guard r == pid else { return nil }
    if spy_wifexited(status) != 0 { return spy_wexitstatus(status) }
    if spy_wifsignaled(status) != 0 { return 128 + spy_wtermsig(status) }
    return nil
  }

  /// Sends `signal` to the child.
  package func send(_ signal: Int32) { kill(pid, signal) }

  /// Waits up to `timeout` seconds for the child to exit; returns its status or nil.
  package func wait(timeout: Double) -> Int32? {
    let deadline = monotonicSeconds() + timeout
    repeat {
      if let status = exitStatus() { return status }
      sleepSeconds(0.005)
    } while monotonicSeconds() < deadline
    return nil
  }
}

package enum Launcher {
  /// The uid/gid to run the child as: the sudo caller's when running as root under sudo.
  package static func invokingUser() -> (uid: uid_t, gid: gid_t)? {
    guard geteuid() == 0, let uidText = getenv("SUDO_UID"), let gidText = getenv("SUDO_GID"),
      let uid = UInt32(String(cString: uidText)), let gid = UInt32(String(cString: gidText)), uid != 0
    else { return nil }
    return (uid, gid)
  }

  /// Starts `arguments[0]` (searched on PATH) with the rest as its arguments.
  package static func launch(_ arguments: [String], asInvokingUser: Bool = true) throws(Errno) -> LaunchedProcess {
    precondition(!arguments.isEmpty)
    let user = asInvokingUser ? invokingUser() : nil
    var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    cStrings.append(nil)
    defer { for pointer in cStrings { free(pointer) } }
    let pid = cStrings.withUnsafeBufferPointer { argv in
      spy_spawn(arguments[0], argv.baseAddress, user?.uid ?? uid_t.max, user?.gid ?? gid_t.max, 0)
    }
    if pid < 0 { throw Errno.current }
    return LaunchedProcess(pid: pid)
  }
}

/// How a launched program ended, as far as a non-signalling check can tell.
package enum ProgramEnd: Equatable, Sendable {
  /// It exited with this status (128 + signal when killed by a signal).
  case exited(Int32)
  /// It is gone but its status was collected by another waitpid (the ptrace pause waits for the
  /// threads it stops, and so can reap a child that exits while it is stopped).
  case collectedElsewhere
  case running
}

extension LaunchedProcess {
  /// Waits up to `timeout` seconds for the program to end, and reaps it. Unlike `wait`, tells
  /// "already reaped" (ECHILD) from "still running", so that a pid that may have been reused is
  /// never signalled.
  package func waitForEnd(timeout: Double) -> ProgramEnd {
    let deadline = monotonicSeconds() + timeout
    while true {
      var status: Int32 = 0
      let r = waitpid(pid, &status, WNOHANG)
      if r == pid {
        if spy_wifexited(status) != 0 { return .exited(spy_wexitstatus(status)) }
        if spy_wifsignaled(status) != 0 { return .exited(128 + spy_wtermsig(status)) }
      } else if r < 0 && errno == ECHILD {
        return .collectedElsewhere
      } else if r < 0 && errno != EINTR {
        return .running
      }
      if monotonicSeconds() >= deadline { return .running }
      sleepSeconds(0.005)
    }
  }
}
