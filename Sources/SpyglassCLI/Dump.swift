//===--- Dump.swift - `spyglass dump` ---------------------------------------===//
//
// One `PythonSpy.stackTraces()` of the library (with every thread, idle ones included), printed
// as text or py-spy's JSON.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile

package struct Dump: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract: "Dumps stack traces for a target program to stdout")

  @Option(name: .shortAndLong, help: "PID of a running python program to spy on, in decimal or hex")
  var pid: ProcessID?

  @Option(
    help: ArgumentHelp(
      "A core file of a python program (the kernel's, or gdb's gcore) to read instead of a running process",
      valueName: "file"))
  var core: String?

  @Option(
    help: ArgumentHelp(
      "With --core: the python executable the core is of, when the core's path does not name it here",
      valueName: "path"))
  var exe: String?

  @Option(
    help: ArgumentHelp(
      "With --core: the folder the process's files are under (its root, when it ran in a chroot or container)",
      valueName: "dir"))
  var coreRoot: String?

  @Flag(
    name: .shortAndLong,
    help: "Show local variables for each frame. Passing multiple times (-ll) increases verbosity")
  var locals: Int

  @Flag(name: .shortAndLong, help: "Format output as JSON")
  var json = false

  @Flag(
    name: .customLong("async"),
    help: ArgumentHelp(
      "Also dump every asyncio task: its name, state, await chain and awaiters (CPython 3.11+)",
      discussion: "With --json the output is an object: {\"threads\": [...], \"tasks\": [...]}."))
  var asyncTasks = false

  @OptionGroup var reading: ReadingOptions

  var subprocesses: Bool { reading.subprocesses }
  var fullFilenames: Bool { reading.fullFilenames }
  var nonblocking: Bool { reading.nonblocking }

  package init() {}

  package func validate() throws {
    if pid == nil && core == nil { throw ValidationError("Missing expected argument '--pid <pid>' (or --core <file>)") }
    if pid != nil && core != nil { throw ValidationError("--pid and --core cannot be used together") }
    if core == nil && (exe != nil || coreRoot != nil) { throw ValidationError("--exe and --core-root need --core") }
    if core != nil && (asyncTasks || locals > 0 || subprocesses) {
      throw ValidationError("--core cannot be used with --async, --locals or --subprocesses")
    }
  }

  package func run() throws {
    try reportingFailures {
      if let core {
        try dumpCore(core)
        return
      }
      guard let pid else { return }
      var config = Config()
      config.blocking = nonblocking ? .nonBlocking : .lock
      config.native = reading.native
      config.includeIdle = true
      config.subprocesses = subprocesses
      config.dumpLocals = locals
      let spy = try PythonSpy(pid: pid.value, config: config)
      if asyncTasks {
        let (traces, tasks, cut) = try spy.stackTracesAndTasks()
        let processes = Self.group(traces, root: spy.processInfo)
        let dumped = Self.dumpedTasks(tasks, pid: spy.pid, cut: cut)
        let bytes =
          json
          ? DumpWriter.json(processes, tasks: dumped)
          : DumpWriter.text(processes, fullFilenames: fullFilenames, separatorWidth: Terminal.width)
            + DumpWriter.text(dumped, fullFilenames: fullFilenames)
        writeAll(fd: 1, bytes)
        return
      }
      let traces = try spy.stackTraces()
      let processes = Self.group(traces, root: spy.processInfo)
      let bytes =
        json
        ? DumpWriter.json(processes)
        : DumpWriter.text(processes, fullFilenames: fullFilenames, separatorWidth: Terminal.width)
      writeAll(fd: 1, bytes)
    }
  }

  /// `--core`: the core file's threads, printed as a live process's.
  private func dumpCore(_ path: String) throws {
    var config = Config()
    config.native = reading.native
    config.includeIdle = true
    config.fullFilenames = fullFilenames
    let dump: (process: PythonProcessInfo, traces: [StackTrace])
    do { dump = try CoreDump.read(path: path, executable: exe, root: coreRoot, config: config) } catch {
      throw Failure(message: error.description)
    }
    let threads = Self.group(dump.traces, root: dump.process).first?.threads ?? []
    let process = DumpedProcess(
      pid: dump.process.pid, commandLine: dump.process.commandLine.joined(separator: " "),
      pythonVersion: dump.process.pythonVersion, executable: dump.process.executable, parentPID: nil,
      parentCommandLine: nil, threads: threads)
    let bytes =
      json
      ? DumpWriter.json([process])
      : DumpWriter.text([process], fullFilenames: fullFilenames, separatorWidth: Terminal.width)
    writeAll(fd: 1, bytes)
  }

  /// The tasks as `dump` prints them, awaiters by name.
  static func dumpedTasks(_ tasks: [TaskTrace], pid: Int32, cut: Int) -> DumpedTasks {
    var names: [UInt64: String] = [:]
    for task in tasks { names[task.id] = task.name }
    return DumpedTasks(
      pid: pid,
      tasks: tasks.map { task in
        DumpedTask(
          name: task.name, id: task.id, state: task.state.rawValue, threadID: task.threadID,
          frames: task.frames.map {
            DumpedFrame(
              name: $0.name, filename: $0.filename, shortFilename: $0.shortFilename ?? $0.filename, line: $0.line)
          }, awaitedBy: task.awaitedBy.compactMap { names[$0] })
      }, cut: cut)
  }

  /// The traces by process, in the order the processes were read (the root first, even when it
  /// has no thread to show).
  static func group(_ traces: [StackTrace], root: PythonProcessInfo) -> [DumpedProcess] {
    var order: [Int32] = [root.pid]
    var infos: [Int32: PythonProcessInfo] = [root.pid: root]
    var threads: [Int32: [DumpedThread]] = [:]
    for trace in traces {
      let info = trace.processInfo ?? root
      if infos[info.pid] == nil {
        infos[info.pid] = info
        order.append(info.pid)
      }
      let frames = trace.frames.map { frame in
        DumpedFrame(
          name: frame.name, filename: frame.filename, shortFilename: frame.shortFilename ?? frame.filename,
          line: frame.line,
          locals: frame.locals?.map {
            DumpedVariable(name: $0.name, address: $0.address, isArgument: $0.isArgument, repr: $0.repr)
          }, isEntry: frame.isEntry, isShimEntry: frame.isShimEntry, library: frame.module)
      }
      threads[info.pid, default: []].append(
        DumpedThread(
          pid: trace.pid, threadID: trace.threadID, osThreadID: trace.osThreadID.map { Int32(truncatingIfNeeded: $0) },
          name: trace.threadName, active: trace.active, ownsGIL: trace.ownsGIL, frames: frames))
    }
    return order.compactMap { pid in
      guard let info = infos[pid] else { return nil }
      return DumpedProcess(
        pid: pid, commandLine: info.commandLine.joined(separator: " "), pythonVersion: info.pythonVersion,
        executable: info.executable, parentPID: info.parentPID,
        parentCommandLine: info.parentPID.map { ProcFS.commandLine($0).joined(separator: " ") },
        threads: threads[pid] ?? [])
    }
  }
}
