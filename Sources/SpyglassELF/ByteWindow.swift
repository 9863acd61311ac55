//===--- ByteWindow.swift - bounds-checked loads from the mapped file -----===//
//
// The only raw-pointer code of the ELF reader. A window is a sub-range of the mapping whose bounds
// were checked once against the file size (overflow-safe, on UInt64) when it was opened; every load
// inside it checks its own offset again and returns 0 (or nil) instead of reading out of range, so a
// garbage value can produce a garbage result but never a bad memory access.
//
//===----------------------------------------------------------------------===//

import Glibc
import SpyglassProcess

/// The 32-bit FNV-1a hash of some bytes: the symbol index's key.
func fnv1a<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
  var hash: UInt32 = 2_166_136_261
  for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
  return hash
}

/// A read-only view of part of a mapped file, valid only inside the closure it is passed to.
struct ByteWindow {
  // SAFETY: constructed only by `MappedFile.withWindow`, from a range checked to lie inside the
  // mapping, and never stored or returned: it lives only as long as the closure call.
  private let buffer: UnsafeRawBufferPointer

  fileprivate init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

  var count: Int { buffer.count }

  /// Whether `[offset, offset + length)` lies inside the window.
  @inline(__always)
  func contains(_ offset: Int, _ length: Int) -> Bool {
    offset >= 0 && length >= 0 && offset <= buffer.count && length <= buffer.count - offset
  }

  @inline(__always)
  func u8(_ offset: Int) -> UInt8 {
    guard contains(offset, 1) else { return 0 }
    return buffer[offset]
  }

  @inline(__always)
  func u16(_ offset: Int) -> UInt16 {
    guard contains(offset, 2) else { return 0 }
    // SAFETY: offset..<offset+2 was checked to lie inside the buffer just above.
    return UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
  }

  @inline(__always)
  func u32(_ offset: Int) -> UInt32 {
    guard contains(offset, 4) else { return 0 }
    // SAFETY: offset..<offset+4 was checked to lie inside the buffer just above.
    return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
  }

  @inline(__always)
  func u64(_ offset: Int) -> UInt64 {
    guard contains(offset, 8) else { return 0 }
    // SAFETY: offset..<offset+8 was checked to lie inside the buffer just above.
    return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
  }

  /// A copy of `length` bytes at `offset`, or nil when out of range.
  func bytes(_ offset: Int, _ length: Int) -> [UInt8]? {
    guard contains(offset, length) else { return nil }
    return Array(buffer[offset..<(offset + length)])
  }

  /// The length of the NUL-terminated string at `offset`, or nil when `offset` is out of range or no
  /// NUL follows it inside the window.
  func cStringLength(at offset: Int) -> Int? {
    guard offset >= 0, offset < buffer.count, let base = buffer.baseAddress else { return nil }
    // SAFETY: base+offset is inside the buffer and memchr scans at most the `count - offset` bytes
    // that remain in it.
    guard let nul = memchr(base + offset, 0, buffer.count - offset) else { return nil }
    return UnsafeRawPointer(nul) - (base + offset)
  }

  /// The 32-bit FNV-1a hash of the NUL-terminated string at `offset` (its bytes, without the NUL),
  /// or nil when it is out of range or unterminated. No String is made.
  func cStringHash(at offset: Int) -> UInt32? {
    guard let length = cStringLength(at: offset) else { return nil }
    return fnv1a(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)]))
  }

  /// The NUL-terminated string at `offset` (decoded as UTF-8, invalid bytes repaired), or nil when
  /// it is out of range or unterminated.
  func cString(at offset: Int) -> String? {
    guard let length = cStringLength(at: offset) else { return nil }
    // SAFETY: cStringLength guarantees offset..<offset+length lies inside the buffer.
    return String(
      decoding: UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)]), as: UTF8.self)
  }
}

extension MappedFile {
  /// Calls `body` with a window on `[offset, offset + length)`, or returns nil without calling it
  /// when that range does not lie inside the file.
  func withWindow<R>(offset: UInt64, length: UInt64, _ body: (ByteWindow) -> R) -> R? {
    let size = UInt64(count)
    guard offset <= size, length <= size - offset else { return nil }
    return withUnsafeBytes { whole -> R in
      // SAFETY: offset + length <= count was checked above (without overflow), so the rebased slice
      // is inside the mapping, which outlives this call.
      let start = Int(offset)
      let slice = UnsafeRawBufferPointer(rebasing: whole[start..<(start + Int(length))])
      return body(ByteWindow(slice))
    }
  }

  /// Whether `[offset, offset + length)` lies inside the file (overflow-safe).
  func contains(offset: UInt64, length: UInt64) -> Bool {
    let size = UInt64(count)
    return offset <= size && length <= size - offset
  }
}
