//===--- FuzzTests.swift - torn and garbage memory through the walkers ----===//
//
// A seeded random mutator, run as a test. For each interpreter, a fixture process (threads with
// names, a few levels of frames, locals of every kind the repr renderer knows) is stopped and walked
// once through a `RecordingMemory`: every thread and frame (twice, so the code-object re-validation
// and the ≤3.10 frame prefetch are recorded too), the GIL, the `threading._active` names and every
// frame's locals. The recorded ranges form a `SnapshotMemory`; walked unchanged it must give exactly
// the live results. Then each input is that snapshot with 1–8 mutations — flipped bits, random
// words, pointers redirected to other recorded addresses (cycles, type confusion), counts and
// lengths set huge, bytes scribbled or copied from elsewhere, regions cut short or deleted, and (a
// third of them) extreme values written into the very fields the live walk read — and the
// same code the sampler uses runs over it: `sample()` (twice, the second re-validating cached code
// objects), `sample(onlyGILHolder:)`, `sample(isIdle:)`, `threadNames()`, and `locals(of:budget:)`
// both for the frames that walk found and for the real frames with clean code objects (so the repr
// renderer meets mutated objects even when the mutated frame chain is unreadable).
//
// Asserted for every input: no crash (a trap kills the test run; a handler first prints which input
// it was), every call returns within `callLimit` of thread CPU time (a hang is reported by a
// watchdog), and every result is bounded: threads and frames within ReadLimits, names within their
// read limits, at most 512 locals, every repr within its budget plus a small constant.
//
// The walks go through `IndexedMemory` (SnapshotMemory's regions behind a binary search; the same
// answers, fast enough for a million inputs). Targeted regressions for what the fuzzer found sit
// at the end: hostile int digit counts, garbage instruction pointers, huge line-table deltas.
//
// Default: `defaultInputs` inputs per interpreter. Long run (documented in README's Safety section):
//   SPYGLASS_FUZZ_ITERATIONS=1000000 swift test -c release -Xswiftc -enable-testing --filter Fuzz
// SPYGLASS_FUZZ_ITERATIONS is the total over all interpreters; SPYGLASS_FUZZ_SEED (default fixed),
// SPYGLASS_FUZZ_ONLY (interpreter labels) and SPYGLASS_FUZZ_START (first input index) reproduce a
// reported input's mutations (on a fresh capture, so addresses differ but structures match);
// SPYGLASS_FUZZ_VERBOSE=1 prints each input's mutations.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassLayouts
import SpyglassModel
import SpyglassProcess
import SpyglassStacks
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

// MARK: - Settings

enum FuzzSettings {
  static let environment = ProcessInfo.processInfo.environment

  /// Inputs per interpreter in the default run.
  static let defaultInputs = 1200

  /// The interpreters fuzzed: every installed one (at least 2.7, 3.8, 3.10, 3.11, 3.12, 3.13).
  static let interpreters: [PythonInterpreter] = {
    let all = PythonInterpreter.all()
    guard let only = environment["SPYGLASS_FUZZ_ONLY"], !only.isEmpty else { return all }
    let labels = Set(only.split(separator: ",").map(String.init))
    return all.filter { labels.contains($0.label) }
  }()

  /// Prints every input's mutations before walking it (to reproduce a finding).
  static var verbose: Bool { environment["SPYGLASS_FUZZ_VERBOSE"] == "1" }

  static let required: [(Int, Int)] = [(2, 7), (3, 8), (3, 10), (3, 11), (3, 12), (3, 13)]

  /// Inputs for each interpreter.
  static var inputsPerInterpreter: Int {
    if let total = environment["SPYGLASS_FUZZ_ITERATIONS"].flatMap({ Int($0) }), total > 0 {
      return (total + Swift.max(1, interpreters.count) - 1) / Swift.max(1, interpreters.count)
    }
    return defaultInputs
  }

  static var seed: UInt64 {
    guard let text = environment["SPYGLASS_FUZZ_SEED"] else { return 0x5EED_F022_2024_0006 }
    return text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) ?? 0 : UInt64(text) ?? 0
  }

  static var start: Int { environment["SPYGLASS_FUZZ_START"].flatMap { Int($0) } ?? 0 }

  /// Thread CPU time allowed for one call of a walker function.
  static let callLimit = 1.0

  /// A call still running after this much wall time is reported as a hang (and the run aborted).
  static let hangSeconds = 60.0

  /// The locals budget (128 per -l, as `dump -ll`).
  static let budget = 256
  /// How far past its budget a repr may run (closing brackets and the `...` markers of nested
  /// containers).
  static let reprSlack = 64
}

// MARK: - The live fixture

/// Threads with names, recursion and locals of every kind the repr renderer distinguishes.
/// Runs on 2.7 and 3.x.
private let fuzzFixtureSource = #"""
  import sys
  import threading
  import time

  class Thing(object):
      def __init__(self):
          self.number = 7
          self.text = "attribute"

  arrived = []
  lock = threading.Lock()

  def leaf(depth, payload):
      integer = 42
      negative = -12345678901
      big = 2 ** 100
      huge = -(7 ** 300)
      real = 3.25
      flag = True
      nothing = None
      ascii_text = "plain ascii"
      latin = u"caf\xe9"
      ucs2 = u"\u043a\u0438\u0440"
      ucs4 = u"\U0001F4A9 pile"
      raw = b"by\x00tes\xff"
      items = [1, "two", [3, [4, [5, [6, [7, [8, [9, [10, [11]]]]]]]]]]
      pair = (1,)
      mapping = {"key": [1, 2], 3: None, "nested": {"a": (1, 2)}}
      numbers = set([1, 2, 3])
      frozen = frozenset(["x"])
      thing = Thing()
      cycle = []
      cycle.append(cycle)
      long_text = "x" * 5000
      empty = ()
      captured = "in a cell"
      def closure():
          return captured
      lock.acquire()
      arrived.append(depth)
      lock.release()
      time.sleep(100000)
      return closure

  def middle(depth, payload):
      if depth > 0:
          return middle(depth - 1, payload)
      return leaf(depth, payload)

  def worker(index):
      middle(index + 1, {"worker": index})

  for index in range(3):
      thread = threading.Thread(target=worker, args=(index,), name="fuzz-worker-%d" % index)
      thread.daemon = True
      thread.start()
  while len(arrived) < 3:
      time.sleep(0.01)
  sys.stdout.write("READY threads=4\n")
  sys.stdout.flush()
  middle(2, "main")
  """#

/// SnapshotMemory's regions with a binary search: the same answers for regions that do not overlap
/// (a recording's never do), fast enough for a million inputs (SnapshotMemory scans every region).
struct IndexedMemory: MemoryReader {
  let regions: [SnapshotMemory.Region]

  init(_ snapshot: SnapshotMemory) { regions = snapshot.regions }

  func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    let (end, overflow) = address.addingReportingOverflow(UInt64(count))
    guard !overflow, address != 0 else { throw .unmapped(address: address) }
    var low = 0
    var high = regions.count
    while low < high {
      let mid = (low + high) / 2
      if regions[mid].start <= address { low = mid + 1 } else { high = mid }
    }
    guard low > 0 else { throw .unmapped(address: address) }
    let found = low - 1
    guard end <= regions[found].end else { throw .unmapped(address: address) }
    let offset = Int(address - regions[found].start)
    regions[found].bytes.withUnsafeBytes { source in
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
    }
  }
}

/// A MemoryReader whose memory can be replaced between calls (the walker's own is immutable).
final class SwappableMemory: MemoryReader {
  var current: IndexedMemory
  init(_ memory: IndexedMemory) { current = memory }
  func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    try current.read(at: address, into: buffer)
  }
}

/// What one walk produced, in comparable form.
struct WalkOutcome: Equatable, CustomStringConvertible {
  var threads: [[String]] = []
  var names: [UInt64: String] = [:]
  var locals: [String] = []

  var description: String {
    "threads: \(threads)\nnames: \(names)\nlocals: \(locals.prefix(40))"
  }
}

/// A snapshot of a live interpreter's walk, and everything needed to walk it again.
struct FuzzSeed {
  let python: PythonInterpreter
  let snapshot: SnapshotMemory
  let layout: PythonLayout
  let model: PythonTraits
  let interpreter: RemoteAddress
  let gil: GILLocation
  let codeType: RemoteAddress?
  let live: WalkOutcome
  let reads: Int
  /// Every range the live walk read (the fields the walkers use).
  let readRanges: [(address: RemoteAddress, count: Int)]

  func makeWalker<M: MemoryReader>(_ memory: M) -> StackWalker<M> {
    // The seed's layout was walked live, so it has every member the walk needs.
    guard
      let walker = try? StackWalker(
        memory: memory, layout: layout, model: model, interpreter: interpreter, gil: gil, codeType: codeType)
    else { fatalError("the seed's layout lacks a member the walk needs") }
    // Re-validate cached code objects on every walk, so the second walk takes that path.
    walker.codeRevalidationNanoseconds = 0
    return walker
  }

  /// Walks `walker` as the capture did: two samples, the GIL holder, names, every frame's locals.
  static func walk<M: MemoryReader>(_ walker: StackWalker<M>) throws(ReadFault) -> WalkOutcome {
    _ = try walker.sample()
    let threads = try walker.sample()
    _ = try walker.sample(onlyGILHolder: true)
    var outcome = WalkOutcome()
    outcome.names = try walker.threadNames()
    for thread in threads.sorted(by: { $0.threadID < $1.threadID }) {
      outcome.threads.append(
        thread.frames.map { frame in
          let code = walker.code(frame.code!)
          return "\(code.name) (\(code.filename):\(frame.line))"
        })
      for frame in thread.frames {
        for variable in walker.locals(of: frame, budget: FuzzSettings.budget) {
          outcome.locals.append("\(variable.name)=\(variable.repr ?? "<unreadable>")")
        }
      }
    }
    return outcome
  }

  private static let cacheLock = NSLock()
  nonisolated(unsafe) private static var cache: [String: FuzzSeed] = [:]

  /// One capture per interpreter for the whole run (the tests only read it).
  static func cached(_ python: PythonInterpreter) throws -> FuzzSeed {
    cacheLock.lock()
    if let seed = cache[python.label] {
      cacheLock.unlock()
      return seed
    }
    cacheLock.unlock()
    let seed = try capture(python)
    cacheLock.lock()
    defer { cacheLock.unlock() }
    if let existing = cache[python.label] { return existing }
    cache[python.label] = seed
    return seed
  }

  /// Starts the fixture, stops it (SIGSTOP) and records one full walk.
  static func capture(_ python: PythonInterpreter) throws -> FuzzSeed {
    let folder = NSTemporaryDirectory() + "spyglass-fuzz-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let script = folder + "/fuzz_target.py"
    try fuzzFixtureSource.write(toFile: script, atomically: true, encoding: .utf8)
    let process = try PythonProcess(python, script: script)
    defer { process.stop() }
    try process.waitUntilSleeping(threadCount: 4)
    try process.suspend()
    let target: LiveTarget
    do { target = try LiveTarget.attach(pid: process.pid) } catch {
      throw TestSupportError("\(python): cannot attach: \(error)")
    }
    let recorder = RecordingMemory(ProcessMemory(pid: process.pid))
    let seed = FuzzSeed(
      python: python, snapshot: SnapshotMemory(), layout: target.layout, model: target.model,
      interpreter: target.interpreter, gil: target.gil, codeType: target.codeType, live: WalkOutcome(), reads: 0,
      readRanges: [])
    let live: WalkOutcome
    do { live = try walk(seed.makeWalker(recorder)) } catch {
      throw TestSupportError("\(python): the live walk failed: \(error)")
    }
    return FuzzSeed(
      python: python, snapshot: recorder.snapshot(), layout: target.layout, model: target.model,
      interpreter: target.interpreter, gil: target.gil, codeType: target.codeType, live: live,
      reads: recorder.readCount, readRanges: recorder.readRanges)
  }
}

// MARK: - Random numbers and mutations

/// SplitMix64: small, fast, and good enough to drive a mutator reproducibly.
struct FuzzRandom: RandomNumberGenerator {
  private var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// One change to a snapshot. Offsets are into the region's bytes; out-of-range ones are skipped.
enum Mutation: CustomStringConvertible {
  case flipBit(region: Int, offset: Int, bit: Int)
  case setWord(region: Int, offset: Int, value: UInt64)
  case setWord32(region: Int, offset: Int, value: UInt32)
  case redirect(region: Int, offset: Int, to: UInt64)
  case hugeLength(region: Int, offset: Int, value: UInt64)
  case scribble(region: Int, offset: Int, length: Int, seed: UInt64)
  case copy(from: Int, fromOffset: Int, to: Int, toOffset: Int, length: Int)
  case truncate(region: Int, length: Int)
  case delete(region: Int)

  var description: String {
    func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
    switch self {
    case .flipBit(let r, let o, let b): return "flip bit \(b) of region \(r)+\(o)"
    case .setWord(let r, let o, let v): return "word region \(r)+\(o) = \(hex(v))"
    case .setWord32(let r, let o, let v): return "int32 region \(r)+\(o) = \(hex(UInt64(v)))"
    case .redirect(let r, let o, let to): return "pointer region \(r)+\(o) -> \(hex(to))"
    case .hugeLength(let r, let o, let v): return "length region \(r)+\(o) = \(hex(v))"
    case .scribble(let r, let o, let n, _): return "scribble \(n) bytes at region \(r)+\(o)"
    case .copy(let f, let fo, let t, let to, let n): return "copy \(n) bytes region \(f)+\(fo) -> \(t)+\(to)"
    case .truncate(let r, let n): return "truncate region \(r) to \(n) bytes"
    case .delete(let r): return "delete region \(r)"
    }
  }
}

/// Knows where the pointers and the small numbers (counts, lengths, sizes) of a snapshot are.
struct Mutator {
  let base: SnapshotMemory
  /// 8-aligned words holding an address inside the snapshot.
  private var pointerSlots: [(region: Int32, offset: Int32)] = []
  /// 8-aligned words holding 1..<65536: sizes, lengths, counts, indices.
  private var countSlots: [(region: Int32, offset: Int32)] = []
  /// Addresses worth pointing at: every pointer value seen and every region start.
  private var targets: [UInt64] = []

  static let hugeValues: [UInt64] = [
    1 << 12, (1 << 12) + 1, 1 << 16, (1 << 16) + 1, 1 << 20, 16 << 20, (16 << 20) + 1, 1 << 31, 1 << 32, 1 << 40,
    1 << 62, UInt64(Int64.max), 0x8000_0000_0000_0000, UInt64.max, UInt64.max - 7,
  ]

  /// Where the walk read, as (region, offset, length): a mutation aimed here changes a field the
  /// walkers use (a frame's back link, a code object's name, a dict's size), not an unread byte.
  private var fieldReads: [(region: Int32, offset: Int32, count: Int32)] = []

  init(_ base: SnapshotMemory, reads: [(address: RemoteAddress, count: Int)] = []) {
    self.base = base
    let starts = base.regions.map(\.start)
    func regionIndex(_ address: UInt64) -> Int? {
      var low = 0
      var high = starts.count
      while low < high {
        let mid = (low + high) / 2
        if starts[mid] <= address { low = mid + 1 } else { high = mid }
      }
      guard low > 0, address < base.regions[low - 1].end else { return nil }
      return low - 1
    }
    for read in reads {
      guard read.count > 0, let index = regionIndex(read.address) else { continue }
      let offset = Int(read.address - base.regions[index].start)
      let count = Swift.min(read.count, base.regions[index].bytes.count - offset, 1 << 16)
      fieldReads.append((Int32(index), Int32(offset), Int32(count)))
    }
    func inside(_ value: UInt64) -> Bool {
      // The last region starting at or below value.
      var low = 0
      var high = starts.count
      while low < high {
        let mid = (low + high) / 2
        if starts[mid] <= value { low = mid + 1 } else { high = mid }
      }
      guard low > 0 else { return false }
      return value < base.regions[low - 1].end
    }
    var seen = Set<UInt64>()
    for (index, region) in base.regions.enumerated() {
      targets.append(region.start)
      let bytes = region.bytes
      var offset = Int((8 - region.start % 8) % 8)
      while offset + 8 <= bytes.count {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        if value > 0 && value < 65536 {
          countSlots.append((Int32(index), Int32(offset)))
        } else if value >= 0x1000, inside(value) {
          pointerSlots.append((Int32(index), Int32(offset)))
          if seen.insert(value).inserted && targets.count < 200_000 { targets.append(value) }
        }
        offset += 8
      }
    }
  }

  var summary: String {
    "\(base.regions.count) regions, \(base.byteCount) bytes, \(pointerSlots.count) pointers, \(countSlots.count) counts, "
      + "\(fieldReads.count) field reads"
  }

  /// Values that break assumptions: zero, all ones, sign bits, huge sizes, and pointers elsewhere.
  private func nastyValue(_ rng: inout FuzzRandom, near old: UInt64) -> UInt64 {
    switch rng.next() % 10 {
    case 0: return 0
    case 1: return UInt64.max
    case 2: return 0x8000_0000_0000_0000
    case 3: return UInt64(Int64.max)
    case 4: return Self.hugeValues[Int(rng.next() % UInt64(Self.hugeValues.count))]
    case 5: return anyTarget(&rng)
    case 6: return old &+ (rng.next() % 64) &- 32  // a little off
    case 7: return old ^ (1 << (rng.next() % 64))
    case 8: return rng.next() & 0xFFFF_FFFF
    default: return rng.next()
    }
  }

  /// A word of a field the walk read, set to a nasty value.
  private func fieldMutation(_ rng: inout FuzzRandom) -> Mutation? {
    guard !fieldReads.isEmpty else { return nil }
    let read = fieldReads[Int(rng.next() % UInt64(fieldReads.count))]
    let region = Int(read.region)
    // A word-sized field at a random 4-byte step inside the read (fields are 4 or 8 bytes).
    let steps = Swift.max(1, Int(read.count) / 4)
    let offset = Int(read.offset) + 4 * Int(rng.next() % UInt64(steps))
    let bytes = base.regions[region].bytes
    var old: UInt64 = 0
    if offset + 8 <= bytes.count { for i in 0..<8 { old |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) } }
    if rng.next() % 4 == 0 {
      // A 32-bit field (a line number, an instruction offset, a kind, a length).
      let value = nastyValue(&rng, near: old & 0xFFFF_FFFF) & 0xFFFF_FFFF
      return .setWord32(region: region, offset: offset, value: UInt32(truncatingIfNeeded: value))
    }
    return .setWord(region: region, offset: offset, value: nastyValue(&rng, near: old))
  }

  /// 1–8 mutations, mostly few.
  func mutations(_ rng: inout FuzzRandom) -> [Mutation] {
    let count = 1 + Int(rng.next() % 8) / (1 + Int(rng.next() % 3))
    return (0..<count).map { _ in mutation(&rng) }
  }

  private func anyRegion(_ rng: inout FuzzRandom) -> Int { Int(rng.next() % UInt64(base.regions.count)) }

  private func anyOffset(_ region: Int, _ rng: inout FuzzRandom, aligned: Bool = false) -> Int {
    let count = base.regions[region].bytes.count
    guard count > 0 else { return 0 }
    let offset = Int(rng.next() % UInt64(count))
    return aligned ? offset & ~7 : offset
  }

  private func anyTarget(_ rng: inout FuzzRandom) -> UInt64 {
    let target = targets[Int(rng.next() % UInt64(targets.count))]
    switch rng.next() % 8 {
    case 0: return target &+ 8 * (rng.next() % 8)  // a little inside the object
    case 1: return target &- 8 * (1 + rng.next() % 4)  // just before it
    default: return target
    }
  }

  private func mutation(_ rng: inout FuzzRandom) -> Mutation {
    // A third of the time, aim at a field the walk actually read.
    if rng.next() % 3 == 0, let aimed = fieldMutation(&rng) { return aimed }
    let roll = rng.next() % 100
    switch roll {
    case 0..<15:
      let region = anyRegion(&rng)
      return .flipBit(region: region, offset: anyOffset(region, &rng), bit: Int(rng.next() % 8))
    case 15..<30:
      let region = anyRegion(&rng)
      let value: UInt64
      switch rng.next() % 6 {
      case 0: value = 0
      case 1: value = rng.next()
      case 2: value = rng.next() & 0xFFFF
      case 3: value = UInt64.max
      case 4: value = anyTarget(&rng)
      default: value = rng.next() & 0x7FFF_FFFF_FFF8
      }
      return .setWord(region: region, offset: anyOffset(region, &rng, aligned: true), value: value)
    case 30..<58:
      if !pointerSlots.isEmpty {
        let slot = pointerSlots[Int(rng.next() % UInt64(pointerSlots.count))]
        let region = Int(slot.region)
        // Sometimes back at its own region (a tight cycle), mostly anywhere recorded.
        let to = rng.next() % 5 == 0 ? base.regions[region].start : anyTarget(&rng)
        return .redirect(region: region, offset: Int(slot.offset), to: to)
      }
      let region = anyRegion(&rng)
      return .setWord(region: region, offset: anyOffset(region, &rng, aligned: true), value: anyTarget(&rng))
    case 58..<74:
      let value = Self.hugeValues[Int(rng.next() % UInt64(Self.hugeValues.count))]
      if !countSlots.isEmpty {
        let slot = countSlots[Int(rng.next() % UInt64(countSlots.count))]
        return .hugeLength(region: Int(slot.region), offset: Int(slot.offset), value: value)
      }
      let region = anyRegion(&rng)
      return .hugeLength(region: region, offset: anyOffset(region, &rng, aligned: true), value: value)
    case 74..<80:
      let region = anyRegion(&rng)
      return .scribble(
        region: region, offset: anyOffset(region, &rng), length: 1 + Int(rng.next() % 64), seed: rng.next())
    case 80..<86:
      let from = anyRegion(&rng)
      let to = anyRegion(&rng)
      return .copy(
        from: from, fromOffset: anyOffset(from, &rng), to: to, toOffset: anyOffset(to, &rng),
        length: 8 + Int(rng.next() % 256))
    case 86..<94:
      let region = anyRegion(&rng)
      return .truncate(region: region, length: anyOffset(region, &rng))
    default:
      return .delete(region: anyRegion(&rng))
    }
  }

  /// The base snapshot with `mutations` applied (only the regions touched are copied).
  func apply(_ mutations: [Mutation]) -> SnapshotMemory {
    var memory = base
    func store(_ region: Int, _ offset: Int, _ value: UInt64) {
      guard region < memory.regions.count, offset >= 0, offset + 8 <= memory.regions[region].bytes.count else {
        return
      }
      for i in 0..<8 { memory.regions[region].bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    for mutation in mutations {
      switch mutation {
      case .flipBit(let region, let offset, let bit):
        guard offset < memory.regions[region].bytes.count else { continue }
        memory.regions[region].bytes[offset] ^= UInt8(1) << UInt8(bit)
      case .setWord(let region, let offset, let value), .redirect(let region, let offset, let value),
        .hugeLength(let region, let offset, let value):
        store(region, offset, value)
      case .setWord32(let region, let offset, let value):
        guard offset >= 0, offset + 4 <= memory.regions[region].bytes.count else { continue }
        for i in 0..<4 {
          memory.regions[region].bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
        }
      case .scribble(let region, let offset, let length, let seed):
        var local = FuzzRandom(seed: seed)
        let end = Swift.min(memory.regions[region].bytes.count, offset + length)
        guard offset < end else { continue }
        for i in offset..<end { memory.regions[region].bytes[i] = UInt8(truncatingIfNeeded: local.next()) }
      case .copy(let from, let fromOffset, let to, let toOffset, let length):
        let source = memory.regions[from].bytes
        let n = Swift.min(length, source.count - fromOffset, memory.regions[to].bytes.count - toOffset)
        guard n > 0 else { continue }
        memory.regions[to].bytes.replaceSubrange(
          toOffset..<(toOffset + n), with: source[fromOffset..<(fromOffset + n)])
      case .truncate(let region, let length):
        if length < memory.regions[region].bytes.count {
          memory.regions[region].bytes = Array(memory.regions[region].bytes.prefix(length))
        }
      case .delete(let region):
        memory.regions[region].bytes = []
      }
    }
    return memory
  }
}

// MARK: - Crash and hang reporting

/// What each running fuzz loop is doing, readable from a signal handler (no allocation there).
private struct FuzzSlot {
  var label: UnsafeMutablePointer<CChar>? = nil
  var input: Int = -1
  var startedNanoseconds: UInt64 = 0
  var thread: pthread_t = 0
}

private let slotCapacity = 32
nonisolated(unsafe) private let fuzzSlots: UnsafeMutablePointer<FuzzSlot> = {
  let slots = UnsafeMutablePointer<FuzzSlot>.allocate(capacity: slotCapacity)
  slots.initialize(repeating: FuzzSlot(), count: slotCapacity)
  return slots
}()
nonisolated(unsafe) private var fuzzSeedValue: UInt64 = 0
private let slotLock = NSLock()
nonisolated(unsafe) private var slotsTaken = 0
nonisolated(unsafe) private var previousActions: [sigaction] = Array(repeating: sigaction(), count: 64)

/// Writes, with write(2) only, which inputs are being fuzzed (for a crash or a hang).
private func reportSlots(_ headline: StaticString) {
  func put(_ text: UnsafePointer<CChar>) { _ = write(2, text, strlen(text)) }
  func put(_ text: StaticString) {
    text.withUTF8Buffer { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
  }
  func put(_ value: UInt64, radix: UInt64 = 10) {
    var digits = [CChar](repeating: 0, count: 24)  // stack-promoted in practice; fine if not
    var i = 22
    var rest = value
    repeat {
      let digit = CChar(truncatingIfNeeded: rest % radix)
      digits[i] = digit < 10 ? 48 + digit : 87 + digit
      rest /= radix
      i -= 1
    } while rest > 0 && i >= 0
    digits.withUnsafeBufferPointer { buffer in _ = write(2, buffer.baseAddress! + i + 1, 22 - i) }
  }
  put(headline)
  for index in 0..<slotCapacity {
    let slot = fuzzSlots[index]
    guard let label = slot.label, slot.input >= 0 else { continue }
    put("  interpreter ")
    put(label)
    put(": input ")
    put(UInt64(slot.input))
    put(" (reproduce: SPYGLASS_FUZZ_SEED=0x")
    put(fuzzSeedValue, radix: 16)
    put(" SPYGLASS_FUZZ_ONLY=")
    put(label)
    put(" SPYGLASS_FUZZ_START=")
    put(UInt64(slot.input))
    put(")")
    if pthread_equal(slot.thread, pthread_self()) != 0 { put("  <- this thread") }
    put("\n")
  }
}

private func installCrashReporter() {
  struct Once { nonisolated(unsafe) static var done = false }
  slotLock.lock()
  defer { slotLock.unlock() }
  if Once.done { return }
  Once.done = true
  for signal in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { signal in
      reportSlots("\nspyglass fuzz: CRASH while walking these inputs:\n")
      // Put back the handler that was there (the Swift runtime's backtracer) and return: the
      // faulting instruction runs again and that handler reports it.
      if signal >= 0 && signal < 64 { sigaction(signal, &previousActions[Int(signal)], nil) }
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = Int32(bitPattern: UInt32(SA_RESETHAND)) | Int32(SA_NODEFER)
    sigaction(signal, &action, &previousActions[Int(signal)])
  }
  // The watchdog: a call that runs for longer than hangSeconds is a hang.
  let thread = Thread {
    while true {
      sleep(1)
      let now = monotonicNanoseconds()
      for index in 0..<slotCapacity {
        let slot = fuzzSlots[index]
        if slot.input >= 0, slot.startedNanoseconds > 0,
          Double(now &- slot.startedNanoseconds) / 1e9 > FuzzSettings.hangSeconds
        {
          reportSlots("\nspyglass fuzz: HANG (an input ran for over a minute):\n")
          abort()
        }
      }
    }
  }
  thread.start()
}

private func takeSlot(_ label: String) -> Int {
  slotLock.lock()
  defer { slotLock.unlock() }
  let index = slotsTaken % slotCapacity
  slotsTaken += 1
  fuzzSlots[index].label = strdup(label)
  fuzzSlots[index].input = -1
  fuzzSlots[index].thread = pthread_self()
  return index
}

// MARK: - Running inputs

/// One input's problems, if any.
struct FuzzFinding: CustomStringConvertible {
  let input: Int
  let mutations: [Mutation]
  let problems: [String]
  var description: String {
    "input \(input) [\(mutations.map(\.description).joined(separator: "; "))]: \(problems.joined(separator: "; "))"
  }
}

struct FuzzReport: CustomStringConvertible {
  var label = ""
  var inputs = 0
  var seconds = 0.0
  var sampleSucceeded = 0
  var namesSucceeded = 0
  var localsRendered = 0
  var slowestCall = 0.0
  var slowestCallName = ""
  /// CPU seconds per kind of call, over all inputs.
  var cpuByCall: [String: Double] = [:]
  var findings: [FuzzFinding] = []
  var findingCount = 0

  var description: String {
    let rate = seconds > 0 ? Int(Double(inputs) / seconds) : 0
    return
      "fuzz \(label): \(inputs) inputs in \(String(format: "%.1f", seconds)) s (\(rate)/s); walks that succeeded: "
      + "\(sampleSucceeded), names read: \(namesSucceeded), reprs rendered: \(localsRendered); slowest call "
      + "\(String(format: "%.1f", slowestCall * 1000)) ms CPU (\(slowestCallName)); findings: \(findingCount); CPU by call: "
      + cpuByCall.sorted { $0.value > $1.value }.map { "\($0.key) \(String(format: "%.1f", $0.value)) s" }.joined(
        separator: ", ")
  }
}

/// CPU time of the calling thread, in seconds.
func threadCPUSeconds() -> Double {
  var spec = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
  return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Runs `inputs` mutated inputs over `seed`'s snapshot.
func runFuzz(_ seed: FuzzSeed, inputs: Int, first: Int, baseSeed: UInt64) -> FuzzReport {
  installCrashReporter()
  fuzzSeedValue = baseSeed
  let slot = takeSlot(seed.python.label)
  defer { fuzzSlots[slot].input = -1 }
  let mutator = Mutator(seed.snapshot, reads: seed.readRanges)
  var report = FuzzReport(label: seed.python.label)
  let labelHash = seed.python.label.utf8.reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }

  // The real frames, resolved from clean code objects once: their locals are rendered over every
  // mutated snapshot.
  let clean = SwappableMemory(IndexedMemory(seed.snapshot))
  let cleanWalker = seed.makeWalker(clean)
  let cleanFrames = ((try? cleanWalker.sample()) ?? []).flatMap(\.frames)

  let budget = FuzzSettings.budget
  let started = monotonicNanoseconds()
  for input in first..<(first + inputs) {
    var rng = FuzzRandom(seed: baseSeed ^ labelHash ^ (UInt64(input) &* 0x9E37_79B9_7F4A_7C15))
    let mutateStart = threadCPUSeconds()
    let mutations = mutator.mutations(&rng)
    let memory = IndexedMemory(mutator.apply(mutations))
    report.cpuByCall["mutating", default: 0] += threadCPUSeconds() - mutateStart
    if FuzzSettings.verbose { print("fuzz \(seed.python.label) input \(input): \(mutations)") }
    fuzzSlots[slot].startedNanoseconds = monotonicNanoseconds()
    fuzzSlots[slot].input = input
    var problems: [String] = []

    func timed<T>(_ name: String, _ body: () -> T) -> T {
      let before = threadCPUSeconds()
      let result = body()
      let used = threadCPUSeconds() - before
      report.cpuByCall[name, default: 0] += used
      if used > report.slowestCall {
        report.slowestCall = used
        report.slowestCallName = name
      }
      if used > FuzzSettings.callLimit {
        problems.append("\(name) used \(String(format: "%.2f", used)) s of CPU")
      }
      return result
    }
    func checkName(_ text: String, limit: Int, _ what: String) {
      // A cut name may end in one "…". (UTF-8 length first: counting scalars is slow.)
      if text.utf8.count > limit + 1, text.unicodeScalars.count > limit + 1 {
        problems.append("\(what) has \(text.unicodeScalars.count) scalars")
      }
    }

    let walker = seed.makeWalker(memory)
    var sampled: [SampledThread] = []
    for (pass, name) in ["sample()", "sample() again"].enumerated() {
      let result = timed(name) { () -> [SampledThread]? in try? walker.sample() }
      guard let threads = result else { continue }
      if pass == 0 { report.sampleSucceeded += 1 }
      sampled = threads
      if threads.count > ReadLimits.threads { problems.append("\(threads.count) threads") }
      for thread in threads {
        if thread.frames.count > ReadLimits.frames { problems.append("\(thread.frames.count) frames") }
        for frame in thread.frames {
          let code = walker.code(frame.code!)
          checkName(code.name, limit: ReadLimits.nameCharacters, "a function name")
          checkName(code.filename, limit: ReadLimits.nameCharacters, "a file name")
        }
      }
    }
    if let holder = timed("sample(onlyGILHolder: true)", { try? walker.sample(onlyGILHolder: true) }) {
      if holder.count > 1 { problems.append("\(holder.count) GIL holders") }
    }
    // The walk a recording without --idle makes: every other thread called idle (odd tids).
    if let threads = timed("sample(isIdle:)", { try? walker.sample(isIdle: { $0 % 2 == 1 }) }) {
      if threads.count > ReadLimits.threads { problems.append("\(threads.count) threads (isIdle)") }
      for thread in threads where thread.skippedAsIdle && !thread.frames.isEmpty {
        problems.append("a thread skipped as idle has frames")
      }
    }
    if let names = timed("threadNames()", { try? walker.threadNames() }) {
      report.namesSucceeded += 1
      if names.count > ReadLimits.dictEntries { problems.append("\(names.count) thread names") }
      for name in names.values { checkName(name, limit: 1024, "a thread name") }
    }
    func checkLocals(_ variables: [LocalVariable]) {
      if variables.count > 512 { problems.append("\(variables.count) locals") }
      for variable in variables {
        checkName(variable.name, limit: 256, "a local's name")
        guard let repr = variable.repr else { continue }
        report.localsRendered += 1
        let bytes = repr.utf8.count
        if bytes > 64 * budget * 4
          || (bytes > budget + FuzzSettings.reprSlack && repr.count > budget + FuzzSettings.reprSlack)
        {
          problems.append("a repr of \(repr.count) characters (\(repr.utf8.count) bytes) for budget \(budget)")
        }
      }
    }
    // Locals of a few frames of the mutated walk, and of a few real frames over mutated objects
    // (every frame every time would mostly re-render untouched objects).
    let mutatedFrames = sampled.flatMap(\.frames)
    for _ in 0..<Swift.min(3, mutatedFrames.count) {
      let frame = mutatedFrames[Int(rng.next() % UInt64(mutatedFrames.count))]
      checkLocals(timed("locals(of:budget:)") { walker.locals(of: frame, budget: budget) })
    }
    clean.current = memory
    for _ in 0..<Swift.min(3, cleanFrames.count) {
      let frame = cleanFrames[Int(rng.next() % UInt64(cleanFrames.count))]
      checkLocals(timed("locals(of:budget:) of a real frame") { cleanWalker.locals(of: frame, budget: budget) })
    }
    fuzzSlots[slot].input = -1
    report.inputs += 1
    if !problems.isEmpty {
      report.findingCount += 1
      if report.findings.count < 20 {
        report.findings.append(FuzzFinding(input: input, mutations: mutations, problems: problems))
      }
    }
    if inputs >= 100_000 && (input - first + 1) % (inputs / 10) == 0 {
      let seconds = Double(monotonicNanoseconds() - started) / 1e9
      print(
        "fuzz \(seed.python.label): \(input - first + 1)/\(inputs) inputs, \(Int(seconds)) s, findings so far \(report.findingCount)"
      )
    }
  }
  report.seconds = Double(monotonicNanoseconds() - started) / 1e9
  return report
}

// MARK: - Tests

@Suite("Fuzz: mutated snapshots of real interpreter memory", .timeLimit(.minutes(60)))
struct FuzzTests {
  @Test func coversTheRequiredInterpreters() throws {
    if FuzzSettings.environment["SPYGLASS_FUZZ_ONLY"] != nil { return }
    let versions = FuzzSettings.interpreters.map { ($0.version.major, $0.version.minor) }
    for (major, minor) in FuzzSettings.required {
      #expect(versions.contains { $0 == (major, minor) }, "Python \(major).\(minor) is not installed: not fuzzed")
    }
  }

  /// The snapshot of a walk replays that walk exactly: the fuzzer starts from real memory.
  @Test("an unmutated snapshot walks like the live process", arguments: FuzzSettings.interpreters)
  func snapshotReplays(_ python: PythonInterpreter) throws {
    let seed = try FuzzSeed.cached(python)
    let replayed = try FuzzSeed.walk(seed.makeWalker(seed.snapshot))
    #expect(replayed == seed.live, "live:\n\(seed.live)\nreplayed:\n\(replayed)")
    // The fixture's shape, so that the fuzzer has something to chew on.
    #expect(seed.live.threads.count == 4, "\(seed.live)")
    #expect(seed.live.threads.allSatisfy { $0.count >= 3 }, "\(seed.live)")
    if !python.isPython2 || !seed.live.names.isEmpty {
      #expect(
        Set(seed.live.names.values).isSuperset(of: ["fuzz-worker-0", "fuzz-worker-1", "fuzz-worker-2"]),
        "\(seed.live.names)")
    }
    for expected in ["integer=42", "ucs4=", "mapping={", "items=[1, ", "numbers={", "cycle=[[[", "thing=<Thing at"] {
      #expect(
        seed.live.locals.contains { $0.hasPrefix(expected) },
        "no local \(expected)…: \(seed.live.locals.map { $0.prefix(40) })")
    }
    print(
      "fuzz seed \(python.label): \(seed.reads) reads, \(Mutator(seed.snapshot, reads: seed.readRanges).summary), "
        + "\(seed.live.locals.count) locals")
  }

  /// Cycles made on purpose in real memory: a frame chain and a thread list that loop back.
  @Test("a cycling frame chain or thread list is detected", arguments: FuzzSettings.interpreters)
  func cyclesAreDetected(_ python: PythonInterpreter) throws {
    let seed = try FuzzSeed.cached(python)
    let walker = seed.makeWalker(seed.snapshot)
    let threads = try walker.sample()
    let thread = try #require(threads.first { $0.frames.count >= 3 })
    // The outermost frame's caller link points back at the innermost frame.
    let link = try #require(
      seed.model.frameModel == .frameObject ? seed.layout.frameBack : seed.layout.iframePrevious)
    var looped = seed.snapshot
    try write(
      thread.frames[0].address, at: thread.frames[thread.frames.count - 1].address &+ UInt64(link),
      in: &looped)
    #expect(throws: ReadFault.self) { _ = try seed.makeWalker(looped).sample() }
    do {
      _ = try seed.makeWalker(looped).sample()
    } catch {
      #expect("\(error)".contains("cycle"), "\(error)")
    }
    // The last thread state's next link points back at the first.
    var ring = seed.snapshot
    let states = try walker.threadStates()
    try write(states[0], at: states[states.count - 1] &+ UInt64(try #require(seed.layout.tstateNext)), in: &ring)
    #expect(throws: ReadFault.self) { _ = try seed.makeWalker(ring).sample() }
    #expect(throws: ReadFault.self) { _ = try seed.makeWalker(ring).threadStates() }
  }

  /// Regression (found by the fuzzer): an int whose digit count is Int64.min or near UInt64.max
  /// trapped the repr renderer (`Int(size.magnitude)`, `count * 30`). Every such size must render
  /// as something bounded (or nothing), never crash.
  @Test("ints with hostile digit counts render bounded", arguments: FuzzSettings.interpreters)
  func hostileIntegerSizes(_ python: PythonInterpreter) throws {
    let seed = try FuzzSeed.cached(python)
    let clean = SwappableMemory(IndexedMemory(seed.snapshot))
    let walker = seed.makeWalker(clean)
    let frames = try walker.sample().flatMap(\.frames)
    var targets: [(frame: SampledFrame, name: String, address: RemoteAddress)] = []
    for frame in frames {
      for variable in walker.locals(of: frame, budget: FuzzSettings.budget)
      where ["big", "huge", "negative"].contains(variable.name) {
        targets.append((frame, variable.name, variable.address))
      }
    }
    try #require(targets.count >= 3, "the fixture's ints were not found")
    let sizeOffset = try #require(seed.layout.longTag ?? seed.layout.varObjectSize)
    let sizes: [UInt64] = [
      0x8000_0000_0000_0000, UInt64(Int64.max), UInt64.max, UInt64.max - 7, 1 << 62, 4097 << 3, 4097, 0xFFFF_FFFF,
    ]
    for target in targets.prefix(6) {
      for size in sizes {
        var memory = seed.snapshot
        try write(size, at: target.address &+ UInt64(sizeOffset), in: &memory)
        clean.current = IndexedMemory(memory)
        let variables = walker.locals(of: target.frame, budget: FuzzSettings.budget)
        let repr = variables.first { $0.address == target.address }?.repr
        #expect(
          (repr?.count ?? 0) <= FuzzSettings.budget + FuzzSettings.reprSlack,
          "\(target.name) with size 0x\(String(size, radix: 16)): \(repr ?? "nil")")
      }
    }
  }

  /// Regression (found by the fuzzer on 3.12): an instruction pointer 2^63 bytes or more past its
  /// code object trapped converting the offset to an Int. Every frame's instruction pointer (or
  /// f_lasti on ≤3.10) set to extreme values: the walk still returns every frame.
  @Test("garbage instruction pointers give frames, not traps", arguments: FuzzSettings.interpreters)
  func garbageInstructionPointers(_ python: PythonInterpreter) throws {
    let seed = try FuzzSeed.cached(python)
    let threads = try seed.makeWalker(seed.snapshot).sample()
    let frameObjects = seed.model.frameModel == .frameObject
    let field = try #require(frameObjects ? seed.layout.frameLasti : seed.layout.iframeInstrPtr)
    let values: [UInt64] =
      frameObjects
      ? [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x4000_0000]
      : [UInt64.max, 0x8000_0000_0000_0000, UInt64(Int64.max), 0xFFFF_FFFF_FFFF_0000]
    for value in values {
      var memory = seed.snapshot
      for frame in threads.flatMap(\.frames) {
        if frameObjects {
          // f_lasti is an int: write 4 bytes.
          let address = frame.address &+ UInt64(field)
          let low = try #require(memory.regions.firstIndex { $0.start <= address && address + 4 <= $0.end })
          let offset = Int(address - memory.regions[low].start)
          for i in 0..<4 { memory.regions[low].bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        } else {
          try write(value, at: frame.address &+ UInt64(field), in: &memory)
        }
      }
      let walked = try seed.makeWalker(memory).sample()
      #expect(
        walked.map(\.frames.count) == threads.map(\.frames.count),
        "0x\(String(value, radix: 16)): \(walked.map(\.frames.count)) frames, \(threads.map(\.frames.count)) before")
    }
  }

  /// Regression: a location table (3.11+) whose line deltas are huge varints: three entries of
  /// -2^62 each overflowed `line += delta`. Garbage tables give some line, never a trap.
  @Test func lineTableWithHugeDeltas() {
    // Entry 0xE8: code 13 (a line delta, no columns), 2 bytes of code. Varint: ten continuation
    // bytes of zeros, then 0x08 at shift 60: 2^63, read as -2^62 after the sign step.
    let entry: [UInt8] = [0xE8] + [UInt8](repeating: 0x40, count: 10) + [0x08]
    let table = Array([[UInt8]](repeating: entry, count: 5).joined())
    for lasti in [0, 2, 4, 8, 100, Int.max] {
      _ = LineTable.line(for: lasti, firstLine: 1, table: table, format: .locationTable)
    }
    // The same bytes through every decoder.
    let garbage = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) } + table
    for format in [LineTableFormat.lnotab27, .lnotab, .linetable310, .locationTable] {
      for lasti in [-1, 0, 7, 1000, 1 << 20, Int.max] {
        _ = LineTable.line(for: lasti, firstLine: Int(Int32.max), table: garbage, format: format)
      }
    }
  }

  private func write(_ value: UInt64, at address: UInt64, in memory: inout SnapshotMemory) throws {
    let index = try #require(
      memory.regions.firstIndex { $0.start <= address && address + 8 <= $0.end }, "address not in the snapshot")
    let offset = Int(address - memory.regions[index].start)
    for i in 0..<8 { memory.regions[index].bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }

  /// The fuzz run proper.
  @Test("mutated snapshots: no crash, no hang, bounded results", arguments: FuzzSettings.interpreters)
  func fuzz(_ python: PythonInterpreter) throws {
    let seed = try FuzzSeed.cached(python)
    let inputs = FuzzSettings.inputsPerInterpreter
    let report = runFuzz(seed, inputs: inputs, first: FuzzSettings.start, baseSeed: FuzzSettings.seed)
    print(report)
    #expect(report.inputs == inputs)
    #expect(report.findingCount == 0, "\(report)\n\(report.findings.map(\.description).joined(separator: "\n"))")
    // The mutations must leave the walk working often enough to reach deep code, and the reprs too.
    #expect(report.sampleSucceeded > inputs / 4, "\(report)")
    #expect(report.localsRendered > inputs, "\(report)")
  }
}
