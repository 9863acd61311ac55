//===--- Registers.swift - a stopped thread's registers ----------------------===//
//
// PTRACE_GETREGS of a thread in a ptrace stop of the calling thread, in the order DWARF numbers
// x86_64's registers (what an unwinder starts from), with the three that tell whether a thread
// has moved since it was last looked at.
//
//===----------------------------------------------------------------------===//

import CSpyglass

package struct ThreadRegisters: Sendable, Equatable {
  /// DWARF's x86_64 numbering: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, then the return address
  /// column (rip).
  package var dwarf: [UInt64]

  package var rip: UInt64 { dwarf[16] }
  package var rsp: UInt64 { dwarf[7] }
  package var rbp: UInt64 { dwarf[6] }

  /// How many registers `dwarf` holds.
  package static let count = 17

  /// The registers of `tid`, which must be in a ptrace stop of the calling thread (x86_64 only).
  package static func read(tid: Int32) throws(Errno) -> ThreadRegisters {
    // user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs
    // eflags rsp ss fs_base gs_base ds es fs gs.
    var raw = [UInt64](repeating: 0, count: 27)
    let rc = raw.withUnsafeMutableBufferPointer { spy_ptrace_getregs(tid, $0.baseAddress, $0.count) }
    if rc != 0 { throw Errno.current }
    let order = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16]
    return ThreadRegisters(dwarf: order.map { raw[$0] })
  }
}
