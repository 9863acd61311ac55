//===--- SpyglassError.swift - what went wrong, in one plain sentence ---------===//
//
// The one error family: every failure a user can meet, from attaching to a process to writing
// its profile, is a case here, and its sentence is written here and nowhere else. Lower layers
// throw small typed errors of their own (`Errno` for system calls, `ReadFault` for target memory,
// `ELFError` for binaries and cores, `NativeError`, `DebugOffsetsError`); the layer that knows
// what was being done wraps them in a case of this one. The command line prints `description`
// and exits 1; `kind` names the case for programs (the Python package reads it).
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// An error from attaching to, reading, recording or writing a Python process's stacks.
/// `description` is one plain sentence saying what happened and what to do.
public enum SpyglassError: Error, Sendable, Equatable, CustomStringConvertible {
  /// No process has this pid.
  case noSuchProcess(pid: Int32)
  /// The process ended before (or while) it was read.
  case processExited(pid: Int32)
  /// The kernel refused to let Spyglass read or pause the process.
  case permissionDenied(pid: Int32)
  /// The process runs no CPython interpreter Spyglass can find.
  case notPython(pid: Int32, executable: String)
  /// A process that is not Python, with Python processes under it (a shell, a launcher, a server's
  /// parent): `children` are some of them.
  case notPythonButParentOf(pid: Int32, executable: String, children: [Int32])
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
  /// `Config.asyncAware` (or `PythonSpy.stackTracesAndTasks()`) on a Python older than 3.11.
  case asyncUnsupported(pid: Int32, version: String)
  /// A core file that cannot be read as one (`reason` says why).
  case coreUnreadable(path: String, reason: String)
  /// A core file of a program that is not Python (the executable it names).
  case coreNotPython(path: String, executable: String)
  /// A core file whose interpreter state cannot be found.
  case coreInterpreterNotFound(path: String, version: String)
  /// Neither the executable nor a libpython of a core file can be opened here.
  case coreBinariesNotFound(path: String, executable: String)
  /// The stacks in a core file cannot be read (`reason` says why).
  case coreReadFailed(path: String, reason: String)
  /// The native stacks of a core file cannot be read (libdwfl's reason).
  case coreNativeUnavailable(path: String, reason: String)
  /// Anything else about a core file: the sentence of the same error for a live process, said of
  /// the core file.
  indirect case inCore(path: String, SpyglassError)
  /// A recording whose targets all exited before any sample was taken (`program` for a launched
  /// one; `idleLeftOut` when idle threads were left out).
  case exitedBeforeAnySample(program: String?, pid: Int32, idleLeftOut: Bool)
  /// A recording that kept no sample and had errors: `errors` of its `samples` failed (the others,
  /// if any, found every thread idle). `lastError` is the last failure's sentence.
  case everySampleFailed(errors: Int, samples: Int, lastError: String)
  /// An output file that cannot be created or opened for writing (found before sampling starts).
  case outputNotWritable(path: String, errno: Int32)
  /// Writing an output file failed.
  case outputWriteFailed(path: String, errno: Int32)
  /// A profile could not be rendered in a format (`reason` says why).
  case renderFailed(format: String, reason: String)
  /// The sampling thread could not be started.
  case threadStartFailed(errno: Int32)
  /// A recording file (`record -f spyglass`) that cannot be opened or read.
  case recordingUnreadable(path: String, errno: Int32)
  /// A recording file that is not one, is damaged, cut short or from a newer Spyglass.
  case badRecording(path: String, problem: RecordingProblem)
  /// A regular expression (the agent's `--match` / `--exclude`) that does not compile.
  case invalidPattern(pattern: String, reason: String)
  /// An upload URL (`--upload`) that cannot be used (`reason` says why). The URL is kept without
  /// its password.
  case invalidUploadURL(url: String, reason: String)
  /// A header an upload would carry (a tenant, a token, an extra header) that cannot be sent.
  case invalidUploadHeader(name: String, reason: String)
  /// The CA bundle for HTTPS uploads cannot be read or holds no certificate.
  case uploadCAFileUnreadable(path: String, reason: String)
  /// The uploader's thread could not be started.
  case uploadStartFailed(errno: Int32)

  public var description: String {
    switch self {
    case .noSuchProcess(let pid):
      return "No such process: there is no process with pid \(pid); check that the program is running."
    case .processExited(let pid):
      return "Process \(pid) exited before it could be profiled."
    case .permissionDenied(let pid):
      let hint =
        Privileges.isRoot
        ? "Spyglass runs as root but lacks CAP_SYS_PTRACE (in Docker, start the container with --cap-add SYS_PTRACE; check kernel.yama.ptrace_scope)"
        : "run it again with sudo, or give it CAP_SYS_PTRACE (in Docker: --cap-add SYS_PTRACE), or allow tracing with `sysctl kernel.yama.ptrace_scope=0`"
      return "Permission denied reading process \(pid): \(hint)."
    case .notPython(let pid, let executable):
      return "Process \(pid) (\(executable)) is not a Python program: no CPython interpreter was found in it."
    case .notPythonButParentOf(let pid, let executable, let children):
      let list = children.prefix(5).map(String.init).joined(separator: ", ") + (children.count > 5 ? ", …" : "")
      return
        "Process \(pid) (\(executable)) is not a Python program, but Python runs under it (process\(children.count == 1 ? "" : "es") \(list)): add --subprocesses (-s) to read \(children.count == 1 ? "it" : "them"), or give a Python process's pid."
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
      return "Could not pause process \(pid): \(Errno(rawValue: code))."
    case .launchFailed(let program, let code):
      return "Could not start '\(program)': \(Errno(rawValue: code))."
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
    case .coreUnreadable(let path, let reason):
      return "Could not read the core file \(path): \(reason)."
    case .coreNotPython(let path, let executable):
      return
        "The core file \(path) is not of a Python program: no CPython interpreter was found in it (executable \(executable); pass --exe when its file is elsewhere)."
    case .coreInterpreterNotFound(let path, let version):
      return
        "Could not find the Python \(version) interpreter state in the core file \(path) (was it dumped while the interpreter started or exited?)."
    case .coreBinariesNotFound(let path, let executable):
      return
        "Could not open the executable of the core file \(path) (\(executable)) nor a libpython it maps; pass --exe PATH, or --core-root DIR when it ran in another root."
    case .coreReadFailed(let path, let reason):
      return "Could not read the stacks in the core file \(path) (\(reason))."
    case .coreNativeUnavailable(let path, let reason):
      return "Could not read the native stacks of the core file \(path) (\(reason))."
    case .inCore(let path, let error):
      return "Core file \(path): " + error.description
    case .everySampleFailed(let errors, let samples, let lastError):
      let reason = lastError.hasSuffix(".") ? String(lastError.dropLast()) : lastError
      if errors >= samples {
        return "Every sample failed (\(errors) errors), so no profile was written; the last error: \(reason)."
      }
      return
        "No sample was kept, so no profile was written: \(errors) of \(samples) samples failed and the others found every thread idle (--idle keeps idle threads); the last error: \(reason)."
    case .exitedBeforeAnySample(let program, let pid, let idleLeftOut):
      let who = program.map { "The program '\($0)'" } ?? "Process \(pid)"
      let hint = idleLeftOut ? " (idle threads are left out without --idle)" : ""
      return "\(who) exited before any sample was recorded\(hint); nothing was written."
    case .outputNotWritable(let path, let code):
      return "Cannot write the output file '\(path)': \(Errno(rawValue: code))."
    case .outputWriteFailed(let path, let code):
      return "Could not write the output file '\(path)': \(Errno(rawValue: code))."
    case .renderFailed(let format, let reason):
      return "Could not render the \(format) output: \(reason)."
    case .threadStartFailed(let code):
      return "Could not start the sampling thread: \(Errno(rawValue: code))."
    case .recordingUnreadable(let path, let code):
      return "Cannot read the recording '\(path)': \(Errno(rawValue: code))."
    case .badRecording(let path, let problem):
      return "Cannot read the recording '\(path)': \(problem)."
    case .invalidPattern(let pattern, let reason):
      return "'\(pattern)' is not a regular expression Spyglass can use (\(reason))."
    case .invalidUploadURL(let url, let reason):
      return "The upload URL '\(url)' cannot be used: \(reason)."
    case .invalidUploadHeader(let name, let reason):
      return "The upload header '\(name)' cannot be sent: \(reason)."
    case .uploadCAFileUnreadable(let path, let reason):
      return "Cannot read the CA file '\(path)' for HTTPS uploads: \(reason)."
    case .uploadStartFailed(let code):
      return "Could not start the upload thread: \(Errno(rawValue: code))."
    }
  }

  /// The case's name for programs (`permission_denied`, `not_python`, ...): stable across
  /// versions; a core file's error of a live kind is that kind.
  public var kind: String {
    switch self {
    case .noSuchProcess: "no_such_process"
    case .processExited: "process_exited"
    case .permissionDenied: "permission_denied"
    case .notPython: "not_python"
    case .notPythonButParentOf: "not_python"
    case .unsupportedVersion: "unsupported_version"
    case .freeThreaded: "free_threaded"
    case .unknownDebugOffsets: "unknown_debug_offsets"
    case .interpreterNotFound: "interpreter_not_found"
    case .readFailed: "read_failed"
    case .pauseFailed: "pause_failed"
    case .launchFailed: "launch_failed"
    case .programExited: "program_exited"
    case .programNotPython: "program_not_python"
    case .noPythonProcesses: "no_python_processes"
    case .nativeNeedsBlocking: "native_needs_blocking"
    case .nativeUnavailable: "native_unavailable"
    case .asyncUnsupported: "async_unsupported"
    case .coreUnreadable: "core_unreadable"
    case .coreNotPython: "core_not_python"
    case .coreInterpreterNotFound: "core_interpreter_not_found"
    case .coreBinariesNotFound: "core_binaries_not_found"
    case .coreReadFailed: "core_read_failed"
    case .coreNativeUnavailable: "core_native_unavailable"
    case .inCore(_, let error): error.kind
    case .exitedBeforeAnySample: "exited_before_any_sample"
    case .everySampleFailed: "every_sample_failed"
    case .outputNotWritable: "output_not_writable"
    case .outputWriteFailed: "output_write_failed"
    case .renderFailed: "render_failed"
    case .threadStartFailed: "thread_start_failed"
    case .recordingUnreadable: "recording_unreadable"
    case .badRecording(_, let problem): problem.kind
    case .invalidPattern: "invalid_pattern"
    case .invalidUploadURL: "invalid_upload_url"
    case .invalidUploadHeader: "invalid_upload_header"
    case .uploadCAFileUnreadable: "upload_ca_file_unreadable"
    case .uploadStartFailed: "upload_start_failed"
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

extension SpyglassError {
  /// A failed read of target memory, said of process `pid` (the process being gone is its exit).
  package init(_ fault: ReadFault, pid: Int32) {
    switch fault {
    case .processGone: self = .processExited(pid: pid)
    case .permissionDenied: self = .permissionDenied(pid: pid)
    default: self = .readFailed(pid: pid, reason: "\(fault)")
    }
  }

  /// A live process's error as the same error of the core file at `path`.
  package func inCore(_ path: String) -> SpyglassError {
    switch self {
    case .notPython(_, let executable): .coreNotPython(path: path, executable: executable)
    case .interpreterNotFound(_, let version): .coreInterpreterNotFound(path: path, version: version)
    case .readFailed(_, let reason): .coreReadFailed(path: path, reason: reason)
    case .nativeUnavailable(_, let reason): .coreNativeUnavailable(path: path, reason: reason)
    case .coreUnreadable, .coreNotPython, .coreInterpreterNotFound, .coreBinariesNotFound, .coreReadFailed,
      .coreNativeUnavailable, .inCore:
      self
    default: .inCore(path: path, self)
    }
  }
}

/// Why a recording file could not be read (`SpyglassError.badRecording`). `description` completes
/// "Cannot read the recording 'PATH': …".
public enum RecordingProblem: Error, Sendable, Equatable, CustomStringConvertible {
  /// Neither gzip nor JSON, or JSON of something else.
  case notARecording
  /// The file ends before the recording does.
  case truncated
  /// The compressed data or the JSON is damaged.
  case corrupt(String)
  /// The recording is valid JSON but does not describe a recording (a missing field, an id out of
  /// range).
  case invalid(String)
  /// A recording format version this Spyglass does not read.
  case newerVersion(Int64)
  /// Larger than this Spyglass reads.
  case tooLarge(limit: Int)

  public var description: String {
    switch self {
    case .notARecording:
      "it is not a Spyglass recording (record one with `spyglass record -f spyglass` or --save-recording)"
    case .truncated: "it is cut short (was it copied while being written?)"
    case .corrupt(let why): "it is damaged (\(why))"
    case .invalid(let why): "it is not a valid recording (\(why))"
    case .newerVersion(let version):
      "it was written by a newer Spyglass (recording format version \(version); this one reads version \(RecordingProblem.readableVersion)); convert it with that version"
    case .tooLarge(let limit): "it is larger than the \(limit >> 20) MiB this Spyglass reads"
    }
  }

  /// The stable snake_case name of the case (SPYGLASS_ERROR_FILE's `kind`).
  public var kind: String {
    switch self {
    case .notARecording: "not_a_recording"
    case .truncated: "recording_truncated"
    case .corrupt: "recording_corrupt"
    case .invalid: "recording_invalid"
    case .newerVersion: "recording_newer_version"
    case .tooLarge: "recording_too_large"
    }
  }

  /// The recording format version this Spyglass reads and writes.
  public static let readableVersion = 1
}
