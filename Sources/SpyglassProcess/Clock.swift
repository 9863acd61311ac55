import CSpyglass
import Glibc

/// Seconds on the monotonic clock.
package func monotonicSeconds() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Nanoseconds on the monotonic clock.
package func monotonicNanoseconds() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Sleeps for `seconds` (resuming after signals).
package func sleepSeconds(_ seconds: Double) {
  guard seconds > 0 else { return }
  var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
  var remaining = timespec()
  while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// How late the kernel may wake the calling thread from a sleep, so that it can batch wake-ups
/// (50 µs by default). A sampler asked for thousands of samples a second narrows it: otherwise every
/// interval is stretched by up to that much and the sampler falls behind.
package func setTimerSlack(nanoseconds: UInt) {
  _ = spy_set_timer_slack(nanoseconds)
}

/// The natural logarithm (the C library's `log`), for the sampling timer.
package func naturalLog(_ x: Double) -> Double { log(x) }

/// A gate for work done at most once per interval (re-reading thread names, re-scanning the
/// process tree, re-checking a library list): `ready` says yes the first time and then once the
/// interval has passed since it last said yes. The one shape every such time gate takes.
package struct Throttle: Sendable {
  /// The interval, in nanoseconds.
  package private(set) var interval: UInt64
  private let baseInterval: UInt64
  private var last: UInt64?

  package init(seconds: Double) {
    interval = UInt64(Swift.max(0, seconds) * 1e9)
    baseInterval = interval
  }

  /// Doubles the interval, to at most `maximum` seconds: work that found nothing new waits longer
  /// each time.
  package mutating func backOff(upTo maximum: Double) {
    interval = Swift.min(Swift.max(interval, 1) &* 2, UInt64(Swift.max(0, maximum) * 1e9))
  }

  /// The interval it was made with again.
  package mutating func restoreInterval() { interval = baseInterval }

  /// Whether the work is due at `now` (monotonic nanoseconds); if so, it counts as done now.
  package mutating func ready(now: UInt64 = monotonicNanoseconds()) -> Bool {
    if let last, now &- last < interval { return false }
    last = now
    return true
  }

  /// Whether the work would be due at `now`, without counting it as done.
  package func isDue(now: UInt64 = monotonicNanoseconds()) -> Bool {
    guard let last else { return true }
    return now &- last >= interval
  }

  /// Makes the next `ready` say yes.
  package mutating func reset() { last = nil }
}

/// The CPU time a whole process has used (its CPU-time clock, `clock_getcpuclockid`): exact to
/// the nanosecond, the share of a thread running at the moment included (unlike /proc's stat and
/// schedstat, which a running thread updates only at ticks and switches).
package struct ProcessCPUClock {
  private let clock: clockid_t

  package init?(pid: Int32) {
    var id = clockid_t()
    guard clock_getcpuclockid(pid, &id) == 0 else { return nil }
    clock = id
  }

  /// The CPU time used so far, nil once the process is gone.
  package func nanoseconds() -> UInt64? {
    var now = timespec()
    guard clock_gettime(clock, &now) == 0 else { return nil }
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }
}
