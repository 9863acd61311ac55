//===--- StackDump.swift - one look at every thread (for `dump`) ----------===//
//
// The model `spyglass dump` prints: per process, its threads in interpreter order (newest first,
// as CPython keeps them), each with resolved frames innermost first and, with --locals, the
// arguments and locals of each frame. Field names follow py-spy's JSON.
//
//===----------------------------------------------------------------------===//

public struct DumpedVariable: Sendable, Equatable {
  public var name: String
  public var address: UInt64
  public var isArgument: Bool
  public var repr: String?
  public init(name: String, address: UInt64, isArgument: Bool, repr: String?) {
    self.name = name
    self.address = address
    self.isArgument = isArgument
    self.repr = repr
  }
}

public struct DumpedFrame: Sendable, Equatable {
  public var name: String
  public var filename: String
  public var shortFilename: String
  public var line: Int
  public var locals: [DumpedVariable]?
  public var isEntry: Bool
  public var isShimEntry: Bool
  public init(
    name: String, filename: String, shortFilename: String, line: Int, locals: [DumpedVariable]? = nil,
    isEntry: Bool = false, isShimEntry: Bool = false
  ) {
    self.name = name
    self.filename = filename
    self.shortFilename = shortFilename
    self.line = line
    self.locals = locals
    self.isEntry = isEntry
    self.isShimEntry = isShimEntry
  }
}

public struct DumpedThread: Sendable, Equatable {
  public var pid: Int32
  public var threadID: UInt64
  public var osThreadID: Int32?
  public var name: String?
  public var active: Bool
  public var ownsGIL: Bool
  /// Innermost first.
  public var frames: [DumpedFrame]
  public init(
    pid: Int32, threadID: UInt64, osThreadID: Int32?, name: String?, active: Bool, ownsGIL: Bool, frames: [DumpedFrame]
  ) {
    self.pid = pid
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.name = name
    self.active = active
    self.ownsGIL = ownsGIL
    self.frames = frames
  }

  /// `idle`, `active` or `active+gil`, as py-spy prints them.
  public var status: String { !active ? "idle" : ownsGIL ? "active+gil" : "active" }

  /// The OS tid in decimal when known, else the pthread id in hex.
  public var displayID: String {
    if let osThreadID { return String(osThreadID) }
    return "0x" + String(threadID, radix: 16, uppercase: true)
  }
}

public struct DumpedProcess: Sendable, Equatable {
  public var pid: Int32
  public var commandLine: String
  public var pythonVersion: String
  public var executable: String
  /// The parent process (for `dump --subprocesses`), when this is a child.
  public var parentPID: Int32?
  public var parentCommandLine: String?
  /// Interpreter order: newest thread first.
  public var threads: [DumpedThread]
  public init(
    pid: Int32, commandLine: String, pythonVersion: String, executable: String, parentPID: Int32? = nil,
    parentCommandLine: String? = nil, threads: [DumpedThread]
  ) {
    self.pid = pid
    self.commandLine = commandLine
    self.pythonVersion = pythonVersion
    self.executable = executable
    self.parentPID = parentPID
    self.parentCommandLine = parentCommandLine
    self.threads = threads
  }
}
