//===--- SamplingSession.swift - the processes a recording samples --------===//
//
// Owns the launched program (if any), the attached processes and the timer; `run` is the one
// sampling loop behind `record`, `top` and the library's `Sampler`. With subprocesses it
// re-reads the process tree every 100 ms and attaches to Python descendants as they appear (a
// multiprocessing pool, a shell that starts Python later); a non-Python process is re-checked when
// it execs something else. Processes that exit are dropped; the session ends when none is left.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassStacks

/// What a session samples: the `Config` (how to read), and the process (a pid, or a command to
/// launch) at a rate; `record`, `top` and `Sampler` all make one.
package struct SessionOptions: Sendable {
  /// The process to attach to, or nil to launch `command`.
  package var pid: Int32?
  package var command: [String] = []
  /// How to read: blocking, native, idle threads, the GIL holder, subprocesses, asyncio.
  package var config = Config()
  /// Samples per second (a fraction allowed: `-r 0.5`).
  package var rate: Double = 100
  /// Whether thread names are read (they cost a dict walk every quarter second).
  package var wantNames = true
  /// How long a launched program may take to show a Python interpreter.
  package var launchWait = 10.0

  package init(pid: Int32?, command: [String] = [], config: Config = Config()) {
    self.pid = pid
    self.command = command
    self.config = config
    self.rate = Double(Swift.max(1, config.samplingRate))
  }

  /// `--async-aware`: task-shaped stacks in this mode; nil for thread stacks.
  var asyncMode: AsyncMode? { config.asyncAware ? config.asyncMode : nil }
}

/// One process a session, a `PythonSpy` or a core dump reads: where its stacks come from, and
/// how it is labelled among several.
package final class AttachedProcess {
  package let source: any StackSource
  /// With subprocesses: `process PID:"command line"` for it and each ancestor up to the root,
  /// outermost first (the profile's process pseudo-frames).
  package let labels: [String]
  /// The process it was found under, when it is a subprocess of another one read.
  package let parent: Int32?
  package var pid: Int32 { source.pid }

  package init(source: any StackSource, labels: [String] = [], parent: Int32? = nil) {
    self.source = source
    self.labels = labels
    self.parent = parent
  }
}

package struct SamplingSession {
  package enum Outcome { case sampled, allExited }

  /// Why `run` returned.
  package enum End: Equatable {
    /// The client's `shouldStop` said so.
    case stoppedByClient
    /// Every target exited.
    case allExited
  }

  package let options: SessionOptions
  /// What every tick asks of each process, and whether it is made into task stacks.
  private let request: SampleRequest
  private let asyncMode: AsyncMode?
  private let followsSubprocesses: Bool
  package let rootPID: Int32
  package let launched: LaunchedProcess?
  package private(set) var processes: [Int32: AttachedProcess] = [:]
  package private(set) var order: [Int32] = []
  private var notPython: [Int32: String] = [:]
  /// Processes whose native stacks could not be read, and why.
  package private(set) var nativeFailures: [Int32: String] = [:]
  /// The process tree is re-read at most every 100 ms.
  private var treeScan = Throttle(seconds: 0.1)
  private var timer: SampleTimer
  package private(set) var ticks = 0
  package private(set) var errors = 0
  /// The errors of the last tick, one per process that could not be read.
  package private(set) var tickErrors: [SpyglassError] = []
  package private(set) var maxLag = 0.0
  package private(set) var pythonVersion = ""
  /// Asked while sleeping between ticks (in slices of at most 50 ms): true ends the sleep early,
  /// so a stop request is seen promptly at low rates.
  package var wakeEarly: () -> Bool = { false }

  package init(options: SessionOptions) throws(SpyglassError) {
    self.options = options
    let config = options.config
    self.asyncMode = options.asyncMode
    self.request = SampleRequest(
      onlyGILHolder: config.gilOnly, wantNames: options.wantNames, walkingIdleThreads: config.includeIdle)
    self.followsSubprocesses = config.subprocesses
    self.timer = SampleTimer(rate: options.rate)
    if let pid = options.pid {
      rootPID = pid
      launched = nil
    } else {
      let command = options.command
      guard let program = command.first else { throw .launchFailed(program: "", errno: 2) }
      do {
        let child = try Launcher.launch(command)
        launched = child
        rootPID = child.pid
      } catch {
        throw .launchFailed(program: program, errno: error.rawValue)
      }
    }
    let waitLimit = launched != nil ? options.launchWait : 1.0
    do {
      let target = try LiveTarget.attach(pid: rootPID, waitingUpTo: config.subprocesses ? 0.3 : waitLimit)
      add(target, parent: nil)
    } catch {
      if !config.subprocesses { throw failure(for: error) }
      // A shell or launcher that starts Python later: look for Python descendants for a while.
      let deadline = monotonicSeconds() + waitLimit
      while processes.isEmpty && monotonicSeconds() < deadline {
        if let launched, launched.exitStatus() != nil { break }
        if !ProcFS.processExists(rootPID) { break }
        scanForChildren(force: true)
        if processes.isEmpty { sleepSeconds(0.05) }
      }
      if processes.isEmpty {
        if case .permissionDenied = error { throw error }
        throw .noPythonProcesses(pid: rootPID)
      }
    }
    if config.native && config.blocking != .lock {
      launched?.send(Signal.kill)
      throw .nativeNeedsBlocking
    }
    if let reason = nativeFailures[rootPID] {
      launched?.send(Signal.kill)
      throw .nativeUnavailable(pid: rootPID, reason: reason)
    }
    if options.asyncMode != nil, let root = processes[rootPID], !root.source.supportsTasks {
      launched?.send(Signal.kill)
      throw .asyncUnsupported(pid: rootPID, version: root.source.version.description)
    }
  }

  /// The error for the root process, explaining a launched program that ended.
  private func failure(for error: SpyglassError) -> SpyglassError {
    if let launched, let program = options.command.first {
      if let status = launched.exitStatus() ?? (ProcFS.processExists(rootPID) ? nil : 0) {
        return .programExited(program: program, status: status)
      }
      launched.send(Signal.kill)
      _ = launched.wait(timeout: 1)
      if case .notPython = error { return .programNotPython(program: program) }
    }
    return error
  }

  private mutating func add(_ target: LiveTarget, parent: Int32?) {
    let pid = target.pid
    if pythonVersion.isEmpty { pythonVersion = target.version.description }
    let labels = options.config.subprocesses ? ProcessTree.ancestry(of: pid, upTo: rootPID).map(\.label) : []
    let sampler = ProcessSampler(target: target, blocking: options.config.blocking == .lock)
    if options.config.native {
      // A process whose native stacks cannot be read keeps its Python stacks (the root's failure
      // ends the session at once, in init).
      do { try sampler.enableNative() } catch { nativeFailures[pid] = "\(error)" }
    }
    processes[pid] = AttachedProcess(source: sampler, labels: labels, parent: parent)
    order.append(pid)
  }

  /// Attaches to new Python descendants (every 100 ms, or now with `force`).
  mutating func scanForChildren(force: Bool = false) {
    if force { treeScan.reset() }
    guard treeScan.ready() else { return }
    for (pid, parent) in ProcessTree.descendants(of: rootPID) where processes[pid] == nil {
      let executable = (try? ProcFS.executable(pid)) ?? ""
      if executable.isEmpty { continue }  // zombie or gone
      if notPython[pid] == executable { continue }
      do {
        let target = try LiveTarget.attach(pid: pid)
        add(target, parent: parent)
        notPython[pid] = nil
      } catch {
        switch error {
        case .notPython, .unsupportedVersion, .permissionDenied: notPython[pid] = executable
        default: break  // still starting: try again next scan
        }
      }
    }
  }

  /// Sleeps until the next tick (`start` is the recording's start on the monotonic clock);
  /// returns how far behind schedule the sampler is (0 when on time).
  package mutating func waitForTick(start: Double) -> Double {
    timer.advance()
    if followsSubprocesses { scanForChildren() }
    let elapsed = monotonicSeconds() - start
    let lag = elapsed - timer.nextTick
    if lag <= 0 {
      // Sleep in slices so that Ctrl-C, SIGTERM and SIGUSR1 are seen promptly at low rates.
      let wake = start + timer.nextTick
      while !wakeEarly() {
        let remaining = wake - monotonicSeconds()
        if remaining <= 0 { break }
        sleepSeconds(Swift.min(remaining, 0.05))
      }
      return 0
    }
    maxLag = max(maxLag, lag)
    return lag
  }

  /// Samples every attached process and hands each one's threads to `consume`.
  package mutating func sampleAll(_ consume: (AttachedProcess, [SampledThread]) -> Void) -> Outcome {
    ticks += 1
    if !tickErrors.isEmpty { tickErrors.removeAll(keepingCapacity: true) }
    var exited: [Int32] = []
    for pid in order {
      guard let process = processes[pid] else { continue }
      do throws(SpyglassError) {
        let readsTasks = asyncMode != nil && process.source.supportsTasks
        var request = self.request
        if readsTasks {
          request.walkingIdleThreads = true
          request.readingTasks = true
        }
        var threads = try process.source.sample(request)
        if readsTasks, let mode = asyncMode, let tasks = process.source.lastTasks {
          threads = TaskStacks.apply(mode, to: threads, tasks: tasks)
        }
        consume(process, threads)
      } catch {
        if error == .processExited(pid: pid) || !ProcFS.processExists(pid) || isZombie(pid) {
          exited.append(pid)
        } else {
          errors += 1
          tickErrors.append(error)
        }
      }
    }
    for pid in exited {
      processes[pid] = nil
      order.removeAll { $0 == pid }
    }
    if processes.isEmpty {
      if options.config.subprocesses, ProcFS.processExists(rootPID), !isZombie(rootPID) {
        scanForChildren(force: true)
        return .sampled
      }
      return .allExited
    }
    return .sampled
  }

  private func isZombie(_ pid: Int32) -> Bool { ProcStat.read(pid: pid)?.state == UInt8(ascii: "Z") }

  /// Stops the program Spyglass launched, if it still runs (as py-spy does at the end of record).
  package func endLaunchedProgram() {
    guard let launched else { return }
    if launched.exitStatus() != nil { return }
    launched.send(Signal.terminate)
    if launched.wait(timeout: 1) == nil {
      launched.send(Signal.kill)
      _ = launched.wait(timeout: 1)
    }
  }

  /// Where a recording stands, handed to the clients of `run` (which cannot read the session
  /// while it runs).
  package struct Status {
    /// How late the latest tick was (0 when on time).
    package var lag: Double
    package var ticks: Int
    package var errors: Int
    /// The latest tick's errors, one per process that could not be read.
    package var tickErrors: [SpyglassError] = []
  }

  /// The one sampling loop: until `shouldStop` (asked before every tick) says so or every target
  /// exited, it waits for the next tick, samples every attached process, hands each one's threads
  /// to `consume`, then calls `afterTick`.
  package mutating func run(
    start: Double, shouldStop: (Status) -> Bool, consume: (AttachedProcess, [SampledThread]) -> Void,
    afterTick: (Status) -> Void
  ) -> End {
    var status = Status(lag: 0, ticks: ticks, errors: errors)
    while true {
      if shouldStop(status) { return .stoppedByClient }
      status.lag = waitForTick(start: start)
      if shouldStop(status) { return .stoppedByClient }
      if sampleAll(consume) == .allExited { return .allExited }
      status.ticks = ticks
      status.errors = errors
      status.tickErrors = tickErrors
      afterTick(status)
    }
  }
}
