//===--- ReadAhead.swift - target memory read ahead, in batches ----------===//
//
// A decorator over any `MemoryReader` (the shape of the Swift runtime backtracer's
// `CachingMemoryReader`): reads are answered from blocks read ahead in batches, one
// process_vm_readv per batch, and only what no block holds goes to the reader underneath.
//
// The work is split in rounds (a sample of a process, an unwind of one thread): `begin` drops the
// last round's blocks and reads, in one batch, everything the previous round said it would want
// (`expect`) plus what the caller names; `prefetch` reads more ranges in one batch during the
// round (the asyncio reader's task objects, one level of awaits); a read that misses every block
// goes to the reader underneath, exactly the bytes asked or, with `.pages`, the pages around them
// (a native unwinder reads a stack word by word), and with `keeping` (always with `.pages`) its
// bytes become a block of the round. Blocks are only trusted for the round they were read in:
// the target runs between rounds.
//
// `view(at:count:)` hands out a bounds-checked view into a block without copying. Views share
// the batch buffers, which are reused from round to round: hold none past the round, or the next
// batch copies its buffer instead of reusing it (slower, never wrong).
//
// The lookups (`BlockTable`) do not depend on the reader underneath, so they are compiled once,
// not per reader type, and a lookup copies no array: a block is a start, a buffer and a range.
//
//===----------------------------------------------------------------------===//

package final class ReadAhead<Base: MemoryReader>: MemoryReader {
  /// What a read that no block holds reads.
  package enum MissPolicy: Sendable {
    /// Exactly the bytes asked for.
    case exact
    /// The whole pages around them (kept as a block: the next read nearby is answered from it).
    case pages
  }

  package let base: Base
  private let missPolicy: MissPolicy
  /// Bounds on what one round may ask the next one to read: garbage from the target (thousands
  /// of threads each claiming a megabyte of stack) must not grow a batch without limit.
  private let limits: (ranges: Int, bytes: Int)
  private let table = BlockTable()
  /// What this round expects the next one to read, and its byte total.
  private var expected: [(address: RemoteAddress, count: Int)] = []
  private var expectedBytes = 0
  /// Reused for each batch's ranges and readable flags.
  private var ranges: [ReadRange] = []
  private var readable: [Bool] = []

  package init(
    _ base: Base, missPolicy: MissPolicy = .exact,
    limits: (ranges: Int, bytes: Int) = (ranges: 1000, bytes: 4 << 20)
  ) {
    self.base = base
    self.missPolicy = missPolicy
    self.limits = limits
  }

  // .. rounds ....................................................................

  /// Starts a round: forgets the last round's blocks and reads `extra` together with what the
  /// last round expected, in one batch. Returns how many ranges were read.
  @discardableResult
  package func begin(reading extra: [(address: RemoteAddress, count: Int)] = []) -> Int {
    table.clear()
    if !ranges.isEmpty { ranges.removeAll(keepingCapacity: true) }
    ranges.append(contentsOf: expected)
    ranges.append(contentsOf: extra)
    if !expected.isEmpty { expected.removeAll(keepingCapacity: true) }
    expectedBytes = 0
    // In address order: the batch reader merges neighbours, and these blocks are searched by address.
    ranges.sort { $0.address < $1.address }
    readBatch(searchable: true)
    return ranges.count
  }

  /// Notes a range the next round should read in its first batch (ignored past the limits).
  package func expect(_ address: RemoteAddress, _ count: Int) {
    guard count > 0, expected.count < limits.ranges, expectedBytes + count <= limits.bytes else { return }
    expected.append((address, count))
    expectedBytes += count
  }

  /// Reads `wanted` now, in one batch, as blocks of this round; returns the batch. Its blocks are
  /// found by the range's index in `wanted` (`cached(range:inBatch:)`), not by address: the
  /// caller that asked for them knows which it wants, and no sort is spent on them.
  @discardableResult
  package func prefetch(_ wanted: [ReadRange]) -> Int {
    ranges.removeAll(keepingCapacity: true)
    ranges.append(contentsOf: wanted)
    readBatch(searchable: false)
    return table.batchCount - 1
  }

  /// Forgets every block (the round is over). What was expected stays for the next round.
  package func clear() { table.clear() }

  /// Forgets what the next round was to read.
  package func forgetExpected() {
    expected.removeAll(keepingCapacity: true)
    expectedBytes = 0
  }

  private func readBatch(searchable: Bool) {
    if ranges.isEmpty { return }
    table.addBatch(searchable: searchable) { buffer in
      base.readMany(ranges, into: &buffer, readable: &readable)
      return (ranges, readable)
    }
  }

  // .. reads .....................................................................

  /// The `count` bytes at `address`: a view into a block when one holds them all, else read now
  /// (and, with `keeping` or the `.pages` policy, kept as a block of this round).
  package func view(at address: RemoteAddress, count: Int, keeping: Bool = false) throws(ReadFault) -> ByteView {
    if let view = table.view(at: address, count: count) { return view }
    return try readMissing(at: address, count: count, keeping: keeping || missPolicy == .pages)
  }

  /// The `count` bytes at `address` when a block of this round holds them all.
  package func cached(at address: RemoteAddress, count: Int) -> ByteView? { table.view(at: address, count: count) }

  /// Range `index` of the ranges batch `batch` (`prefetch`'s) read, nil when it could not be read.
  package func cached(range index: Int, inBatch batch: Int) -> ByteView? { table.view(range: index, inBatch: batch) }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    let view = try view(at: address, count: count)
    view.bytes.withUnsafeBytes { source in
      // SAFETY: the view holds exactly `count` bytes at `view.base` inside `view.bytes`.
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[view.base..<(view.base + count)]))
    }
  }

  /// The little-endian word at `address`, without a view in between: a native unwinder's reads,
  /// one word at a time, nearly all from the stack page the last one came from.
  package func word(at address: RemoteAddress) throws(ReadFault) -> UInt64 {
    if let value = table.word(at: address) { return value }
    return try readMissing(at: address, count: 8, keeping: missPolicy == .pages).u64(0)
  }

  /// Many ranges at once go to the reader underneath: their bytes are wanted fresh.
  package func readMany(
    _ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]
  ) {
    base.readMany(ranges, into: &buffer, readable: &readable)
  }

  private func readMissing(at address: RemoteAddress, count: Int, keeping: Bool) throws(ReadFault) -> ByteView {
    guard count >= 0, count <= maximumReadSize else { throw .implausible("read of \(count) bytes") }
    var start = address
    var size = count
    if missPolicy == .pages {
      let end = address &+ UInt64(count)
      guard end >= address else { throw .unmapped(address: address) }
      start = address & ~4095
      size = Int(((end &+ 4095) & ~4095) &- start)
    }
    var bytes: [UInt8]
    do {
      bytes = try base.readBytes(at: start, count: size)
    } catch {
      // The pages around may not all be mapped: then exactly the bytes asked.
      guard missPolicy == .pages, size != count else { throw error }
      start = address
      size = count
      bytes = try base.readBytes(at: address, count: count)
    }
    if keeping { table.addMiss(start, bytes) }
    return ByteView(bytes, base: Int(address &- start), count: count)
  }
}

/// The blocks of one round: batches of blocks in address order, and blocks read on a miss (at
/// most `missLimit`, oldest replaced first).
package final class BlockTable {
  private struct Block {
    var start: RemoteAddress
    /// Which buffer, and where in it.
    var buffer: Int
    var offset: Int
    var count: Int
  }

  /// Every block, batch after batch (each batch's in address order), then the misses.
  private var blocks: [Block] = []
  /// Each batch's blocks: `blocks[segments[i].lowerBound..<segments[i].upperBound]`, and whether
  /// they are in address order (searched by address; else found by index only).
  private var segments: [(blocks: Range<Int>, searchable: Bool)] = []
  /// Each batch's blocks by the index of the range asked for (-1: not read), pooled.
  private var rangeBlocks: [[Int32]] = []
  /// The batches' buffers (kept between rounds and reused), then the misses' (dropped).
  private var buffers: [[UInt8]] = []
  private var batchesInUse = 0
  private var misses: [Block] = []
  private var missBuffers: [[UInt8]] = []
  private var nextMiss = 0
  /// The block that answered last: reads come in address order more often than not.
  private var hint = 0
  /// The miss block that answered last (a stack being unwound is read page by page).
  private var missHint = 0

  private static var missLimit: Int { 64 }

  package init() {}

  package func clear() {
    if !blocks.isEmpty { blocks.removeAll(keepingCapacity: true) }
    if !segments.isEmpty { segments.removeAll(keepingCapacity: true) }
    batchesInUse = 0
    if !misses.isEmpty {
      misses.removeAll(keepingCapacity: true)
      missBuffers.removeAll(keepingCapacity: true)
    }
    nextMiss = 0
    hint = 0
    missHint = 0
  }

  /// Reads a batch into the next pooled buffer (`read` fills it and says which ranges it read)
  /// and adds its readable ranges as blocks (`searchable`: the ranges are in address order).
  func addBatch(searchable: Bool, _ read: (inout [UInt8]) -> (ranges: [ReadRange], readable: [Bool])) {
    if batchesInUse == buffers.count {
      buffers.append([])
      rangeBlocks.append([])
    }
    let index = batchesInUse
    batchesInUse += 1
    let (ranges, readable) = read(&buffers[index])
    resize(&rangeBlocks[index], to: ranges.count, filling: -1)
    let first = blocks.count
    var offset = 0
    for position in 0..<Swift.min(ranges.count, readable.count) {
      let count = batchedByteCount(ranges[position].count)
      if readable[position] && count > 0 {
        rangeBlocks[index][position] = Int32(blocks.count)
        blocks.append(Block(start: ranges[position].address, buffer: index, offset: offset, count: count))
      } else {
        rangeBlocks[index][position] = -1
      }
      offset += count
    }
    segments.append((first..<blocks.count, searchable))
  }

  func addMiss(_ start: RemoteAddress, _ bytes: [UInt8]) {
    let block = Block(start: start, buffer: 0, offset: 0, count: bytes.count)
    if misses.count < Self.missLimit {
      missHint = misses.count
      misses.append(block)
      missBuffers.append(bytes)
    } else {
      missHint = nextMiss
      misses[nextMiss] = block
      missBuffers[nextMiss] = bytes
      nextMiss = (nextMiss + 1) % Self.missLimit
    }
  }

  /// A view of the `count` bytes at `address` when a block holds them all.
  package func view(at address: RemoteAddress, count: Int) -> ByteView? {
    guard count >= 0 else { return nil }
    // The block that answered last, then its neighbour, then each batch, newest first.
    let total = blocks.count
    if hint < total, contains(blocks[hint], address, count) { return view(blocks[hint], address, count) }
    if hint + 1 < total, contains(blocks[hint + 1], address, count) {
      hint += 1
      return view(blocks[hint], address, count)
    }
    for segment in segments.reversed() where segment.searchable {
      if let found = find(address, count, in: segment.blocks) { return found }
    }
    for (index, block) in misses.enumerated() where contains(block, address, count) {
      missHint = index
      return ByteView(missBuffers[index], base: Int(address &- block.start), count: count)
    }
    return nil
  }

  /// The little-endian word at `address` when a block holds it: the last miss block first.
  package func word(at address: RemoteAddress) -> UInt64? {
    if missHint < misses.count, contains(misses[missHint], address, 8) {
      let offset = Int(address &- misses[missHint].start)
      return missBuffers[missHint].withUnsafeBytes {
        UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
      }
    }
    return view(at: address, count: 8)?.u64(0)
  }

  /// How many batches this round has read.
  var batchCount: Int { segments.count }

  /// Range `range` (its index as asked) of batch `batch`, nil when it was not read.
  package func view(range: Int, inBatch batch: Int) -> ByteView? {
    guard batch >= 0, batch < segments.count, range >= 0, range < rangeBlocks[batch].count else { return nil }
    let block = Int(rangeBlocks[batch][range])
    guard block >= 0, block < blocks.count else { return nil }
    return ByteView(buffers[blocks[block].buffer], base: blocks[block].offset, count: blocks[block].count)
  }

  /// The last block of `segment` starting at or before the address, then a few before it (ranges
  /// overlap), when one holds the bytes.
  private func find(_ address: RemoteAddress, _ count: Int, in segment: Range<Int>) -> ByteView? {
    var low = segment.lowerBound
    var high = segment.upperBound
    while low < high {
      let middle = (low + high) / 2
      if blocks[middle].start <= address { low = middle + 1 } else { high = middle }
    }
    var index = low - 1
    while index >= segment.lowerBound && index >= low - 8 {
      if contains(blocks[index], address, count) {
        hint = index
        return view(blocks[index], address, count)
      }
      index -= 1
    }
    return nil
  }

  @inline(__always)
  private func contains(_ block: Block, _ address: RemoteAddress, _ count: Int) -> Bool {
    guard address >= block.start else { return false }
    let offset = address &- block.start
    return offset <= UInt64(block.count) && UInt64(block.count) &- offset >= UInt64(count)
  }

  @inline(__always)
  private func view(_ block: Block, _ address: RemoteAddress, _ count: Int) -> ByteView {
    ByteView(buffers[block.buffer], base: block.offset &+ Int(address &- block.start), count: count)
  }
}
