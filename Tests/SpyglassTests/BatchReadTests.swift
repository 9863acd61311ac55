//===--- BatchReadTests.swift - ProcessMemory.readMany against single reads -===//
//
// The batched reader merges ranges that share pages into one remote iovec and falls back to
// range-by-range reads when a call comes back short. Its results must be exactly those of one
// read per range, whatever the order, overlap or readability of the ranges: checked on this
// process's own memory (process_vm_readv on oneself needs no permission), in a mapping with
// inaccessible pages in it, for thousands of random batches.
//
//===----------------------------------------------------------------------===//

import Glibc
import SpyglassProcess
import Testing

@Suite struct BatchReadTests {
  /// 16 pages: 0-5 readable, 6 inaccessible, 7-12 readable, 13 inaccessible, 14-15 readable.
  private static let pages = 16
  private static let holes: Set<Int> = [6, 13]

  @Test func batchesReadExactlyWhatSingleReadsRead() throws {
    let size = Self.pages * 4096
    let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    let mapping = try #require(raw == MAP_FAILED ? nil : raw)
    defer { munmap(mapping, size) }
    let bytes = mapping.bindMemory(to: UInt8.self, capacity: size)
    for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8) }
    for hole in Self.holes { #expect(mprotect(mapping + hole * 4096, 4096, PROT_NONE) == 0) }
    let base = UInt64(UInt(bitPattern: mapping))
    let memory = ProcessMemory(pid: getpid())

    var random = FuzzRandom(seed: 0x5EED_BA7C)
    var buffer: [UInt8] = []
    var readable: [Bool] = []
    var batchesWithHoles = 0
    var merged = 0
    for _ in 0..<3000 {
      let count = Int.random(in: 1...40, using: &random)
      var ranges: [(address: RemoteAddress, count: Int)] = []
      for _ in 0..<count {
        // Mostly small ranges close to each other (as frames and thread states are), some long
        // ones, some empty, some crossing into a hole or past the mapping's end.
        let length = [0, 8, 78, 112, 288, 700, 2176, 4096, 9000].randomElement(using: &random) ?? 8
        let start = Int.random(in: 0...(size - length), using: &random)
        ranges.append((base + UInt64(start), length))
      }
      memory.readMany(ranges, into: &buffer, readable: &readable)
      var offset = 0
      var sawHole = false
      for (index, range) in ranges.enumerated() {
        var single = [UInt8](repeating: 0, count: range.count)
        let singleReadable = single.withUnsafeMutableBytes { (try? memory.read(at: range.address, into: $0)) != nil }
        let start = Int(range.address - base)
        let expectedReadable =
          range.count == 0
          || Self.holes.allSatisfy { hole in start + range.count <= hole * 4096 || start >= (hole + 1) * 4096 }
        #expect(singleReadable == expectedReadable, "single read of \(start)+\(range.count)")
        #expect(readable[index] == expectedReadable, "batched read of \(start)+\(range.count) in \(ranges.count)")
        if !expectedReadable { sawHole = true }
        if readable[index] && singleReadable {
          #expect(Array(buffer[offset..<(offset + range.count)]) == single, "bytes of \(start)+\(range.count)")
        }
        offset += range.count
      }
      if sawHole { batchesWithHoles += 1 }
      let sorted = ranges.map { Int($0.address - base) }.sorted()
      if zip(sorted, sorted.dropFirst()).contains(where: { $1 - $0 < 4096 }) { merged += 1 }
    }
    // The random batches did exercise both the merged path and the fallback.
    #expect(batchesWithHoles > 300)
    #expect(merged > 1000)
  }
}
