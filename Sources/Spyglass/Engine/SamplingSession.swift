//===--- SamplingSession.swift - the processes a recording samples --------===//
//
// Owns the launched program (if any), the attached processes and the timer; `run` is the one
// sampling loop behind `record`, `top` and the library's `Sampler`. With subprocesses it
// re-reads the process tree every 100 ms and attaches to Python descendants as they appear (a
// multiprocessing pool, a shell that starts Python later); a non-Python process is re-checked when
// it execs something else. Processes that exit are dropped; the session ends when none is left.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess
import SpyglassStacks

/// What to sample and how: the options `record`, `top` and `Sampler` share.
package struct SessionOptions: Sendable {
  /// The process to attach to, or nil to launch `command`.
  package var pid: Int32?
  package var command: [String] = []
  package var rate: Double = 100
  package var gilOnly = false
  package var includeIdle = false
  package var subprocesses = false
  package var nonblocking = false
  /// `--native` (blocking mode only): merged native and Python stacks.
  package var native = false
  /// Whether thread names are read (they cost a dict walk every quarter second).
  package var wantNames = true
  /// How long a launched program may take to show a Python interpreter.
  package var launchWait = 10.0
  /// `--async-aware`: task-shaped stacks (`TaskStacks.apply`) in this mode; nil for thread stacks.
  package var asyncMode: AsyncMode?

  package init(pid: Int32?, command: [String] = []) {
    self.pid = pid
    self.command = command
  }
}

/// One attached process during a recording.
package final class AttachedProcess {
  package let sampler: ProcessSampler
  package let shortener: FilenameShortener
  package let labels: [String]
  init(sampler: ProcessSampler, labels: [String]) {
    self.sampler = sampler
    self.shortener = FilenameShortener(pid: sampler.pid)
    self.labels = labels
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
  let wantNames: Bool
  /// Plain copies of the options read every tick (an argument parser property is not a plain load).
  private let onlyGILHolder: Bool
  private let walksIdleThreads: Bool
  private let followsSubprocesses: Bool
  private let asyncMode: AsyncMode?
  package let rootPID: Int32
  package let launched: LaunchedProcess?
  package private(set) var processes: [Int32: AttachedProcess] = [:]
  package private(set) var order: [Int32] = []
  private var notPython: [Int32: String] = [:]
  /// Processes whose native stacks could not be read, and why.
  package private(set) var nativeFailures: [Int32: String] = [:]
  private var lastTreeScan = 0.0
  private var timer: SampleTimer
  package private(set) var ticks = 0
  package private(set) var errors = 0
  package private(set) var maxLag = 0.0
  package private(set) var pythonVersion = ""
  /// Asked while sleeping between ticks (in slices of at most 50 ms): true ends the sleep early,
  /// so a stop request is seen promptly at low rates.
  package var wakeEarly: () -> Bool = { false }

  package init(options: SessionOptions) throws(SpyglassError) {
    self.options = options
    self.wantNames = options.wantNames
    self.onlyGILHolder = options.gilOnly
    self.walksIdleThreads = options.includeIdle
    self.followsSubprocesses = options.subprocesses
    self.asyncMode = options.asyncMode
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
        throw .launchFailed(program: program, errno: error.errno)
      }
    }
    let waitLimit = launched != nil ? options.launchWait : 1.0
    do {
      let target = try PythonTarget.attach(pid: rootPID, waitingUpTo: options.subprocesses ? 0.3 : waitLimit)
      add(target, parent: nil)
    } catch {
      if !options.subprocesses { throw failure(for: error) }
      // A shell or launcher that starts Python later: look for Python descendants for a while.
      let deadline = monotonicSeconds() + waitLimit
      while processes.isEmpty && monotonicSeconds() < deadline {
        if let launched, launched.exitStatus() != nil { break }
        if !ProcFS.processExists(rootPID) { break }
        scanForChildren(force: true)
        if processes.isEmpty { sleepSeconds(0.05) }
      }
      if processes.isEmpty {
        if case .permissionDenied = error { throw SpyglassError(error) }
        throw .noPythonProcesses(pid: rootPID)
      }
    }
    if options.native && options.nonblocking {
      launched?.send(Signal.kill)
      throw .nativeNeedsBlocking
    }
    if let reason = nativeFailures[rootPID] {
      launched?.send(Signal.kill)
      throw .nativeUnavailable(pid: rootPID, reason: reason)
    }
    if options.asyncMode != nil, let root = processes[rootPID], !root.sampler.supportsTasks {
      launched?.send(Signal.kill)
      throw .asyncUnsupported(pid: rootPID, version: root.sampler.target.version.description)
    }
  }

  /// The error for the root process, explaining a launched program that ended.
  private func failure(for error: AttachError) -> SpyglassError {
    if let launched, let program = options.command.first {
      if let status = launched.exitStatus() ?? (ProcFS.processExists(rootPID) ? nil : 0) {
        return .programExited(program: program, status: status)
      }
      launched.send(Signal.kill)
      _ = launched.wait(timeout: 1)
      if case .notPython = error { return .programNotPython(program: program) }
    }
    return SpyglassError(error)
  }

  private mutating func add(_ target: PythonTarget, parent: Int32?) {
    let pid = target.pid
    if pythonVersion.isEmpty { pythonVersion = target.version.description }
    var labels: [String] = []
    if options.subprocesses {
      var chain: [Int32] = []
      var cursor: Int32? = pid
      var guardCount = 0
      while let current = cursor, guardCount < 64 {
        guardCount += 1
        chain.insert(current, at: 0)
        if current == rootPID { break }
        cursor = ProcStat.read(pid: current)?.parentPID
        if cursor == 0 || cursor == 1 { break }
      }
      labels = chain.map { "process \($0):\"\(ProcFS.commandLine($0).joined(separator: " "))\"" }
    }
    let sampler = ProcessSampler(target: target, blocking: !options.nonblocking)
    if options.native {
      // A process whose native stacks cannot be read keeps its Python stacks (the root's failure
      // ends the session at once, in init).
      do { try sampler.enableNative() } catch { nativeFailures[pid] = "\(error)" }
    }
    processes[pid] = AttachedProcess(sampler: sampler, labels: labels)
    order.append(pid)
  }

  /// Attaches to new Python descendants (every 100 ms, or now with `force`).
  mutating func scanForChildren(force: Bool = false) {
    let now = monotonicSeconds()
    guard force || now - lastTreeScan >= 0.1 else { return }
    lastTreeScan = now
    for (pid, parent) in ProcessTree.descendants(of: rootPID) where processes[pid] == nil {
      let executable = (try? ProcFS.executable(pid)) ?? ""
      if executable.isEmpty { continue }  // zombie or gone
      if notPython[pid] == executable { continue }
      do {
        let target = try PythonTarget.attach(pid: pid)
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
  package mutating func sampleAll(_ consume: (AttachedProcess, [ThreadStack]) -> Void) -> Outcome {
    ticks += 1
    var exited: [Int32] = []
    for pid in order {
      guard let process = processes[pid] else { continue }
      do {
        let readsTasks = asyncMode != nil && process.sampler.supportsTasks
        var threads = try process.sampler.sample(
          onlyGILHolder: onlyGILHolder, wantNames: wantNames, walkingIdleThreads: walksIdleThreads || readsTasks,
          readingTasks: readsTasks)
        if readsTasks, let mode = asyncMode, let tasks = process.sampler.lastTasks {
          threads = TaskStacks.apply(mode, to: threads, tasks: tasks)
        }
        consume(process, threads)
      } catch {
        if error == .processExited || !ProcFS.processExists(pid) || isZombie(pid) {
          exited.append(pid)
        } else {
          errors += 1
        }
      }
    }
    for pid in exited {
      processes[pid] = nil
      order.removeAll { $0 == pid }
    }
    if processes.isEmpty {
      if options.subprocesses, ProcFS.processExists(rootPID), !isZombie(rootPID) {
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
  }

  /// The one sampling loop: until `shouldStop` (asked before every tick) says so or every target
  /// exited, it waits for the next tick, samples every attached process, hands each one's threads
  /// to `consume`, then calls `afterTick`.
  package mutating func run(
    start: Double, shouldStop: (Status) -> Bool, consume: (AttachedProcess, [ThreadStack]) -> Void,
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
      afterTick(status)
    }
  }
}
