//===--- SpyglassCommand.swift - the `spyglass` command line --------------===//
//
// py-spy's commands and option names, so a py-spy user needs no new habits: record, top, dump
// (and their unique prefixes r, t, d), plus `convert` (a recording into any format), `agent`
// (continuous profiling of a whole host) and `completions`.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import SpyglassLayouts
import SpyglassOutput
import SpyglassProcess

package struct SpyglassCommand: ParsableCommand {
  /// `spyglassVersion` (SpyglassOutput): the one place the version is written.
  package static let version = spyglassVersion

  package static let configuration = CommandConfiguration(
    commandName: "spyglass",
    abstract: "Sampling profiler for Python programs",
    discussion: """
      Spyglass reads a running CPython process's memory from outside (no code injected, nothing to \
      import) and rebuilds every thread's Python stack. Supports CPython \(PythonTraits.supportedVersionsDescription).
      """,
    version: "spyglass \(version)",
    subcommands: [Record.self, Convert.self, Top.self, Dump.self, Agent.self, Completions.self]
  )

  package init() {}

  /// Runs the command line, accepting py-spy's unique-prefix subcommands (`r`, `t`, `d`).
  /// Exit codes are py-spy's: 0, 1 for a failure, 2 for a usage error (ArgumentParser's own is
  /// 64), and no command at all is a usage error, the help going to stderr. A failure is also
  /// reported to SPYGLASS_ERROR_FILE (Failure.swift).
  package static func run(arguments: [String]) {
    let arguments = expandingPrefix(arguments)
    if arguments.isEmpty {
      StandardStreams.printError(helpMessage())
      Failure.report(kind: "usage_error", message: "No command was given.", exitCode: 2)
      StandardStreams.exit(2)
    }
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
    } catch {
      let code = exitCode(for: error)
      let message = fullMessage(for: error)
      if !message.isEmpty {
        if code == .success {
          StandardStreams.printOutput(Array((message + "\n").utf8))
        } else {
          StandardStreams.printError(message)
        }
      }
      let status = code == .validationFailure ? 2 : code.rawValue
      if status != 0 { Failure.report(error, message: sentence(of: error, fullMessage: message), exitCode: status) }
      StandardStreams.exit(status)
    }
  }

  /// The one sentence of an error's message (ArgumentParser's own messages add a usage line).
  static func sentence(of error: Error, fullMessage: String) -> String {
    let text = message(for: error).isEmpty ? fullMessage : message(for: error)
    let line = text.split(separator: "\n").first.map(String.init) ?? ""
    return line.hasPrefix("Error: ") ? String(line.dropFirst("Error: ".count)) : line
  }

  static func expandingPrefix(_ arguments: [String]) -> [String] {
    guard let first = arguments.first, !first.hasPrefix("-") else { return arguments }
    let names = ["record", "top", "dump", "agent", "completions", "help"]
    let matches = names.filter { $0.hasPrefix(first) }
    guard matches.count == 1, matches[0] != first else { return arguments }
    return [matches[0]] + arguments.dropFirst()
  }
}

/// Parses a pid given in decimal or in hex with a 0x prefix, as py-spy does.
struct ProcessID: ExpressibleByArgument, Sendable, Equatable {
  let value: Int32
  init?(argument: String) {
    let text = argument.lowercased()
    if text.hasPrefix("0x") {
      guard let value = Int32(text.dropFirst(2), radix: 16), value > 0 else { return nil }
      self.value = value
    } else {
      guard let value = Int32(text), value > 0 else { return nil }
      self.value = value
    }
  }
  static let defaultCompletionKind = CompletionKind.default
}

package struct Completions: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract: "Generate shell completions", shouldDisplay: false)

  @Argument(help: "Shell type (bash, zsh, fish)")
  var shell: CompletionShell

  package init() {}

  package func run() throws {
    print(SpyglassCommand.completionScript(for: shell))
  }
}

extension CompletionShell: @retroactive ExpressibleByArgument {
  public init?(argument: String) { self.init(rawValue: argument) }
  public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
