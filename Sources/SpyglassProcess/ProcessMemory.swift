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

  /// Reads the batch with as few process_vm_readv calls as possible: one for all of it when every
  /// range is readable (the iovecs live on the stack). The kernel stops at the first range that
  /// faults, so the rest are read again after it (bounded by the number of ranges).
  public func readMany(
    _ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]
  ) {
    prepareBatch(ranges, buffer: &buffer, readable: &readable)
    let pid = self.pid
    buffer.withUnsafeMutableBytes { bytes in
      var start = 0
      var startOffset = 0
      while start < ranges.count {
        let end = Swift.min(ranges.count, start + 1024)  // IOV_MAX
        let read: Int = withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2 * (end - start)) { iovecs in
          var offset = startOffset
          for i in start..<end {
            let count = Swift.max(0, Swift.min(ranges[i].count, maximumReadSize))
            // SAFETY: the buffer holds the sum of all counts, so every local iovec lies inside it.
            iovecs[i - start] = iovec(iov_base: bytes.baseAddress.map { $0 + offset }, iov_len: count)
            iovecs[end - start + i - start] = iovec(
              iov_base: UnsafeMutableRawPointer(bitPattern: UInt(ranges[i].address)), iov_len: count)
            offset += count
          }
          guard let base = iovecs.baseAddress else { return 0 }
          let n = end - start
          return spy_process_vm_readv(pid, base, UInt(n), base + n, UInt(n))
        }
        var remaining = Swift.max(0, read)
        var next = end
        for i in start..<end {
          let count = Swift.max(0, Swift.min(ranges[i].count, maximumReadSize))
          startOffset += count
          if remaining >= count {
            readable[i] = true
            remaining -= count
          } else {
            // The kernel stopped at range i: it is unreadable; go on from the one after.
            readable[i] = false
            next = i + 1
            break
          }
        }
        start = next
      }
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
