//===--- CompletionsTests.swift - `spyglass completions SHELL` -------------===//
//
// Each script is generated with exit code 0 and mentions the subcommands; bash (and zsh, when it
// is installed) must parse it with `-n`.
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

@Suite("spyglass completions")
struct CompletionsTests {
  /// Generates the script for `shell`, checks it, and returns it saved in a temporary file.
  func script(_ shell: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> (String, String) {
    let result = try SpyglassRunner.run(["completions", shell], timeout: .seconds(20))
    try #require(result.exitCode == 0, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.isEmpty, "\(result)", sourceLocation: sourceLocation)
    let text = result.stdout
    try #require(!text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, sourceLocation: sourceLocation)
    for word in ["spyglass", "record", "dump", "top"] {
      #expect(text.contains(word), "the \(shell) script mentions \(word)", sourceLocation: sourceLocation)
    }
    let directory = try makeTemporaryDirectory("spyglass-completions")
    let path = "\(directory)/spyglass.\(shell)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (directory, path)
  }

  @Test func bash() throws {
    let (directory, path) = try script("bash")
    defer { removeDirectory(directory) }
    let bash = try #require(findOnPath("bash"), "bash is not installed")
    let check = try runCommand(bash, ["-n", path], timeout: .seconds(20))
    #expect(check.exitCode == 0 && check.stderr.isEmpty, "bash -n rejects the script:\n\(check)")
  }

  @Test func zsh() throws {
    let (directory, path) = try script("zsh")
    defer { removeDirectory(directory) }
    if let zsh = findOnPath("zsh") {
      let check = try runCommand(zsh, ["-n", path], timeout: .seconds(20))
      #expect(check.exitCode == 0 && check.stderr.isEmpty, "zsh -n rejects the script:\n\(check)")
    } else {
      print("zsh is not installed: the zsh script was only checked for content")
    }
  }

  @Test func fish() throws {
    let (directory, path) = try script("fish")
    defer { removeDirectory(directory) }
    if let fish = findOnPath("fish") {
      let check = try runCommand(fish, ["--no-execute", path], timeout: .seconds(20))
      #expect(check.exitCode == 0 && check.stderr.isEmpty, "fish --no-execute rejects the script:\n\(check)")
    } else {
      print("fish is not installed: the fish script was only checked for content")
    }
  }

  @Test func unknownShell() throws {
    let result = try SpyglassRunner.run(["completions", "powershell"], timeout: .seconds(20))
    #expect(result.exitCode != 0 && result.exitCode != nil, "\(result)")
    #expect(!result.stderr.isEmpty, "\(result)")
  }
}
