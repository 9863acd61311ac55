//===--- AsyncFuzzTests.swift - asyncio tasks over torn and garbage memory -===//
//
// The asyncio reader through the fuzz harness of FuzzTests.swift: for each 3.11+ interpreter the
// tree of async_tasks.py is stopped (SIGSTOP) and read once through a `RecordingMemory` (the
// threads, then every task twice, the second look taking the first one's guesses); the recorded
// ranges replay exactly, and each input is that snapshot with the Mutator's 1-8 mutations (links
// redirected into cycles, counts made huge, bytes scribbled, regions cut). Asserted for every
// input: no crash, no call over `FuzzSettings.callLimit` of CPU, bounded results (tasks within
// ReadLimits.tasks, chains within ReadLimits.awaitDepth, names within 257 characters, awaiters
// among the tasks read). Made on purpose: a 3.14+ task list that loops back, a coroutine that
// awaits itself, a gather future whose children are itself. And live: a target with 100,000 tasks
// is cut at ReadLimits.tasks and the rest counted.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassLayouts
import SpyglassProcess
import SpyglassStacks
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A stopped async_tasks.py tree, read once, and what reading it again needs.
private struct AsyncSeed {
  let python: PythonInterpreter
  let snapshot: SnapshotMemory
  let reads: [(address: RemoteAddress, count: Int)]
  let layout: PythonLayout
  let model: PythonTraits
  let interpreter: RemoteAddress
  let gil: GILLocation
  let codeType: RemoteAddress?
  let debug: AsyncioDebugOffsets?
  let live: [String]

  func reader<M: MemoryReader>(_ memory: M) throws -> (AsyncioReader<M>, [(RemoteAddress, UInt64)]) {
    let walker = try StackWalker(
      memory: memory, layout: layout, model: model, interpreter: interpreter, gil: gil, codeType: codeType)
    let threads = ((try? walker.sample()) ?? []).map { ($0.threadState, $0.threadID) }
    return (try AsyncioReader(walker: walker, debugOffsets: debug), threads)
  }

  static func describe<M: MemoryReader>(_ snapshot: AsyncSnapshot, _ reader: AsyncioReader<M>) -> [String] {
    snapshot.tasks.map { task in
      let frames = task.frames.map { "\(reader.walker.code($0.code!).name):\($0.line)" }
      return "\(task.name) \(task.state) \(frames) \(task.awaitedBy.count)"
    }.sorted()
  }

  static func capture(_ python: PythonInterpreter) throws -> AsyncSeed {
    let process = try PythonProcess(python, script: Fixture.path("async_tasks.py"), arguments: ["tree"])
    defer { process.stop() }
    try process.suspend()
    let target: LiveTarget
    do { target = try LiveTarget.attach(pid: process.pid) } catch {
      throw TestSupportError("\(python): cannot attach: \(error)")
    }
    let recorder = RecordingMemory(ProcessMemory(pid: process.pid))
    let walker = try StackWalker(
      memory: recorder, layout: target.layout, model: target.model, interpreter: target.interpreter, gil: target.gil,
      codeType: target.codeType)
    let threads = try walker.sample().map { ($0.threadState, $0.threadID) }
    let debug = target.asyncioDebugOffsets()
    let reader = try AsyncioReader(walker: walker, debugOffsets: debug)
    _ = try reader.snapshot(threads: threads)
    let live = describe(try reader.snapshot(threads: threads), reader)
    return AsyncSeed(
      python: python, snapshot: recorder.snapshot(), reads: recorder.readRanges, layout: target.layout,
      model: target.model, interpreter: target.interpreter, gil: target.gil, codeType: target.codeType, debug: debug,
      live: live)
  }
}

private func write(_ value: UInt64, at address: UInt64, in memory: inout SnapshotMemory) throws {
  let index = try #require(
    memory.regions.firstIndex { $0.start <= address && address + 8 <= $0.end }, "address not in the snapshot")
  let offset = Int(address - memory.regions[index].start)
  for i in 0..<8 { memory.regions[index].bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
}

@Suite("Fuzz: asyncio tasks over mutated snapshots", .timeLimit(.minutes(20)))
struct AsyncFuzzTests {
  static let inputs = Int(FuzzSettings.environment["SPYGLASS_ASYNC_FUZZ_INPUTS"] ?? "") ?? 400

  @Test("the snapshot replays, and mutated ones stay bounded", arguments: AsyncTests.interpreters)
  func fuzz(_ python: PythonInterpreter) throws {
    let seed = try AsyncSeed.capture(python)
    try #require(seed.live.count >= 10, "\(python.label): \(seed.live)")
    let (clean, cleanThreads) = try seed.reader(IndexedMemory(seed.snapshot))
    #expect(AsyncSeed.describe(try clean.snapshot(threads: cleanThreads), clean) == seed.live, "\(python.label)")

    let mutator = Mutator(seed.snapshot, reads: seed.reads)
    var findings: [String] = []
    for input in 0..<Self.inputs {
      var rng = FuzzRandom(seed: FuzzSettings.seed ^ (UInt64(input) &* 0x9E37_79B9_7F4A_7C15))
      let mutations = mutator.mutations(&rng)
      let memory = IndexedMemory(mutator.apply(mutations))
      guard let (reader, threads) = try? seed.reader(memory) else { continue }
      for pass in 0..<2 {
        let before = threadCPUSeconds()
        let result = try? reader.snapshot(threads: threads)
        let used = threadCPUSeconds() - before
        var problems: [String] = []
        if used > FuzzSettings.callLimit { problems.append("snapshot used \(used) s of CPU") }
        if let result {
          let addresses = Set(result.tasks.map(\.address))
          if result.tasks.count > ReadLimits.tasks { problems.append("\(result.tasks.count) tasks") }
          for task in result.tasks {
            if task.frames.count > ReadLimits.awaitDepth { problems.append("\(task.frames.count) frames") }
            if task.name.count > 257 { problems.append("a name of \(task.name.count) characters") }
            if !task.awaitedBy.allSatisfy(addresses.contains) { problems.append("an awaiter that is not a task") }
          }
        }
        if !problems.isEmpty && findings.count < 20 {
          findings.append("input \(input) pass \(pass): \(problems) after \(mutations)")
        }
      }
    }
    #expect(findings.isEmpty, "\(python.label):\n\(findings.joined(separator: "\n"))")
  }

  @Test("loops made on purpose end: a task list, a coroutine awaiting itself", arguments: AsyncTests.interpreters)
  func loopsEnd(_ python: PythonInterpreter) throws {
    let seed = try AsyncSeed.capture(python)
    let (reader, threads) = try seed.reader(IndexedMemory(seed.snapshot))
    let tasks = try reader.snapshot(threads: threads).tasks
    let chained = try #require(tasks.first { $0.frames.count >= 3 }, "\(python.label)")
    let frame = try #require(chained.coroutineFrame)
    let iframe = try #require(seed.layout.genIframe)
    // The task's own coroutine awaits itself: its frame's stack slot holds its own address.
    var memory = seed.snapshot
    let coroutine = frame - UInt64(iframe)
    if let pointerOffset = seed.layout.iframeStackpointer {
      let (_, pointer) = try #require(
        memory.regions.lazy.compactMap { region -> (Int, UInt64)? in
          let at = frame + UInt64(pointerOffset)
          guard region.start <= at, at + 8 <= region.end else { return nil }
          let o = Int(at - region.start)
          return (o, (0..<8).reduce(UInt64(0)) { $0 | UInt64(region.bytes[o + $1]) << (8 * UInt64($1)) })
        }.first)
      let slot = UInt64(seed.model.coroutineStates?.awaitedSlot ?? 1) * 8
      try write(coroutine, at: pointer - slot, in: &memory)
    } else if let stacktop = seed.layout.iframeStacktop, let localsplus = seed.layout.iframeLocalsplus {
      let region = try #require(
        memory.regions.first { $0.start <= frame + UInt64(stacktop) && frame + UInt64(stacktop) + 4 <= $0.end })
      let o = Int(frame + UInt64(stacktop) - region.start)
      let depth = Int(
        Int32(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(region.bytes[o + $1]) << (8 * UInt32($1)) }))
      try write(coroutine, at: frame + UInt64(localsplus) + UInt64(depth - 1) * 8, in: &memory)
    }
    let (looped, loopedThreads) = try seed.reader(IndexedMemory(memory))
    let selfAwaiting = try looped.snapshot(threads: loopedThreads).tasks.first { $0.address == chained.address }
    #expect((selfAwaiting?.frames.count ?? 0) <= ReadLimits.awaitDepth, "\(python.label)")

    // 3.14+: the last task of a thread's list links back to the first.
    guard seed.model.taskRegistry == .threadLists, let node = seed.layout.taskNode else { return }
    var ring = seed.snapshot
    let listed = tasks.filter { $0.threadID != nil && $0.state != .running }
    try #require(listed.count >= 2, "\(python.label)")
    // Find the task whose next link points at the list head (the last one) and point it at the first.
    var last: RemoteAddress?
    for task in listed {
      let at = task.address + UInt64(node)
      guard let region = ring.regions.first(where: { $0.start <= at && at + 8 <= $0.end }) else { continue }
      let o = Int(at - region.start)
      let next = (0..<8).reduce(UInt64(0)) { $0 | UInt64(region.bytes[o + $1]) << (8 * UInt64($1)) }
      if !listed.contains(where: { $0.address + UInt64(node) == next }) { last = task.address }
    }
    let tail = try #require(last, "\(python.label): no last task")
    let head = try #require(listed.first { $0.address != tail })
    try write(head.address + UInt64(node), at: tail + UInt64(node), in: &ring)
    let (ringed, ringedThreads) = try seed.reader(IndexedMemory(ring))
    let before = threadCPUSeconds()
    let result = try ringed.snapshot(threads: ringedThreads)
    #expect(threadCPUSeconds() - before < 5, "\(python.label)")
    #expect(result.cut >= 1, "\(python.label): a looping list was not counted as cut")
  }

  @Test(
    "100,000 tasks are cut at the limit and counted",
    arguments: AsyncTests.interpreters.prefix(1) + AsyncTests.interpreters.suffix(1))
  func manyTasks(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(
      python, script: Fixture.path("async_tasks.py"), arguments: ["many", "100000"], timeout: .seconds(120))
    defer { process.stop() }
    let result = try SpyglassRunner.run(
      ["dump", "--async", "--json", "--pid", "\(process.pid)"], timeout: .seconds(120))
    try #require(result.exitCode == 0, "\(python.label): \(result.stderr)")
    struct Counts: Decodable {
      struct Task: Decodable { let name: String }
      let tasks: [Task]
      let tasksCut: Int
      enum CodingKeys: String, CodingKey {
        case tasks
        case tasksCut = "tasks_cut"
      }
    }
    let counts = try JSONDecoder().decode(Counts.self, from: Data(result.stdout.utf8))
    #expect(counts.tasks.count == ReadLimits.tasks, "\(python.label)")
    #expect(counts.tasks.count + counts.tasksCut >= 100_001, "\(python.label): \(counts.tasksCut) cut")
  }
}
