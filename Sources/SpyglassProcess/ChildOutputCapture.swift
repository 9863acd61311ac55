//===--- ChildOutputCapture.swift - a launched program's output, held back ---===//
//
// `top` draws on the terminal, so a program it launches must not write there; see the type.
//
//===----------------------------------------------------------------------===//

import Glibc

/// Where a program launched by `top` writes: an unlinked temporary file that takes its stdout and
/// stderr (its stdin is /dev/null), so it can neither draw over the live view nor read the keys
/// meant for it. This is what py-spy does too. The file is read back only when the program fails
/// (it exits with a non-zero status, or before Spyglass found Python in it); otherwise its output is
/// dropped. The file is gone once both Spyglass and the program have exited. A program that writes a
/// lot while it is watched for a long time fills the temporary directory ($TMPDIR, else /tmp) as it
/// would fill a redirected log.
package final class ChildOutputCapture {
  private var fd: Int32 = -1

  package init() {
    var directory = "/tmp"
    if let tmp = getenv("TMPDIR"), tmp.pointee != 0 { directory = String(cString: tmp) }
    var template = Array("\(directory)/spyglass-top-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if created >= 0 {
      unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
      _ = fcntl(created, F_SETFD, FD_CLOEXEC)
      fd = created
    }
  }

  deinit { if fd >= 0 { close(fd) } }

  /// Runs `body` (which starts the program) with stdin on /dev/null and stdout/stderr on the file,
  /// then puts Spyglass's own streams back. Without a file, stdout/stderr go to /dev/null.
  package func redirectingStandardStreams<T>(_ body: () throws -> T) throws -> T {
    let saved = (0...2).map { fcntl($0, F_DUPFD_CLOEXEC, 10) }
    let null = open("/dev/null", O_RDWR | O_CLOEXEC)
    defer {
      for (target, copy) in saved.enumerated() where copy >= 0 {
        dup2(copy, Int32(target))
        close(copy)
      }
      if null >= 0 { close(null) }
    }
    if null >= 0 { dup2(null, 0) }
    let output = fd >= 0 ? fd : null
    if output >= 0 {
      dup2(output, 1)
      dup2(output, 2)
    }
    return try body()
  }

  /// Prints the end of what the program wrote (up to 64 KiB) to stderr, under `reason`.
  package func printOutput(reason: String) {
    guard fd >= 0 else { return }
    let size = lseek(fd, 0, SEEK_END)
    guard size > 0 else { return }
    let limit = 65536
    let start = max(0, Int(size) - limit)
    var bytes = [UInt8](repeating: 0, count: Int(size) - start)
    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
    guard n > 0 else { return }
    StandardStreams.printError("spyglass> \(reason)\(start > 0 ? " (last \(limit / 1024) KiB)" : ""):")
    var text = Array(bytes[0..<n])
    if text.last != 10 { text.append(10) }
    StandardStreams.writeAll(fd: 2, text)
  }
}
