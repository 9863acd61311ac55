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
// (a native unwinder reads a stack word by word), and its bytes become a block of the round.
// Blocks are only trusted for the round they were read in: the target runs between rounds.
//
// `view(at:count:)` hands out a bounds-checked view into a block without copying. Views share
// the batch buffers, which are reused from round to round: hold none past the round, or the next
// batch copies its buffer instead of reusing it (slower, never wrong).
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
  /// The batches of this round (pooled: their buffers are reused next round).
  private var batches: [Batch] = []
  private var batchesInUse = 0
  /// Blocks read on a miss this round, oldest first (at most `missBlockLimit`).
  private var missBlocks: [(start: RemoteAddress, view: ByteView)] = []
  private var nextMissBlock = 0
  /// The block that answered last (batch, index): reads come in address order more often than not.
  private var hint = (batch: 0, block: 0)
  /// What this round expects the next one to read.
  private var expected = RangeList()

  private static var missBlockLimit: Int { 64 }

  package init(
    _ base: Base, missPolicy: MissPolicy = .exact,
    limits: (ranges: Int, bytes: Int) = (ranges: 1000, bytes: 4 << 20)
  ) {
    self.base = base
    self.missPolicy = missPolicy
    self.limits = limits
  }

  // .. rounds ....................................................................

  /// Starts a round: forgets the last round's blocks and reads `ranges` together with what the
  /// last round expected, in one batch. Returns how many ranges were read.
  @discardableResult
  package func begin(reading ranges: [(address: RemoteAddress, count: Int)] = []) -> Int {
    clear()
    let count = expected.ranges.count + ranges.count
    if count > 0 {
      if batchesInUse == batches.count { batches.append(Batch()) }
      batches[batchesInUse].read(expected.ranges, ranges, from: base)
      batchesInUse += 1
    }
    expected.removeAll()
    return count
  }

  /// Notes a range the next round should read in its first batch (ignored past the limits).
  package func expect(_ address: RemoteAddress, _ count: Int) {
    guard count > 0, expected.ranges.count < limits.ranges, expected.bytes + count <= limits.bytes else { return }
    expected.append(address, count)
  }

  /// Reads `ranges` now, in one batch, as blocks of this round.
  package func prefetch(_ ranges: [(address: RemoteAddress, count: Int)]) {
    if !ranges.isEmpty { read(ranges) }
  }

  /// Forgets every block (the round is over). What was expected stays for the next round.
  package func clear() {
    for index in 0..<batchesInUse { batches[index].blocks.removeAll(keepingCapacity: true) }
    batchesInUse = 0
    missBlocks.removeAll(keepingCapacity: true)
    nextMissBlock = 0
    hint = (0, 0)
  }

  /// Forgets what the next round was to read.
  package func forgetExpected() { expected.removeAll() }

  // .. reads .....................................................................

  /// The `count` bytes at `address`: a view into a block when one holds them all, else read now
  /// (and, with `keeping` or the `.pages` policy, kept as a block of this round: reads inside it
  /// are answered from it).
  package func view(at address: RemoteAddress, count: Int, keeping: Bool = false) throws(ReadFault) -> ByteView {
    if let view = cached(at: address, count: count) { return view }
    return try readMissing(at: address, count: count, keeping: keeping || missPolicy == .pages)
  }

  /// The `count` bytes at `address` when a block of this round holds them all.
  package func cached(at address: RemoteAddress, count: Int) -> ByteView? {
    guard count >= 0 else { return nil }
    // The block that answered last, then its neighbour, then a search.
    if hint.batch < batchesInUse {
      let blocks = batches[hint.batch].blocks
      for index in hint.block..<Swift.min(hint.block + 2, blocks.count) {
        if let view = blocks[index].view(address, count) {
          hint.block = index
          return view
        }
      }
    }
    for batch in stride(from: batchesInUse - 1, through: 0, by: -1) {
      if let (index, view) = batches[batch].find(address, count) {
        hint = (batch, index)
        return view
      }
    }
    for block in missBlocks {
      if let view = Block(start: block.start, view: block.view).view(address, count) { return view }
    }
    return nil
  }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    let view = try view(at: address, count: count)
    view.bytes.withUnsafeBytes { source in
      // SAFETY: the view holds exactly `count` bytes at `view.base` inside `view.bytes`.
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[view.base..<(view.base + count)]))
    }
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
    if keeping {
      let view = ByteView(bytes)
      if missBlocks.count < Self.missBlockLimit {
        missBlocks.append((start, view))
      } else {
        missBlocks[nextMissBlock] = (start, view)
        nextMissBlock = (nextMissBlock + 1) % Self.missBlockLimit
      }
    }
    return ByteView(bytes, base: Int(address &- start), count: count)
  }

  private func read(_ ranges: [(address: RemoteAddress, count: Int)]) {
    if batchesInUse == batches.count { batches.append(Batch()) }
    batches[batchesInUse].read(ranges, [], from: base)
    batchesInUse += 1
  }
}

/// One block: bytes read from `start`.
private struct Block {
  var start: RemoteAddress
  var view: ByteView

  /// A view of `count` bytes at `address` when this block holds them all.
  @inline(__always)
  func view(_ address: RemoteAddress, _ count: Int) -> ByteView? {
    guard address >= start else { return nil }
    let offset = address &- start
    let size = UInt64(view.count)
    guard offset <= size, size &- offset >= UInt64(count) else { return nil }
    return ByteView(view.bytes, base: view.base &+ Int(offset), count: count)
  }
}

/// Ranges read together: one buffer (kept between rounds) and the readable ranges as blocks, in
/// address order.
private struct Batch {
  var blocks: [Block] = []
  private var ranges: [(address: RemoteAddress, count: Int)] = []
  private var buffer: [UInt8] = []
  private var readable: [Bool] = []

  mutating func read<Base: MemoryReader>(
    _ first: [(address: RemoteAddress, count: Int)], _ second: [(address: RemoteAddress, count: Int)], from base: Base
  ) {
    ranges.removeAll(keepingCapacity: true)
    ranges.append(contentsOf: first)
    ranges.append(contentsOf: second)
    ranges.sort { $0.address < $1.address }
    blocks.removeAll(keepingCapacity: true)
    base.readMany(ranges, into: &buffer, readable: &readable)
    var offset = 0
    for (index, range) in ranges.enumerated() {
      let count = batchedByteCount(range.count)
      if readable[index] && count > 0 {
        blocks.append(Block(start: range.address, view: ByteView(buffer, base: offset, count: count)))
      }
      offset += count
    }
  }

  /// The block holding `count` bytes at `address`, and its view of them.
  func find(_ address: RemoteAddress, _ count: Int) -> (Int, ByteView)? {
    // The last block starting at or before the address, then a few before it (ranges overlap).
    var low = 0
    var high = blocks.count
    while low < high {
      let middle = (low + high) / 2
      if blocks[middle].start <= address { low = middle + 1 } else { high = middle }
    }
    var index = low - 1
    var steps = 0
    while index >= 0 && steps < 8 {
      if let view = blocks[index].view(address, count) { return (index, view) }
      index -= 1
      steps += 1
    }
    return nil
  }
}

/// Ranges and their byte total.
private struct RangeList {
  var ranges: [(address: RemoteAddress, count: Int)] = []
  var bytes = 0

  mutating func append(_ address: RemoteAddress, _ count: Int) {
    ranges.append((address, count))
    bytes += count
  }

  mutating func removeAll() {
    ranges.removeAll(keepingCapacity: true)
    bytes = 0
  }
}
