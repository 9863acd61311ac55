//===--- StackSource.swift - where stacks come from: a process or a core ---===//
//
// Everything above the walkers reads stacks through this one protocol: a live process
// (`ProcessSampler`: paused or not, run states from /proc) and a core file (`CoreSampler`:
// nothing runs) answer the same request with the same `SampledThread`s, resolved by the same
// `FrameResolver` and turned into traces by the same `TraceBuilder`.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassModel
import SpyglassProcess

/// What one look at a process reads.
package struct SampleRequest: Sendable, Equatable {
  /// Only the thread holding the GIL.
  package var onlyGILHolder = false
  /// Read thread names (a dict walk, at most every quarter second).
  package var wantNames = true
  /// With > 0, every frame's arguments and locals, their reprs cut to that many characters.
  package var localsBudget = 0
  /// Walk idle threads too; without, they may come back without frames (`skippedAsIdle`).
  package var walkingIdleThreads = true
  /// Read the asyncio tasks too (`StackSource.lastTasks`).
  package var readingTasks = false

  package init(
    onlyGILHolder: Bool = false, wantNames: Bool = true, localsBudget: Int = 0, walkingIdleThreads: Bool = true,
    readingTasks: Bool = false
  ) {
    self.onlyGILHolder = onlyGILHolder
    self.wantNames = wantNames
    self.localsBudget = localsBudget
    self.walkingIdleThreads = walkingIdleThreads
    self.readingTasks = readingTasks
  }

  /// The request for a `Config`: `Sampler` and `PythonSpy` read what the configuration asks for.
  package init(_ config: Config, readingTasks: Bool = false) {
    self.init(
      onlyGILHolder: config.gilOnly, wantNames: true, localsBudget: 128 * Swift.max(0, config.dumpLocals),
      walkingIdleThreads: true, readingTasks: readingTasks)
  }
}

/// A process whose stacks can be read: live, or in a core file.
package protocol StackSource: AnyObject {
  var pid: Int32 { get }
  /// The process as the library describes it.
  var info: PythonProcessInfo { get }
  var version: PythonVersion { get }
  /// Turns this process's sampled frames into text.
  var resolver: FrameResolver { get }
  /// Every thread's stack now (see `SampleRequest`).
  func sample(_ request: SampleRequest) throws(SpyglassError) -> [SampledThread]
  /// The asyncio tasks of the last sample that read them (nil when they could not be read).
  var lastTasks: AsyncSnapshot? { get }
  /// Whether the version has asyncio awareness (3.11+).
  var supportsTasks: Bool { get }
  /// `--native` statistics and the unwinder, when native stacks are read.
  var native: NativeStacks? { get }
  /// Thread states found holding an OS thread id the process does not have (a live process
  /// forked without its interpreter being told), and what each was matched to.
  var threadIDCorrections: [ThreadIDCorrection] { get }
}

extension StackSource {
  package var threadIDCorrections: [ThreadIDCorrection] { [] }

  /// Every thread's stack as the library hands it out (all of them, idle ones included, with
  /// their `active` flag; only the GIL holder with `Config.gilOnly`).
  package func stackTraces(config: Config, parent: Int32? = nil) throws(SpyglassError) -> [StackTrace] {
    let threads = try sample(SampleRequest(config))
    var info = self.info
    info.parentPID = parent
    return threads.map { TraceBuilder.trace(of: $0, resolver: resolver, info: info, config: config) }
  }

  /// Every thread's stack and every asyncio task, read in one look.
  package func stackTracesAndTasks(config: Config, parent: Int32? = nil) throws(SpyglassError) -> (
    traces: [StackTrace], tasks: [TaskTrace], cut: Int
  ) {
    guard supportsTasks else { throw .asyncUnsupported(pid: pid, version: version.description) }
    let threads = try sample(SampleRequest(config, readingTasks: true))
    var info = self.info
    info.parentPID = parent
    let traces = threads.map { TraceBuilder.trace(of: $0, resolver: resolver, info: info, config: config) }
    let snapshot = lastTasks ?? AsyncSnapshot()
    return (traces, TraceBuilder.tasks(snapshot, pid: pid, resolver: resolver, config: config), snapshot.cut)
  }
}
