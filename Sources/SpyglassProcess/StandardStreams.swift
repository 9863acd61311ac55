//===--- StandardStreams.swift - stdout, stderr, exit and the wall clock ---===//
//
// The few things a command-line client needs from the OS besides reading a target: writing to a
// file descriptor, ending the process, and the local time for default file names. Kept here so the
// CLI target makes no system call of its own.
//
//===----------------------------------------------------------------------===//

import Glibc

package enum StandardStreams {
  /// Writes every byte to `fd`, retrying short and interrupted writes; the errno of a failed
  /// write, or nil.
  @discardableResult
  package static func writeAll(fd: Int32, _ bytes: [UInt8]) -> Int32? {
    var offset = 0
    while offset < bytes.count {
      // Safe: the pointer is valid for the closure's duration and `write` reads at most count bytes.
      let n = unsafe bytes[offset...].withUnsafeBytes { unsafe Glibc.write(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        return errno
      }
      offset += n
    }
    return nil
  }

  /// Writes `line` and a newline to stderr.
  package static func printError(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(10)
    writeAll(fd: 2, bytes)
  }

  /// Writes `text` to stdout.
  package static func printOutput(_ bytes: [UInt8]) { writeAll(fd: 1, bytes) }

  /// Ends the process with `code` (atexit handlers run, so a terminal mode is restored).
  package static func exit(_ code: Int32) -> Never { Glibc.exit(code) }
}

package enum WallClock {
  /// Seconds since the Unix epoch.
  package static func unixSeconds() -> UInt64 { UInt64(max(0, time(nil))) }

  /// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
  package static func unixNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(max(0, now.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, now.tv_nsec))
  }

  /// Local time for a file name, as py-spy writes it (`%Y-%m-%dT%H-%M-%S%z`):
  /// 2026-11-22T10-32-48+0000. No colons, so the name works on every file system and in scp.
  package static func fileNameTimestamp() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let offset = parts.tm_gmtoff / 60
    let zone = (offset < 0 ? "-" : "+") + two(abs(offset) / 60) + two(abs(offset) % 60)
    return
      "\(parts.tm_year + 1900)-\(two(Int(parts.tm_mon) + 1))-\(two(Int(parts.tm_mday)))T\(two(Int(parts.tm_hour)))-\(two(Int(parts.tm_min)))-\(two(Int(parts.tm_sec)))\(zone)"
  }
}

package enum Privileges {
  /// Whether Spyglass runs as root (effective uid 0).
  package static var isRoot: Bool { geteuid() == 0 }
}
