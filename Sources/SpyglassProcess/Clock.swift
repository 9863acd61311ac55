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
