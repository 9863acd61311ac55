//===--- Failure.swift - what the user is told when something is wrong ---===//
//
// Every failure becomes one plain sentence on stderr and exit code 1; no Swift trap, no stack trace.
// This is the one place errors are turned into words.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Glibc
import SpyglassLayouts
import SpyglassProcess
import SpyglassStacks

/// A failure with the sentence to show.
struct Failure: Error, CustomStringConvertible {
  let message: String
  var exitCode: Int32 = 1
  var description: String { message }

  static func permissionDenied(pid: Int32) -> Failure {
    let asRoot = geteuid() == 0
    let hint =
      asRoot
      ? "Spyglass runs as root but lacks CAP_SYS_PTRACE (in Docker, start the container with --cap-add SYS_PTRACE; check kernel.yama.ptrace_scope)"
      : "run it again with sudo, or give it CAP_SYS_PTRACE (in Docker: --cap-add SYS_PTRACE), or allow tracing with `sysctl kernel.yama.ptrace_scope=0`"
    return Failure(message: "Permission denied reading process \(pid): \(hint).")
  }

  init(message: String, exitCode: Int32 = 1) {
    self.message = message
    self.exitCode = exitCode
  }

  init(_ error: AttachError) {
    switch error {
    case .noSuchProcess(let pid):
      self.init(message: "No such process: there is no process with pid \(pid); check that the program is running.")
    case .processExited(let pid):
      self.init(message: "Process \(pid) exited before it could be profiled.")
    case .permissionDenied(let pid):
      self = .permissionDenied(pid: pid)
    case .notPython(let pid, let executable):
      self.init(
        message: "Process \(pid) (\(executable)) is not a Python program: no CPython interpreter was found in it.")
    case .unsupportedVersion(let pid, let version):
      self.init(
        message:
          "Process \(pid) runs Python \(version), which Spyglass does not support (supported: \(PythonTraits.supportedVersionsDescription))."
      )
    case .freeThreaded(let pid, let version):
      self.init(
        message:
          "Process \(pid) runs a free-threaded build of Python \(version) (Py_GIL_DISABLED), which Spyglass does not support yet."
      )
    case .unknownDebugOffsets(let pid, let version):
      self.init(
        message:
          "Process \(pid): Spyglass does not know this interpreter's debug offsets (version \(version)), so it cannot read it safely (supported: \(PythonTraits.supportedVersionsDescription))."
      )
    case .interpreterNotFound(let pid, let version):
      self.init(
        message:
          "Could not find the Python \(version) interpreter state in process \(pid); it may still be starting up, try again."
      )
    }
  }

  init(_ error: SampleError, pid: Int32) {
    switch error {
    case .processExited: self.init(message: "Process \(pid) exited.")
    case .permissionDenied: self = .permissionDenied(pid: pid)
    case .read(let fault): self.init(message: "Could not read the stacks of process \(pid) (\(fault)); try again.")
    case .pause(let code):
      self.init(message: "Could not pause process \(pid): \(String(cString: strerror(code))).")
    }
  }

  /// Prints the sentence to stderr and exits.
  func exit() -> Never {
    printError("spyglass: \(message)")
    Glibc.exit(exitCode)
  }
}

/// Writes a line to stderr.
func printError(_ line: String) {
  var bytes = Array(line.utf8)
  bytes.append(10)
  writeAll(fd: 2, bytes)
}

/// Writes bytes to a file descriptor, retrying short writes.
func writeAll(fd: Int32, _ bytes: [UInt8]) {
  var offset = 0
  while offset < bytes.count {
    let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if n < 0 {
      if errno == EINTR { continue }
      return
    }
    offset += n
  }
}

/// Runs `body`, turning any Failure into its message and exit code.
func reportingFailures(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let failure as Failure {
    failure.exit()
  } catch let error as AttachError {
    Failure(error).exit()
  }
}
