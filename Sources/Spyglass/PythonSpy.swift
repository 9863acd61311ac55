//===--- PythonSpy.swift - read a Python process's stacks, on demand -----===//
//
// py-spy's `PythonSpy`: attach once (find the interpreter, its version and layout), then read
// every thread's stack as often as wanted. Nothing is injected and nothing is written to the
// target; in `.lock` mode its threads are paused only for the duration of one read.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess
import SpyglassStacks

/// A Python process, attached: `stackTraces()` reads every thread's current stack.
///
/// ```swift
/// let spy = try PythonSpy(pid: pid, config: Config())
/// for trace in try spy.stackTraces() {
///   print(trace.threadName ?? "thread \(trace.threadID)", trace.frames.first?.name ?? "-")
/// }
/// ```
///
/// Safe to use from several threads (calls are serialised).
public final class PythonSpy: @unchecked Sendable {
  public let pid: Int32
  public let config: Config
  /// The target's CPython version ("3.14.10").
  public let version: String
  /// The process it reads (with `Config.subprocesses`, the child processes are read too).
  public let processInfo: PythonProcessInfo

  private let lock = Lock()
  private var processes: [TracedProcess]

  /// Attaches to `pid`. Throws when the process does not exist, is not Python, runs a version
  /// Spyglass does not support, or may not be read (see `SpyglassError`).
  public init(pid: Int32, config: Config) throws(SpyglassError) {
    if config.native && config.blocking != .lock { throw .nativeNeedsBlocking }
    self.pid = pid
    self.config = config
    let root = try TracedProcess(pid: pid, parent: nil, config: config, waitingUpTo: 0.5)
    version = root.target.version.description
    processInfo = root.info
    processes = [root]
  }

  /// Every thread's stack now, innermost frame first; threads in the interpreter's order (newest
  /// first). Idle threads are left out unless `Config.includeIdle`; only the GIL holder with
  /// `Config.gilOnly`. With `Config.subprocesses`, child processes that are Python (found anew on
  /// every call) follow the root's threads.
  public func stackTraces() throws(SpyglassError) -> [StackTrace] {
    try lock.withLock { () throws(SpyglassError) -> [StackTrace] in
      if config.subprocesses { addNewChildren() }
      var traces: [StackTrace] = []
      var gone: [Int32] = []
      for process in processes {
        do throws(SpyglassError) {
          traces += try process.stackTraces(config: config)
        } catch {
          if process.pid == pid { throw error }
          gone.append(process.pid)  // a child that ended or cannot be read is dropped
        }
      }
      processes.removeAll { gone.contains($0.pid) }
      return traces
    }
  }

  /// Every thread's stack and every asyncio task, read in one look (in `.lock` mode, one pause).
  /// Throws `SpyglassError.asyncUnsupported` for a Python older than 3.11. `cutTasks` counts the
  /// tasks left out past `ReadLimits.tasks` (10,000) or in a list that cycles. Child processes
  /// (with `Config.subprocesses`) add their threads; tasks are read from the root process.
  public func stackTracesAndTasks() throws(SpyglassError) -> (traces: [StackTrace], tasks: [TaskTrace], cutTasks: Int) {
    try lock.withLock { () throws(SpyglassError) -> ([StackTrace], [TaskTrace], Int) in
      if config.subprocesses { addNewChildren() }
      var traces: [StackTrace] = []
      var tasks: [TaskTrace] = []
      var cut = 0
      var gone: [Int32] = []
      for process in processes {
        do throws(SpyglassError) {
          if process.pid == pid {
            let (rootTraces, snapshot) = try process.stackTracesAndTasks(config: config)
            traces += rootTraces
            tasks = StackTraceBuilder.tasks(
              snapshot, pid: pid, sampler: process.sampler, shortener: process.shortener, config: config)
            cut = snapshot.cut
          } else {
            traces += try process.stackTraces(config: config)
          }
        } catch {
          if process.pid == pid { throw error }
          gone.append(process.pid)
        }
      }
      processes.removeAll { gone.contains($0.pid) }
      return (traces, tasks, cut)
    }
  }

  private func addNewChildren() {
    let known = Set(processes.map(\.pid))
    for (child, parent) in ProcessTree.descendants(of: pid) where !known.contains(child) {
      if let process = try? TracedProcess(pid: child, parent: parent, config: config, waitingUpTo: 0) {
        processes.append(process)
      }
    }
  }
}

/// One attached process: its sampler and how its file names are shortened.
final class TracedProcess {
  let target: PythonTarget
  let sampler: ProcessSampler
  let shortener: FilenameShortener
  let info: PythonProcessInfo
  var pid: Int32 { target.pid }

  init(pid: Int32, parent: Int32?, config: Config, waitingUpTo timeout: Double) throws(SpyglassError) {
    do {
      target = timeout > 0 ? try PythonTarget.attach(pid: pid, waitingUpTo: timeout) : try PythonTarget.attach(pid: pid)
    } catch {
      throw SpyglassError(error)
    }
    sampler = ProcessSampler(target: target, blocking: config.blocking == .lock)
    if config.native {
      do { try sampler.enableNative() } catch { throw .nativeUnavailable(pid: pid, reason: "\(error)") }
    }
    shortener = FilenameShortener(pid: pid)
    info = PythonProcessInfo(
      pid: pid, commandLine: target.commandLine, executable: target.executablePath,
      pythonVersion: target.version.description, parentPID: parent)
  }

  func stackTraces(config: Config) throws(SpyglassError) -> [StackTrace] {
    try stackTraces(config: config, readingTasks: false)
  }

  func stackTracesAndTasks(config: Config) throws(SpyglassError) -> ([StackTrace], AsyncSnapshot) {
    guard sampler.supportsTasks else {
      throw .asyncUnsupported(pid: pid, version: target.version.description)
    }
    let traces = try stackTraces(config: config, readingTasks: true)
    return (traces, sampler.lastTasks ?? AsyncSnapshot())
  }

  private func stackTraces(config: Config, readingTasks: Bool) throws(SpyglassError) -> [StackTrace] {
    let threads: [ThreadStack]
    do {
      threads = try sampler.sample(
        onlyGILHolder: config.gilOnly, wantNames: true, localsBudget: 128 * Swift.max(0, config.dumpLocals),
        walkingIdleThreads: config.includeIdle || config.dumpLocals > 0, readingTasks: readingTasks)
    } catch {
      throw SpyglassError(error, pid: pid)
    }
    var traces: [StackTrace] = []
    traces.reserveCapacity(threads.count)
    for thread in threads where config.keeps(thread) {
      traces.append(trace(of: thread, config: config))
    }
    return traces
  }

  func trace(of thread: ThreadStack, config: Config) -> StackTrace {
    StackTraceBuilder.trace(of: thread, sampler: sampler, shortener: shortener, info: info, config: config)
  }
}
