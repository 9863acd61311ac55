//===--- ProcessMemory.swift - process_vm_readv ---------------------------===//
//
// The live reader. Never writes to the target and never stops it: process_vm_readv copies from the
// target's address space in one syscall without ptrace-stopping anything.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

package struct ProcessMemory: MemoryReader, Sendable {
  package let pid: Int32

  package init(pid: Int32) { self.pid = pid }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
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

  /// Reads the batch with as few process_vm_readv calls, and as few remote iovecs, as possible.
  ///
  /// The kernel pins and walks the target's page tables once per remote iovec, so ranges that
  /// share a page (frame objects of one stack, a thread state and its neighbours) are read as one
  /// remote range: the ranges are taken in address order and merged while the gap to the next one
  /// stays within a page the ranges themselves touch; the gaps' bytes land in a scratch area
  /// (process_vm_readv's local and remote iovec lists are independent streams). A gap therefore
  /// never faults unless a range's own page does. When a call comes back short, the ranges it did
  /// not fully cover are read again without merging, which skips the faulting ones.
  package func readMany(
    _ ranges: [(address: RemoteAddress, count: Int)], into buffer: inout [UInt8], readable: inout [Bool]
  ) {
    prepareBatch(ranges, buffer: &buffer, readable: &readable)
    if ranges.isEmpty { return }
    let pid = self.pid
    buffer.withUnsafeMutableBytes { bytes in
      withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * ranges.count) { scratch in
        // SAFETY: both halves lie inside the temporary allocation of 2 * ranges.count Ints.
        let offsets = UnsafeMutableBufferPointer(rebasing: scratch[0..<ranges.count])
        let order = UnsafeMutableBufferPointer(rebasing: scratch[ranges.count..<(2 * ranges.count)])
        var offset = 0
        var ordered = 0
        for i in ranges.indices {
          offsets[i] = offset
          let count = batchedByteCount(ranges[i].count)
          offset += count
          if count == 0 {
            readable[i] = true
          } else {
            order[ordered] = i
            ordered += 1
          }
        }
        var sorted = UnsafeMutableBufferPointer(rebasing: order[0..<ordered])
        sorted.sort { ranges[$0].address < ranges[$1].address }
        let batch = Batch(pid: pid, ranges: ranges, offsets: offsets, bytes: bytes)
        var retry: [Int] = []
        batch.read(UnsafeBufferPointer(sorted), merging: true, readable: &readable, retry: &retry)
        if !retry.isEmpty {
          var none: [Int] = []
          retry.withUnsafeBufferPointer { batch.read($0, merging: false, readable: &readable, retry: &none) }
        }
      }
    }
  }

  /// One batch's ranges and where each lands in the buffer.
  private struct Batch {
    let pid: Int32
    let ranges: [(address: RemoteAddress, count: Int)]
    let offsets: UnsafeMutableBufferPointer<Int>
    let bytes: UnsafeMutableRawBufferPointer

    /// The largest gap merged between two ranges.
    static let mergedGap = 512

    /// Whether a range at `address` joins the remote range ending at `remoteEnd`: it starts at or
    /// after that end, at most `mergedGap` bytes later, on the same page or the next one, so the
    /// gap's bytes lie on pages the ranges touch anyway and cannot fault on their own.
    static func merges(_ address: RemoteAddress, after remoteEnd: RemoteAddress) -> Bool {
      address >= remoteEnd && address &- remoteEnd <= UInt64(mergedGap)
        && (address >> 12) &- ((remoteEnd &- 1) >> 12) <= 1
    }

    /// Reads the ranges `indices` (in that order; in address order when `merging`), as many per
    /// process_vm_readv as IOV_MAX allows on either side, and marks the ones read. After a short
    /// call, merged: the ranges it did not fully cover go to `retry`; not merged: the range it
    /// stopped at is unreadable and reading goes on after it.
    func read(
      _ indices: UnsafeBufferPointer<Int>, merging: Bool, readable: inout [Bool], retry: inout [Int]
    ) {
      var first = 0
      while first < indices.count {
        let remaining = indices.count - first
        let localLimit = Swift.min(1024, 2 * remaining)  // IOV_MAX, for each list
        let remoteLimit = Swift.min(1024, remaining)
        var end = first
        let read: Int = withUnsafeTemporaryAllocation(of: iovec.self, capacity: localLimit + remoteLimit) { iovecs in
          withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.mergedGap) { sink in
            var locals = 0
            var remotes = 0
            var remoteEnd: RemoteAddress = 0
            while end < indices.count {
              let index = indices[end]
              let address = ranges[index].address
              let count = batchedByteCount(ranges[index].count)
              let merged = merging && remotes > 0 && Self.merges(address, after: remoteEnd)
              let gap = merged ? Int(address &- remoteEnd) : 0
              if locals + (gap > 0 ? 2 : 1) > localLimit || (!merged && remotes + 1 > remoteLimit) { break }
              if merged {
                if gap > 0 {
                  // SAFETY: the sink holds mergedGap bytes and gap <= mergedGap; its contents are ignored.
                  iovecs[locals] = iovec(iov_base: sink.baseAddress.map { UnsafeMutableRawPointer($0) }, iov_len: gap)
                  locals += 1
                }
                iovecs[localLimit + remotes - 1].iov_len += gap + count
              } else {
                // SAFETY: the remote iovec is only an address range interpreted by the kernel in the target.
                iovecs[localLimit + remotes] = iovec(
                  iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
                remotes += 1
              }
              // SAFETY: the buffer holds the sum of all counts, so every local iovec lies inside it.
              iovecs[locals] = iovec(iov_base: bytes.baseAddress.map { $0 + offsets[index] }, iov_len: count)
              locals += 1
              remoteEnd = address &+ UInt64(count)
              end += 1
            }
            guard let base = iovecs.baseAddress else { return 0 }
            return spy_process_vm_readv(pid, base, UInt(locals), base + localLimit, UInt(remotes))
          }
        }
        var next = end
        var streamed = 0
        var remoteEnd: RemoteAddress = 0
        for position in first..<end {
          let index = indices[position]
          let address = ranges[index].address
          let count = batchedByteCount(ranges[index].count)
          if merging && position > first && Self.merges(address, after: remoteEnd) {
            streamed += Int(address &- remoteEnd)
          }
          streamed += count
          remoteEnd = address &+ UInt64(count)
          if streamed <= read {
            readable[index] = true
          } else if merging {
            retry.append(index)
          } else {
            // The kernel stopped at this range: it is unreadable; go on from the one after.
            readable[index] = false
            next = position + 1
            break
          }
        }
        first = next
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
