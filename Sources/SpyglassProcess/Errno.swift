//===--- Errno.swift - a system call's error, typed -----------------------===//
//
// The error every system call of this layer throws: the errno value, typed (the shape of
// swift-system's `Errno`, kept here so the process layer needs no dependency), with the few
// values Spyglass tells apart named, and strerror's sentence as its description. Higher layers
// wrap it in `SpyglassError` cases that say what was being done; they never test raw numbers.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

package struct Errno: Error, Sendable, Hashable, RawRepresentable, CustomStringConvertible {
  package let rawValue: Int32

  package init(rawValue: Int32) { self.rawValue = rawValue }

  /// The calling thread's errno, read right after the call that failed.
  package static var current: Errno { Errno(rawValue: spy_errno()) }

  package static let notPermitted = Errno(rawValue: EPERM)
  package static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
  package static let noSuchProcess = Errno(rawValue: ESRCH)
  package static let interrupted = Errno(rawValue: EINTR)
  package static let badAddress = Errno(rawValue: EFAULT)
  package static let permissionDenied = Errno(rawValue: EACCES)
  package static let invalidArgument = Errno(rawValue: EINVAL)
  package static let noChildProcess = Errno(rawValue: ECHILD)
  package static let tryAgain = Errno(rawValue: EAGAIN)

  /// strerror's sentence ("No such file or directory").
  package var description: String { String(cString: strerror(rawValue)) }

  /// The kernel refused: EPERM or EACCES.
  package var isPermissionDenied: Bool { self == .notPermitted || self == .permissionDenied }

  /// What was asked for is not there (any more): ENOENT or ESRCH.
  package var isNotFound: Bool { self == .noSuchFileOrDirectory || self == .noSuchProcess }
}

/// An open file descriptor, owned: closed exactly once, when its owner goes (it cannot be copied,
/// so it cannot be closed twice). Reads retry EINTR.
package struct FileDescriptor: ~Copyable {
  package let rawValue: Int32

  /// Opens `path` read-only (close-on-exec); `directory` requires a directory.
  package init(reading path: String, directory: Bool = false) throws(Errno) {
    let fd = open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0))
    if fd < 0 { throw Errno.current }
    rawValue = fd
  }

  /// Opens (creating or truncating) `path` for writing, mode 0644.
  package init(writing path: String) throws(Errno) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw Errno.current }
    rawValue = fd
  }

  /// Takes ownership of an open descriptor.
  package init(owning rawValue: Int32) { self.rawValue = rawValue }

  deinit { close(rawValue) }

  /// Reads at `offset` into `buffer` (pread); the byte count, 0 at the end.
  package func read(at offset: Int, into buffer: inout [UInt8]) throws(Errno) -> Int {
    while true {
      let n = buffer.withUnsafeMutableBytes { pread(rawValue, $0.baseAddress, $0.count, off_t(offset)) }
      if n >= 0 { return n }
      let error = Errno.current
      if error != .interrupted { throw error }
    }
  }

  /// Reads at the current position into `buffer`; the byte count, 0 at the end.
  package func read(into buffer: inout [UInt8]) throws(Errno) -> Int {
    while true {
      let n = buffer.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) }
      if n >= 0 { return n }
      let error = Errno.current
      if error != .interrupted { throw error }
    }
  }

  /// Everything from the current position to the end, at most `limit` bytes.
  /// Reads straight into the result, 4 KiB first and twice as much each time after: most files
  /// read here are /proc files of a few hundred bytes, read many times a second by the agent, which
  /// a zero-filled 64 KiB buffer per read made cost more than the reads themselves.
  package func readAll(limit: Int) throws(Errno) -> [UInt8] {
    var result: [UInt8] = []
    var chunk = 4096
    while result.count < limit {
      let start = result.count
      let wanted = Swift.min(chunk, limit - start)
      result.append(contentsOf: repeatElement(0, count: wanted))
      var n = 0
      while true {
        n = result.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress.map { $0 + start }, wanted) }
        if n >= 0 { break }
        let error = Errno.current
        if error != .interrupted {
          result.removeLast(wanted)
          throw error
        }
      }
      result.removeLast(wanted - n)
      if n == 0 { break }
      chunk = Swift.min(chunk * 2, 1 << 20)
    }
    return result
  }

  /// Writes all of `bytes`, retrying short writes and EINTR.
  package func write(_ bytes: [UInt8]) throws(Errno) {
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeBytes { buffer in
        Glibc.write(rawValue, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
      }
      if n < 0 {
        let error = Errno.current
        if error == .interrupted { continue }
        throw error
      }
      offset += n
    }
  }
}
