//===--- PythonInterpreter.swift - the interpreters the tests run against --===//
//
// The expected set is fixed: every pyenv version installed on the project's machines plus Debian's
// statically linked python3.11. `all()` returns those that exist and answer; `requireAll()` throws,
// naming each one that is missing or broken, so a missing interpreter can never pass silently
// (a parameterized test over an empty or short list would).
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

public struct PythonVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
  public let major: Int
  public let minor: Int
  public let micro: Int

  public init(_ major: Int, _ minor: Int, _ micro: Int = 0) {
    self.major = major
    self.minor = minor
    self.micro = micro
  }

  public var description: String { "\(major).\(minor).\(micro)" }

  public static func < (a: PythonVersion, b: PythonVersion) -> Bool {
    (a.major, a.minor, a.micro) < (b.major, b.minor, b.micro)
  }

  /// Whether this is at least major.minor.
  public func atLeast(_ major: Int, _ minor: Int) -> Bool {
    (self.major, self.minor) >= (major, minor)
  }
}

/// An interpreter that should be installed. `micro` nil means any micro version.
public struct ExpectedInterpreter: Sendable, CustomStringConvertible {
  public let label: String
  public let path: String
  public let major: Int
  public let minor: Int
  public let micro: Int?

  public var description: String { "\(label) (\(path))" }

  func matches(_ version: PythonVersion) -> Bool {
    version.major == major && version.minor == minor && (micro == nil || micro == version.micro)
  }
}

public struct PythonInterpreter: Sendable, Hashable, CustomStringConvertible {
  /// "3.12.1" for pyenv builds, "3.11-debian" for /usr/bin/python3.11.
  public let label: String
  public let path: String
  /// As the interpreter itself reports it (sys.version_info).
  public let version: PythonVersion
  /// True when libpython is linked into the executable (no libpython*.so mapped at run time).
  public let isStaticBuild: Bool

  public var description: String { label }

  public var isPython2: Bool { version.major == 2 }

  /// 3.11+ reports co_qualname (py-spy 0.4.3 does too); earlier versions co_name.
  public var usesQualifiedNames: Bool { version.atLeast(3, 11) }
}

extension PythonInterpreter {
  /// pyenv's root: `pyenv root`, else $PYENV_ROOT, else /root/.pyenv.
  public static let pyenvRoot: String = {
    if let result = try? runCommand("pyenv", ["root"], timeout: .seconds(10)), result.exitCode == 0 {
      let root = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      if !root.isEmpty { return root }
    }
    if let root = ProcessInfo.processInfo.environment["PYENV_ROOT"], !root.isEmpty { return root }
    return "/root/.pyenv"
  }()

  /// The ten interpreters the suite must cover.
  public static let expectedInterpreters: [ExpectedInterpreter] = {
    let pyenv: [(Int, Int, Int)] = [
      (2, 7, 18), (3, 6, 15), (3, 7, 16), (3, 8, 18), (3, 9, 18), (3, 10, 13), (3, 11, 7), (3, 12, 1),
      (3, 13, 0),
    ]
    var list = pyenv.map { major, minor, micro in
      ExpectedInterpreter(
        label: "\(major).\(minor).\(micro)",
        path: "\(pyenvRoot)/versions/\(major).\(minor).\(micro)/bin/python\(major).\(minor)",
        major: major, minor: minor, micro: micro)
    }
    list.append(
      ExpectedInterpreter(label: "3.11-debian", path: "/usr/bin/python3.11", major: 3, minor: 11, micro: nil))
    return list
  }()

  /// The result of looking for every expected interpreter, computed once per test run.
  public static let discovery: (found: [PythonInterpreter], problems: [String]) = {
    var found: [PythonInterpreter] = []
    var problems: [String] = []
    for expected in expectedInterpreters {
      guard access(expected.path, X_OK) == 0 else {
        problems.append("\(expected.label): \(expected.path) is missing")
        continue
      }
      do {
        let interpreter = try probe(expected)
        found.append(interpreter)
      } catch {
        problems.append("\(expected.label): \(error)")
      }
    }
    return (found, problems)
  }()

  /// Every expected interpreter that is installed and works, in the order of `expectedInterpreters`.
  public static func all() -> [PythonInterpreter] { discovery.found }

  /// Throws, naming what is missing or broken, unless all ten expected interpreters work.
  @discardableResult
  public static func requireAll() throws -> [PythonInterpreter] {
    let (found, problems) = discovery
    guard problems.isEmpty, found.count == expectedInterpreters.count else {
      throw TestSupportError(
        "expected \(expectedInterpreters.count) Python interpreters, found \(found.count); missing or broken:\n  "
          + problems.joined(separator: "\n  "))
    }
    return found
  }

  /// One line for the test log: which interpreters this run covers, and which it could not.
  public static var coverageReport: String {
    let (found, problems) = discovery
    var text = "Interpreters covered (\(found.count)/\(expectedInterpreters.count)): "
    text += found.map { "\($0.label)\($0.label == "\($0.version)" ? "" : " [\($0.version)]")" }.joined(separator: ", ")
    if !problems.isEmpty { text += "; NOT covered: " + problems.joined(separator: "; ") }
    return text
  }

  /// Asks the interpreter for its version and whether libpython is a shared library it mapped.
  static func probe(_ expected: ExpectedInterpreter) throws -> PythonInterpreter {
    let code = """
      import sys
      maps = open('/proc/self/maps').read()
      shared = 'libpython%d.%d' % sys.version_info[:2] in maps
      sys.stdout.write('%d %d %d %d\\n' % (sys.version_info[0], sys.version_info[1], sys.version_info[2], shared))
      """
    let result = try runCommand(expected.path, ["-S", "-c", code], timeout: .seconds(20))
    let fields = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    guard result.exitCode == 0, fields.count == 4 else {
      throw TestSupportError("\(expected.path) did not report its version:\n\(result)")
    }
    let version = PythonVersion(fields[0], fields[1], fields[2])
    guard expected.matches(version) else {
      throw TestSupportError("\(expected.path) reports version \(version), expected \(expected.label)")
    }
    return PythonInterpreter(
      label: expected.label, path: expected.path, version: version, isStaticBuild: fields[3] == 0)
  }
}
