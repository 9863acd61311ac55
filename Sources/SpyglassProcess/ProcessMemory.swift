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

  /// Reads the batch with as few process_vm_readv calls, and as few remote iovecs, as possible.
  ///
  /// The kernel pins and walks the target's page tables once per remote iovec, so ranges that
  /// share a page (frame objects of one stack, a thread state and its neighbours) are read as one
  /// remote range: the ranges are taken in address order and merged while the gap to the next one
  /// stays within a page the ranges themselves touch; the gaps' bytes land in a scratch area
  /// (process_vm_readv's local and remote iovec lists are independent streams). A gap therefore
  /// never faults unless a range's own page does. When a call comes back short, the ranges it did
  /// not fully cover are read again range by range, which skips the faulting ones.
  public func readMany(
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
          let count = Self.clamped(ranges[i].count)
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
        var retry: [Int] = []
        var first = 0
        while first < sorted.count {
          first = Self.readCoalesced(
            pid: pid, ranges: ranges, sorted: sorted, from: first, offsets: offsets, bytes: bytes,
            readable: &readable, retry: &retry)
        }
        if !retry.isEmpty {
          Self.readOneByOne(
            pid: pid, ranges: ranges, indices: retry, offsets: offsets, bytes: bytes, readable: &readable)
        }
      }
    }
  }

  /// The largest gap merged between two ranges.
  private static let mergedGap = 512

  /// Whether a range at `address` joins the remote range ending at `remoteEnd`: it starts at or
  /// after that end, at most `mergedGap` bytes later, on the same page or the next one, so the gap's
  /// bytes lie on pages the ranges touch anyway and cannot fault on their own.
  private static func merges(_ address: RemoteAddress, after remoteEnd: RemoteAddress) -> Bool {
    address >= remoteEnd && address &- remoteEnd <= UInt64(mergedGap)
      && (address >> 12) &- ((remoteEnd &- 1) >> 12) <= 1
  }

  private static func clamped(_ count: Int) -> Int { Swift.max(0, Swift.min(count, maximumReadSize)) }

  /// One process_vm_readv for the sorted ranges from `first` on (as many as fit IOV_MAX on either
  /// side). Marks the ones it read; queues the rest of a short call in `retry`. Returns the next
  /// sorted position to read.
  private static func readCoalesced(
    pid: Int32, ranges: [(address: RemoteAddress, count: Int)], sorted: UnsafeMutableBufferPointer<Int>,
    from first: Int,
    offsets: UnsafeMutableBufferPointer<Int>, bytes: UnsafeMutableRawBufferPointer, readable: inout [Bool],
    retry: inout [Int]
  ) -> Int {
    let remaining = sorted.count - first
    let localLimit = Swift.min(1024, 2 * remaining)  // IOV_MAX, for each list
    let remoteLimit = Swift.min(1024, remaining)
    var end = first
    var wanted = 0
    let read: Int = withUnsafeTemporaryAllocation(of: iovec.self, capacity: localLimit + remoteLimit) { iovecs in
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: mergedGap) { sink in
        var locals = 0
        var remotes = 0
        var total = 0
        var remoteEnd: RemoteAddress = 0
        while end < sorted.count {
          let index = sorted[end]
          let address = ranges[index].address
          let count = clamped(ranges[index].count)
          let merges = remotes > 0 && Self.merges(address, after: remoteEnd)
          let gap = merges ? Int(address &- remoteEnd) : 0
          let needed = gap > 0 ? 2 : 1
          if locals + needed > localLimit || (!merges && remotes + 1 > remoteLimit) { break }
          if merges {
            if gap > 0 {
              // SAFETY: the sink holds mergedGap bytes and gap <= mergedGap; its contents are ignored.
              iovecs[locals] = iovec(iov_base: sink.baseAddress.map { UnsafeMutableRawPointer($0) }, iov_len: gap)
              locals += 1
              total += gap
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
          total += count
          remoteEnd = address &+ UInt64(count)
          end += 1
        }
        wanted = total
        guard let base = iovecs.baseAddress else { return 0 }
        return spy_process_vm_readv(pid, base, UInt(locals), base + localLimit, UInt(remotes))
      }
    }
    if read == wanted {
      for position in first..<end { readable[sorted[position]] = true }
      return end
    }
    // Short: keep the ranges read in full before the stop, read the others one by one.
    var streamed = 0
    var remoteEnd: RemoteAddress = 0
    for position in first..<end {
      let index = sorted[position]
      let address = ranges[index].address
      let count = clamped(ranges[index].count)
      if position > first && merges(address, after: remoteEnd) { streamed += Int(address &- remoteEnd) }
      streamed += count
      remoteEnd = address &+ UInt64(count)
      if streamed <= read {
        readable[index] = true
      } else {
        retry.append(index)
      }
    }
    return end
  }

  /// The fallback: each range in its own remote iovec, still batched (the kernel stops at the first
  /// range that faults, so the rest are read again after it).
  private static func readOneByOne(
    pid: Int32, ranges: [(address: RemoteAddress, count: Int)], indices: [Int],
    offsets: UnsafeMutableBufferPointer<Int>,
    bytes: UnsafeMutableRawBufferPointer, readable: inout [Bool]
  ) {
    var start = 0
    while start < indices.count {
      let end = Swift.min(indices.count, start + 1024)  // IOV_MAX
      let read: Int = withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2 * (end - start)) { iovecs in
        for i in start..<end {
          let index = indices[i]
          let count = clamped(ranges[index].count)
          // SAFETY: the buffer holds the sum of all counts, so every local iovec lies inside it.
          iovecs[i - start] = iovec(iov_base: bytes.baseAddress.map { $0 + offsets[index] }, iov_len: count)
          iovecs[end - start + i - start] = iovec(
            iov_base: UnsafeMutableRawPointer(bitPattern: UInt(ranges[index].address)), iov_len: count)
        }
        guard let base = iovecs.baseAddress else { return 0 }
        let n = end - start
        return spy_process_vm_readv(pid, base, UInt(n), base + n, UInt(n))
      }
      var remaining = Swift.max(0, read)
      var next = end
      for i in start..<end {
        let count = clamped(ranges[indices[i]].count)
        if remaining >= count {
          readable[indices[i]] = true
          remaining -= count
        } else {
          // The kernel stopped at this range: it is unreadable; go on from the one after.
          readable[indices[i]] = false
          next = i + 1
          break
        }
      }
      start = next
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
