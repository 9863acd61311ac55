//===--- SnapshotMemory.swift - target memory held in this process ----===//
//
// A set of byte ranges captured from (or made up to look like) a target's address space. Used by
// tests and by the fuzzer, which mutates snapshots of real interpreter memory and walks them with
// the same code the sampler uses on a live process.
//
//===----------------------------------------------------------------------===//

package struct SnapshotMemory: MemoryReader, Sendable {
  package struct Region: Sendable {
    package var start: RemoteAddress
    package var bytes: [UInt8]
    package init(start: RemoteAddress, bytes: [UInt8]) {
      self.start = start
      self.bytes = bytes
    }
    package var end: RemoteAddress { start &+ UInt64(bytes.count) }
  }

  package var regions: [Region]

  package init(regions: [Region] = []) { self.regions = regions.sorted { $0.start < $1.start } }

  package mutating func add(_ region: Region) {
    regions.append(region)
    regions.sort { $0.start < $1.start }
  }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    let (end, overflow) = address.addingReportingOverflow(UInt64(count))
    guard !overflow, address != 0 else { throw .unmapped(address: address) }
    for region in regions where region.start <= address && end <= region.end {
      let offset = Int(address - region.start)
      region.bytes.withUnsafeBytes { source in
        // SAFETY: offset + count <= region.bytes.count was checked by the containment test above.
        unsafe buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
      }
      return
    }
    throw .unmapped(address: address)
  }
}
