//===--- SpyglassError.swift - what went wrong, in one plain sentence ---------===//
//
// Every error the library throws, each with the sentence the command line prints for it (and
// exits 1). This is the one place errors are turned into words.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess
import SpyglassStacks

/// An error from attaching to, reading or recording a Python process. `description` is one plain
/// sentence saying what happened and what to do.
public enum SpyglassError: Error, Sendable, Equatable, CustomStringConvertible {
  /// No process has this pid.
  case noSuchProcess(pid: Int32)
  /// The process ended before (or while) it was read.
  case processExited(pid: Int32)
  /// The kernel refused to let Spyglass read or pause the process.
  case permissionDenied(pid: Int32)
  /// The process runs no CPython interpreter Spyglass can find.
  case notPython(pid: Int32, executable: String)
  /// A CPython version Spyglass does not support.
  case unsupportedVersion(pid: Int32, version: String)
  /// A free-threaded (`Py_GIL_DISABLED`) build.
  case freeThreaded(pid: Int32, version: String)
  /// A 3.13+ interpreter whose `_Py_DebugOffsets` has a shape Spyglass does not know.
  case unknownDebugOffsets(pid: Int32, version: String)
  /// The interpreter state could not be found (often: still starting up).
  case interpreterNotFound(pid: Int32, version: String)
  /// Reading the stacks failed (torn memory in non-blocking mode, or garbage): try again.
  case readFailed(pid: Int32, reason: String)
  /// Pausing the process failed for another reason than permissions.
  case pauseFailed(pid: Int32, errno: Int32)
  /// A program to launch could not be started.
  case launchFailed(program: String, errno: Int32)
  /// A launched program exited before Spyglass found Python in it (`status` -1 when unknown).
  case programExited(program: String, status: Int32)
  /// A launched program is not a Python program.
  case programNotPython(program: String)
  /// With subprocesses: no Python process in the whole tree.
  case noPythonProcesses(pid: Int32)
  /// `Config.native` with `.nonBlocking`: a native stack is read from a stopped thread.
  case nativeNeedsBlocking
  /// `Config.native`: the process's native stacks cannot be read (libdwfl's reason).
  case nativeUnavailable(pid: Int32, reason: String)
  /// `Config.asyncAware` (or `PythonSpy.tasks()`) on a Python older than 3.11.
  case asyncUnsupported(pid: Int32, version: String)

  public var description: String {
    switch self {
    case .noSuchProcess(let pid):
      return "No such process: there is no process with pid \(pid); check that the program is running."
    case .processExited(let pid):
      return "Process \(pid) exited before it could be profiled."
    case .permissionDenied(let pid):
      let hint =
        ProcessIdentity.isRoot
        ? "Spyglass runs as root but lacks CAP_SYS_PTRACE (in Docker, start the container with --cap-add SYS_PTRACE; check kernel.yama.ptrace_scope)"
        : "run it again with sudo, or give it CAP_SYS_PTRACE (in Docker: --cap-add SYS_PTRACE), or allow tracing with `sysctl kernel.yama.ptrace_scope=0`"
      return "Permission denied reading process \(pid): \(hint)."
    case .notPython(let pid, let executable):
      return "Process \(pid) (\(executable)) is not a Python program: no CPython interpreter was found in it."
    case .unsupportedVersion(let pid, let version):
      return
        "Process \(pid) runs Python \(version), which Spyglass does not support (supported: \(PythonTraits.supportedVersionsDescription))."
    case .freeThreaded(let pid, let version):
      return
        "Process \(pid) runs a free-threaded build of Python \(version) (Py_GIL_DISABLED), which Spyglass does not support yet."
    case .unknownDebugOffsets(let pid, let version):
      return
        "Process \(pid): Spyglass does not know this interpreter's debug offsets (version \(version)), so it cannot read it safely (supported: \(PythonTraits.supportedVersionsDescription))."
    case .interpreterNotFound(let pid, let version):
      return
        "Could not find the Python \(version) interpreter state in process \(pid); it may still be starting up, try again."
    case .readFailed(let pid, let reason):
      return "Could not read the stacks of process \(pid) (\(reason)); try again."
    case .pauseFailed(let pid, let code):
      return "Could not pause process \(pid): \(SystemError.describe(code))."
    case .launchFailed(let program, let code):
      return "Could not start '\(program)': \(SystemError.describe(code))."
    case .programExited(let program, let status):
      let how = status >= 0 ? "exited (status \(status))" : "exited"
      return "The program '\(program)' \(how) before Spyglass could find a Python interpreter in it."
    case .programNotPython(let program):
      return "The program '\(program)' is not a Python program: no CPython interpreter was found in it."
    case .noPythonProcesses(let pid):
      return "No Python processes found in process \(pid) or any of its subprocesses."
    case .nativeNeedsBlocking:
      return "Can't get native stack traces with the --nonblocking option."
    case .nativeUnavailable(let pid, let reason):
      return "Could not read the native stacks of process \(pid) (\(reason))."
    case .asyncUnsupported(let pid, let version):
      return "Process \(pid) runs Python \(version): asyncio awareness needs CPython 3.11 or later."
    }
  }

  init(_ error: AttachError) {
    switch error {
    case .noSuchProcess(let pid): self = .noSuchProcess(pid: pid)
    case .processExited(let pid): self = .processExited(pid: pid)
    case .permissionDenied(let pid): self = .permissionDenied(pid: pid)
    case .notPython(let pid, let executable): self = .notPython(pid: pid, executable: executable)
    case .unsupportedVersion(let pid, let version): self = .unsupportedVersion(pid: pid, version: version)
    case .freeThreaded(let pid, let version): self = .freeThreaded(pid: pid, version: version)
    case .unknownDebugOffsets(let pid, let version): self = .unknownDebugOffsets(pid: pid, version: version)
    case .interpreterNotFound(let pid, let version): self = .interpreterNotFound(pid: pid, version: version)
    }
  }

  init(_ error: SampleError, pid: Int32) {
    switch error {
    case .processExited: self = .processExited(pid: pid)
    case .permissionDenied: self = .permissionDenied(pid: pid)
    case .read(let fault): self = .readFailed(pid: pid, reason: "\(fault)")
    case .pause(let code): self = .pauseFailed(pid: pid, errno: code)
    }
  }

  /// Whether waiting cannot help: the process is gone, or it can never be read.
  public var isFinal: Bool {
    switch self {
    case .readFailed, .interpreterNotFound: return false
    default: return true
    }
  }
}
