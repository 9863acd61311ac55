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

  /// Starts `arguments[0]` (searched on PATH) with the rest as its arguments. Spyglass becomes a
  /// child subreaper first: a process the program starts and leaves behind (a shell's background
  /// job, a launcher that exits) is reparented to Spyglass instead of init, so it stays among
  /// Spyglass's descendants and `endTree` ends it too.
  package static func launch(_ arguments: [String], asInvokingUser: Bool = true) throws(Errno) -> LaunchedProcess {
    precondition(!arguments.isEmpty)
    _ = spy_set_child_subreaper()
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

extension LaunchedProcess {
  /// Ends the program and every process under Spyglass (the program's children and the orphans
  /// reparented to Spyglass as their subreaper): SIGTERM (or `signal`) to each, then SIGKILL to
  /// those still there after `grace` seconds; reaps the orphans (the program itself is reaped by
  /// `exitStatus`/`wait`, so its status is kept).
  package func endTree(signal first: Int32 = Signal.terminate, grace: Double = 1) {
    let own = ProcFS.ownPID
    func family() -> [Int32] {
      ProcessTree.descendants(of: own).map(\.pid).filter { pid in ProcStat.read(pid: pid)?.state != UInt8(ascii: "Z") }
    }
    var members = family()
    if exitStatus() == nil, !members.contains(pid) { members.append(pid) }
    for member in members { kill(member, first) }
    let deadline = monotonicSeconds() + grace
    while !members.isEmpty && monotonicSeconds() < deadline {
      sleepSeconds(0.01)
      _ = exitStatus()
      reapOrphans()
      members = family()
    }
    for member in family() { kill(member, Signal.kill) }
    _ = wait(timeout: 1)
    reapOrphans()
  }

  /// Collects the exit of every zombie child of Spyglass but the program itself.
  private func reapOrphans() {
    for (child, _) in ProcessTree.descendants(of: ProcFS.ownPID) where child != pid {
      guard ProcStat.read(pid: child)?.state == UInt8(ascii: "Z") else { continue }
      var status: Int32 = 0
      _ = waitpid(child, &status, WNOHANG)
    }
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
