//===--- Samples.swift - what one look at a process holds -----------------===//
//
// The two values a sample is made of, from the walker to the profile builder: a frame (a Python
// frame, by its code object and line, or a native one, by its symbol) and a thread (everything
// the walker, the pause, /proc and the asyncio reader learnt about one thread at one instant).
// Both are cheap: a frame names its code object or symbol by an id of the process's caches, and
// turns into text (a `Frame`) only where it is shown (`FrameResolver`).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess

/// A code object's id in its walker's `CodeCache`.
package typealias CodeID = UInt32

/// A native symbol's id in its process's `NativeUnwinder.symbols`.
package typealias SymbolID = UInt32

/// One frame of a sampled stack.
package enum SampledFrame: Sendable, Equatable {
  /// A Python frame: its code object, the line it is on (0 when unknown), the frame's own
  /// address (its locals are read from it; a task's coroutine frame is found by it), and whether
  /// it was entered from C (≤3.10 every frame; 3.11 `is_entry`; 3.12+ the frame above a shim).
  case python(code: CodeID, line: Int32, address: RemoteAddress, isEntry: Bool)
  /// A native frame: its symbol, its source line (0 when unknown) and its pc.
  case native(symbol: SymbolID, line: Int32, pc: UInt64)

  /// The line shown (0 when unknown).
  @inlinable package var line: Int32 {
    switch self {
    case .python(_, let line, _, _), .native(_, let line, _): line
    }
  }

  /// Whether this is a Python frame entered from C (never a native one).
  @inlinable package var isEntry: Bool {
    if case .python(_, _, _, let isEntry) = self { return isEntry }
    return false
  }

  /// The frame's address: a Python frame's own, a native frame's pc.
  @inlinable package var address: RemoteAddress {
    switch self {
    case .python(_, _, let address, _): address
    case .native(_, _, let pc): pc
    }
  }

  /// A Python frame's code object (nil for a native frame).
  @inlinable package var code: CodeID? {
    if case .python(let code, _, _, _) = self { return code }
    return nil
  }

  @inlinable package var isNative: Bool {
    if case .native = self { return true }
    return false
  }

  /// What identifies the frame in a profile (its code object or symbol, and its line): equal
  /// keys are the same frame of the same process.
  @inlinable package var key: FrameKey {
    switch self {
    case .python(let code, let line, _, _): FrameKey(id: code, isNative: false, line: line)
    case .native(let symbol, let line, _): FrameKey(id: symbol, isNative: true, line: line)
    }
  }

  /// Whether `other` is the same frame of the same process (same code object or symbol, same
  /// line), whatever its address.
  @inlinable package func isSame(as other: SampledFrame) -> Bool {
    switch (self, other) {
    case (.python(let a, let line, _, _), .python(let b, let otherLine, _, _)): a == b && line == otherLine
    case (.native(let a, let line, _), .native(let b, let otherLine, _)): a == b && line == otherLine
    default: false
    }
  }

  /// The same frame on another line (`--function`: its first line; `--nolineno`: 0).
  @inlinable package func on(line: Int32) -> SampledFrame {
    switch self {
    case .python(let code, _, let address, let isEntry):
      .python(code: code, line: line, address: address, isEntry: isEntry)
    case .native(let symbol, _, let pc): .native(symbol: symbol, line: line, pc: pc)
    }
  }
}

/// A frame of one process as a hashable key: its code object or symbol, and its line.
package struct FrameKey: Hashable, Sendable {
  package var id: UInt32
  package var isNative: Bool
  package var line: Int32
  @inlinable package init(id: UInt32, isNative: Bool, line: Int32) {
    self.id = id
    self.isNative = isNative
    self.line = line
  }
}

/// One thread of one sample: what the walker read (its state, ids, frames), what the sampler
/// added (its OS id checked against the process, its name, whether it is active, native frames
/// merged in, locals), and, in async-aware stacks, the task it shows.
package struct SampledThread: Sendable {
  package var pid: Int32
  /// Its `PyThreadState`.
  package var threadState: RemoteAddress
  /// The Python thread id (`threading.get_ident()`, the pthread_t).
  package var threadID: UInt64
  /// The OS thread id: the walker's `native_thread_id` (3.11+), checked and completed by the
  /// sampler (struct pthread, the task list); nil when unknown.
  package var osThreadID: Int32?
  /// The `threading` name, when known.
  package var name: String?
  /// On a CPU or runnable, as opposed to asleep or waiting.
  package var active = true
  package var ownsGIL: Bool
  /// Innermost first.
  package var frames: [SampledFrame]
  /// Each frame's arguments and locals (parallel to `frames`), when they were asked for.
  package var locals: [[LocalVariable]]?
  /// The walk was skipped because the thread was idle and idle threads are dropped: `frames` is
  /// empty.
  package var skippedAsIdle = false
  /// The frame chain ended before the thread's first frame (3.12+: not in the entry shim every
  /// whole chain ends in): the thread was read between two frames, in the few instructions where
  /// CPython's own links are not yet consistent (entering a generator from C, say).
  package var incomplete = false
  /// 3.12+: the addresses of the interpreter's shim frames the walk skipped, innermost first
  /// (they place the evaluations in a native stack where the interpreter is stripped).
  package var shimAddresses: [RemoteAddress] = []
  /// Async-aware stacks: the `<task NAME>` roots, outermost first.
  package var roots: [String] = []
  /// Async-aware stacks: the task shown (its object's address); nil for a thread's own stack.
  package var task: RemoteAddress?
  /// Async-aware stacks: a suspended task (not the one a thread runs): it uses no CPU.
  package var isTaskAtRest = false

  package init(
    pid: Int32, threadState: RemoteAddress, threadID: UInt64, osThreadID: Int32?, ownsGIL: Bool,
    frames: [SampledFrame]
  ) {
    self.pid = pid
    self.threadState = threadState
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.ownsGIL = ownsGIL
    self.frames = frames
  }
}

extension SampledThread {
  /// Replaces the frames by `merged`, the thread's native and Python frames merged (the Python
  /// ones in their order): the locals stay with their Python frames, native frames have none.
  package mutating func takeMergedFrames(_ merged: [SampledFrame]) {
    if let pythonLocals = locals {
      var next = 0
      locals = merged.map { frame in
        if frame.isNative || next >= pythonLocals.count { return [] }
        next += 1
        return pythonLocals[next - 1]
      }
    }
    frames = merged
  }
}
