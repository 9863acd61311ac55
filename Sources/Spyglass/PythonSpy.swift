//===--- PythonSpy.swift - read a Python process's stacks, on demand -----===//
//
// py-spy's `PythonSpy`: attach once (find the interpreter, its version and layout), then read
// every thread's stack as often as wanted. Nothing is injected and nothing is written to the
// target; in `.lock` mode its threads are paused only for the duration of one read. The same
// stacks from a core file: `PythonCoreDump`.
//
//===----------------------------------------------------------------------===//

@_exported import SpyglassModel
import SpyglassProcess
import SpyglassStacks

/// A Python process, attached: `stackTraces()` reads every thread's current stack.
///
/// ```swift
/// let spy = try PythonSpy(pid: pid, config: Config())
/// for trace in try spy.stackTraces() {
///   print(trace.threadName ?? "thread \(trace.threadID)", trace.active ? "active" : "idle",
///         trace.frames.first?.name ?? "-")
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
  private var processes: [AttachedProcess]

  /// Thread states found so far holding an OS thread id their process does not have (a process
  /// forked without its interpreter being told, as uWSGI's workers are), and what each was
  /// matched to: the stacks carry the matched id.
  package var threadIDCorrections: [ThreadIDCorrection] {
    lock.withLock { processes.flatMap(\.source.threadIDCorrections) }
  }

  /// Attaches to `pid`. Throws when the process does not exist, is not Python, runs a version
  /// Spyglass does not support, or may not be read (see `SpyglassError`).
  public init(pid: Int32, config: Config) throws(SpyglassError) {
    if config.native && config.blocking != .lock { throw .nativeNeedsBlocking }
    self.pid = pid
    self.config = config
    let root = try Self.attach(pid: pid, parent: nil, config: config, waitingUpTo: 0.5)
    version = root.source.version.description
    processInfo = root.source.info
    processes = [root]
  }

  /// Every thread's stack now, innermost frame first, threads in the interpreter's order (newest
  /// first): idle ones too, each with its `active` flag (as py-spy's `get_stack_traces`: leaving
  /// idle threads out is the caller's choice); only the GIL holder with `Config.gilOnly`. With
  /// `Config.subprocesses`, child processes that are Python (found anew on every call) follow the
  /// root's threads.
  public func stackTraces() throws(SpyglassError) -> [StackTrace] {
    try lock.withLock { () throws(SpyglassError) -> [StackTrace] in
      if config.subprocesses { addNewChildren() }
      var traces: [StackTrace] = []
      var gone: [Int32] = []
      for process in processes {
        do throws(SpyglassError) {
          traces += try process.source.stackTraces(config: config, parent: process.parent)
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
            let root = try process.source.stackTracesAndTasks(config: config)
            traces += root.traces
            tasks = root.tasks
            cut = root.cut
          } else {
            traces += try process.source.stackTraces(config: config, parent: process.parent)
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
      if let process = try? Self.attach(pid: child, parent: parent, config: config, waitingUpTo: 0) {
        processes.append(process)
      }
    }
  }

  private static func attach(pid: Int32, parent: Int32?, config: Config, waitingUpTo timeout: Double)
    throws(SpyglassError) -> AttachedProcess
  {
    let target = timeout > 0 ? try LiveTarget.attach(pid: pid, waitingUpTo: timeout) : try LiveTarget.attach(pid: pid)
    let sampler = ProcessSampler(target: target, blocking: config.blocking == .lock)
    if config.native {
      do { try sampler.enableNative() } catch { throw .nativeUnavailable(pid: pid, reason: "\(error)") }
    }
    return AttachedProcess(source: sampler, parent: parent)
  }
}

/// A core file of a Python process (the kernel's, or gdb's `gcore`): `stackTraces(config:)`
/// reads every thread's stack as it was, the same `StackTrace`s a live process gives.
///
/// ```swift
/// let core = try PythonCoreDump(path: "core.1234")
/// for trace in try core.stackTraces() { print(trace.threadID, trace.frames.map(\.name)) }
/// ```
///
/// Nothing runs in a core: a thread counts as active when it holds the GIL.
public final class PythonCoreDump: @unchecked Sendable {
  public let path: String
  /// The process the core is of.
  public let processInfo: PythonProcessInfo
  /// Its CPython version.
  public let version: String

  private let lock = Lock()
  private let sampler: CoreSampler

  /// Opens the core at `path`. `executable` is the python executable's file, when the path the
  /// core names is not it here; `root` the folder the process's files were under (its root, when
  /// it ran in a container or chroot).
  public init(path: String, executable: String? = nil, root: String? = nil) throws(SpyglassError) {
    self.path = path
    sampler = try CoreSampler(path: path, executable: executable, root: root)
    processInfo = sampler.info
    version = sampler.version.description
  }

  /// Every thread's stack in the core, innermost frame first, in the interpreter's order. With
  /// `Config.native`, native frames are merged in (from the registers the core saved).
  public func stackTraces(config: Config = Config()) throws(SpyglassError) -> [StackTrace] {
    try lock.withLock { () throws(SpyglassError) -> [StackTrace] in
      if config.native { try sampler.enableNative() }
      return try sampler.stackTraces(config: config)
    }
  }
}
