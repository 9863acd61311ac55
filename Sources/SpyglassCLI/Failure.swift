//===--- Failure.swift - what the user is told when something is wrong ---===//
//
// Every failure becomes one plain sentence on stderr and exit code 1; no Swift trap, no stack trace.
// The sentences themselves are the library's (`SpyglassError.description`); this file only prints
// them, and holds the few that are about the command line itself.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassProcess

/// A failure with the sentence to show.
struct Failure: Error, CustomStringConvertible {
  let message: String
  var exitCode: Int32 = 1
  var description: String { message }

  init(message: String, exitCode: Int32 = 1) {
    self.message = message
    self.exitCode = exitCode
  }

  init(_ error: SpyglassError) { self.init(message: error.description) }

  /// Prints the sentence to stderr and exits.
  func exit() -> Never {
    printError("spyglass: \(message)")
    StandardStreams.exit(exitCode)
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
    Failure(error).exit()
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
