//===--- Config.swift - how to read a Python process ----------------------===//
//
// py-spy's `Config`, in Swift spelling: the same knobs, the same defaults. The one set of reading
// options: the library takes it, and the command line maps its flags onto it.
//
//===----------------------------------------------------------------------===//

/// How the target is held while its stacks are read.
public enum LockingStrategy: Sendable, Equatable {
  /// Pause every thread that is read for the duration of one walk (consistent stacks; the
  /// default).
  case lock
  /// Never pause the target: cheaper, but a stack can be torn while it is read.
  case nonBlocking
  /// The caller has stopped the target already (a debugger, SIGSTOP): read it as it is.
  case alreadyLocked
}

/// Which line a frame reports.
public enum LineNo: Sendable, Equatable {
  /// No line numbers (0).
  case noLine
  /// The function's first line (`co_firstlineno`): samples aggregate by function.
  case first
  /// The line of the instruction the frame is executing (the default).
  case lastInstruction
}

/// Which asyncio tasks an async-aware sample shows (Tachyon's `--async-mode`).
public enum AsyncMode: String, Sendable, Equatable, CaseIterable {
  /// Only the task each event loop is running (where the CPU goes).
  case running
  /// Every task, the suspended ones at their await (where the tasks wait: a wall-clock view).
  case all
}

/// What to read and how. The defaults are py-spy's.
public struct Config: Sendable, Equatable {
  public var blocking: LockingStrategy = .lock
  /// Native (C, C++, Cython, Rust) frames merged with the Python ones (`Frame.module` names their
  /// library). Needs `.lock`: `PythonSpy` and `Sampler` throw `SpyglassError.nativeNeedsBlocking`
  /// with `.nonBlocking`.
  public var native = false
  /// Samples per second, for `Sampler`.
  public var samplingRate = 100
  public var lineNo: LineNo = .lastInstruction
  /// Also read the target's child processes (and theirs), as they appear.
  public var subprocesses = false
  /// Keep threads that are idle (asleep in the kernel, waiting in `threading`, `select`, …);
  /// without it they are left out of the traces.
  public var includeIdle = false
  /// Only the thread holding the GIL.
  public var gilOnly = false
  /// Arguments and local variables per frame: 0 none, n > 0 with reprs of up to 128 × n characters.
  public var dumpLocals = 0
  /// Full file names in `Frame.shortFilename` too, instead of the package-relative short form.
  public var fullFilenames = false
  /// asyncio awareness (3.11+): a `Sampler` hands out one stack per task, its outermost frames
  /// `<task NAME>` pseudo-frames (empty file name, line 0) that follow who awaits it; the event
  /// loop's own frames are left out. `Sampler` throws `SpyglassError.asyncUnsupported` before 3.11.
  /// (`PythonSpy.stackTracesAndTasks()` reads the tasks themselves, whatever this says.)
  public var asyncAware = false
  /// With `asyncAware`, which tasks a `Sampler` sample shows.
  public var asyncMode: AsyncMode = .running

  public init(
    blocking: LockingStrategy = .lock, native: Bool = false, samplingRate: Int = 100,
    lineNo: LineNo = .lastInstruction, subprocesses: Bool = false, includeIdle: Bool = false,
    gilOnly: Bool = false, dumpLocals: Int = 0, fullFilenames: Bool = false
  ) {
    self.blocking = blocking
    self.native = native
    self.samplingRate = samplingRate
    self.lineNo = lineNo
    self.subprocesses = subprocesses
    self.includeIdle = includeIdle
    self.gilOnly = gilOnly
    self.dumpLocals = dumpLocals
    self.fullFilenames = fullFilenames
  }
}
