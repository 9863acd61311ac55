//===--- SpyglassRunner.swift - running the built spyglass and py-spy -----===//
//
// The test binary runs from the build folder (`<scratch>/<triple>/<config>/`, with
// `<scratch>/<config>` a symlink to it), and SwiftPM puts the `spyglass` executable in the same
// folder. So the binary is looked up, in order:
//   1. $SPYGLASS_BIN, when set;
//   2. next to the running test executable (/proc/self/exe, then CommandLine.arguments[0],
//      then Bundle.main), and up to two folders above it (for bundle layouts);
//   3. under the package root found from #filePath: .build/debug, .build-tests/debug and the
//      triple-qualified variants (a last resort: it may be another build's binary).
// This works for `swift test` with the default scratch path and with `--scratch-path X`.
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

package enum SpyglassRunner {
  /// Where the executable was found, or why not, computed once.
  package static let location: Result<String, TestSupportError> = locate()

  /// The spyglass executable to test.
  package static func executablePath() throws -> String { try location.get() }

  /// Runs `spyglass arguments...`, killing it after `timeout`. `wrapper` is prepended (for example
  /// `["setpriv", "--reuid=65534", ...]`); `executable` overrides the binary (a copy, say).
  package static func run(
    _ arguments: [String], timeout: Duration = .seconds(30), wrapper: [String] = [],
    executable: String? = nil
  ) throws -> CommandResult {
    let binary = try executable ?? executablePath()
    var environment = ProcessInfo.processInfo.environment
    environment["NO_COLOR"] = "1"
    environment.removeValue(forKey: "CLICOLOR_FORCE")
    environment.removeValue(forKey: "RUST_LOG")
    let command = wrapper + [binary] + arguments
    return try runCommand(command[0], Array(command.dropFirst()), timeout: timeout, environment: environment)
  }

  static func locate() -> Result<String, TestSupportError> {
    var tried: [String] = []
    func check(_ candidate: String) -> String? {
      tried.append(candidate)
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
        access(candidate, X_OK) == 0
      else { return nil }
      return candidate
    }
    if let override = ProcessInfo.processInfo.environment["SPYGLASS_BIN"], !override.isEmpty {
      if let found = check(override) { return .success(found) }
      return .failure(TestSupportError("SPYGLASS_BIN=\(override) is not an executable file"))
    }
    var executables: [String] = []
    if let selfExe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
      executables.append(selfExe)
    }
    if let argument0 = CommandLine.arguments.first, argument0.contains("/") {
      executables.append(URL(fileURLWithPath: argument0).standardizedFileURL.path)
    }
    if let main = Bundle.main.executableURL?.path { executables.append(main) }
    for executable in executables {
      var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
      for _ in 0..<3 {
        if let found = check(directory.appendingPathComponent("spyglass").path) { return .success(found) }
        directory = directory.deletingLastPathComponent()
      }
    }
    // #filePath is <root>/Tests/TestSupport/SpyglassRunner.swift.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    for scratch in [".build", ".build-tests"] {
      for configuration in ["debug", "release"] {
        for middle in ["", "x86_64-unknown-linux-gnu/", "aarch64-unknown-linux-gnu/"] {
          let candidate = root.appendingPathComponent("\(scratch)/\(middle)\(configuration)/spyglass").path
          if let found = check(candidate) { return .success(found) }
        }
      }
    }
    return .failure(
      TestSupportError(
        "cannot find the spyglass executable (build it: swift build); looked at:\n  "
          + tried.joined(separator: "\n  ")))
  }
}

package enum PySpy {
  /// py-spy: on PATH (a pyenv shim only counts if it runs), else in a pyenv version's bin folder.
  package static let location: Result<String, TestSupportError> = locate()

  package static func executablePath() throws -> String { try location.get() }

  package static func run(_ arguments: [String], timeout: Duration = .seconds(30)) throws -> CommandResult {
    var environment = ProcessInfo.processInfo.environment
    environment["NO_COLOR"] = "1"
    environment.removeValue(forKey: "RUST_LOG")
    return try runCommand(executablePath(), arguments, timeout: timeout, environment: environment)
  }

  static func locate() -> Result<String, TestSupportError> {
    var candidates: [String] = []
    if let override = ProcessInfo.processInfo.environment["PYSPY_BIN"], !override.isEmpty {
      candidates.append(override)
    }
    if let onPath = findOnPath("py-spy") { candidates.append(onPath) }
    let versions = "\(PythonInterpreter.pyenvRoot)/versions"
    for version in ((try? FileManager.default.contentsOfDirectory(atPath: versions)) ?? []).sorted() {
      candidates.append("\(versions)/\(version)/bin/py-spy")
    }
    var notes: [String] = []
    for candidate in candidates where access(candidate, X_OK) == 0 {
      if let result = try? runCommand(candidate, ["--version"], timeout: .seconds(20)), result.exitCode == 0,
        result.stdout.hasPrefix("py-spy")
      {
        return .success(candidate)
      }
      notes.append("\(candidate) does not run")
    }
    return .failure(
      TestSupportError(
        "py-spy not found (pip install py-spy==0.4.3); looked on PATH and in \(versions)/*/bin"
          + (notes.isEmpty ? "" : ": " + notes.joined(separator: "; "))))
  }
}
