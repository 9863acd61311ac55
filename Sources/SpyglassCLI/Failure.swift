//===--- Failure.swift - what the user is told when something is wrong ---===//
//
// Every failure becomes one plain sentence on stderr and exit code 1; no Swift trap, no stack trace.
// The sentences themselves are the library's (`SpyglassError.description`); this file only prints
// them, and holds the few that are about the command line itself.
//
// For programs that run spyglass (the Python package does), a failure is also a structured report:
// when the environment variable SPYGLASS_ERROR_FILE names a file, every command that fails, usage
// errors included, writes one JSON object there before it exits:
//
//     {"kind": "permission_denied", "message": "Permission denied reading process 42: …", "exit_code": 1}
//
// `kind` is a stable snake_case name of the error's case (`SpyglassError.kind`; `usage_error` for
// the command line's own), `message` the sentence printed (without the `spyglass: ` prefix), `exit_code` the
// status the command exits with.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassOutput
import SpyglassProcess
import SpyglassStacks

/// A failure with the sentence to show.
struct Failure: Error, CustomStringConvertible {
  let message: String
  var exitCode: Int32 = 1
  /// The stable name of what went wrong (SPYGLASS_ERROR_FILE's `kind`).
  var kind: String = "failure"
  var description: String { message }

  init(message: String, exitCode: Int32 = 1, kind: String = "failure") {
    self.message = message
    self.exitCode = exitCode
    self.kind = kind
  }

  init(_ error: SpyglassError) { self.init(message: error.description, kind: error.kind) }

  /// Prints the sentence to stderr, reports it (SPYGLASS_ERROR_FILE) and exits.
  func exit() -> Never {
    printError("spyglass: \(message)")
    Failure.report(kind: kind, message: message, exitCode: exitCode)
    StandardStreams.exit(exitCode)
  }

  /// The environment variable naming the file a failure is reported to.
  static let errorFileVariable = "SPYGLASS_ERROR_FILE"

  /// Writes the JSON report of a failure to the file SPYGLASS_ERROR_FILE names, if it names one.
  /// A report that cannot be written is left out: the sentence is on stderr anyway.
  static func report(kind: String, message: String, exitCode: Int32) {
    guard let path = Environment.value(errorFileVariable), !path.isEmpty else { return }
    try? OutputFile(path).write(ErrorReport.json(kind: kind, message: message, exitCode: exitCode))
  }

  /// The report of an error that reached `SpyglassCommand.run` (usage errors, and anything a
  /// command did not turn into a Failure itself).
  static func report(_ error: Error, message: String, exitCode: Int32) {
    let kind: String
    switch error {
    case let failure as Failure: kind = failure.kind
    case let error as SpyglassError: kind = error.kind
    default: kind = exitCode == 2 ? "usage_error" : "failure"
    }
    report(kind: kind, message: message, exitCode: exitCode)
  }
}

/// Writes a line to stderr.
func printError(_ line: String) { StandardStreams.printError(line) }

/// Writes bytes to a file descriptor, retrying short writes.
func writeAll(fd: Int32, _ bytes: [UInt8]) { StandardStreams.writeAll(fd: fd, bytes) }

/// Runs `body`, turning any Failure or library error into its message and exit code.
func reportingFailures(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let failure as Failure {
    failure.exit()
  } catch let error as SpyglassError {
    Failure(error.withSubprocessHint()).exit()
  }
}

extension SpyglassError {
  /// A process that is not Python but has Python processes under it says so, and what to do.
  func withSubprocessHint() -> SpyglassError {
    guard case .notPython(let pid, let executable) = self else { return self }
    let children = ProcessTree.descendants(of: pid).map(\.pid).filter { ProcFS.mapsMentionPython($0) }
    return children.isEmpty ? self : .notPythonButParentOf(pid: pid, executable: executable, children: children)
  }
}

extension OutputFile {
  /// `checkWritable`, its failure said as the one error family says it.
  func checkingWritable() throws(SpyglassError) {
    do { try checkWritable() } catch { throw .outputNotWritable(path: path, errno: error.rawValue) }
  }

  /// `write`, its failure said as the one error family says it.
  func writing(_ bytes: [UInt8]) throws(SpyglassError) {
    do { try write(bytes) } catch { throw .outputWriteFailed(path: path, errno: error.rawValue) }
  }
}

/// One line per thread state that held an OS thread id its process does not have (said once, at
/// the end of a recording or a dump).
func threadIDNotes(_ corrections: [ThreadIDCorrection]) -> [String] {
  corrections.map { correction in
    let found =
      correction.real.map { "it is shown as thread \($0), the process's own" }
      ?? "its OS thread could not be told, so it is shown without one"
    return
      "spyglass> Process \(correction.pid): a Python thread's state names OS thread \(correction.claimed), which is not one of the process's threads (it was forked without its interpreter being told, as uWSGI forks its workers); \(found)."
  }
}
