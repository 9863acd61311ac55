//===--- MappedFile.swift - a read-only memory-mapped file ----------------===//
//
// Binaries are mapped, not read: only the pages the ELF reader touches (headers, symbol tables)
// become resident, which keeps Spyglass's own memory small for 30 MB libpython builds with DWARF.
//
//===----------------------------------------------------------------------===//

import Glibc

package final class MappedFile: @unchecked Sendable {
  // SAFETY: the mapping is read-only, private and lives until deinit; `count` is its exact size.
  private let base: UnsafeRawPointer?
  package let count: Int
  package let path: String

  package init(path: String) throws(Errno) {
    self.path = path
    let file = try FileDescriptor(reading: path)
    let fd = file.rawValue
    var info = stat()
    if fstat(fd, &info) != 0 { throw Errno.current }
    let size = Int(info.st_size)
    if size == 0 {
      base = nil
      count = 0
      return
    }
    let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
    if pointer == MAP_FAILED || pointer == nil { throw Errno.current }
    base = UnsafeRawPointer(pointer)
    count = size
  }

  deinit {
    if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
  }

  /// Calls `body` with the whole file's bytes. The buffer must not escape.
  package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try body(UnsafeRawBufferPointer(start: base, count: count))
  }

  /// A copy of `length` bytes at `offset`, or nil when out of range.
  package func bytes(at offset: Int, count length: Int) -> [UInt8]? {
    guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
    return withUnsafeBytes { Array($0[offset..<(offset + length)]) }
  }
}

/// What tells one file from another on this host: its device and inode, and its size and
/// modification time (a file replaced in place is another file).
package struct FileIdentity: Hashable, Sendable {
  package var device: UInt64
  package var inode: UInt64
  package var size: Int64
  package var modified: Int64
  package var modifiedNanoseconds: Int64

  /// The identity of the file at `path` (links followed), nil when it cannot be stat'ed.
  package init?(path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
    size = Int64(info.st_size)
    modified = Int64(info.st_mtim.tv_sec)
    modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
  }
}
