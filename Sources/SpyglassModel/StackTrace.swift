//===--- StackTrace.swift - frames, threads, processes and tasks, resolved ---===//
//
// py-spy's `StackTrace`, `Frame`, `LocalVariable` and `ProcessInfo`, in Swift spelling, and the
// asyncio `TaskTrace`: what a look at a process (live or a core file) reads, as text. The
// library hands these out, the dump writers print them, and the profile is built from the
// frames. Every string in them was read from the target: treat it as untrusted text (it may
// hold markup, control characters or invalid text, replaced by U+FFFD).
//
//===----------------------------------------------------------------------===//

/// One argument or local variable of a frame.
public struct LocalVariable: Sendable, Equatable, Hashable {
  public var name: String
  /// The object's address in the target.
  public var address: UInt64
  /// Whether it is an argument of the function (else a local variable).
  public var isArgument: Bool
  /// A bounded repr of the value, or nil when it could not be read.
  public var repr: String?

  public init(name: String, address: UInt64, isArgument: Bool, repr: String?) {
    self.name = name
    self.address = address
    self.isArgument = isArgument
    self.repr = repr
  }
}

/// One frame of a stack.
public struct Frame: Sendable, Equatable, Hashable {
  /// The function: its qualified name on 3.11+ (`Thread.run`), else its name. A native frame's
  /// demangled symbol (a Cython function's Python-level name), or `0x<offset>` without one.
  public var name: String
  /// The Python file; a native frame's source file where its library's debug information gives
  /// one, else the library's path.
  public var filename: String
  /// For native frames, the library's path as the target maps it; nil for Python frames.
  public var module: String?
  /// The file name without the folders before its package (py-spy's short form); a native
  /// frame's source file name, or its library's file name.
  public var shortFilename: String?
  /// The line (see `Config.lineNo`), 0 when unknown.
  public var line: Int
  /// The line the function starts on (its code object's `co_firstlineno`); a native frame's
  /// source line; 0 when unknown.
  public var firstLine: Int
  /// With `Config.dumpLocals`: the frame's arguments and locals.
  public var locals: [LocalVariable]?
  /// Whether the frame was entered from C (the interpreter was called into from native code).
  public var isEntry: Bool
  /// Whether it is the outermost frame of its thread.
  public var isShimEntry: Bool
  /// What the frame is: Python code, native code, or a synthetic frame Spyglass adds (a task's,
  /// a thread's or a process's label, with no file).
  public var kind: Kind

  public enum Kind: Sendable, Hashable {
    case python
    case native
    case synthetic
  }

  /// `kind` defaults to `.native` for a frame with a `module`, else `.python`.
  public init(
    name: String, filename: String, module: String? = nil, shortFilename: String? = nil, line: Int,
    firstLine: Int = 0, locals: [LocalVariable]? = nil, isEntry: Bool = false, isShimEntry: Bool = false,
    kind: Kind? = nil
  ) {
    self.kind = kind ?? (module != nil ? .native : .python)
    self.name = name
    self.filename = filename
    self.module = module
    self.shortFilename = shortFilename
    self.line = line
    self.firstLine = firstLine
    self.locals = locals
    self.isEntry = isEntry
    self.isShimEntry = isShimEntry
  }
}

/// The process a stack trace was read from.
public struct PythonProcessInfo: Sendable, Equatable, Hashable {
  public var pid: Int32
  public var commandLine: [String]
  /// The python executable, as the target sees it.
  public var executable: String
  /// "3.14.10".
  public var pythonVersion: String
  /// The parent process when it was found as a subprocess of another traced one.
  public var parentPID: Int32?

  public init(pid: Int32, commandLine: [String], executable: String, pythonVersion: String, parentPID: Int32? = nil) {
    self.pid = pid
    self.commandLine = commandLine
    self.executable = executable
    self.pythonVersion = pythonVersion
    self.parentPID = parentPID
  }
}

/// One thread's Python stack at one instant.
public struct StackTrace: Sendable, Equatable, Hashable {
  public var pid: Int32
  /// The Python thread id (`threading.get_ident()`).
  public var threadID: UInt64
  /// The `threading` name, when the thread has one.
  public var threadName: String?
  /// The OS thread id (the kernel's tid).
  public var osThreadID: UInt64?
  /// Running (on a CPU or runnable), as opposed to idle (asleep in a system call or waiting).
  public var active: Bool
  public var ownsGIL: Bool
  /// Innermost first.
  public var frames: [Frame]
  public var processInfo: PythonProcessInfo?

  public init(
    pid: Int32, threadID: UInt64, threadName: String?, osThreadID: UInt64?, active: Bool, ownsGIL: Bool,
    frames: [Frame], processInfo: PythonProcessInfo?
  ) {
    self.pid = pid
    self.threadID = threadID
    self.threadName = threadName
    self.osThreadID = osThreadID
    self.active = active
    self.ownsGIL = ownsGIL
    self.frames = frames
    self.processInfo = processInfo
  }
}

/// One asyncio task at one instant.
public struct TaskTrace: Sendable, Equatable, Hashable {
  public enum State: String, Sendable, Hashable {
    /// The task its event loop is running now.
    case running
    /// Waiting to be run, or suspended in an await.
    case pending
    /// Finished or cancelled but still referenced (seen before 3.14 only: 3.14 lists live tasks).
    case done
  }
  public var pid: Int32
  /// The task object's address (its `id()` in the target).
  public var id: UInt64
  public var name: String
  public var state: State
  /// The Python thread id (`threading.get_ident()`) of the thread running the task, for the
  /// running task.
  public var threadID: UInt64?
  /// Its coroutine chain, innermost first: each suspended coroutine at the line of its await.
  public var frames: [Frame]
  /// The ids of the tasks that await this one (a parent awaiting it, a `gather` or `TaskGroup`).
  public var awaitedBy: [UInt64]

  public init(
    pid: Int32, id: UInt64, name: String, state: State, threadID: UInt64?, frames: [Frame], awaitedBy: [UInt64]
  ) {
    self.pid = pid
    self.id = id
    self.name = name
    self.state = state
    self.threadID = threadID
    self.frames = frames
    self.awaitedBy = awaitedBy
  }
}
