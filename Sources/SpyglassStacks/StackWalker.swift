//===--- StackWalker.swift - threads and frames of one interpreter --------===//
//
// One walker per attached interpreter. It walks the interpreter's thread list and each thread's
// frame chain using the version's layout, resolves code objects through a cache (a code object is
// read once, then only re-validated), and reports frames innermost first. Chains are bounded and
// checked for cycles (Brent's algorithm), so torn or garbage memory ends in a ReadFault, not a hang.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// What a code object says about itself, read once per code object.
package struct CodeInfo: Sendable, Equatable {
  /// `co_qualname` on 3.11+, else `co_name`.
  package var name: String
  /// `co_name`.
  package var shortName: String
  package var filename: String
  package var firstLine: Int
  package var lineTable: [UInt8]
  /// `_co_firsttraceable` (3.11+): instructions before it belong to an incomplete frame.
  package var firstTraceable: Int
  /// The `co_filename` and `co_name` pointers, used to notice a code object freed and replaced
  /// by another at the same address.
  package var identity: (UInt64, UInt64)
  /// `co_argcount` + `co_kwonlyargcount` (+ posonly), `co_nlocals`, and the names tuple, for locals.
  package var argumentCount: Int
  package var localCount: Int
  package var varnames: RemoteAddress
  package var localsKinds: RemoteAddress
  /// ≤3.10: the names of the cell and free variables, whose cells follow the fast locals (0 on 3.11+).
  package var cellvars: RemoteAddress = 0
  package var freevars: RemoteAddress = 0
  /// For a native frame (`--native`): the library's path as the target maps it; nil for Python code.
  /// `filename` is then the source file where debug information gives it, else the library's path.
  package var library: String? = nil

  package static func == (a: CodeInfo, b: CodeInfo) -> Bool {
    a.name == b.name && a.filename == b.filename && a.firstLine == b.firstLine && a.identity == b.identity
  }
}

package typealias CodeID = UInt32

/// One Python frame of a sampled stack.
package struct SampledFrame: Sendable, Equatable {
  package var code: CodeID
  /// The current line (0 when unknown).
  package var line: Int32
  /// The frame's own address (for locals).
  package var frameAddress: RemoteAddress
  /// Whether this frame was entered from C (≤3.10 every frame; 3.11 `is_entry`; 3.12+ the frame
  /// above a C-stack frame).
  package var isEntry: Bool
}

/// One thread of one sample.
package struct SampledThread: Sendable {
  package var threadState: RemoteAddress
  /// The Python thread id (`threading.get_ident()`, the pthread_t).
  package var threadID: UInt64
  /// The OS thread id when the interpreter records it (3.11+); else filled in by the caller.
  package var nativeThreadID: Int32?
  package var ownsGIL: Bool
  /// Innermost first.
  package var frames: [SampledFrame]
  /// The walk was skipped because the caller's `isIdle` said so: `frames` is empty.
  package var skippedAsIdle: Bool
  /// 3.12+: the addresses of the interpreter's shim frames the walk skipped, innermost first.
  /// Each evaluation keeps its entry shim on the C stack, so they place the evaluations in a
  /// native stack (`NativeMerger`) where the interpreter's symbols are stripped.
  package var shimAddresses: [RemoteAddress] = []

  package init(
    threadState: RemoteAddress, threadID: UInt64, nativeThreadID: Int32?, ownsGIL: Bool, frames: [SampledFrame],
    skippedAsIdle: Bool = false
  ) {
    self.threadState = threadState
    self.threadID = threadID
    self.nativeThreadID = nativeThreadID
    self.ownsGIL = ownsGIL
    self.frames = frames
    self.skippedAsIdle = skippedAsIdle
  }
}

/// Where the GIL holder can be read.
package enum GILLocation: Sendable, Equatable {
  case unknown
  /// A PyThreadState* at this address (≤3.11).
  case threadStatePointer(RemoteAddress)
  /// A `_gil_runtime_state` at this address (3.12+).
  case gilState(RemoteAddress)
}

/// Blocks of target memory read ahead for one thread's walk; frames found in them need no read of
/// their own. One per walker, emptied after each thread (so the buffers behind the views are not
/// kept shared into the next sample's reads). Lookups start at the last block that answered, then
/// go on from there: the frames of one data-stack chunk are found in one block, one after another,
/// and frames guessed one by one are looked up in the order they were guessed.
final class Prefetch {
  private var blocks: [(start: RemoteAddress, view: ByteView)] = []
  private var hint = 0

  func add(_ start: RemoteAddress, _ view: ByteView) {
    if view.count > 0 { blocks.append((start, view)) }
  }

  func removeAll() {
    blocks.removeAll(keepingCapacity: true)
    hint = 0
  }

  /// A view of `count` bytes at `address` when a block holds all of them.
  func view(at address: RemoteAddress, count: Int) -> ByteView? {
    let total = blocks.count
    var index = hint
    for _ in 0..<total {
      if index >= total { index = 0 }
      let block = blocks[index]
      if address >= block.start {
        let offset = address &- block.start
        let size = UInt64(block.view.count)
        if offset <= size, size - offset >= UInt64(count) {
          hint = index
          return ByteView(block.view.bytes, base: block.view.base + Int(offset), count: count)
        }
      }
      index += 1
    }
    return nil
  }
}

/// One remembered (instruction offset, line) pair of a code object.
struct LineMemo {
  static let slots = 8
  var lasti: Int32 = -1
  var line: Int32 = 0
}

/// Detects a cycle in a chain of addresses in O(1) memory (Brent).
struct CycleDetector {
  private var tortoise: RemoteAddress = 0
  private var power = 1
  private var steps = 0
  /// Returns true when `address` was seen before in this chain.
  mutating func visit(_ address: RemoteAddress) -> Bool {
    if address == tortoise { return true }
    steps += 1
    if steps == power {
      tortoise = address
      power *= 2
      steps = 0
    }
    return false
  }
}

package final class StackWalker<Memory: MemoryReader> {
  package let memory: Memory
  package let layout: PythonLayout
  package let model: PythonTraits
  package let interpreter: RemoteAddress
  package let gil: GILLocation
  /// `PyCode_Type`, when the binary exports it: frames whose code is not a code object are skipped.
  package let codeType: RemoteAddress?
  package let objects: ObjectReader<Memory>

  private var codeIndex: [RemoteAddress: CodeID] = [:]
  /// When each cached code object was last checked against the target (monotonic nanoseconds).
  private var codeCheckedAt: [UInt64] = []
  /// How long a cached code object is trusted before it is checked again: a code object freed and
  /// replaced by another at the same address is noticed within this time (replacement needs the
  /// old code object to be unreachable from every live frame, which is rare outside exec/compile
  /// loops).
  package var codeRevalidationNanoseconds: UInt64 = 100_000_000
  private var now: UInt64 = 0
  /// Decoded lines: `LineMemo.slots` remembered positions per code id.
  private var lineMemo: [LineMemo] = []
  /// The last code ids looked up, by address (direct-mapped in front of `codeIndex`).
  private var recentCodes = [(address: RemoteAddress, id: CodeID)](repeating: (0, 0), count: 256)
  package private(set) var codes: [CodeInfo] = []
  private var codeAddresses: [RemoteAddress] = []

  /// Code objects used from the cache during the current walk, validated in one batch at its end.
  private var pendingValidation: [(address: RemoteAddress, id: CodeID)] = []
  /// The shim frames of the thread being walked (`SampledThread.shimAddresses`).
  private var shimAddresses: [RemoteAddress] = []

  /// Per-sample read buffers, reused (no allocation per sample once grown).
  private var headRanges: [(address: RemoteAddress, count: Int)] = []
  private var threadStateBuffer: [UInt8] = []
  private var dataStackBuffer: [UInt8] = []
  /// The first read of a sample: the GIL and thread-list head, plus a guess of everything else
  /// the walk will need, taken from what the previous sample read (each thread's state, its frame
  /// data stack or frame objects, its current C frame). A stack that did not move much since the
  /// previous sample is walked from this one read; whatever the guess missed is read on demand.
  private var batchRanges: [(address: RemoteAddress, count: Int)] = []
  private var batchBuffer: [UInt8] = []
  private var batchReadable: [Bool] = []
  private var batchOffsets: [Int] = []
  /// The guess for the next sample, built while walking this one: ranges, and per thread state
  /// the first and end index of its ranges (the first range is the thread state itself).
  private var guessRanges: [(address: RemoteAddress, count: Int)] = []
  private var guessThreads: [(tstate: RemoteAddress, first: Int, end: Int)] = []
  private var nextGuessRanges: [(address: RemoteAddress, count: Int)] = []
  private var nextGuessThreads: [(tstate: RemoteAddress, first: Int, end: Int)] = []
  private var nextGuessBytes = 0
  /// The deepest stack of the previous sample: frame arrays are sized once, not grown.
  private var recentDepth = 8
  /// `sample(isIdle:)`'s question, for the duration of one sample.
  private var idleCheck: ((Int32) -> Bool)?
  private let prefetch = Prefetch()
  /// Frames met outside the live data-stack range, gathered per page into one range to guess.
  private var strayFrames: Range<RemoteAddress> = 0..<0
  /// The thread's live data-stack range guessed for the next sample: frames outside it (older chunks,
  /// 3.12+'s entry frames on the C stack) are guessed as well, gathered per page.
  private var guessedChunk: Range<RemoteAddress> = 0..<0

  /// Where glibc's struct pthread holds the kernel tid, for versions whose thread state does not
  /// (found by `PthreadTIDOffset.discover`); nil when unknown.
  package var pthreadTIDOffset: Int?

  /// The kernel tid in the struct pthread of Python thread `threadID` (its pthread_t), from the
  /// current walk's reads when they hold it; nil when unknown or implausible.
  /// A walked thread's OS id: `native_thread_id` (3.11+), else (≤3.10, or the walk ran before the
  /// offset was known) glibc's struct pthread's `tid` once `pthreadTIDOffset` is known; unchecked
  /// against the process's task list.
  package func osThreadID(of thread: SampledThread) -> Int32? {
    thread.nativeThreadID ?? pthreadTID(ofThread: thread.threadID)
  }

  package func pthreadTID(ofThread threadID: UInt64) -> Int32? {
    guard let offset = pthreadTIDOffset, threadID != 0 else { return nil }
    let address = threadID &+ UInt64(offset)
    guard let value = prefetch.view(at: address, count: 4)?.u32(0) ?? (try? memory.readUInt32(at: address)),
      value > 0, value < UInt32(Int32.max)
    else { return nil }
    return Int32(value)
  }

  /// The layout members the walk reads, checked present when the walker is made.
  private let offsets: WalkOffsets
  private let threadStateReadSize: Int
  private let frameReadSize: Int
  private let codeReadSize: Int
  /// `PythonTraits.shimFrameOwners` as a bit mask (bit n: owner n is a shim).
  private let shimOwnerMask: UInt64
  /// `PythonTraits.generatorFrameOwner`, or a value no owner byte has.
  private let generatorOwner: Int
  /// Clears a `_PyStackRef`'s tag bits from `f_executable` (all ones before 3.14).
  private let executableMask: UInt64
  /// Bytes per code unit, for `_co_firsttraceable`.
  private let codeUnitBytes: UInt64

  /// Fails when the layout lacks a member the version's walk needs.
  package convenience init(
    memory: Memory, layout: PythonLayout, model: PythonTraits, interpreter: RemoteAddress, gil: GILLocation,
    codeType: RemoteAddress?
  ) throws(ReadFault) {
    self.init(
      memory: memory, layout: layout, model: model, offsets: try WalkOffsets(layout, model, gil: gil),
      interpreter: interpreter, gil: gil, codeType: codeType)
  }

  /// A walker with the members already resolved (PythonTarget resolves them when it attaches).
  init(
    memory: Memory, layout: PythonLayout, model: PythonTraits, offsets: WalkOffsets, interpreter: RemoteAddress,
    gil: GILLocation, codeType: RemoteAddress?
  ) {
    self.memory = memory
    self.layout = layout
    self.model = model
    self.interpreter = interpreter
    self.gil = gil
    self.codeType = codeType
    self.objects = ObjectReader(memory: memory, layout: layout, model: model)
    shimOwnerMask = model.shimFrameOwners.reduce(0) { $1 < 64 ? $0 | 1 << UInt64($1) : $0 }
    generatorOwner = model.generatorFrameOwner.map(Int.init) ?? -1
    executableMask = ~(model.stackRef?.tagBits ?? 0)
    codeUnitBytes = UInt64(model.codeUnitSize)
    self.offsets = offsets
    let threadStateFields = offsets.threadStateFields
    // 3.11/3.12 keep the root _PyCFrame inside the thread state: read all of it to save a read.
    threadStateReadSize =
      model.frameModel == .interpreterFrameViaCFrame
      ? Swift.min(4096, Swift.max(threadStateFields, offsets.tstateSize ?? 0)) : threadStateFields
    frameReadSize = offsets.frameFields
    codeReadSize = offsets.code.all.compactMap { $0 }.max()! + 8
  }

  /// The code object behind a sampled frame.
  package func code(_ id: CodeID) -> CodeInfo { codes[Int(id)] }

  /// The address of a cached code object.
  package func codeAddress(_ id: CodeID) -> RemoteAddress { codeAddresses[Int(id)] }

  /// Forgets every cached code object.
  package func clearCodeCache() {
    codeIndex.removeAll(keepingCapacity: true)
    codeCheckedAt.removeAll(keepingCapacity: true)
    lineMemo.removeAll(keepingCapacity: true)
    recentCodes = Array(repeating: (0, 0), count: recentCodes.count)
    codes.removeAll(keepingCapacity: true)
    codeAddresses.removeAll(keepingCapacity: true)
  }

  // .. threads ...............................................................

  /// The PyThreadState addresses of the interpreter, newest first (CPython pushes new threads at
  /// the head).
  package func threadStates() throws(ReadFault) -> [RemoteAddress] {
    var result: [RemoteAddress] = []
    var cursor = try memory.readUInt64(at: interpreter &+ UInt64(offsets.threadsHead))
    var cycle = CycleDetector()
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("thread list cycles") }
      guard result.count < ReadLimits.threads else { throw .implausible("more than \(ReadLimits.threads) threads") }
      result.append(cursor)
      cursor = try memory.readUInt64(at: cursor &+ UInt64(offsets.tstateNext))
    }
    return result
  }

  /// The PyThreadState* holding the GIL now, or 0.
  package func gilHolder() throws(ReadFault) -> RemoteAddress {
    switch gil {
    case .unknown: return 0
    case .threadStatePointer(let address): return try memory.readUInt64(at: address)
    case .gilState(let address):
      guard let members = offsets.gil else { return 0 }
      let state = ByteView(try memory.readBytes(at: address, count: members.locked + 4))
      return state.u32(members.locked) != 0 ? state.u64(members.lastHolder) : 0
    }
  }

  /// Walks every thread. `onlyGILHolder` stops after the holder (and skips the others). The GIL
  /// state and the head of the thread list are read in one batch, and each thread state once (its
  /// `next` link comes from the same read as its frame pointer).
  ///
  /// With `isIdle`, a thread that does not hold the GIL and whose OS thread id `isIdle` calls idle
  /// is not walked (`skippedAsIdle`): a caller that drops idle threads saves their frame reads,
  /// most of a round with many threads waiting for the GIL.
  package func sample(onlyGILHolder: Bool = false, isIdle: ((Int32) -> Bool)? = nil) throws(ReadFault)
    -> [SampledThread]
  {
    now = monotonicNanoseconds()
    idleCheck = isIdle
    defer { idleCheck = nil }
    let headAddress = interpreter &+ UInt64(offsets.threadsHead)
    if headRanges.isEmpty {
      headRanges.append((headAddress, 8))
      switch gil {
      case .unknown: break
      case .threadStatePointer(let address): headRanges.append((address, 8))
      case .gilState(let address): if let members = offsets.gil { headRanges.append((address, members.locked + 4)) }
      }
    }
    batchRanges.removeAll(keepingCapacity: true)
    batchRanges.append(contentsOf: headRanges)
    batchRanges.append(contentsOf: guessRanges)
    memory.readMany(batchRanges, into: &batchBuffer, readable: &batchReadable)
    batchOffsets.removeAll(keepingCapacity: true)
    var offset = 0
    for range in batchRanges {
      batchOffsets.append(offset)
      offset += batchedByteCount(range.count)
    }
    guard batchReadable[0] else { throw .unmapped(address: headAddress) }
    var cursor = batchView(0).u64(0)
    var holder: RemoteAddress = 0
    if headRanges.count > 1 {
      guard batchReadable[1] else { throw .unmapped(address: headRanges[1].address) }
      let view = batchView(1)
      if case .gilState = gil, let members = offsets.gil {
        holder = view.u32(members.locked) != 0 ? view.u64(members.lastHolder) : 0
      } else {
        holder = view.u64(0)
      }
    }
    nextGuessRanges.removeAll(keepingCapacity: true)
    nextGuessBytes = 0
    nextGuessThreads.removeAll(keepingCapacity: true)
    defer {
      swap(&guessRanges, &nextGuessRanges)
      swap(&guessThreads, &nextGuessThreads)
    }
    var result: [SampledThread] = []
    var cycle = CycleDetector()
    var count = 0
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("thread list cycles") }
      count += 1
      guard count <= ReadLimits.threads else { throw .implausible("more than \(ReadLimits.threads) threads") }
      prefetch.removeAll()
      let state: ByteView
      if let guess = guessedThread(cursor, near: count - 1), batchReadable[headRanges.count + guess.first] {
        state = batchView(headRanges.count + guess.first)
        for index in (guess.first + 1)..<guess.end where batchReadable[headRanges.count + index] {
          prefetch.add(guessRanges[index].address, batchView(headRanges.count + index))
        }
      } else {
        try memory.readBytes(at: cursor, count: threadStateReadSize, into: &threadStateBuffer)
        state = ByteView(threadStateBuffer)
      }
      let next = state.u64(offsets.tstateNext)
      if !onlyGILHolder || cursor == holder {
        result.append(try walkThread(cursor, state: state, ownsGIL: cursor == holder))
        if onlyGILHolder { break }
      } else {
        // Skipped, but its state is read again next time to follow the list.
        let start = nextGuessRanges.count
        guess(cursor, threadStateReadSize)
        noteGuesses(of: cursor, from: start)
      }
      cursor = next
    }
    return result
  }

  /// A view of range `index` of the sample's first batch.
  private func batchView(_ index: Int) -> ByteView {
    ByteView(batchBuffer, base: batchOffsets[index], count: batchRanges[index].count)
  }

  /// The previous sample's reads for thread state `tstate`, looked for first where the thread was
  /// in the list last time (`position`), then around it, then everywhere.
  private func guessedThread(_ tstate: RemoteAddress, near position: Int) -> (first: Int, end: Int)? {
    let count = guessThreads.count
    let low = Swift.max(0, position - 1)
    let high = Swift.min(count, position + 2)
    for candidate in low..<Swift.max(low, high) where guessThreads[candidate].tstate == tstate {
      return (guessThreads[candidate].first, guessThreads[candidate].end)
    }
    for entry in guessThreads where entry.tstate == tstate { return (entry.first, entry.end) }
    return nil
  }

  /// Files the guesses made since `start` under thread state `tstate`, for the next sample.
  private func noteGuesses(of tstate: RemoteAddress, from start: Int) {
    if nextGuessRanges.count > start { nextGuessThreads.append((tstate, start, nextGuessRanges.count)) }
  }

  /// Notes what a thread's walk read, for the next sample's first batch.
  private func guess(_ address: RemoteAddress, _ count: Int) {
    // Bounded in ranges and in bytes: garbage read from the target (thousands of threads each
    // claiming a 1 MiB data stack) must not grow the next sample's read without limit.
    guard nextGuessRanges.count < ReadLimits.guessedRanges,
      nextGuessBytes + Swift.max(0, count) <= ReadLimits.guessedBytes
    else { return }
    nextGuessBytes += Swift.max(0, count)
    nextGuessRanges.append((address, count))
  }

  /// Walks one thread's frames. Reads are batched: the thread state in one read, on 3.11+ the
  /// whole live part of the frame data stack in one read, on ≤3.10 the previous sample's frames in
  /// one multi-range read, and the cached code objects re-validated in one multi-range read.
  package func walkThread(_ tstate: RemoteAddress, ownsGIL: Bool) throws(ReadFault) -> SampledThread {
    now = monotonicNanoseconds()
    try memory.readBytes(at: tstate, count: threadStateReadSize, into: &threadStateBuffer)
    prefetch.removeAll()
    return try walkThread(tstate, state: ByteView(threadStateBuffer), ownsGIL: ownsGIL)
  }

  /// Walks a thread whose state was just read, with whatever of its frames `prefetch` already holds.
  /// The prefetched views are dropped when the walk ends, so the buffers behind them stay uniquely
  /// owned and are reused without copying.
  private func walkThread(
    _ tstate: RemoteAddress, state: ByteView, ownsGIL: Bool
  ) throws(ReadFault) -> SampledThread {
    defer { prefetch.removeAll() }
    strayFrames = 0..<0
    guessedChunk = 0..<0
    guard state.u64(offsets.tstateInterp) == interpreter else {
      throw .implausible("thread state of another interpreter")
    }
    let threadID = state.u64(offsets.tstateThreadID)
    var native: Int32?
    if let nativeOffset = offsets.tstateNativeThreadID {
      let value = state.u64(nativeOffset)
      if value > 0 && value < UInt64(Int32.max) { native = Int32(value) }
    }
    prefetch.add(tstate, state)
    let guessStart = nextGuessRanges.count
    guess(tstate, threadStateReadSize)
    if native == nil, let offset = pthreadTIDOffset, threadID != 0 {
      // Before 3.11 the kernel tid is only in glibc's struct pthread: read with the thread's guess.
      native = pthreadTID(ofThread: threadID)
      guess(threadID &+ UInt64(offset), 4)
    }
    if !ownsGIL, let native, let idleCheck, idleCheck(native) {
      noteGuesses(of: tstate, from: guessStart)
      return SampledThread(
        threadState: tstate, threadID: threadID, nativeThreadID: native, ownsGIL: false, frames: [],
        skippedAsIdle: true)
    }
    if let dataStack = offsets.dataStack {
      // The live part of the frame data stack, with the chunk's header (for its size).
      let chunk = state.u64(dataStack.chunk)
      let top = state.u64(dataStack.top)
      if chunk != 0, top > chunk, top - chunk <= 1 << 20 {
        let live = Int(top - chunk)
        var chunkBytes = prefetch.view(at: chunk, count: live)
        if chunkBytes == nil, (try? memory.readBytes(at: chunk, count: live, into: &dataStackBuffer)) != nil {
          chunkBytes = ByteView(dataStackBuffer)
          prefetch.add(chunk, ByteView(dataStackBuffer))
        }
        if let chunkBytes {
          // Next time, read a little past the top (a frame or two deeper), but not past the chunk.
          let size = chunkBytes.u64(dataStack.chunkSize)
          let end = Swift.min(top &+ ReadLimits.dataStackSlack, chunk &+ Swift.min(size, 1 << 20))
          guess(chunk, Int(Swift.max(end, top) - chunk))
          guessedChunk = chunk..<Swift.max(end, top)
        }
      }
    }
    var frames: [SampledFrame] = []
    frames.reserveCapacity(recentDepth)
    for attempt in 0..<2 {
      frames.removeAll(keepingCapacity: true)
      shimAddresses.removeAll(keepingCapacity: true)
      pendingValidation.removeAll(keepingCapacity: true)
      let deferValidation = attempt == 0
      switch offsets.frames {
      case .objects:
        try walkFrameObjects(
          from: state.u64(offsets.tstateFrame), into: &frames, prefetch: prefetch, deferValidation: deferValidation)
      case .interpreter(let cframeCurrentFrame?, _, _, _, _, _, _):
        let cframe = state.u64(offsets.tstateFrame)
        if cframe != 0 {
          let slot = cframe &+ UInt64(cframeCurrentFrame)
          let first: RemoteAddress
          if let view = prefetch.view(at: slot, count: 8) {
            first = view.u64(0)
          } else {
            first = try memory.readUInt64(at: slot)
          }
          // The current C frame lives on the thread's C stack, outside the thread state.
          if attempt == 0 && (slot < tstate || slot >= tstate &+ UInt64(threadStateReadSize)) { guess(slot, 8) }
          try walkInterpreterFrames(from: first, into: &frames, prefetch: prefetch, deferValidation: deferValidation)
        }
      case .interpreter(nil, _, _, _, _, _, _):
        try walkInterpreterFrames(
          from: state.u64(offsets.tstateFrame), into: &frames, prefetch: prefetch, deferValidation: deferValidation)
      }
      if try validatePending() { break }
    }
    guessStrayFrames()
    recentDepth = Swift.max(8, Swift.min(frames.count + 4, ReadLimits.frames))
    if model.frameModel == .frameObject {
      // Frame objects live anywhere on the heap: guess each one where it was.
      for frame in frames.prefix(ReadLimits.guessedFrameObjects) { guess(frame.frameAddress, frameReadSize) }
    }
    noteGuesses(of: tstate, from: guessStart)
    var thread = SampledThread(
      threadState: tstate, threadID: threadID, nativeThreadID: native, ownsGIL: ownsGIL, frames: frames)
    if !shimAddresses.isEmpty { thread.shimAddresses = shimAddresses }
    return thread
  }

  /// Checks, in one batch, that the cached code objects used by the walk are still the ones at
  /// their addresses. Stale ones are dropped from the cache; returns false when the walk must be
  /// redone.
  private func validatePending() throws(ReadFault) -> Bool {
    if pendingValidation.isEmpty { return true }
    var seen = Set<RemoteAddress>()
    var distinct: [(address: RemoteAddress, id: CodeID)] = []
    for entry in pendingValidation where seen.insert(entry.address).inserted { distinct.append(entry) }
    let identities = memory.readMany(distinct.map { ($0.address &+ UInt64(offsets.code.filename), 16) })
    var allValid = true
    let nameDelta = offsets.code.name - offsets.code.filename
    for (entry, bytes) in zip(distinct, identities) {
      let cached = codes[Int(entry.id)].identity
      if let view = bytes {
        if view.u64(0) == cached.0 && view.u64(nameDelta) == cached.1 {
          codeCheckedAt[Int(entry.id)] = now
          continue
        }
      }
      forget(entry.address)
      allValid = false
    }
    return allValid
  }

  private func frameView(at address: RemoteAddress, prefetch: Prefetch) throws(ReadFault) -> ByteView {
    // A frame outside the data-stack range guessed for next time (a deep stack spilled into older
    // chunks, or an entry frame on the C stack) is guessed too, whether or not this sample's guess
    // held it (guessing only after a miss would miss every other sample). Neighbouring frames on
    // one page are gathered into one range, so a deep stack costs a range per page and no bytes
    // beyond its frames (the target is writing those pages from another CPU: every line copied
    // costs). Frame objects (≤3.10) are all guessed after the walk anyway.
    if model.frameModel != .frameObject, !guessedChunk.contains(address) {
      let end = address &+ UInt64(frameReadSize)
      if !strayFrames.isEmpty,
        address >> 12 == strayFrames.lowerBound >> 12 || end >> 12 == strayFrames.upperBound >> 12
      {
        strayFrames = Swift.min(address, strayFrames.lowerBound)..<Swift.max(end, strayFrames.upperBound)
      } else {
        guessStrayFrames()
        if end > address { strayFrames = address..<end }
      }
    }
    if let view = prefetch.view(at: address, count: frameReadSize) { return view }
    return ByteView(try memory.readBytes(at: address, count: frameReadSize))
  }

  /// Guesses the gathered stray frames' range for the next sample.
  private func guessStrayFrames() {
    if !strayFrames.isEmpty { guess(strayFrames.lowerBound, Int(strayFrames.count)) }
    strayFrames = 0..<0
  }

  private func walkFrameObjects(
    from first: RemoteAddress, into frames: inout [SampledFrame], prefetch: Prefetch, deferValidation: Bool
  ) throws(ReadFault) {
    guard case .objects(let backOffset, let codeOffset, let lastiOffset) = offsets.frames else { return }
    var cursor = first
    var cycle = CycleDetector()
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("frame chain cycles") }
      guard frames.count < ReadLimits.frames else { throw .implausible("more than \(ReadLimits.frames) frames") }
      let frame = try frameView(at: cursor, prefetch: prefetch)
      let codeAddress = frame.u64(codeOffset)
      if let id = try resolveCode(at: codeAddress, deferValidation: deferValidation) {
        var lasti = Int(frame.i32(lastiOffset))
        if model.instructionAddressing == .lastiCodeUnitIndex { lasti *= 2 }
        let line = lasti < 0 ? Int32(truncatingIfNeeded: codes[Int(id)].firstLine) : self.line(of: id, at: lasti)
        frames.append(SampledFrame(code: id, line: line, frameAddress: cursor, isEntry: true))
      }
      cursor = frame.u64(backOffset)
    }
  }

  private func walkInterpreterFrames(
    from first: RemoteAddress, into frames: inout [SampledFrame], prefetch: Prefetch, deferValidation: Bool
  ) throws(ReadFault) {
    guard
      case .interpreter(
        _, let previousOffset, let codeOffset, let instrPtrOffset, let ownerOffset, let isEntryOffset,
        let codeAdaptive) = offsets.frames
    else { return }
    var cursor = first
    var cycle = CycleDetector()
    var steps = 0
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("frame chain cycles") }
      steps += 1
      guard steps <= ReadLimits.frames else { throw .implausible("more than \(ReadLimits.frames) frames") }
      let frame = try frameView(at: cursor, prefetch: prefetch)
      let previous = frame.u64(previousOffset)
      defer { cursor = previous }
      let owner = frame.u8(ownerOffset)
      if owner < 64, shimOwnerMask & (1 << UInt64(owner)) != 0 {
        // The frame above an interpreter shim was entered from C.
        if !frames.isEmpty { frames[frames.count - 1].isEntry = true }
        if shimAddresses.count < ReadLimits.frames { shimAddresses.append(cursor) }
        continue
      }
      let codeAddress = frame.u64(codeOffset) & executableMask
      guard let id = try resolveCode(at: codeAddress, deferValidation: deferValidation) else { continue }
      let codeStart = codeAddress &+ UInt64(codeAdaptive)
      let instruction = frame.u64(instrPtrOffset)
      // An incomplete frame (its prologue has not run yet) is not shown by CPython either.
      let firstTraceable = codeStart &+ codeUnitBytes &* UInt64(codes[Int(id)].firstTraceable)
      let ownedByGenerator = Int(owner) == generatorOwner
      if !ownedByGenerator && instruction < firstTraceable { continue }
      let line = line(of: id, instruction: instruction, codeStart: codeStart)
      var isEntry = false
      if let isEntryOffset { isEntry = frame.u8(isEntryOffset) != 0 }
      frames.append(SampledFrame(code: id, line: line, frameAddress: cursor, isEntry: isEntry))
    }
    if !frames.isEmpty { frames[frames.count - 1].isEntry = true }
  }

  /// The line of the instruction at `instruction` in code object `id`, whose code starts at
  /// `codeStart`. A torn or garbage instruction pointer can be anywhere: an offset past any real
  /// code object (which would not even fit in an Int) means "line unknown" (the first line).
  private func line(of id: CodeID, instruction: RemoteAddress, codeStart: RemoteAddress) -> Int32 {
    let offset = instruction &- codeStart
    let lasti = instruction >= codeStart && offset < 1 << 31 ? Int(offset) : -1
    return lasti < 0 ? Int32(truncatingIfNeeded: codes[Int(id)].firstLine) : line(of: id, at: lasti)
  }

  /// The bytes `interpreterFrame(in:at:)` needs of a frame.
  package var interpreterFrameBytes: Int { frameReadSize }

  /// One interpreter frame on its own (3.11+: the frame a coroutine or generator embeds), decoded
  /// from bytes already read (`frame` starts at the frame, which is at `address`; it holds at least
  /// `interpreterFrameBytes`). Nil when its code is not a readable code object. `instruction` is
  /// the frame's instruction pointer (`prev_instr` on 3.11/3.12, `instr_ptr` after).
  package func interpreterFrame(in frame: ByteView, at address: RemoteAddress) throws(ReadFault) -> (
    frame: SampledFrame, instruction: RemoteAddress
  )? {
    guard case .interpreter(_, _, let codeOffset, let instrPtrOffset, _, _, let codeAdaptive) = offsets.frames else {
      return nil
    }
    now = monotonicNanoseconds()
    let codeAddress = frame.u64(codeOffset) & executableMask
    guard let id = try resolveCode(at: codeAddress) else { return nil }
    let instruction = frame.u64(instrPtrOffset)
    let line = line(of: id, instruction: instruction, codeStart: codeAddress &+ UInt64(codeAdaptive))
    return (SampledFrame(code: id, line: line, frameAddress: address, isEntry: false), instruction)
  }

  /// The line of instruction offset `lasti` in code object `id`. Each code object remembers its
  /// last few positions (a hot loop visits a handful per frame); others are decoded.
  private func line(of id: CodeID, at lasti: Int) -> Int32 {
    let slot = Int(id) &* LineMemo.slots &+ ((lasti >> 1) & (LineMemo.slots - 1))
    let key = Int32(truncatingIfNeeded: lasti)
    if slot < lineMemo.count, lineMemo[slot].lasti == key { return lineMemo[slot].line }
    let info = codes[Int(id)]
    let line = Int32(
      truncatingIfNeeded: LineTable.line(
        for: lasti, firstLine: info.firstLine, table: info.lineTable, format: model.lineTableFormat))
    if slot < lineMemo.count { lineMemo[slot] = LineMemo(lasti: key, line: line) }
    return line
  }

  // .. code objects ...........................................................

  /// The cache id of the code object at `address`, reading it when new or replaced. Returns nil for
  /// something that is not a code object with readable names (shims, torn frames). A cached entry
  /// is re-validated at once, or, with `deferValidation`, queued for the batch check at the end of
  /// the walk. A replaced code object gets a new id, so ids never change meaning.
  func resolveCode(at address: RemoteAddress, deferValidation: Bool = false) throws(ReadFault) -> CodeID? {
    guard address != 0 else { return nil }
    let recent = Int(truncatingIfNeeded: address >> 4) & (recentCodes.count - 1)
    let known: CodeID?
    if recentCodes[recent].address == address {
      known = recentCodes[recent].id
    } else {
      known = codeIndex[address]
      if let known { recentCodes[recent] = (address, known) }
    }
    if let id = known {
      if now &- codeCheckedAt[Int(id)] < codeRevalidationNanoseconds { return id }
      if deferValidation {
        pendingValidation.append((address, id))
        return id
      }
      // The filename and name pointers are adjacent in every version.
      let identity = ByteView(try memory.readBytes(at: address &+ UInt64(offsets.code.filename), count: 16))
      let cached = codes[Int(id)].identity
      if identity.u64(0) == cached.0 && identity.u64(offsets.code.name - offsets.code.filename) == cached.1 {
        codeCheckedAt[Int(id)] = now
        return id
      }
      forget(address)
    }
    guard let info = try? readCode(at: address) else { return nil }
    let id = CodeID(codes.count)
    codes.append(info)
    codeCheckedAt.append(now)
    codeAddresses.append(address)
    lineMemo.append(contentsOf: repeatElement(LineMemo(), count: LineMemo.slots))
    codeIndex[address] = id
    recentCodes[recent] = (address, id)
    return id
  }

  /// Drops a code object found replaced: its address will be read afresh (under a new id).
  private func forget(_ address: RemoteAddress) {
    codeIndex[address] = nil
    let recent = Int(truncatingIfNeeded: address >> 4) & (recentCodes.count - 1)
    if recentCodes[recent].address == address { recentCodes[recent] = (0, 0) }
  }

  func readCode(at address: RemoteAddress) throws(ReadFault) -> CodeInfo {
    if let codeType {
      guard try memory.readUInt64(at: address &+ UInt64(offsets.objectType)) == codeType else {
        throw .implausible("not a code object")
      }
    }
    let code = ByteView(try memory.readBytes(at: address, count: codeReadSize))
    let members = offsets.code
    let filenamePointer = code.u64(members.filename)
    let namePointer = code.u64(members.name)
    let shortName = try objects.string(at: namePointer)
    let filename = try objects.string(at: filenamePointer)
    var name = shortName
    if let qualname = members.qualname {
      name = (try? objects.string(at: code.u64(qualname))) ?? shortName
    }
    let table = (try? objects.bytesObject(at: code.u64(members.linetable), limit: ReadLimits.lineTableBytes)) ?? []
    // Members a version lacks read as 0 (no arguments, no names, no prologue).
    func int32(_ offset: Int?) -> Int { offset.map { Int(code.i32($0)) } ?? 0 }
    func pointer(_ offset: Int?) -> RemoteAddress { offset.map { code.u64($0) } ?? 0 }
    // As py-spy: positional parameters (co_argcount) are "arguments"; keyword-only ones are listed as locals.
    let argumentCount = int32(members.argcount)
    var info = CodeInfo(
      name: name, shortName: shortName, filename: filename, firstLine: int32(members.firstlineno), lineTable: table,
      firstTraceable: Swift.max(0, int32(members.firstTraceable)), identity: (filenamePointer, namePointer),
      argumentCount: argumentCount, localCount: int32(members.nlocals),
      varnames: pointer(members.varnames), localsKinds: pointer(members.localspluskinds))
    info.cellvars = pointer(members.cellvars)
    info.freevars = pointer(members.freevars)
    return info
  }
}
