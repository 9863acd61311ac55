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

  package init(path: String) throws(SystemError) {
    self.path = path
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError(errno: errno, operation: "open \(path)") }
    defer { close(fd) }
    var info = stat()
    if fstat(fd, &info) != 0 { throw SystemError(errno: errno, operation: "stat \(path)") }
    let size = Int(info.st_size)
    if size == 0 {
      base = nil
      count = 0
      return
    }
    let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
    if pointer == MAP_FAILED || pointer == nil { throw SystemError(errno: errno, operation: "mmap \(path)") }
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
