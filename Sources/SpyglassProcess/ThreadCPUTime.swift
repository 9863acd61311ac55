//===--- ThreadCPUTime.swift - how much CPU a thread has used -------------===//
//
// /proc/PID/task/TID/schedstat's first field is the thread's time on CPU in nanoseconds (exact,
// unlike stat's clock ticks). Kept open and re-read with pread.
//
//===----------------------------------------------------------------------===//

import Glibc

package final class ThreadCPUTime {
  private let file: FileDescriptor
  private var buffer = [UInt8](repeating: 0, count: 128)

  package init?(pid: Int32, tid: Int32) {
    guard let file = try? FileDescriptor(reading: "/proc/\(pid)/task/\(tid)/schedstat") else { return nil }
    self.file = file
  }

  /// CPU time used so far, in nanoseconds, or nil when the thread is gone.
  package func read() -> UInt64? {
    guard let n = try? file.read(at: 0, into: &buffer), n > 0 else { return nil }
    var value: UInt64 = 0
    for byte in buffer[0..<n] {
      guard byte >= 48 && byte <= 57 else { break }
      value = value &* 10 &+ UInt64(byte - 48)
    }
    return value
  }
}
