//===--- TaskAndProfileTests.swift - task stacks and the profile builder -----===//
//
// The pure steps between a sample and a profile, on made-up samples: `TaskStacks.apply` (thread
// stacks into task stacks for --async-aware) and `ProfileBuilder` (sampled threads into the
// profile's interned frames, stacks, threads and weights, with the line modes and the thread,
// process and task pseudo-frames). The suites on real processes check the same end to end.
//
//===----------------------------------------------------------------------===//

import Spyglass
import SpyglassModel
import SpyglassProfile
import SpyglassStacks
import Testing

@Suite struct TaskStacksTests {
  static func frame(_ code: CodeID, address: UInt64 = 0) -> SampledFrame {
    .python(code: code, line: Int32(code), address: address == 0 ? 0x9000 + UInt64(code) : address, isEntry: false)
  }

  static func thread(_ id: UInt64, _ frames: [SampledFrame]) -> SampledThread {
    var thread = SampledThread(
      pid: 7, threadState: 0x100 * id, threadID: id, osThreadID: Int32(id), ownsGIL: false, frames: frames)
    thread.name = "thread \(id)"
    thread.locals = frames.map { _ in [] }
    return thread
  }

  /// Thread 1 runs task A, whose coroutine frame is its stack's frame 1 (frames 2-3 are the loop's);
  /// A is awaited by B, B by C; thread 2 runs no task; D (pending, on thread 2's loop), E (done)
  /// and F (no frames) are not running.
  static func sample() -> ([SampledThread], AsyncSnapshot) {
    let threads = [
      thread(1, [frame(10), frame(11, address: 0xA11), frame(12), frame(13)]),
      thread(2, [frame(20)]),
    ]
    var tasks = AsyncSnapshot()
    tasks.tasks = [
      AsyncTask(
        address: 0xA, name: "A", state: .running, threadID: 1, frames: [frame(11)], awaitedBy: [0xB],
        coroutineFrame: 0xA11),
      AsyncTask(address: 0xB, name: "B", state: .pending, threadID: 1, frames: [frame(30)], awaitedBy: [0xC]),
      AsyncTask(address: 0xC, name: "C", state: .pending, threadID: 1, frames: [frame(31)]),
      AsyncTask(address: 0xD, name: "D", state: .pending, threadID: 2, frames: [frame(32)]),
      AsyncTask(address: 0xE, name: "E", state: .done, threadID: 2, frames: [frame(33)]),
      AsyncTask(address: 0xF, name: "F", state: .pending, threadID: 2, frames: []),
    ]
    return (threads, tasks)
  }

  @Test func theRunningTaskKeepsItsPartOfTheThreadUnderItsAwaiters() {
    let (threads, tasks) = Self.sample()
    let stacks = TaskStacks.apply(.running, to: threads, tasks: tasks)
    #expect(stacks.count == 2)
    #expect(stacks[0].frames == [Self.frame(10), Self.frame(11, address: 0xA11)], "the loop's frames are cut")
    #expect(stacks[0].roots == ["<task C>", "<task B>", "<task A>"])
    #expect(stacks[0].task == 0xA && stacks[0].locals == nil && !stacks[0].isTaskAtRest)
    #expect(stacks[1].frames == threads[1].frames && stacks[1].roots.isEmpty && stacks[1].task == nil)
  }

  @Test func allModeAddsEveryOtherLiveTaskWithFramesOnItsThread() {
    let (threads, tasks) = Self.sample()
    let stacks = TaskStacks.apply(.all, to: threads, tasks: tasks)
    let resting = stacks.filter(\.isTaskAtRest)
    #expect(resting.map(\.task) == [0xB, 0xC, 0xD], "done tasks and tasks without frames are left out")
    #expect(resting.map(\.threadID) == [1, 1, 2])
    #expect(resting.allSatisfy { $0.active && !$0.ownsGIL })
    #expect(resting[0].roots == ["<task C>", "<task B>"])
    #expect(resting[2].name == "thread 2")
  }

  @Test func awaiterCyclesEnd() {
    let (threads, _) = Self.sample()
    var tasks = AsyncSnapshot()
    tasks.tasks = [
      AsyncTask(address: 0xA, name: "A", state: .running, threadID: 1, frames: [Self.frame(11)], awaitedBy: [0xB]),
      AsyncTask(address: 0xB, name: "B", state: .pending, frames: [Self.frame(30)], awaitedBy: [0xA]),
    ]
    let stacks = TaskStacks.apply(.running, to: threads, tasks: tasks)
    #expect(stacks[0].roots == ["<task B>", "<task A>"])
    #expect(stacks[0].frames == [Self.frame(11)], "no coroutine frame on the stack: the task's own chain")
  }
}

@Suite struct ProfileBuilderTests {
  /// Code 0 `main` (app.py, first line 1), 1 `work` (first line 10), 2 `helper` (lib/util.py).
  static func resolver() -> FrameResolver {
    let codes = CodeCache()
    for (index, (name, file, first)) in [
      ("main", "/srv/app.py", 1), ("work", "/srv/app.py", 10), ("helper", "/srv/lib/util.py", 20),
    ].enumerated() {
      _ = codes.insert(
        CodeInfo(name: name, shortName: name, filename: file, firstLine: first), at: 0x1000 * UInt64(index + 1),
        now: 0)
    }
    return FrameResolver(codes: codes, native: nil, shortener: FilenameShortener(root: "/nonexistent-root"))
  }

  static func thread(_ frames: [(CodeID, Int32)], id: UInt64 = 1, name: String? = "MainThread") -> SampledThread {
    var thread = SampledThread(
      pid: 42, threadState: 0x100, threadID: id, osThreadID: Int32(id) + 1000, ownsGIL: true,
      frames: frames.map { .python(code: $0.0, line: $0.1, address: 0, isEntry: false) })
    thread.name = name
    return thread
  }

  static func labels(_ profile: Profile, _ stack: StackID) -> [String] {
    profile.stacks[Int(stack)].map { profile.frames[Int($0)].label(fullFilenames: false) }
  }

  @Test func stacksFramesAndWeightsAreInterned() {
    var builder = ProfileBuilder(profile: Profile(), lineNo: .lastInstruction, showThreads: false, showProcesses: false)
    let resolver = Self.resolver()
    let hot = Self.thread([(2, 22), (1, 12), (0, 3)])
    let first = builder.add(hot, resolver: resolver, processLabels: [], weightNanoseconds: 10, timeNanoseconds: 0)
    let again = builder.add(hot, resolver: resolver, processLabels: [], weightNanoseconds: 10, timeNanoseconds: 5)
    #expect(first && !again, "a thread is new once")
    let other = builder.add(
      Self.thread([(1, 13), (0, 3)]), resolver: resolver, processLabels: [], weightNanoseconds: 7, timeNanoseconds: 9)
    #expect(!other)
    let profile = builder.profile
    #expect(profile.stacks.count == 2 && profile.frames.count == 4 && profile.threads.count == 1)
    #expect(Self.labels(profile, 0) == ["main (app.py:3)", "work (app.py:12)", "helper (util.py:22)"])
    #expect(profile.totals[.init(thread: 0, stack: 0)] == StackTotal(count: 2, weightNanoseconds: 20))
    #expect(profile.totals[.init(thread: 0, stack: 1)] == StackTotal(count: 1, weightNanoseconds: 7))
    #expect(profile.totalSamples == 3)
    #expect(profile.threads[0].name == "MainThread" && profile.threads[0].osThreadID == 1001)
  }

  @Test func lineModes() {
    let resolver = Self.resolver()
    for (mode, expected) in [
      (LineNo.first, ["main (app.py:1)", "work (app.py:10)"]), (.noLine, ["main (app.py)", "work (app.py)"]),
    ] {
      var builder = ProfileBuilder(profile: Profile(), lineNo: mode, showThreads: false, showProcesses: false)
      builder.add(
        Self.thread([(1, 12), (0, 3)]), resolver: resolver, processLabels: [], weightNanoseconds: 1, timeNanoseconds: 0)
      builder.add(
        Self.thread([(1, 14), (0, 5)]), resolver: resolver, processLabels: [], weightNanoseconds: 1, timeNanoseconds: 0)
      #expect(builder.profile.stacks.count == 1, "\(mode): lines that differ only by line merge")
      #expect(Self.labels(builder.profile, 0) == expected)
    }
  }

  @Test func pseudoFramesForProcessesThreadsAndTasks() {
    var builder = ProfileBuilder(profile: Profile(), lineNo: .lastInstruction, showThreads: true, showProcesses: true)
    var thread = Self.thread([(0, 3)], id: 5, name: "worker")
    thread.roots = ["<task main>"]
    thread.task = 0xABC
    builder.add(
      thread, resolver: Self.resolver(), processLabels: ["process 1:\"sh\"", "process 42:\"python app.py\""],
      weightNanoseconds: 1, timeNanoseconds: 0)
    #expect(
      Self.labels(builder.profile, 0) == [
        "process 1:\"sh\"", "process 42:\"python app.py\"", "thread (1005): worker", "<task main>", "main (app.py:3)",
      ])
  }

  @Test func aThreadWithoutFramesIsNoSample() {
    var builder = ProfileBuilder(profile: Profile(), lineNo: .lastInstruction, showThreads: false, showProcesses: false)
    let added = builder.add(
      Self.thread([]), resolver: Self.resolver(), processLabels: [], weightNanoseconds: 1, timeNanoseconds: 0)
    #expect(!added)
    #expect(builder.profile.totalSamples == 0 && builder.profile.threads.isEmpty)
  }

  @Test func aRenamedThreadIsRenamedInTheProfile() {
    var builder = ProfileBuilder(profile: Profile(), lineNo: .lastInstruction, showThreads: false, showProcesses: false)
    let resolver = Self.resolver()
    builder.add(
      Self.thread([(0, 3)], name: nil), resolver: resolver, processLabels: [], weightNanoseconds: 1, timeNanoseconds: 0)
    builder.add(
      Self.thread([(0, 3)], name: "late"), resolver: resolver, processLabels: [], weightNanoseconds: 1,
      timeNanoseconds: 0)
    #expect(builder.profile.threads.map(\.name) == ["late"])
    #expect(builder.profile.totalSamples == 2)
  }
}
