//===--- SamplingSession.swift - the processes a recording samples --------===//
//
// Owns the launched program (if any), the attached processes and the timer. With --subprocesses it
// re-reads the process tree every 100 ms and attaches to Python descendants as they appear (a
// multiprocessing pool, a shell that starts Python later); a non-Python process is re-checked when
// it execs something else. Processes that exit are dropped; the session ends when none is left.
//
//===----------------------------------------------------------------------===//

import Glibc
import SpyglassProcess
import SpyglassStacks

struct SamplingSession {
  enum Outcome { case sampled, allExited }

  let options: SamplingOptions
  let wantNames: Bool
  /// Plain copies of the options read every tick (an argument parser property is not a plain load).
  private let onlyGILHolder: Bool
  private let walksIdleThreads: Bool
  private let followsSubprocesses: Bool
  let rootPID: Int32
  let launched: LaunchedProcess?
  private(set) var processes: [Int32: AttachedProcess] = [:]
  private(set) var order: [Int32] = []
  private var notPython: [Int32: String] = [:]
  private var lastTreeScan = 0.0
  private var timer: PoissonTimer
  private(set) var ticks = 0
  private(set) var errors = 0
  private(set) var maxLag = 0.0
  private(set) var pythonVersion = ""

  init(options: SamplingOptions, wantNames: Bool) throws {
    self.options = options
    self.wantNames = wantNames
    self.onlyGILHolder = options.gil
    self.walksIdleThreads = options.idle
    self.followsSubprocesses = options.subprocesses
    self.timer = PoissonTimer(rate: options.rate)
    if let pid = options.pid {
      rootPID = pid.value
      launched = nil
    } else {
      let command = options.command
      do {
        let child = try Launcher.launch(command)
        launched = child
        rootPID = child.pid
      } catch {
        throw Failure(
          message: "Could not start '\(command[0])': \(String(cString: strerror(error.errno))).")
      }
    }
    let waitLimit = launched != nil ? 10.0 : 1.0
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
        if case .permissionDenied = error { throw Failure(error) }
        throw Failure(message: "No Python processes found in process \(rootPID) or any of its subprocesses.")
      }
    }
  }

  /// The failure for the root process, explaining a launched program that ended.
  private func failure(for error: AttachError) -> Failure {
    if let launched {
      if let status = launched.exitStatus() ?? (ProcFS.processExists(rootPID) ? nil : 0) {
        let how = status >= 0 ? "exited (status \(status))" : "exited"
        return Failure(
          message: "The program '\(options.command[0])' \(how) before Spyglass could find a Python interpreter in it.")
      }
      launched.send(SIGKILL)
      _ = launched.wait(timeout: 1)
      if case .notPython = error {
        return Failure(
          message:
            "The program '\(options.command[0])' is not a Python program: no CPython interpreter was found in it.")
      }
    }
    return Failure(error)
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
    processes[pid] = AttachedProcess(
      sampler: ProcessSampler(target: target, blocking: !options.nonblocking), labels: labels)
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
  mutating func waitForTick(start: Double) -> Double {
    timer.advance()
    if followsSubprocesses { scanForChildren() }
    let elapsed = monotonicSeconds() - start
    let lag = elapsed - timer.nextTick
    if lag <= 0 {
      // Sleep in slices so that Ctrl-C, SIGTERM and SIGUSR1 are seen promptly at low rates.
      let wake = start + timer.nextTick
      while Signals.stopRequested == 0 && !Signals.flushPending {
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
  mutating func sampleAll(_ consume: (AttachedProcess, [ThreadStack]) -> Void) -> Outcome {
    ticks += 1
    var exited: [Int32] = []
    for pid in order {
      guard let process = processes[pid] else { continue }
      do {
        let threads = try process.sampler.sample(
          onlyGILHolder: onlyGILHolder, wantNames: wantNames, walkingIdleThreads: walksIdleThreads)
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
  func endLaunchedProgram() {
    guard let launched else { return }
    if launched.exitStatus() != nil { return }
    launched.send(SIGTERM)
    if launched.wait(timeout: 1) == nil {
      launched.send(SIGKILL)
      _ = launched.wait(timeout: 1)
    }
  }
}
