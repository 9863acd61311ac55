//===--- RecordingMemory.swift - capture what a walk reads, replay it -----===//
//
// `RecordingMemory` wraps another reader (the live `ProcessMemory`, say) and keeps a copy of every
// byte range that was read successfully. After a real walk of a live interpreter (threads, frames,
// code objects, names, the `threading._active` dict, locals), `snapshot()` turns the recording into
// a `SnapshotMemory` that answers exactly those reads — the fuzzer's seed input: the same walkers run
// over it unchanged, first as is (and must then agree with the live walk) and then mutated.
//
// Overlapping and adjacent ranges are merged into one region. Reads that failed are not recorded,
// so they fail again on the snapshot. `serialized()` / `init(serialized:)` store a snapshot in a
// file, so that a fuzz finding can be replayed without the live process it came from.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess

/// A MemoryReader that forwards to `inner` and records every successful read.
package final class RecordingMemory<Inner: MemoryReader>: MemoryReader, @unchecked Sendable {
  package let inner: Inner
  private let lock = NSLock()
  private var pieces: [(start: RemoteAddress, bytes: [UInt8])] = []
  /// Reads forwarded so far (successful or not).
  package private(set) var readCount = 0

  package init(_ inner: Inner) { self.inner = inner }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    lock.lock()
    readCount += 1
    lock.unlock()
    try inner.read(at: address, into: buffer)
    let copy = [UInt8](UnsafeRawBufferPointer(buffer))
    guard !copy.isEmpty else { return }
    lock.lock()
    pieces.append((address, copy))
    lock.unlock()
  }

  /// Every successful read, in order: where and how many bytes. The walkers' field reads, so a
  /// fuzzer can aim at what is actually read.
  package var readRanges: [(address: RemoteAddress, count: Int)] {
    lock.lock()
    defer { lock.unlock() }
    return pieces.map { ($0.start, $0.bytes.count) }
  }

  /// Forgets everything recorded so far.
  package func reset() {
    lock.lock()
    pieces.removeAll()
    readCount = 0
    lock.unlock()
  }

  /// Every recorded range, merged: regions sorted by address, none overlapping or touching. Where
  /// two reads of the same address disagree (the target changed between them), the later one wins.
  package func snapshot() -> SnapshotMemory {
    lock.lock()
    let recorded = pieces
    lock.unlock()
    // Stable sort by start keeps later reads after earlier ones at the same address.
    let order = recorded.indices.sorted { (recorded[$0].start, $0) < (recorded[$1].start, $1) }
    var spans: [(start: RemoteAddress, end: RemoteAddress, members: [Int])] = []
    for index in order {
      let piece = recorded[index]
      let end = piece.start &+ UInt64(piece.bytes.count)
      if var last = spans.last, piece.start <= last.end {
        last.end = Swift.max(last.end, end)
        last.members.append(index)
        spans[spans.count - 1] = last
      } else {
        spans.append((piece.start, end, [index]))
      }
    }
    var regions: [SnapshotMemory.Region] = []
    regions.reserveCapacity(spans.count)
    for span in spans {
      var bytes = [UInt8](repeating: 0, count: Int(span.end - span.start))
      // Apply in recording order so that the latest read of a byte is the one kept.
      for index in span.members.sorted() {
        let piece = recorded[index]
        let offset = Int(piece.start - span.start)
        bytes.replaceSubrange(offset..<(offset + piece.bytes.count), with: piece.bytes)
      }
      regions.append(SnapshotMemory.Region(start: span.start, bytes: bytes))
    }
    return SnapshotMemory(regions: regions)
  }
}

extension SnapshotMemory {
  /// Total bytes held.
  package var byteCount: Int { regions.reduce(0) { $0 + $1.bytes.count } }

  private static let magic: [UInt8] = Array("SPYGLASS-SNAPSHOT-1\n".utf8)

  /// A simple file format: a magic line, then for each region its start and length (little-endian
  /// 64-bit) and its bytes.
  package func serialized() -> [UInt8] {
    var out = Self.magic
    func word(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
    word(UInt64(regions.count))
    for region in regions {
      word(region.start)
      word(UInt64(region.bytes.count))
      out.append(contentsOf: region.bytes)
    }
    return out
  }

  /// Reads what `serialized()` wrote.
  package init(serialized data: [UInt8]) throws {
    guard data.starts(with: Self.magic) else { throw TestSupportError("not a Spyglass snapshot file") }
    var cursor = Self.magic.count
    func word() throws -> UInt64 {
      guard cursor + 8 <= data.count else { throw TestSupportError("truncated snapshot file") }
      var value: UInt64 = 0
      for i in 0..<8 { value |= UInt64(data[cursor + i]) << (8 * UInt64(i)) }
      cursor += 8
      return value
    }
    let count = try word()
    var regions: [Region] = []
    for _ in 0..<count {
      let start = try word()
      let length = try word()
      guard length <= UInt64(data.count - cursor) else { throw TestSupportError("truncated snapshot file") }
      regions.append(Region(start: start, bytes: Array(data[cursor..<(cursor + Int(length))])))
      cursor += Int(length)
    }
    self.init(regions: regions)
  }
}
