//===--- ProcessPause.swift - stopping a target for a consistent read -----===//
//
// Blocking mode stops the target's Python threads (the threads it is given; ProcessSampler leaves
// threads without a Python thread state running) for the duration of one read, so a stack cannot
// change under the walker. It uses PTRACE_SEIZE + PTRACE_INTERRUPT (never SIGSTOP): a seized
// tracee is resumed by the kernel if Spyglass dies, so the target is never left stopped, and no
// stop signal is ever queued to it. A signal that arrives while a thread is held is re-delivered on
// detach. ptrace requests are bound to the thread that attached: create, use and release a pause
// on one thread.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

/// Holds every thread of a process stopped until `resume()` (or deinit).
package final class ProcessPause {
  package let pid: Int32
  /// Threads that are seized, with the signal to re-deliver when they are let go.
  private var held: [(tid: Int32, signal: Int32)] = []
  private var released = false
  /// With `notingIdleThreads`: the held threads that were asleep in a system call when stopped.
  package private(set) var idleThreadIDs = Set<Int32>()

  /// Stops every thread of `pid`. Threads created while pausing are picked up (the task list is
  /// re-read until it is stable, at most a few rounds). With `threads`, the caller's fresh task
  /// list is used as the first round and not re-read: a thread created in the microseconds between
  /// the listing and the pause is read without being held (as in non-blocking mode).
  ///
  /// With `notingIdleThreads`, each stopped thread's registers tell whether the stop interrupted a
  /// sleeping system call (`idleThreadIDs`). That is exact where the OS run state is not: a thread
  /// that a previous pause woke from its sleep reads as running (R) in /proc until it has been
  /// scheduled again, which on a loaded machine can take longer than the sampling interval.
  package init(pid: Int32, threads: [Int32]? = nil, notingIdleThreads: Bool = false) throws(Errno) {
    self.pid = pid
    var seen = Set<Int32>()
    var rounds = 0
    var lastError: Errno?
    var stopping: [(tid: Int32, signal: Int32)] = []
    while rounds < (threads == nil ? 8 : 1) {
      rounds += 1
      let tids = (rounds == 1 ? threads ?? ProcFS.threadIDs(pid) : ProcFS.threadIDs(pid)).filter { !seen.contains($0) }
      if tids.isEmpty { break }
      stopping.removeAll(keepingCapacity: true)
      for tid in tids {
        seen.insert(tid)
        do throws(Errno) {
          if try Self.interrupt(tid) { stopping.append((tid, 0)) }
        } catch {
          lastError = error
        }
      }
      Self.awaitStops(&stopping)
      for thread in stopping {
        held.append(thread)
        if notingIdleThreads && spy_ptrace_stopped_in_blocking_syscall(thread.tid) == 1 {
          idleThreadIDs.insert(thread.tid)
        }
      }
    }
    if held.isEmpty {
      if let lastError { throw lastError }
      throw .noSuchProcess
    }
  }

  deinit { resume() }

  /// The thread ids that are held.
  package var threadIDs: [Int32] { held.map(\.tid) }

  /// Lets every thread run again. Idempotent.
  package func resume() {
    if released { return }
    released = true
    for (tid, signal) in held { _ = spy_ptrace_detach(tid, signal) }
    held.removeAll()
  }

  /// Seizes one thread and asks it to stop. False when the thread exited meanwhile.
  private static func interrupt(_ tid: Int32) throws(Errno) -> Bool {
    if spy_ptrace_seize(tid, SPY_PTRACE_O_TRACEEXIT) != 0 {
      let code = spy_errno()
      switch code {
      case ESRCH: return false
      case EPERM:
        // EPERM also happens for a thread that is already exiting.
        if !ProcFS.processExists(tid) { return false }
        throw .notPermitted
      default: throw Errno(rawValue: code)
      }
    }
    if spy_ptrace_interrupt(tid) != 0 {
      let code = spy_errno()
      _ = spy_ptrace_detach(tid, 0)
      if code == ESRCH { return false }
      throw Errno(rawValue: code)
    }
    return true
  }

  /// How long the waits poll before they sleep. A running thread reaches its stop within a few
  /// microseconds of the interrupt. Sleeping in waitpid instead lets Spyglass's CPU halt, and on a
  /// virtual machine waking a halted CPU takes 100-300 µs, for which the target stays stopped: it
  /// lost ~16% of its time at 1 kHz that way on the 2-core VM of BENCHMARKS.md.
  static let pollingNanoseconds: UInt64 = 50_000

  /// How long the waits go on after polling, in slices of `sleepSliceNanoseconds`, before the
  /// threads still not stopped are given up on (they stay listed, and are let go by `resume`).
  static let waitingNanoseconds: UInt64 = 2_000_000_000
  static let sleepSliceNanoseconds: UInt64 = 50_000

  /// Waits until every interrupted thread is stopped, in any order (all were interrupted before
  /// the first wait, so their stops overlap). On return `threads` holds the seized threads, each
  /// with the signal to re-deliver on detach; threads that exited are dropped.
  ///
  /// Never a blocking waitpid: another thread of this process (a program embedding the library,
  /// or a test, that reaps its children) can collect a stop notification meant for us, since
  /// waitpid reports the tracees of every thread of the group. After polling, each wait is a
  /// WNOHANG one, and a thread whose notification never comes but that /proc shows in tracing
  /// stop counts as stopped; between rounds the thread sleeps a slice, so its CPU can halt.
  private static func awaitStops(_ threads: inout [(tid: Int32, signal: Int32)]) {
    var stopped = 0  // threads[..<stopped] are stopped; the rest are waited for
    let begin = monotonicNanoseconds()
    let pollingUntil = begin + pollingNanoseconds
    let waitingUntil = pollingUntil + waitingNanoseconds
    while stopped < threads.count {
      let now = monotonicNanoseconds()
      let polling = now < pollingUntil
      if !polling && now >= waitingUntil { break }
      var index = stopped
      while index < threads.count {
        var outcome = waitOnce(&threads[index])
        if outcome == .pending && !polling {
          // The notification may have gone to another thread's waitpid: ask /proc.
          switch ProcStat.read(pid: threads[index].tid)?.state {
          case nil, UInt8(ascii: "Z"), UInt8(ascii: "X"): outcome = .gone
          case UInt8(ascii: "t"): outcome = .stopped
          default: break
          }
        }
        switch outcome {
        case .pending: index += 1
        case .stopped:
          threads.swapAt(stopped, index)
          stopped += 1
          index += 1
        case .gone:
          threads.remove(at: index)
        }
      }
      if !polling && stopped < threads.count { sleepSeconds(Double(sleepSliceNanoseconds) / 1e9) }
    }
    // Past the bound the rest stay listed too: a seized thread must be let go whatever its state.
  }

  private enum WaitOutcome { case pending, stopped, gone }

  /// One waitpid (WNOHANG) for an interrupted thread. A signal that arrived before the interrupt
  /// is held for re-delivery on detach and the thread continued until the interrupt stop.
  private static func waitOnce(_ thread: inout (tid: Int32, signal: Int32)) -> WaitOutcome {
    var status: Int32 = 0
    let r = spy_waitpid_all(thread.tid, &status, 1)
    if r == 0 { return .pending }
    if r < 0 { return spy_errno() == EINTR ? .pending : .gone }  // ECHILD: gone
    if spy_wifexited(status) != 0 || spy_wifsignaled(status) != 0 { return .gone }
    guard spy_wifstopped(status) != 0 else { return .pending }
    let event = spy_ptrace_event(status)
    if event == SPY_PTRACE_EVENT_STOP || event == SPY_PTRACE_EVENT_EXIT { return .stopped }
    let signal = spy_wstopsig(status)
    if event == 0 && signal != SIGTRAP {
      // The interrupt is still pending; continue without the signal until the interrupt stop.
      thread.signal = signal
      if spy_ptrace_cont(thread.tid, 0) != 0 { return .stopped }
      _ = spy_ptrace_interrupt(thread.tid)
      return .pending
    }
    return .stopped
  }
}
