//===--- SamplingSession.swift - the processes a recording samples --------===//
//
// Owns the launched program (if any), the attached processes and the timer; `run` is the one
// sampling loop behind `record`, `top` and the library's `Sampler`. With subprocesses it
// re-reads the process tree every 100 ms and attaches to Python descendants as they appear (a
// multiprocessing pool, a shell that starts Python later); a non-Python process is re-checked when
// it execs something else. Processes that exit are dropped; the session ends when none is left.
//
// With a host scope (the agent) there is no root: every second it lists the host's processes and
// attaches to each new one that runs Python and passes the filter; a process it looked at and left
// alone (not Python, filtered out, refused) is not looked at again until it execs something else
// or exits, and a process that exits is dropped. The session never ends by itself.
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
  /// How long a cached code object is trusted before it is checked against the target again
  /// (nil: the walker's 100 ms). The agent trusts them for a second: a check costs a read of its
  /// own, and a code object freed and replaced at the same address while still on a stack is rare
  /// outside exec/compile loops; such a frame would carry the old name for at most that second.
  package var codeRevalidationSeconds: Double?
  /// The agent's scope: every Python process on the host (nil: `pid` or `command` and, with
  /// subprocesses, their descendants).
  package var host: HostFilter?

  package init(pid: Int32?, command: [String] = [], config: Config = Config()) {
    self.pid = pid
    self.command = command
    self.config = config
    self.rate = Double(Swift.max(1, config.samplingRate))
  }

  /// `--async-aware`: task-shaped stacks in this mode; nil for thread stacks.
  var asyncMode: AsyncMode? { config.asyncAware ? config.asyncMode : nil }
}

/// Which of the host's processes the agent samples: those whose command line (its arguments
/// joined by spaces) `match` finds something in and `exclude` does not (regular expressions).
package struct HostFilter: Sendable {
  package var match: String?
  package var exclude: String?
  package init(match: String? = nil, exclude: String? = nil) {
    self.match = match
    self.exclude = exclude
  }
}

/// What happened to a host-scope session's processes since its client last asked.
package enum SessionEvent: Sendable, Equatable {
  /// Attached: sampled from the next tick on.
  case attached(pid: Int32)
  /// Looked at and left alone, for this reason (it is not looked at again while it runs the same
  /// executable). Processes that are plainly not Python are left alone silently.
  case skipped(pid: Int32, reason: SpyglassError)
  /// Gone (exited, or its memory can no longer be read).
  case exited(pid: Int32)
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

  package private(set) var options: SessionOptions
  /// What every tick asks of each process, and whether it is made into task stacks.
  private let request: SampleRequest
  private let asyncMode: AsyncMode?
  private var followsSubprocesses: Bool
  /// The program launched is not Python (a shell, `uv`, a launcher): its Python descendants are
  /// sampled as with `--subprocesses`.
  package private(set) var followsLauncher = false
  package let rootPID: Int32
  package let launched: LaunchedProcess?
  package private(set) var processes: [Int32: AttachedProcess] = [:]
  package private(set) var order: [Int32] = []
  private var notPython: [Int32: String] = [:]
  /// Processes whose native stacks could not be read, and why.
  package private(set) var nativeFailures: [Int32: String] = [:]
  /// The process tree is re-read at most every 100 ms.
  private var treeScan = Throttle(seconds: 0.1)
  /// Host scope: the filter's expressions, the processes looked at and left alone (by the
  /// executable they ran then), the scan's throttle and what happened since `takeEvents`.
  private var hostMatch: HostMatch?
  private var passedOver: [Int32: String] = [:]
  private var hostScan = Throttle(seconds: 1)
  private var events: [SessionEvent] = []
  private var timer: SampleTimer
  package private(set) var ticks = 0
  package private(set) var errors = 0
  /// The errors of the last tick, one per process that could not be read.
  package private(set) var tickErrors: [SpyglassError] = []
  /// The most recent sampling error (what a recording in which every sample failed says).
  package private(set) var lastError: SpyglassError?
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
    if let host = options.host {
      rootPID = 0
      launched = nil
      hostMatch = try HostMatch(host)
      discoverHostProcesses(force: true)
      return
    }
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
      if launched != nil && !config.subprocesses {
        // A launched program may be a launcher (bash -c, uv run, env): wait for it to become
        // Python itself (exec) or to start a Python process, whichever comes first.
        try attachLaunchedProgram(waitingUpTo: waitLimit)
      } else {
        let target = try LiveTarget.attach(pid: rootPID, waitingUpTo: config.subprocesses ? 0.3 : waitLimit)
        add(target, parent: nil)
      }
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
      launched?.endTree(signal: Signal.kill)
      throw .nativeNeedsBlocking
    }
    if let reason = nativeFailures[rootPID] {
      launched?.endTree(signal: Signal.kill)
      throw .nativeUnavailable(pid: rootPID, reason: reason)
    }
    if options.asyncMode != nil, let root = processes[rootPID], !root.source.supportsTasks {
      launched?.endTree(signal: Signal.kill)
      throw .asyncUnsupported(pid: rootPID, version: root.source.version.description)
    }
  }

  /// The error for the root process, explaining a launched program that ended.
  private func failure(for error: SpyglassError) -> SpyglassError {
    if let launched, let program = options.command.first {
      if let status = launched.exitStatus() ?? (ProcFS.processExists(rootPID) ? nil : 0) {
        launched.endTree()  // what it left behind
        return .programExited(program: program, status: status)
      }
      launched.endTree(signal: Signal.kill)
      if case .notPython = error { return .programNotPython(program: program) }
    }
    return error
  }

  /// Attaches to the launched program once it is Python, or, while it is not (a launcher),
  /// follows the first Python processes it starts, as `--subprocesses` does. Throws the last
  /// attach error when neither happens within `timeout` seconds or the program ends first.
  private mutating func attachLaunchedProgram(waitingUpTo timeout: Double) throws(SpyglassError) {
    let deadline = monotonicSeconds() + timeout
    var lastError = SpyglassError.noSuchProcess(pid: rootPID)
    while true {
      do throws(SpyglassError) {
        add(try LiveTarget.attach(pid: rootPID, waitingUpTo: 0), parent: nil)
        return
      } catch {
        lastError = error
        if case .permissionDenied = error { throw error }
        // Not Python, or already gone (`bash -c 'python app.py &'`): its Python descendants,
        // orphans included (Spyglass is their subreaper).
        let exited = launched?.exitStatus() != nil
        var notPython = false
        if case .notPython = error { notPython = true }
        if exited || notPython {
          scanForChildren(force: true)
          if !processes.isEmpty {
            followsLauncher = true
            followsSubprocesses = true
            options.config.subprocesses = true
            return
          }
        }
        if exited { throw lastError }
      }
      if monotonicSeconds() >= deadline { throw lastError }
      sleepSeconds(0.02)
    }
  }

  private mutating func add(_ target: LiveTarget, parent: Int32?) {
    let pid = target.pid
    if pythonVersion.isEmpty { pythonVersion = target.version.description }
    let labels = options.config.subprocesses ? ProcessTree.ancestry(of: pid, upTo: rootPID).map(\.label) : []
    let sampler = ProcessSampler(target: target, blocking: options.config.blocking == .lock)
    if let seconds = options.codeRevalidationSeconds {
      sampler.walker.codeRevalidationNanoseconds = UInt64(Swift.max(0.001, seconds) * 1e9)
    }
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
    // A launched program's tree is Spyglass's own (its subreaper keeps the orphans in it).
    let base = launched != nil ? ProcFS.ownPID : rootPID
    for (pid, parent) in ProcessTree.descendants(of: base) where processes[pid] == nil && pid != rootPID {
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

  /// Host scope: attaches to the host's new Python processes (every second, or now with `force`).
  mutating func discoverHostProcesses(force: Bool = false) {
    guard let hostMatch else { return }
    if force { hostScan.reset() }
    guard hostScan.ready() else { return }
    let own = ProcFS.ownPID
    let pids = ProcFS.allPIDs()
    if !passedOver.isEmpty {
      let present = Set(pids)
      passedOver = passedOver.filter { present.contains($0.key) }
    }
    for pid in pids where pid != own && processes[pid] == nil {
      // A process left alone is looked at again only once it runs another executable.
      let executable = (try? ProcFS.executable(pid)) ?? ""
      if let seen = passedOver[pid], seen == executable { continue }
      passedOver[pid] = nil
      let commandLine = ProcFS.commandLine(pid)
      // Kernel threads and zombies have no command line; their executable cannot be read.
      if commandLine.isEmpty || executable.isEmpty {
        passedOver[pid] = executable
        continue
      }
      if !hostMatch.admits(commandLine.joined(separator: " ")) || !ProcFS.mapsMentionPython(pid) {
        passedOver[pid] = executable
        continue
      }
      do {
        let target = try LiveTarget.attach(pid: pid, waitingUpTo: 0)
        add(target, parent: nil)
        record(.attached(pid: pid))
      } catch {
        switch error {
        case .notPython: passedOver[pid] = executable
        case .permissionDenied, .unsupportedVersion, .freeThreaded, .unknownDebugOffsets:
          passedOver[pid] = executable
          record(.skipped(pid: pid, reason: error))
        case .noSuchProcess, .processExited: break
        default:
          // An interpreter still starting: looked at again next scan while the process is young.
          if let age = ProcFS.age(pid), age < 10 { continue }
          passedOver[pid] = executable
          record(.skipped(pid: pid, reason: error))
        }
      }
    }
  }

  /// Notes a host-scope event (at most 10,000 kept until the client takes them).
  private mutating func record(_ event: SessionEvent) {
    guard hostMatch != nil, events.count < 10_000 else { return }
    events.append(event)
  }

  /// What happened to the host's processes since the last call.
  package mutating func takeEvents() -> [SessionEvent] {
    defer { events.removeAll(keepingCapacity: true) }
    return events
  }

  /// Sleeps until the next tick (`start` is the recording's start on the monotonic clock);
  /// returns how far behind schedule the sampler is (0 when on time).
  package mutating func waitForTick(start: Double) -> Double {
    timer.advance()
    if followsSubprocesses { scanForChildren() }
    if hostMatch != nil { discoverHostProcesses() }
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
          lastError = error
        }
      }
    }
    for pid in exited {
      processes[pid] = nil
      order.removeAll { $0 == pid }
      record(.exited(pid: pid))
    }
    if hostMatch != nil { return .sampled }
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

  /// Stops the program Spyglass launched and every process it started (as py-spy stops the
  /// program at the end of record; its children too, so none is left behind): SIGTERM, then
  /// SIGKILL after a second.
  package func endLaunchedProgram() {
    launched?.endTree()
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
    /// How many processes are being sampled.
    package var processCount = 0
    /// Host scope: what happened to the host's processes since the last tick.
    package var events: [SessionEvent] = []
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
      status.processCount = processes.count
      status.events = takeEvents()
      afterTick(status)
    }
  }
}

/// A host filter's expressions, compiled.
private struct HostMatch {
  let match: Regex<AnyRegexOutput>?
  let exclude: Regex<AnyRegexOutput>?

  init(_ filter: HostFilter) throws(SpyglassError) {
    func compile(_ pattern: String?) throws(SpyglassError) -> Regex<AnyRegexOutput>? {
      guard let pattern else { return nil }
      do { return try Regex(pattern) } catch { throw .invalidPattern(pattern: pattern, reason: "\(error)") }
    }
    match = try compile(filter.match)
    exclude = try compile(filter.exclude)
  }

  func admits(_ commandLine: String) -> Bool {
    if let match, commandLine.firstMatch(of: match) == nil { return false }
    if let exclude, commandLine.firstMatch(of: exclude) != nil { return false }
    return true
  }
}
