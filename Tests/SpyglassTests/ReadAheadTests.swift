//===--- ReadAheadTests.swift - the read-ahead decorator on its own ---------===//
//
// `ReadAhead` over a snapshot whose reads are counted: what a round expects is read in the next
// round's first batch (one batch, whatever the number of ranges), blocks answer reads without
// touching the memory underneath, misses read exactly what was asked (or the pages around with
// `.pages`), nothing outlives its round, and the limits hold against garbage.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess
import Testing

/// A snapshot that counts single reads and batches.
final class CountingMemory: MemoryReader {
  let snapshot: SnapshotMemory
  private(set) var reads = 0
  private(set) var batches = 0
  private(set) var batchedRanges = 0
  private(set) var bytesRead = 0

  init(_ snapshot: SnapshotMemory) { self.snapshot = snapshot }

  func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    reads += 1
    bytesRead += buffer.count
    try snapshot.read(at: address, into: buffer)
  }

  func readMany(_ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]) {
    batches += 1
    batchedRanges += ranges.count
    snapshot.readMany(ranges, into: &buffer, readable: &readable)
  }
}

@Suite struct ReadAheadTests {
  /// 4 pages at 0x10000 whose bytes are their addresses' low byte; nothing else is mapped.
  static func memory() -> CountingMemory {
    let base: RemoteAddress = 0x10000
    let bytes = (0..<(4 * 4096)).map { UInt8(truncatingIfNeeded: $0) }
    return CountingMemory(SnapshotMemory(regions: [.init(start: base, bytes: bytes)]))
  }

  @Test func expectedRangesAreReadInTheNextRoundsFirstBatch() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory)
    reader.begin()
    #expect(memory.batches == 0, "nothing expected yet, nothing read")
    // Round 1: everything is a miss, read exactly as asked.
    for offset in stride(from: 0, to: 800, by: 100) {
      let view = try reader.view(at: 0x10000 + UInt64(offset), count: 16)
      #expect(view.u8(0) == UInt8(truncatingIfNeeded: offset))
      reader.expect(0x10000 + UInt64(offset), 16)
    }
    #expect(memory.reads == 8)
    // Round 2: one batch of the eight, then every read is answered from it.
    reader.begin(reading: [(0x11000, 8)])
    #expect(memory.batches == 1 && memory.batchedRanges == 9)
    for offset in stride(from: 0, to: 800, by: 100).reversed() {
      let view = try reader.view(at: 0x10000 + UInt64(offset) + 4, count: 8)
      #expect(view.u8(0) == UInt8(truncatingIfNeeded: offset + 4))
    }
    #expect(try reader.view(at: 0x11000, count: 8).u8(0) == 0)
    #expect(memory.reads == 8, "no read beyond the batch")
    // Round 3 expects nothing (round 2 said nothing): its batch is the caller's ranges only.
    reader.begin()
    #expect(memory.batches == 1)
    #expect(reader.cached(at: 0x10000, count: 8) == nil, "blocks do not outlive their round")
  }

  @Test func aBlockAnswersOnlyWhatItHoldsWhole() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory)
    reader.begin(reading: [(0x10100, 64)])
    #expect(reader.cached(at: 0x10100, count: 64) != nil)
    #expect(reader.cached(at: 0x10120, count: 32) != nil)
    #expect(reader.cached(at: 0x10120, count: 33) == nil, "past its end")
    #expect(reader.cached(at: 0x100FF, count: 2) == nil, "before its start")
    #expect(reader.cached(at: 0x10100, count: -1) == nil)
  }

  @Test func missesAreKeptOnlyWhenAsked() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory)
    reader.begin()
    _ = try reader.view(at: 0x10200, count: 256)
    #expect(reader.cached(at: 0x10210, count: 16) == nil, "an exact miss is not kept")
    _ = try reader.view(at: 0x10200, count: 256, keeping: true)
    #expect(reader.cached(at: 0x10210, count: 16)?.u8(0) == 0x10, "a kept miss answers reads inside it")
    #expect(memory.reads == 2)
  }

  @Test func thePagesPolicyReadsWholePagesAndFallsBackAtTheEdge() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory, missPolicy: .pages)
    reader.begin()
    #expect(try reader.readUInt64(at: 0x10008) == 0x0F0E_0D0C_0B0A_0908)
    #expect(memory.bytesRead == 4096, "the page around the word")
    for word in stride(from: 0x10010 as UInt64, to: 0x10FF8, by: 8) { _ = try reader.readUInt64(at: word) }
    #expect(memory.reads == 1, "the rest of the page is answered from it")
    // The last page's end: the next page is not mapped, so only what was asked is read.
    #expect(throws: ReadFault.self) { try reader.readUInt64(at: 0x14000) }
    let last = try reader.view(at: 0x13FF8, count: 8)
    #expect(last.u8(0) == 0xF8)
  }

  @Test func prefetchedBatchesAnswerByIndex() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory)
    reader.begin(reading: [(0x10000, 8)])
    let first = reader.prefetch([(0x12000, 8), (0x11000, 8), (0x1F000, 8)])
    reader.prefetch([(0x13000, 8)])
    #expect(memory.batches == 3)
    #expect(reader.cached(range: 1, inBatch: first)?.u8(0) == 0)
    #expect(reader.cached(range: 2, inBatch: first) == nil, "an unreadable range is no block")
    #expect(reader.cached(at: 0x11000, count: 8) == nil, "a prefetched batch is found by index, not by address")
    #expect(reader.cached(at: 0x10000, count: 8) != nil, "the round's first batch is found by address")
    #expect(throws: ReadFault.self) { try reader.view(at: 0x1F000, count: 8) }
    // By index as asked, whatever the address order they were read in.
    let batch = reader.prefetch([(0x12010, 4), (0x1F000, 8), (0x11020, 16)])
    #expect(reader.cached(range: 0, inBatch: batch)?.u8(0) == 0x10)
    #expect(reader.cached(range: 1, inBatch: batch) == nil)
    #expect(reader.cached(range: 2, inBatch: batch)?.count == 16)
    #expect(reader.cached(range: 3, inBatch: batch) == nil && reader.cached(range: 0, inBatch: 99) == nil)
  }

  @Test func whatARoundMayExpectIsBounded() {
    let memory = Self.memory()
    let reader = ReadAhead(memory, limits: (ranges: 3, bytes: 100))
    reader.begin()
    for index in 0..<10 { reader.expect(0x10000 + UInt64(index) * 64, 40) }
    reader.begin()
    #expect(memory.batchedRanges == 2, "two ranges of 40 bytes fit in 100")
    reader.expect(0x10000, 1 << 30)
    reader.expect(0x10000, 0)
    reader.expect(0x10000, -5)
    reader.begin()
    #expect(memory.batches == 1, "nothing sane was expected")
  }

  @Test func garbageAddressesNeverTrap() throws {
    let memory = Self.memory()
    let reader = ReadAhead(memory, missPolicy: .pages)
    reader.begin(reading: [(.max - 3, 8), (0, 8)])
    #expect(throws: ReadFault.self) { try reader.view(at: .max - 3, count: 8) }
    #expect(throws: ReadFault.self) { try reader.view(at: 0x10000, count: maximumReadSize + 1) }
    #expect(reader.cached(at: .max, count: 1) == nil)
  }
}
