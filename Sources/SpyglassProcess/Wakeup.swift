//===--- Wakeup.swift - a thread's sleep that another thread can cut short ---===//
//
// A background thread that has timers of its own (the uploader's retries) sleeps until its next
// deadline or until another thread has news for it, whichever comes first. `notify` is sticky: a
// notification given while the thread is busy ends its next wait at once, so none is lost. The
// condition variable waits on the monotonic clock (a change of the wall clock moves no deadline).
//
//===----------------------------------------------------------------------===//

import Glibc

package final class Wakeup: @unchecked Sendable {
  // Safe: allocated and initialised once in init, destroyed and freed once in deinit; `pending`
  // is only read or written with `mutex` held.
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>
  private let condition: UnsafeMutablePointer<pthread_cond_t>
  private var pending = false

  package init() {
    mutex = .allocate(capacity: 1)
    condition = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    pthread_cond_init(condition, &attributes)
    pthread_condattr_destroy(&attributes)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
    condition.deallocate()
  }

  /// Ends the current or the next `wait`.
  package func notify() {
    pthread_mutex_lock(mutex)
    pending = true
    pthread_cond_signal(condition)
    pthread_mutex_unlock(mutex)
  }

  /// Sleeps until `notify` (or one given since the last wait) or until `deadline`, in
  /// `monotonicNanoseconds()`; nil waits for a notification only.
  package func wait(until deadline: UInt64?) {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    var limit = timespec()
    if let deadline {
      limit.tv_sec = Int(deadline / 1_000_000_000)
      limit.tv_nsec = Int(deadline % 1_000_000_000)
    }
    while !pending {
      if deadline == nil {
        pthread_cond_wait(condition, mutex)
      } else if pthread_cond_timedwait(condition, mutex, &limit) == ETIMEDOUT {
        break
      }
    }
    pending = false
  }
}
