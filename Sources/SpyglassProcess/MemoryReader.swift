//===--- MemoryReader.swift - reading another process's memory ----------===//
//
// A reader has one core operation, `read(at:into:)`; everything else (words, byte arrays, C strings)
// is built on it. The live reader (`ProcessMemory`) and the in-memory snapshot used by tests and the
// fuzzer (`SnapshotMemory`) both conform, so the stack walkers run unchanged over either.
//
//===----------------------------------------------------------------------===//

/// An address in the target process. Never dereferenced locally.
package typealias RemoteAddress = UInt64

/// A range of target memory to read: where, and how many bytes. (Build arrays of these with the
/// labels, or annotate them: an array of unlabelled pairs passed where these are wanted is
/// converted element by element at run time.)
package typealias ReadRange = (address: RemoteAddress, count: Int)

/// Why a read of target memory failed. Routine while sampling a live process, so it is a small
/// value type thrown with typed throws.
package enum ReadFault: Error, Equatable, Sendable {
  /// The address range is not mapped in the target (EFAULT), or is null.
  case unmapped(address: RemoteAddress)
  /// Only part of the range could be read.
  case partial(address: RemoteAddress, wanted: Int, got: Int)
  /// The process no longer exists (ESRCH).
  case processGone
  /// The kernel refused access (EPERM): ptrace_scope, missing CAP_SYS_PTRACE.
  case permissionDenied
  /// A value read from the target is implausible (a length, a count, a depth or a tag out of range).
  case implausible(String)
  /// Any other errno.
  case system(errno: Int32)
}

/// Reads bytes out of a target's address space.
package protocol MemoryReader {
  /// Fills `buffer` with the bytes at `address` or throws; never returns a short read.
  func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault)

  /// Reads many ranges at once (one syscall where the reader can), one after another, into
  /// `buffer` (resized to their total; no allocation once it has the capacity), and sets
  /// `readable[i]` for each range that could be read. The default reads them one by one.
  func readMany(_ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool])
}

/// Grows or shrinks `array` to `count` elements, keeping its storage: only the difference is
/// touched (the contents are about to be overwritten by a read), with the standard library's own
/// fill, which stays fast in unoptimised builds too.
@inlinable
package func resize<Element>(_ array: inout [Element], to count: Int, filling value: Element) {
  if array.count > count {
    array.removeLast(array.count - count)
  } else if array.count < count {
    array.append(contentsOf: [Element](repeating: value, count: count - array.count))
  }
}

/// The largest single read the helpers below allow: anything bigger read from a target-controlled
/// length is garbage.
@usableFromInline package let maximumReadSize = 16 << 20

/// The bytes a range of a batch takes in the batch's buffer: its count, clamped to 0...maximumReadSize.
@inlinable
package func batchedByteCount(_ count: Int) -> Int { Swift.max(0, Swift.min(count, maximumReadSize)) }

extension MemoryReader {
  /// Reads many ranges at once (as `readMany(_:into:readable:)`); each result is nil when its
  /// range could not be read.
  package func readMany(_ ranges: [(address: RemoteAddress, count: Int)]) -> [ByteView?] {
    var buffer: [UInt8] = []
    var readable: [Bool] = []
    readMany(ranges, into: &buffer, readable: &readable)
    var offset = 0
    return ranges.indices.map { index in
      let count = batchedByteCount(ranges[index].count)
      defer { offset += count }
      return readable[index] ? ByteView(buffer, base: offset, count: count) : nil
    }
  }

  package func readMany(
    _ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]
  ) {
    prepareBatch(ranges, buffer: &buffer, readable: &readable)
    buffer.withUnsafeMutableBytes { bytes in
      var offset = 0
      for (index, range) in ranges.enumerated() {
        let count = batchedByteCount(range.count)
        // SAFETY: the buffer holds the sum of all counts, so offset + count <= bytes.count.
        let slice = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        readable[index] = (try? read(at: range.address, into: slice)) != nil
        offset += count
      }
    }
  }

  /// Sizes `buffer` and `readable` for a batch of `ranges` (reusing their storage).
  @inlinable
  package func prepareBatch(
    _ ranges: [(address: RemoteAddress, count: Int)], buffer: inout [UInt8], readable: inout [Bool]
  ) {
    var total = 0
    for range in ranges { total += batchedByteCount(range.count) }
    resize(&buffer, to: total, filling: 0)
    resize(&readable, to: ranges.count, filling: false)
  }

  /// `count` bytes at `address`.
  @inlinable
  package func readBytes(at address: RemoteAddress, count: Int) throws(ReadFault) -> [UInt8] {
    guard count >= 0, count <= maximumReadSize else { throw .implausible("read of \(count) bytes") }
    if count == 0 { return [] }
    var result = [UInt8](repeating: 0, count: count)
    try readIntoArray(&result, at: address)
    return result
  }

  /// Reads into an existing array, resizing it to `count` (no allocation once it has the capacity).
  @inlinable
  package func readBytes(at address: RemoteAddress, count: Int, into bytes: inout [UInt8]) throws(ReadFault) {
    guard count >= 0, count <= maximumReadSize else { throw .implausible("read of \(count) bytes") }
    resize(&bytes, to: count, filling: 0)
    if count == 0 { return }
    try readIntoArray(&bytes, at: address)
  }

  /// Fills the whole array (Array's withUnsafeMutableBytes rethrows untyped, so the fault is carried
  /// out of the closure by hand).
  @inlinable
  func readIntoArray(_ bytes: inout [UInt8], at address: RemoteAddress) throws(ReadFault) {
    var fault: ReadFault?
    bytes.withUnsafeMutableBytes { buffer in
      do throws(ReadFault) { try read(at: address, into: buffer) } catch { fault = error }
    }
    if let fault { throw fault }
  }

  /// A little-endian 64-bit word.
  @inlinable
  package func readUInt64(at address: RemoteAddress) throws(ReadFault) -> UInt64 {
    var value: UInt64 = 0
    var fault: ReadFault?
    withUnsafeMutableBytes(of: &value) { buffer in
      do throws(ReadFault) { try read(at: address, into: buffer) } catch { fault = error }
    }
    if let fault { throw fault }
    return UInt64(littleEndian: value)
  }

  /// A pointer-sized word that must not be null.
  @inlinable
  package func readPointer(at address: RemoteAddress) throws(ReadFault) -> RemoteAddress {
    let value = try readUInt64(at: address)
    guard value != 0 else { throw .unmapped(address: 0) }
    return value
  }

  @inlinable
  package func readUInt32(at address: RemoteAddress) throws(ReadFault) -> UInt32 {
    var value: UInt32 = 0
    var fault: ReadFault?
    withUnsafeMutableBytes(of: &value) { buffer in
      do throws(ReadFault) { try read(at: address, into: buffer) } catch { fault = error }
    }
    if let fault { throw fault }
    return UInt32(littleEndian: value)
  }

  /// A NUL-terminated string of at most `limit` bytes (read in chunks that stay on one page).
  package func readCString(at address: RemoteAddress, limit: Int = 4096) throws(ReadFault) -> [UInt8] {
    var result: [UInt8] = []
    var cursor = address
    while result.count < limit {
      let toPageEnd = Int(4096 - (cursor & 4095))
      let chunk = Swift.min(toPageEnd, limit - result.count)
      let bytes = try readBytes(at: cursor, count: chunk)
      if let nul = bytes.firstIndex(of: 0) {
        result.append(contentsOf: bytes[..<nul])
        return result
      }
      result.append(contentsOf: bytes)
      cursor &+= UInt64(chunk)
    }
    return result
  }
}

/// A bounds-checked little-endian view of bytes read from the target. Every load returns 0 when out
/// of range instead of trapping, so a torn structure yields garbage values (which the walkers
/// validate) rather than a crash.
package struct ByteView: Sendable {
  package let bytes: [UInt8]
  /// Where this view starts inside `bytes` (views of a larger block share its storage).
  package let base: Int
  /// Where it ends (exclusive).
  package let end: Int
  package init(_ bytes: [UInt8], base: Int = 0, count: Int? = nil) {
    let start = Swift.max(0, Swift.min(base, bytes.count))
    self.bytes = bytes
    self.base = start
    if let count {
      self.end = Swift.min(bytes.count, start + Swift.max(0, count))
    } else {
      self.end = bytes.count
    }
  }

  @inlinable package var count: Int { end - base }

  /// A copy of the viewed bytes.
  package var array: [UInt8] { base == 0 && end == bytes.count ? bytes : Array(bytes[base..<end]) }

  @inlinable
  package func u8(_ offset: Int) -> UInt8 {
    let i = base &+ offset
    guard offset >= 0, i < end else { return 0 }
    return bytes[i]
  }

  @inlinable
  package func u16(_ offset: Int) -> UInt16 {
    UInt16(u8(offset)) | UInt16(u8(offset + 1)) << 8
  }

  @inlinable
  package func u32(_ offset: Int) -> UInt32 {
    let i = base &+ offset
    guard offset >= 0, i + 4 <= end else { return 0 }
    return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: i, as: UInt32.self)) }
  }

  @inlinable
  package func i32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }

  @inlinable
  package func u64(_ offset: Int) -> UInt64 {
    let i = base &+ offset
    guard offset >= 0, i + 8 <= end else { return 0 }
    return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i, as: UInt64.self)) }
  }

  @inlinable
  package func i64(_ offset: Int) -> Int64 { Int64(bitPattern: u64(offset)) }

  @inlinable
  package func slice(_ offset: Int, _ length: Int) -> ArraySlice<UInt8> {
    let i = base &+ offset
    guard offset >= 0, length >= 0, i + length <= end else { return [] }
    return bytes[i..<(i + length)]
  }
}
