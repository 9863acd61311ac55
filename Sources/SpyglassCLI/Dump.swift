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
import SpyglassStacks

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
      var config = Config()
      config.blocking = nonblocking ? .nonBlocking : .lock
      config.native = reading.native
      config.subprocesses = subprocesses
      config.dumpLocals = locals
      // One path for a live process and a core file: their traces, grouped by process.
      var processes: [DumpedProcess] = []
      var tasks: (list: [TaskTrace], pid: Int32, cut: Int)?
      var corrections: [ThreadIDCorrection] = []
      if let core {
        let dump = try PythonCoreDump(path: core, executable: exe, root: coreRoot)
        processes = DumpedProcess.group(
          try dump.stackTraces(config: config), root: dump.processInfo, parentCommandLine: { _ in nil })
      } else if let pid {
        // The root is attached once: with -s, a root with no interpreter to read (a shell, a
        // launcher, a PyInstaller bootloader, Apache's parent under mod_wsgi) has the Python
        // processes under it dumped instead, as `record -s` samples them.
        let spy: PythonSpy?
        do throws(SpyglassError) {
          spy = try PythonSpy(pid: pid.value, config: config)
        } catch {
          guard subprocesses, Self.hasNoInterpreter(error) else { throw error }
          spy = nil
          processes = try pythonDescendants(
            of: pid.value, config: config, rootError: error, corrections: &corrections)
        }
        if let spy {
          let traces: [StackTrace]
          if asyncTasks {
            let read = try spy.stackTracesAndTasks()
            traces = read.traces
            tasks = (read.tasks, spy.pid, read.cutTasks)
          } else {
            traces = try spy.stackTraces()
          }
          processes = DumpedProcess.group(
            traces, root: spy.processInfo,
            parentCommandLine: { ProcFS.commandLine($0).joined(separator: " ") })
          corrections = spy.threadIDCorrections
        }
      } else {
        return
      }
      var bytes: [UInt8]
      if json {
        bytes =
          tasks.map { DumpWriter.json(processes, tasks: $0.list, cut: $0.cut) } ?? DumpWriter.json(processes)
      } else {
        bytes = DumpWriter.text(processes, fullFilenames: fullFilenames, separatorWidth: Terminal.width)
        if let tasks {
          bytes += DumpWriter.text(tasks: tasks.list, pid: tasks.pid, cut: tasks.cut, fullFilenames: fullFilenames)
        }
      }
      writeAll(fd: 1, bytes)
      for line in threadIDNotes(corrections) { printError(line) }
    }
  }

  /// Whether attaching failed because the process has no interpreter to read: not a Python
  /// process, or one that loaded libpython without an interpreter in it (Apache's parent under
  /// mod_wsgi).
  private static func hasNoInterpreter(_ error: SpyglassError) -> Bool {
    switch error {
    case .notPython, .notPythonButParentOf, .interpreterNotFound: return true
    default: return false
    }
  }

  /// Every Python process under `pid` (children first found first), each read on its own; the
  /// root's error when there is none.
  private func pythonDescendants(
    of pid: Int32, config: Config, rootError: SpyglassError, corrections: inout [ThreadIDCorrection]
  ) throws(SpyglassError) -> [DumpedProcess] {
    var childConfig = config
    childConfig.subprocesses = false
    var processes: [DumpedProcess] = []
    for (child, _) in ProcessTree.descendants(of: pid) {
      // Children that are not Python, or that end or cannot be read meanwhile, are left out.
      guard let spy = try? PythonSpy(pid: child, config: childConfig), let traces = try? spy.stackTraces() else {
        continue
      }
      processes += DumpedProcess.group(
        traces, root: spy.processInfo, parentCommandLine: { ProcFS.commandLine($0).joined(separator: " ") })
      corrections += spy.threadIDCorrections
    }
    if processes.isEmpty { throw rootError }
    return processes
  }
}
