//===--- Dump.swift - `spyglass dump` ---------------------------------------===//

import ArgumentParser
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

public struct Dump: ParsableCommand {
  public static let configuration = CommandConfiguration(
    abstract: "Dumps stack traces for a target program to stdout")

  @Option(name: .shortAndLong, help: "PID of a running python program to spy on, in decimal or hex")
  var pid: ProcessID

  @Flag(
    name: .shortAndLong,
    help: "Show local variables for each frame. Passing multiple times (-ll) increases verbosity")
  var locals: Int

  @Flag(name: .shortAndLong, help: "Format output as JSON")
  var json = false

  @OptionGroup var reading: ReadingOptions

  var subprocesses: Bool { reading.subprocesses }
  var fullFilenames: Bool { reading.fullFilenames }
  var nonblocking: Bool { reading.nonblocking }

  public init() {}

  public func run() throws {
    try reportingFailures {
      var processes: [DumpedProcess] = []
      var pids = [(pid.value, Int32?.none)]
      if subprocesses {
        pids += ProcessTree.descendants(of: pid.value).map { ($0.pid, Optional($0.parent)) }
      }
      for (index, (target, parent)) in pids.enumerated() {
        do {
          processes.append(try dumpProcess(target, parent: parent))
        } catch let error as AttachError where index > 0 {
          _ = error  // children that are not Python are skipped
        }
      }
      let bytes =
        json
        ? DumpWriter.json(processes)
        : DumpWriter.text(processes, fullFilenames: fullFilenames, separatorWidth: Terminal.width)
      writeAll(fd: 1, bytes)
    }
  }

  func dumpProcess(_ pid: Int32, parent: Int32?) throws -> DumpedProcess {
    let target = try PythonTarget.attach(pid: pid, waitingUpTo: 0.5)
    let sampler = ProcessSampler(target: target, blocking: !nonblocking)
    let threads: [ThreadStack]
    do { threads = try sampler.sample(wantNames: true, localsBudget: 128 * locals) } catch {
      throw Failure(error, pid: pid)
    }
    let shortener = FilenameShortener(pid: pid)
    var dumped: [DumpedThread] = []
    for thread in threads {
      var frames: [DumpedFrame] = thread.frames.enumerated().map { index, frame in
        let code = sampler.code(frame.code)
        let variables = thread.locals?[index].map {
          DumpedVariable(name: $0.name, address: $0.address, isArgument: $0.isArgument, repr: $0.repr)
        }
        return DumpedFrame(
          name: code.name, filename: code.filename, shortFilename: shortener.short(code.filename),
          line: Int(frame.line),
          locals: variables, isEntry: frame.isEntry)
      }
      if !frames.isEmpty { frames[frames.count - 1].isShimEntry = true }
      dumped.append(
        DumpedThread(
          pid: pid, threadID: thread.threadID, osThreadID: thread.osThreadID, name: thread.name, active: thread.active,
          ownsGIL: thread.ownsGIL, frames: frames))
    }
    return DumpedProcess(
      pid: pid, commandLine: target.commandLine.joined(separator: " "), pythonVersion: target.version.description,
      executable: target.executablePath, parentPID: parent,
      parentCommandLine: parent.map { ProcFS.commandLine($0).joined(separator: " ") }, threads: dumped)
  }
}
