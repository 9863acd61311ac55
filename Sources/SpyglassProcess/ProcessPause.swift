//===--- ProcessPause.swift - stopping a target for a consistent read -----===//
//
// Blocking mode stops every thread of the target for the duration of one read, so a stack cannot
// change under the walker. It uses PTRACE_SEIZE + PTRACE_INTERRUPT (never SIGSTOP): a seized
// tracee is resumed by the kernel if Spyglass dies, so the target is never left stopped, and no
// stop signal is ever queued to it. A signal that arrives while a thread is held is re-delivered on
// detach. ptrace requests are bound to the thread that attached: create, use and release a pause
// on one thread.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

public enum PauseError: Error, Equatable, Sendable {
  case processGone
  case permissionDenied
  case system(errno: Int32)
}

/// Holds every thread of a process stopped until `resume()` (or deinit).
public final class ProcessPause {
  public let pid: Int32
  /// Threads that are seized, with the signal to re-deliver when they are let go.
  private var held: [(tid: Int32, signal: Int32)] = []
  private var released = false
  /// With `notingIdleThreads`: the held threads that were asleep in a system call when stopped.
  public private(set) var idleThreadIDs = Set<Int32>()

  /// Stops every thread of `pid`. Threads created while pausing are picked up (the task list is
  /// re-read until it is stable, at most a few rounds). With `threads`, the caller's fresh task
  /// list is used as the first round and not re-read: a thread created in the microseconds between
  /// the listing and the pause is read without being held (as in non-blocking mode).
  ///
  /// With `notingIdleThreads`, each stopped thread's registers tell whether the stop interrupted a
  /// sleeping system call (`idleThreadIDs`). That is exact where the OS run state is not: a thread
  /// that a previous pause woke from its sleep reads as running (R) in /proc until it has been
  /// scheduled again, which on a loaded machine can take longer than the sampling interval.
  public init(pid: Int32, threads: [Int32]? = nil, notingIdleThreads: Bool = false) throws(PauseError) {
    self.pid = pid
    var seen = Set<Int32>()
    var rounds = 0
    var lastError: PauseError?
    while rounds < (threads == nil ? 8 : 1) {
      rounds += 1
      let tids = (rounds == 1 ? threads ?? ProcFS.threadIDs(pid) : ProcFS.threadIDs(pid)).filter { !seen.contains($0) }
      if tids.isEmpty { break }
      for tid in tids {
        seen.insert(tid)
        do throws(PauseError) {
          if let signal = try Self.stop(tid) {
            held.append((tid, signal))
            if notingIdleThreads && spy_ptrace_stopped_in_blocking_syscall(tid) == 1 { idleThreadIDs.insert(tid) }
          }
        } catch {
          lastError = error
        }
      }
    }
    if held.isEmpty {
      if let lastError { throw lastError }
      throw .processGone
    }
  }

  deinit { resume() }

  /// The thread ids that are held.
  public var threadIDs: [Int32] { held.map(\.tid) }

  /// Lets every thread run again. Idempotent.
  public func resume() {
    if released { return }
    released = true
    for (tid, signal) in held { _ = spy_ptrace_detach(tid, signal) }
    held.removeAll()
  }

  /// Seizes and interrupts one thread and waits until it is stopped. Returns the signal to
  /// re-deliver on detach (0 for none), or nil when the thread exited meanwhile.
  private static func stop(_ tid: Int32) throws(PauseError) -> Int32? {
    if spy_ptrace_seize(tid, SPY_PTRACE_O_TRACEEXIT) != 0 {
      let code = spy_errno()
      switch code {
      case ESRCH: return nil
      case EPERM:
        // EPERM also happens for a thread that is already exiting.
        if !ProcFS.processExists(tid) { return nil }
        throw .permissionDenied
      default: throw .system(errno: code)
      }
    }
    if spy_ptrace_interrupt(tid) != 0 {
      let code = spy_errno()
      _ = spy_ptrace_detach(tid, 0)
      if code == ESRCH { return nil }
      throw .system(errno: code)
    }
    var pendingSignal: Int32 = 0
    // Bounded: a thread in uninterruptible sleep stops when it leaves the kernel; we wait for it
    // (it must be waited for before it can be detached).
    var iterations = 0
    while iterations < 1000 {
      iterations += 1
      var status: Int32 = 0
      let r = spy_waitpid_all(tid, &status, 0)
      if r < 0 {
        let code = spy_errno()
        if code == EINTR { continue }
        return nil  // ECHILD: gone
      }
      if spy_wifexited(status) != 0 || spy_wifsignaled(status) != 0 { return nil }
      guard spy_wifstopped(status) != 0 else { continue }
      let event = spy_ptrace_event(status)
      if event == SPY_PTRACE_EVENT_STOP || event == SPY_PTRACE_EVENT_EXIT {
        return pendingSignal
      }
      let signal = spy_wstopsig(status)
      if event == 0 && signal != SIGTRAP {
        // A signal arrived for the thread before our interrupt: hold it, re-deliver on detach.
        // The interrupt is still pending; continue without the signal until the interrupt stop.
        pendingSignal = signal
        if spy_ptrace_cont(tid, 0) != 0 { return pendingSignal }
        _ = spy_ptrace_interrupt(tid)
        continue
      }
      return pendingSignal
    }
    return pendingSignal
  }
}
