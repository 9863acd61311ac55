//===--- StackWalker.swift - threads and frames of one interpreter --------===//
//
// One walker per attached interpreter. A sample is one round of its read-ahead: the first batch
// reads the thread list's head, the GIL and everything the previous sample read (each thread's
// state, its data stack or frame objects, where its C frame was), so a stack that did not move
// much is walked from that one read; what the batch missed is read when met. Each thread's frame
// chain is walked by the version's frame model (`FrameChain`), code objects come from the
// `CodeCache` (checked again in one batch at the end of a walk), and frames are reported
// innermost first. Chains are bounded and checked for cycles, so torn or garbage memory ends in a
// `ReadFault`, never a hang.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// Where the GIL holder can be read.
package enum GILLocation: Sendable, Equatable {
  case unknown
  /// A PyThreadState* at this address (≤3.11).
  case threadStatePointer(RemoteAddress)
  /// A `_gil_runtime_state` at this address (3.12+).
  case gilState(RemoteAddress)
}

package final class StackWalker<Memory: MemoryReader> {
  /// The target's memory, read ahead (every read of this walker and of the readers built on it
  /// goes through it).
  package let reader: ReadAhead<Memory>
  package let layout: PythonLayout
  package let model: PythonTraits
  package let interpreter: RemoteAddress
  package let gil: GILLocation
  /// Python objects (names, strings, dicts, locals), read straight from the memory underneath:
  /// they are seldom in a round's blocks, and a lookup would only add to each read.
  package let objects: ObjectReader<Memory>
  /// The code objects met so far.
  package let codes: CodeCache
  /// The layout members the walk reads, checked present at attach.
  let offsets: WalkOffsets
  let chain: FrameChain
  /// Where glibc's struct pthread holds the kernel tid, for versions whose thread state does not
  /// (found by `PthreadTIDOffset.discover`); nil when unknown.
  package var pthreadTIDOffset: Int?
  /// 3.11+: OS thread ids a thread state claims that the process does not have, and the process's
  /// own id for that thread (0: unknown). A process forked without the interpreter being told (a
  /// uWSGI worker, a fork from C) keeps the forking thread's `native_thread_id`; the live process's
  /// sampler finds the real one (`ProcessSampler.checkThreadIDs`).
  package var threadIDCorrections: [Int32: Int32] = [:]
  /// `PyCode_Type`, when the binary exports it: frames whose code is not a code object are skipped.
  let codeType: RemoteAddress?
  /// What one walk keeps while it runs (reset for each thread).
  private var walk = WalkState()

  /// The memory underneath the read-ahead.
  package var memory: Memory { reader.base }

  /// Fails when the layout lacks a member the version's walk needs.
  package convenience init(
    memory: Memory, layout: PythonLayout, model: PythonTraits, interpreter: RemoteAddress, gil: GILLocation,
    codeType: RemoteAddress?
  ) throws(ReadFault) {
    self.init(
      memory: memory, layout: layout, model: model, offsets: try WalkOffsets(layout, model, gil: gil),
      interpreter: interpreter, gil: gil, codeType: codeType)
  }

  /// A walker with the members already resolved (the target resolves them when it attaches).
  init(
    memory: Memory, layout: PythonLayout, model: PythonTraits, offsets: WalkOffsets, interpreter: RemoteAddress,
    gil: GILLocation, codeType: RemoteAddress?
  ) {
    let reader = ReadAhead(memory, limits: (ReadLimits.guessedRanges, ReadLimits.guessedBytes))
    self.reader = reader
    self.layout = layout
    self.model = model
    self.interpreter = interpreter
    self.gil = gil
    self.codeType = codeType
    self.objects = ObjectReader(memory: memory, layout: layout, model: model)
    self.codes = CodeCache()
    self.offsets = offsets
    self.chain = FrameChain(offsets.frames, model: model)
    walk.heads = headRanges
  }

  /// The code object behind a Python frame's id.
  package func code(_ id: CodeID) -> CodeInfo { codes.code(id) }

  /// How long a cached code object is trusted before it is checked again.
  package var codeRevalidationNanoseconds: UInt64 {
    get { codes.revalidationNanoseconds }
    set { codes.revalidationNanoseconds = newValue }
  }

  /// The bytes of an interpreter frame a decode needs (`interpreterFrame(in:at:)`).
  package var interpreterFrameBytes: Int { chain.frameBytes }

  /// Bytes of a thread state one read takes (3.11/3.12 keep the root `_PyCFrame` inside the
  /// thread state: all of it is read to save a read).
  private var threadStateBytes: Int {
    let fields = offsets.threadStateFields
    if case .interpreter(let chain) = chain, chain.cframeCurrentFrame != nil {
      return Swift.min(4096, Swift.max(fields, offsets.tstateSize ?? 0))
    }
    return fields
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

  /// The ranges every sample starts with: the thread list's head and the GIL's state.
  private var headRanges: [(address: RemoteAddress, count: Int)] {
    var ranges = [(address: interpreter &+ UInt64(offsets.threadsHead), count: 8)]
    switch gil {
    case .unknown: break
    case .threadStatePointer(let address): ranges.append((address, 8))
    case .gilState(let address): if let members = offsets.gil { ranges.append((address, members.locked + 4)) }
    }
    return ranges
  }

  /// The PyThreadState* holding the GIL, from this round's reads.
  private func gilHolder() throws(ReadFault) -> RemoteAddress {
    switch gil {
    case .unknown: return 0
    case .threadStatePointer(let address): return try reader.view(at: address, count: 8).u64(0)
    case .gilState(let address):
      guard let members = offsets.gil else { return 0 }
      let state = try reader.view(at: address, count: members.locked + 4)
      return state.u32(members.locked) != 0 ? state.u64(members.lastHolder) : 0
    }
  }

  /// Walks every thread. `onlyGILHolder` stops after the holder (and skips the others).
  ///
  /// With `isIdle`, a thread that does not hold the GIL and whose OS thread id `isIdle` calls idle
  /// is not walked (`skippedAsIdle`): a caller that drops idle threads saves their frame reads,
  /// most of a round with many threads waiting for the GIL.
  package func sample(pid: Int32 = 0, onlyGILHolder: Bool = false, isIdle: ((Int32) -> Bool)? = nil) throws(ReadFault)
    -> [SampledThread]
  {
    walk.now = monotonicNanoseconds()
    let heads = walk.heads
    reader.begin(reading: heads)
    var cursor = try reader.view(at: heads[0].address, count: 8).u64(0)
    let holder = try gilHolder()
    var result: [SampledThread] = []
    var cycle = CycleDetector()
    var count = 0
    let stateBytes = threadStateBytes
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("thread list cycles") }
      count += 1
      guard count <= ReadLimits.threads else { throw .implausible("more than \(ReadLimits.threads) threads") }
      let state = try reader.view(at: cursor, count: stateBytes)
      reader.expect(cursor, stateBytes)
      let next = state.u64(offsets.tstateNext)
      if !onlyGILHolder || cursor == holder {
        result.append(try walkThread(cursor, state: state, pid: pid, ownsGIL: cursor == holder, isIdle: isIdle))
        if onlyGILHolder { break }
      }
      cursor = next
    }
    return result
  }

  /// Walks one thread on its own (a round of its own).
  package func walkThread(_ tstate: RemoteAddress, pid: Int32 = 0, ownsGIL: Bool) throws(ReadFault) -> SampledThread {
    walk.now = monotonicNanoseconds()
    reader.begin()
    let state = try reader.view(at: tstate, count: threadStateBytes)
    return try walkThread(tstate, state: state, pid: pid, ownsGIL: ownsGIL, isIdle: nil)
  }

  /// Walks a thread whose state was just read.
  private func walkThread(
    _ tstate: RemoteAddress, state: ByteView, pid: Int32, ownsGIL: Bool, isIdle: ((Int32) -> Bool)?
  ) throws(ReadFault) -> SampledThread {
    guard state.u64(offsets.tstateInterp) == interpreter else {
      throw .implausible("thread state of another interpreter")
    }
    walk.startThread()
    let threadID = state.u64(offsets.tstateThreadID)
    var native: Int32?
    if let nativeOffset = offsets.tstateNativeThreadID {
      let value = state.u64(nativeOffset)
      if value > 0 && value < UInt64(Int32.max) { native = Int32(value) }
      if !threadIDCorrections.isEmpty, let stale = native, let real = threadIDCorrections[stale] {
        native = real == 0 ? nil : real
      }
    }
    if native == nil, let offset = pthreadTIDOffset, threadID != 0 {
      // Before 3.11 the kernel tid is only in glibc's struct pthread: read with the next round too.
      native = pthreadTID(ofThread: threadID)
      reader.expect(threadID &+ UInt64(offset), 4)
    }
    var thread = SampledThread(
      pid: pid, threadState: tstate, threadID: threadID, osThreadID: native, ownsGIL: ownsGIL, frames: [])
    if !ownsGIL, let native, let isIdle, isIdle(native) {
      thread.skippedAsIdle = true
      thread.active = false
      return thread
    }
    if let dataStack = offsets.dataStack { try readDataStack(state, dataStack) }
    var frames: [SampledFrame] = []
    frames.reserveCapacity(walk.recentDepth)
    var shims: [RemoteAddress] = []
    var cut = false
    for attempt in 0..<2 {
      frames.removeAll(keepingCapacity: true)
      shims.removeAll(keepingCapacity: true)
      codes.clearPending()
      walk.deferValidation = attempt == 0
      switch chain {
      case .objects(let objects):
        cut = try objects.walk(from: state.u64(offsets.tstateFrame), source: self, into: &frames)
      case .interpreter(let interpreterChain):
        var first = state.u64(offsets.tstateFrame)
        if let cframeCurrentFrame = interpreterChain.cframeCurrentFrame {
          guard first != 0 else { break }
          // The current C frame lives on the thread's C stack, outside the thread state.
          let slot = first &+ UInt64(cframeCurrentFrame)
          first = try reader.view(at: slot, count: 8).u64(0)
          if attempt == 0 && (slot < tstate || slot >= tstate &+ UInt64(threadStateBytes)) { reader.expect(slot, 8) }
        }
        let end = try interpreterChain.walk(from: first, source: self, into: &frames, shims: &shims)
        cut = end.cut
        thread.incomplete = model.stacksEndInShim && !frames.isEmpty && !end.cut && !end.endsInShim
      }
      if try validatePending() { break }
    }
    walk.flushStrayFrames(to: reader)
    walk.recentDepth = Swift.max(8, Swift.min(frames.count + 4, ReadLimits.reservedFrames))
    if chain.framesOnHeap {
      // Frame objects live anywhere on the heap: each is read where it was next time.
      for frame in frames.prefix(ReadLimits.guessedFrameObjects) { reader.expect(frame.address, chain.frameBytes) }
    }
    thread.frames = frames
    thread.shimAddresses = shims
    if cut { thread.roots = [ReadLimits.cutRoot] }
    return thread
  }

  /// 3.11+: the live part of the thread's frame data stack, with its chunk's header (for the
  /// chunk's size), read in one read and kept for the frames found in it; the next round reads
  /// it again with a little more (a frame or two deeper), but not past the chunk.
  private func readDataStack(_ state: ByteView, _ members: (chunk: Int, top: Int, chunkSize: Int)) throws(ReadFault) {
    let chunk = state.u64(members.chunk)
    let top = state.u64(members.top)
    guard chunk != 0, top > chunk, top - chunk <= 1 << 20 else { return }
    guard
      let bytes = reader.cached(at: chunk, count: Int(top - chunk))
        ?? (try? reader.view(at: chunk, count: Int(top - chunk), keeping: true))
    else { return }
    let size = bytes.u64(members.chunkSize)
    let end = Swift.max(Swift.min(top &+ ReadLimits.dataStackSlack, chunk &+ Swift.min(size, 1 << 20)), top)
    reader.expect(chunk, Int(end - chunk))
    walk.expectedChunk = chunk..<end
  }

  /// The kernel tid in the struct pthread of Python thread `threadID` (its pthread_t); nil when
  /// unknown or implausible.
  package func pthreadTID(ofThread threadID: UInt64) -> Int32? {
    guard let offset = pthreadTIDOffset, threadID != 0 else { return nil }
    let address = threadID &+ UInt64(offset)
    guard let value = reader.cached(at: address, count: 4)?.u32(0) ?? (try? memory.readUInt32(at: address)),
      value > 0, value < UInt32(Int32.max)
    else { return nil }
    return Int32(value)
  }

  /// A walked thread's OS id: `native_thread_id` (3.11+), else glibc's struct pthread's `tid`
  /// once `pthreadTIDOffset` is known; unchecked against the process's task list.
  package func osThreadID(of thread: SampledThread) -> Int32? {
    thread.osThreadID ?? pthreadTID(ofThread: thread.threadID)
  }

  /// Checks, in one batch, that the cached code objects the walk used are still the ones at
  /// their addresses. Stale ones are dropped; returns false when the walk must be redone.
  private func validatePending() throws(ReadFault) -> Bool {
    let pending = codes.pending
    if pending.isEmpty { return true }
    var seen = Set<RemoteAddress>()
    var distinct: [(address: RemoteAddress, id: CodeID)] = []
    for entry in pending where seen.insert(entry.address).inserted { distinct.append(entry) }
    let ranges: [ReadRange] = distinct.map { ($0.address &+ UInt64(offsets.code.filename), 16) }
    let identities = memory.readMany(ranges)
    var allValid = true
    let nameDelta = offsets.code.name - offsets.code.filename
    for (entry, bytes) in zip(distinct, identities) {
      let identity = bytes.map { ($0.u64(0), $0.u64(nameDelta)) } ?? (0, 0)
      if !codes.confirm(entry.id, identity: identity, now: walk.now) { allValid = false }
    }
    return allValid
  }

  // .. code objects ...........................................................

  /// The cache id of the code object at `address`, reading it when new or replaced; nil for
  /// something that is not a code object with readable names (shims, torn frames). A cached one
  /// due for a check is checked now, or queued for the walk's batch check.
  func resolveCode(at address: RemoteAddress, deferringCheck: Bool) throws(ReadFault) -> CodeID? {
    guard address != 0 else { return nil }
    switch codes.lookup(address, now: walk.now) {
    case .fresh(let id): return id
    case .due(let id):
      if deferringCheck {
        codes.queueCheck(address, id)
        return id
      }
      // The filename and name pointers are adjacent in every version.
      let identity = try memory.readBytes(at: address &+ UInt64(offsets.code.filename), count: 16)
      let view = ByteView(identity)
      if codes.confirm(id, identity: (view.u64(0), view.u64(offsets.code.name - offsets.code.filename)), now: walk.now)
      {
        return id
      }
    case .unknown: break
    }
    guard let info = try? readCode(at: address) else { return nil }
    return codes.insert(info, at: address, now: walk.now)
  }

  func readCode(at address: RemoteAddress) throws(ReadFault) -> CodeInfo {
    if let codeType {
      guard try memory.readUInt64(at: address &+ UInt64(offsets.objectType)) == codeType else {
        throw .implausible("not a code object")
      }
    }
    let members = offsets.code
    let code = ByteView(try memory.readBytes(at: address, count: members.readSize))
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
    var info = CodeInfo(
      name: name, shortName: shortName, filename: filename, firstLine: int32(members.firstlineno), lineTable: table,
      firstTraceable: Swift.max(0, int32(members.firstTraceable)), identity: (filenamePointer, namePointer),
      argumentCount: int32(members.argcount), localCount: int32(members.nlocals),
      varnames: pointer(members.varnames), localsKinds: pointer(members.localspluskinds))
    info.cellvars = pointer(members.cellvars)
    info.freevars = pointer(members.freevars)
    return info
  }

  /// One interpreter frame on its own (3.11+: the frame a coroutine or generator embeds), decoded
  /// from bytes already read (`frame` starts at the frame, which is at `address`, and holds at
  /// least `interpreterFrameBytes`). Nil when its code is not a readable code object. Also the
  /// frame's instruction pointer (`prev_instr` on 3.11/3.12, `instr_ptr` after).
  package func interpreterFrame(in frame: ByteView, at address: RemoteAddress) throws(ReadFault) -> (
    frame: SampledFrame, instruction: RemoteAddress
  )? {
    guard case .interpreter(let interpreterChain) = chain else { return nil }
    walk.now = monotonicNanoseconds()
    walk.deferValidation = false
    return try interpreterChain.decode(frame, at: address, source: self)
  }
}

extension StackWalker: FrameSource {
  func frame(at address: RemoteAddress) throws(ReadFault) -> ByteView {
    let size = chain.frameBytes
    // A frame outside the data-stack range expected for next time (a deep stack spilled into
    // older chunks, or an entry frame on the C stack) is expected too, whether or not this round
    // read it ahead. Neighbouring ones on a page are gathered into one range: a deep stack costs
    // a range per page and no bytes beyond its frames (the target writes those pages from another
    // CPU: every line copied costs). Frame objects (≤3.10) are all expected after the walk.
    if !chain.framesOnHeap, !walk.expectedChunk.contains(address) {
      walk.noteStrayFrame(address, size, to: reader)
    }
    return try reader.view(at: address, count: size)
  }

  func code(at address: RemoteAddress) throws(ReadFault) -> CodeID? {
    try resolveCode(at: address, deferringCheck: walk.deferValidation)
  }

  func line(of id: CodeID, at lasti: Int) -> Int32 { codes.line(of: id, at: lasti, format: model.lineTableFormat) }

  func firstTraceable(of id: CodeID) -> Int { codes.firstTraceable(of: id) }

  func firstLine(of id: CodeID) -> Int { codes.firstLine(of: id) }
}

/// What a walk keeps while it runs.
private struct WalkState {
  /// The ranges every sample starts with (`StackWalker.headRanges`).
  var heads: [(address: RemoteAddress, count: Int)] = []
  /// The monotonic time of the current sample (for the code cache).
  var now: UInt64 = 0
  /// Whether cached code objects due for a check are queued (first attempt) or checked at once.
  var deferValidation = false
  /// The deepest stack of the previous thread walked: frame arrays are sized once, not grown.
  var recentDepth = 8
  /// The thread's data-stack range expected for the next round.
  var expectedChunk: Range<RemoteAddress> = 0..<0
  /// Frames met outside `expectedChunk`, gathered per page into one range to expect.
  var strayFrames: Range<RemoteAddress> = 0..<0

  mutating func startThread() {
    expectedChunk = 0..<0
    strayFrames = 0..<0
  }

  mutating func noteStrayFrame<Memory>(_ address: RemoteAddress, _ size: Int, to reader: ReadAhead<Memory>) {
    let end = address &+ UInt64(size)
    if !strayFrames.isEmpty,
      address >> 12 == strayFrames.lowerBound >> 12 || end >> 12 == strayFrames.upperBound >> 12
    {
      strayFrames = Swift.min(address, strayFrames.lowerBound)..<Swift.max(end, strayFrames.upperBound)
    } else {
      flushStrayFrames(to: reader)
      if end > address { strayFrames = address..<end }
    }
  }

  mutating func flushStrayFrames<Memory>(to reader: ReadAhead<Memory>) {
    if !strayFrames.isEmpty { reader.expect(strayFrames.lowerBound, Int(strayFrames.count)) }
    strayFrames = 0..<0
  }
}
