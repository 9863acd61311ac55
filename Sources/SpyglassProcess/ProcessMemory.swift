//===--- ProcessMemory.swift - process_vm_readv ---------------------------===//
//
// The live reader. Never writes to the target and never stops it: process_vm_readv copies from the
// target's address space in one syscall without ptrace-stopping anything.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

public struct ProcessMemory: MemoryReader, Sendable {
  public let pid: Int32

  public init(pid: Int32) { self.pid = pid }

  public func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    guard address != 0, let base = buffer.baseAddress else { throw .unmapped(address: address) }
    var local = iovec(iov_base: base, iov_len: count)
    // SAFETY: the remote iovec is only an address range interpreted by the kernel in the target.
    var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
    let n = spy_process_vm_readv(pid, &local, 1, &remote, 1)
    if n == count { return }
    if n >= 0 { throw .partial(address: address, wanted: count, got: n) }
    throw Self.fault(errno: spy_errno(), address: address)
  }

  /// Reads many ranges with as few process_vm_readv calls as possible: one for all of them when
  /// every range is readable. The kernel stops at the first range that faults, so the rest are
  /// retried after it (bounded by the number of ranges).
  public func readMany(_ ranges: [(address: RemoteAddress, count: Int)]) -> [ByteView?] {
    var results = [ByteView?](repeating: nil, count: ranges.count)
    let counts = ranges.map { Swift.max(0, Swift.min($0.count, maximumReadSize)) }
    var start = 0
    while start < ranges.count {
      let end = Swift.min(ranges.count, start + 1024)  // IOV_MAX
      let total = counts[start..<end].reduce(0, +)
      var block = [UInt8](repeating: 0, count: total)
      let n: Int = block.withUnsafeMutableBytes { buffer in
        var locals: [iovec] = []
        var remotes: [iovec] = []
        locals.reserveCapacity(end - start)
        remotes.reserveCapacity(end - start)
        var offset = 0
        for i in start..<end {
          // SAFETY: offset + counts[i] <= total, so every local iovec lies inside `buffer`.
          locals.append(iovec(iov_base: buffer.baseAddress.map { $0 + offset }, iov_len: counts[i]))
          remotes.append(
            iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(ranges[i].address)), iov_len: counts[i]))
          offset += counts[i]
        }
        return spy_process_vm_readv(pid, locals, UInt(locals.count), remotes, UInt(remotes.count))
      }
      var readable = Swift.max(0, n)
      var offset = 0
      var next = end
      for i in start..<end {
        if readable >= counts[i] {
          results[i] = ByteView(block, base: offset, count: counts[i])
          readable -= counts[i]
          offset += counts[i]
        } else {
          // The kernel stopped at range i: skip it and retry from the one after.
          next = i + 1
          break
        }
      }
      start = next
    }
    return results
  }

  /// The batch read in one process_vm_readv when every range is readable (the iovecs live on the
  /// stack); ranges after one that faults are read one by one.
  public func readMany(
    _ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]
  ) {
    prepareBatch(ranges, buffer: &buffer, readable: &readable)
    let rangeCount = Swift.min(ranges.count, 1024)  // IOV_MAX
    let pid = self.pid
    let read: Int = buffer.withUnsafeMutableBytes { bytes in
      withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2 * rangeCount) { iovecs in
        var offset = 0
        for i in 0..<rangeCount {
          let count = Swift.max(0, Swift.min(ranges[i].count, maximumReadSize))
          // SAFETY: the buffer holds the sum of all counts, so every local iovec lies inside it.
          iovecs[i] = iovec(iov_base: bytes.baseAddress.map { $0 + offset }, iov_len: count)
          iovecs[rangeCount + i] = iovec(
            iov_base: UnsafeMutableRawPointer(bitPattern: UInt(ranges[i].address)), iov_len: count)
          offset += count
        }
        guard let base = iovecs.baseAddress else { return 0 }
        return spy_process_vm_readv(pid, base, UInt(rangeCount), base + rangeCount, UInt(rangeCount))
      }
    }
    var remaining = Swift.max(0, read)
    var offset = 0
    for i in 0..<ranges.count {
      let count = Swift.max(0, Swift.min(ranges[i].count, maximumReadSize))
      if remaining >= count && i < rangeCount {
        readable[i] = true
        remaining -= count
      } else {
        remaining = 0
        readable[i] = buffer.withUnsafeMutableBytes { bytes in
          // SAFETY: offset + count <= bytes.count as above.
          (try? self.read(
            at: ranges[i].address, into: UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + count)])))
            != nil
        }
      }
      offset += count
    }
  }

  static func fault(errno code: Int32, address: RemoteAddress) -> ReadFault {
    switch code {
    case EFAULT: return .unmapped(address: address)
    case ESRCH: return .processGone
    case EPERM, EACCES: return .permissionDenied
    default: return .system(errno: code)
    }
  }
}
