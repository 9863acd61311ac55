//===--- FrameChains.swift - one walker per frame model -------------------===//
//
// How a thread's frames are chained differs by version (`PythonTraits.FrameModel`): ≤3.10 a
// chain of frame objects on the heap (`f_back`), 3.11+ a chain of interpreter frames, most of
// them in the thread's data stack, with shim frames the interpreter pushes where it was entered
// from C. Each model is walked by its own type here, over the frames the read-ahead holds (or
// reads on a miss); both report frames innermost first through `FrameSink`, and neither knows
// of versions: what differs within a model (owners, tags, units) is data from `PythonTraits`.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// Where a frame walk puts what it finds, and where it reads frames and code objects from.
protocol FrameSource {
  /// The bytes of the frame at `address` (`FrameChain.frameBytes` of them).
  func frame(at address: RemoteAddress) throws(ReadFault) -> ByteView
  /// The id of the code object at `address`, nil when it is not one.
  func code(at address: RemoteAddress) throws(ReadFault) -> CodeID?
  /// The line of instruction offset `lasti` (bytes) of code object `id`.
  func line(of id: CodeID, at lasti: Int) -> Int32
  /// `_co_firsttraceable` of code object `id`.
  func firstTraceable(of id: CodeID) -> Int
  /// The first line of code object `id`.
  func firstLine(of id: CodeID) -> Int
}

/// A thread's frame chain, for the version's frame model.
enum FrameChain {
  case objects(FrameObjectChain)
  case interpreter(InterpreterFrameChain)

  init(_ offsets: WalkOffsets.Frames, model: PythonTraits) {
    switch offsets {
    case .objects(let back, let code, let lasti):
      self = .objects(
        FrameObjectChain(
          back: back, code: code, lasti: lasti, lastiUnit: model.instructionAddressing == .lastiCodeUnitIndex ? 2 : 1))
    case .interpreter(let cframe, let previous, let code, let instrPtr, let owner, let isEntry, let codeAdaptive):
      self = .interpreter(
        InterpreterFrameChain(
          cframeCurrentFrame: cframe, previous: previous, code: code, instrPtr: instrPtr, owner: owner,
          isEntry: isEntry, codeAdaptive: codeAdaptive,
          shimOwners: model.shimFrameOwners.reduce(0) { $1 < 64 ? $0 | 1 << UInt64($1) : $0 },
          generatorOwner: model.generatorFrameOwner.map(Int.init) ?? -1,
          executableMask: ~(model.stackRef?.tagBits ?? 0), codeUnitBytes: UInt64(model.codeUnitSize)))
    }
  }

  /// Bytes of a frame one read takes.
  var frameBytes: Int {
    switch self {
    case .objects(let chain): chain.frameBytes
    case .interpreter(let chain): chain.frameBytes
    }
  }

  /// Whether frames live on the heap, each anywhere (≤3.10), rather than in a data stack.
  var framesOnHeap: Bool {
    if case .objects = self { return true }
    return false
  }
}

/// ≤3.10: `PyFrameObject`s linked by `f_back`, each with its code object and `f_lasti`.
struct FrameObjectChain {
  let back: Int
  let code: Int
  let lasti: Int
  /// 2 where `f_lasti` counts code units (3.10), 1 where it counts bytes.
  let lastiUnit: Int

  var frameBytes: Int { Swift.max(back, code, lasti) + 8 }

  /// Walks from the first frame; true when it stopped at `ReadLimits.frames` with more to go.
  func walk<Source: FrameSource>(
    from first: RemoteAddress, source: Source, into frames: inout [SampledFrame]
  ) throws(ReadFault) -> Bool {
    var cursor = first
    var cycle = CycleDetector()
    var steps = 0
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("frame chain cycles") }
      steps += 1
      if steps > ReadLimits.frames { return true }
      let frame = try source.frame(at: cursor)
      if let id = try source.code(at: frame.u64(code)) {
        let offset = Int(frame.i32(lasti)) &* lastiUnit
        let line = offset < 0 ? Int32(truncatingIfNeeded: source.firstLine(of: id)) : source.line(of: id, at: offset)
        frames.append(.python(code: id, line: line, address: cursor, isEntry: true))
      }
      cursor = frame.u64(back)
    }
    return false
  }
}

/// 3.11+: `_PyInterpreterFrame`s linked by `previous`, each with its executable (a code object,
/// tagged on 3.14+), instruction pointer and owner; shim frames (owners in `shimOwners`) are
/// skipped and mark the frame above them as entered from C.
struct InterpreterFrameChain {
  /// 3.11/3.12: the thread state points at a `_PyCFrame`, whose `current_frame` starts the chain.
  let cframeCurrentFrame: Int?
  let previous: Int
  let code: Int
  let instrPtr: Int
  let owner: Int
  /// 3.11: `is_entry`.
  let isEntry: Int?
  /// `co_code_adaptive`, where instruction offsets count from.
  let codeAdaptive: Int
  /// The shim owners as a bit mask (bit n: owner n is a shim).
  let shimOwners: UInt64
  /// `FRAME_OWNED_BY_GENERATOR`, or a value no owner byte has.
  let generatorOwner: Int
  /// Clears a `_PyStackRef`'s tag bits (all ones before 3.14).
  let executableMask: UInt64
  let codeUnitBytes: UInt64

  var frameBytes: Int { Swift.max(previous, code, instrPtr, owner, isEntry ?? 0) + 8 }

  /// Walks from the first frame; the addresses of the shims skipped go to `shims`. `cut`: it
  /// stopped at `ReadLimits.frames` with more to go; `endsInShim`: the last frame it met was a
  /// shim (on 3.12+ every thread's whole chain ends in one, the entry frame of its outermost
  /// evaluation, so a chain that does not was read while the thread was between frames).
  func walk<Source: FrameSource>(
    from first: RemoteAddress, source: Source, into frames: inout [SampledFrame], shims: inout [RemoteAddress]
  ) throws(ReadFault) -> (cut: Bool, endsInShim: Bool) {
    var cursor = first
    var cycle = CycleDetector()
    var steps = 0
    var lastWasShim = false
    while cursor != 0 {
      if cycle.visit(cursor) { throw .implausible("frame chain cycles") }
      steps += 1
      if steps > ReadLimits.frames { return (true, false) }
      let frame = try source.frame(at: cursor)
      let next = frame.u64(previous)
      defer { cursor = next }
      let ownerByte = frame.u8(owner)
      lastWasShim = ownerByte < 64 && shimOwners & (1 << UInt64(ownerByte)) != 0
      if lastWasShim {
        // The frame above an interpreter shim was entered from C.
        if let last = frames.indices.last { frames[last] = frames[last].entered() }
        if shims.count < ReadLimits.frames { shims.append(cursor) }
        continue
      }
      let codeAddress = frame.u64(code) & executableMask
      guard let id = try source.code(at: codeAddress) else { continue }
      let codeStart = codeAddress &+ UInt64(codeAdaptive)
      let instruction = frame.u64(instrPtr)
      // An incomplete frame (its prologue has not run yet) is not shown by CPython either.
      let firstTraceable = codeStart &+ codeUnitBytes &* UInt64(source.firstTraceable(of: id))
      if Int(ownerByte) != generatorOwner && instruction < firstTraceable { continue }
      let line = line(of: id, instruction: instruction, codeStart: codeStart, source: source)
      let entry = isEntry.map { frame.u8($0) != 0 } ?? false
      frames.append(.python(code: id, line: line, address: cursor, isEntry: entry))
    }
    if let last = frames.indices.last { frames[last] = frames[last].entered() }
    return (false, lastWasShim)
  }

  /// One frame on its own (3.11+: the frame a coroutine or generator embeds), from its bytes
  /// (`frame`, at `address`, at least `frameBytes` of them); nil when its code is not a readable
  /// code object. Also its instruction pointer.
  func decode<Source: FrameSource>(
    _ frame: ByteView, at address: RemoteAddress, source: Source
  ) throws(ReadFault) -> (frame: SampledFrame, instruction: RemoteAddress)? {
    let codeAddress = frame.u64(code) & executableMask
    guard let id = try source.code(at: codeAddress) else { return nil }
    let instruction = frame.u64(instrPtr)
    let line = line(of: id, instruction: instruction, codeStart: codeAddress &+ UInt64(codeAdaptive), source: source)
    return (.python(code: id, line: line, address: address, isEntry: false), instruction)
  }

  /// The line of the instruction at `instruction`. A torn or garbage instruction pointer can be
  /// anywhere: an offset past any real code object means "line unknown" (the first line).
  private func line<Source: FrameSource>(
    of id: CodeID, instruction: RemoteAddress, codeStart: RemoteAddress, source: Source
  ) -> Int32 {
    let offset = instruction &- codeStart
    guard instruction >= codeStart, offset < 1 << 31 else {
      return Int32(truncatingIfNeeded: source.firstLine(of: id))
    }
    return source.line(of: id, at: Int(offset))
  }
}

extension SampledFrame {
  /// The same Python frame, marked as entered from C.
  func entered() -> SampledFrame {
    guard case .python(let code, let line, let address, _) = self else { return self }
    return .python(code: code, line: line, address: address, isEntry: true)
  }
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
