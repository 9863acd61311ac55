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

  /// Reads several ranges with one syscall. Each range is read into its buffer; returns the number
  /// of bytes read in total (a short total means the later ranges failed).
  public func readBatch(_ ranges: [(address: RemoteAddress, buffer: UnsafeMutableRawBufferPointer)]) throws(ReadFault) -> Int {
    if ranges.isEmpty { return 0 }
    var locals: [iovec] = []
    var remotes: [iovec] = []
    locals.reserveCapacity(ranges.count)
    remotes.reserveCapacity(ranges.count)
    for range in ranges {
      locals.append(iovec(iov_base: range.buffer.baseAddress, iov_len: range.buffer.count))
      remotes.append(iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(range.address)), iov_len: range.buffer.count))
    }
    let n = spy_process_vm_readv(pid, locals, UInt(locals.count), remotes, UInt(remotes.count))
    if n < 0 { throw Self.fault(errno: spy_errno(), address: ranges[0].address) }
    return n
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
