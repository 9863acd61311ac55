//===--- StackDump.swift - one look at every thread (for `dump`) ----------===//
//
// The model `spyglass dump` prints: per process, its threads in interpreter order (newest first,
// as CPython keeps them), each with resolved frames innermost first and, with --locals, the
// arguments and locals of each frame. Field names follow py-spy's JSON.
//
//===----------------------------------------------------------------------===//

package struct DumpedVariable: Sendable, Equatable {
  package var name: String
  package var address: UInt64
  package var isArgument: Bool
  package var repr: String?
  package init(name: String, address: UInt64, isArgument: Bool, repr: String?) {
    self.name = name
    self.address = address
    self.isArgument = isArgument
    self.repr = repr
  }
}

package struct DumpedFrame: Sendable, Equatable {
  package var name: String
  package var filename: String
  package var shortFilename: String
  package var line: Int
  package var locals: [DumpedVariable]?
  package var isEntry: Bool
  package var isShimEntry: Bool
  /// A native frame's library path (see `Frame.library`; `module` in the JSON, as py-spy's); nil
  /// for Python frames.
  package var library: String?
  package init(
    name: String, filename: String, shortFilename: String, line: Int, locals: [DumpedVariable]? = nil,
    isEntry: Bool = false, isShimEntry: Bool = false, library: String? = nil
  ) {
    self.library = library
    self.name = name
    self.filename = filename
    self.shortFilename = shortFilename
    self.line = line
    self.locals = locals
    self.isEntry = isEntry
    self.isShimEntry = isShimEntry
  }
}

package struct DumpedThread: Sendable, Equatable {
  package var pid: Int32
  package var threadID: UInt64
  package var osThreadID: Int32?
  package var name: String?
  package var active: Bool
  package var ownsGIL: Bool
  /// Innermost first.
  package var frames: [DumpedFrame]
  package init(
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
  package var status: String { !active ? "idle" : ownsGIL ? "active+gil" : "active" }

  /// The OS tid in decimal when known, else the pthread id in hex.
  package var displayID: String {
    if let osThreadID { return String(osThreadID) }
    return "0x" + String(threadID, radix: 16, uppercase: true)
  }
}

package struct DumpedProcess: Sendable, Equatable {
  package var pid: Int32
  package var commandLine: String
  package var pythonVersion: String
  package var executable: String
  /// The parent process (for `dump --subprocesses`), when this is a child.
  package var parentPID: Int32?
  package var parentCommandLine: String?
  /// Interpreter order: newest thread first.
  package var threads: [DumpedThread]
  package init(
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

/// One asyncio task of a dump (`dump --async`).
package struct DumpedTask: Sendable, Equatable {
  package var name: String
  /// The task object's address.
  package var id: UInt64
  /// `running`, `pending` or `done`.
  package var state: String
  /// The thread running it (running task only).
  package var threadID: UInt64?
  /// Its coroutine chain, innermost first.
  package var frames: [DumpedFrame]
  /// The names of the tasks awaiting it.
  package var awaitedBy: [String]
  package init(
    name: String, id: UInt64, state: String, threadID: UInt64?, frames: [DumpedFrame], awaitedBy: [String]
  ) {
    self.name = name
    self.id = id
    self.state = state
    self.threadID = threadID
    self.frames = frames
    self.awaitedBy = awaitedBy
  }
}

/// The asyncio tasks of a dump's root process.
package struct DumpedTasks: Sendable, Equatable {
  package var pid: Int32
  package var tasks: [DumpedTask]
  /// Tasks left out (past the read limit, or in a list that cycles).
  package var cut: Int
  package init(pid: Int32, tasks: [DumpedTask], cut: Int) {
    self.pid = pid
    self.tasks = tasks
    self.cut = cut
  }
}
