//===--- PythonInterpreter.swift - the interpreters the tests run against --===//
//
// The expected set is fixed: every pyenv version installed on the project's machines, Debian's
// statically linked python3.11, and three Debian builds that run inside debootstrap'd roots
// (trixie's python3.13, sid's python3.14 and python3.15; tools/debian-roots.sh makes them). A
// rooted interpreter is started through tools/in-root.sh, chrooted in a mount namespace of its own,
// so the tests see it from the host the way a profiler sees a container's process. `all()` returns
// those that exist and answer; `requireAll()` throws, naming each one that is missing or broken, so
// a missing interpreter can never pass silently (a parameterized test over an empty or short list
// would).
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

package struct PythonVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
  package let major: Int
  package let minor: Int
  package let micro: Int

  package init(_ major: Int, _ minor: Int, _ micro: Int = 0) {
    self.major = major
    self.minor = minor
    self.micro = micro
  }

  package var description: String { "\(major).\(minor).\(micro)" }

  package static func < (a: PythonVersion, b: PythonVersion) -> Bool {
    (a.major, a.minor, a.micro) < (b.major, b.minor, b.micro)
  }

  /// Whether this is at least major.minor.
  package func atLeast(_ major: Int, _ minor: Int) -> Bool {
    (self.major, self.minor) >= (major, minor)
  }
}

/// An interpreter that should be installed. `micro` nil means any micro version.
package struct ExpectedInterpreter: Sendable, CustomStringConvertible {
  package let label: String
  /// The executable as the interpreter's own processes see it: inside `root` when there is one.
  package let path: String
  package let major: Int
  package let minor: Int
  package let micro: Int?
  /// The host folder of the Debian root the interpreter runs in (chrooted); nil on the host.
  package let root: String?

  package init(label: String, path: String, major: Int, minor: Int, micro: Int?, root: String? = nil) {
    self.label = label
    self.path = path
    self.major = major
    self.minor = minor
    self.micro = micro
    self.root = root
  }

  /// Where the executable is on the host.
  package var hostPath: String { (root ?? "") + path }

  package var description: String { root.map { "\(label) (\(path) in \($0))" } ?? "\(label) (\(path))" }

  func matches(_ version: PythonVersion) -> Bool {
    version.major == major && version.minor == minor && (micro == nil || micro == version.micro)
  }
}

package struct PythonInterpreter: Sendable, Hashable, CustomStringConvertible {
  /// "3.12.1" for pyenv builds, "3.11-debian" for /usr/bin/python3.11, "3.14-sid" for Debian sid's
  /// python3.14 in its root.
  package let label: String
  /// The executable as the interpreter's processes see it (inside `root` for a rooted one): the
  /// first word of their /proc/PID/cmdline. The host's name for the file is `hostPath`.
  package let path: String
  /// The host folder of the Debian root the interpreter runs in, nil for a host interpreter.
  package let root: String?
  /// The argv that starts the interpreter; append a script (or -c CODE) and its arguments. `[path]`
  /// on the host; for a rooted interpreter tools/in-root.sh with the folders the tests hand their
  /// targets bound at the same paths inside (see `PythonInterpreter.rootBinds`), the root and
  /// `path`. in-root.sh execs at every step, so the process started is the interpreter's own pid.
  package let command: [String]
  /// Where the executable is on the host (to read its ELF file, or compare /proc/PID/exe): inside
  /// `root` for a rooted interpreter's own executable, `path` itself for one in a bound folder
  /// (`withExecutable`).
  package let hostPath: String
  /// As the interpreter itself reports it (sys.version_info).
  package let version: PythonVersion
  /// True when libpython is linked into the executable (no libpython*.so mapped at run time).
  package let isStaticBuild: Bool

  package var description: String { label }

  /// The same interpreter started from another executable file, `path` (a doctored copy of its
  /// executable, say). For a rooted interpreter `path` must be in one of `rootBinds` (under
  /// NSTemporaryDirectory(), for instance), where the host and the root see the same file; the copy
  /// then runs inside the root, with the root's standard library, like the original.
  package func withExecutable(_ path: String) -> PythonInterpreter {
    PythonInterpreter(
      label: label, path: path, root: root, command: root == nil ? [path] : command.dropLast() + [path],
      hostPath: path, version: version, isStaticBuild: isStaticBuild)
  }

  package var isPython2: Bool { version.major == 2 }

  /// 3.11+ reports co_qualname (py-spy 0.4.3 does too); earlier versions co_name.
  package var usesQualifiedNames: Bool { version.atLeast(3, 11) }

  /// Whether test.sh installs numpy (2.x, from PyPI) into this interpreter: pyenv's 3.9 and later.
  /// The locals tests check numpy scalars there and fail when numpy is missing.
  package var hasNumpyFromTestScript: Bool {
    root == nil && hostPath.hasPrefix(PythonInterpreter.pyenvRoot + "/") && version.atLeast(3, 9)
  }
}

extension PythonInterpreter {
  /// pyenv's root: `pyenv root`, else $PYENV_ROOT, else /root/.pyenv.
  package static let pyenvRoot: String = {
    if let result = try? runCommand("pyenv", ["root"], timeout: .seconds(10)), result.exitCode == 0 {
      let root = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      if !root.isEmpty { return root }
    }
    if let root = ProcessInfo.processInfo.environment["PYENV_ROOT"], !root.isEmpty { return root }
    return "/root/.pyenv"
  }()

  /// The folder holding the Debian roots (`tools/debian-roots.sh --print`: $SPYGLASS_ROOTS, else
  /// /var/cache/spyglass/debian-roots), asked of the script so that the two never disagree.
  package static let debianRoots: String = {
    let script = RepositoryFiles.path("tools/debian-roots.sh")
    if let result = try? runCommand(script, ["--print"], timeout: .seconds(10)), result.exitCode == 0 {
      let folder = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      if !folder.isEmpty { return folder }
    }
    if let folder = ProcessInfo.processInfo.environment["SPYGLASS_ROOTS"], !folder.isEmpty { return folder }
    return "/var/cache/spyglass/debian-roots"
  }()

  /// The host folders a rooted interpreter sees at the same paths: /tmp and the package (fixture
  /// scripts, tools), plus the temporary folder and the folder of the running test binary (the test
  /// bundle's Fixtures resources sit beside it) when they are elsewhere. Every path a test hands a
  /// target, and every file the target writes for the test, is in one of them.
  package static let rootBinds: [String] = {
    var binds = ["/tmp", RepositoryFiles.root]
    var candidates = [NSTemporaryDirectory()]
    if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
      candidates.append((executable as NSString).deletingLastPathComponent)
    }
    for candidate in candidates {
      let folder = (candidate as NSString).standardizingPath
      guard folder.hasPrefix("/"), folder != "/" else { continue }
      if !binds.contains(where: { folder == $0 || folder.hasPrefix($0 + "/") }) { binds.append(folder) }
    }
    return binds
  }()

  /// The argv that starts `expected` (see `PythonInterpreter.command`).
  package static func commandLine(for expected: ExpectedInterpreter) -> [String] {
    guard let root = expected.root else { return [expected.path] }
    return [RepositoryFiles.path("tools/in-root.sh")] + rootBinds.flatMap { ["--bind", $0] } + [root, expected.path]
  }

  /// The thirteen interpreters the suite must cover.
  package static let expectedInterpreters: [ExpectedInterpreter] = {
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
    // Debian's own builds in their roots, as a container runs them. Any micro version: the roots
    // are made anew every week from the suites' current packages (3.13.5, 3.14.10 and 3.15.2 when
    // this was written).
    for (suite, minor) in [("trixie", 13), ("sid", 14), ("sid", 15)] {
      list.append(
        ExpectedInterpreter(
          label: "3.\(minor)-\(suite)", path: "/usr/bin/python3.\(minor)", major: 3, minor: minor, micro: nil,
          root: "\(debianRoots)/\(suite)"))
    }
    return list
  }()

  /// The result of looking for every expected interpreter, computed once per test run.
  package static let discovery: (found: [PythonInterpreter], problems: [String]) = {
    var found: [PythonInterpreter] = []
    var problems: [String] = []
    for expected in expectedInterpreters {
      guard access(expected.hostPath, X_OK) == 0 else {
        let advice = expected.root == nil ? "" : " (make the Debian roots: tools/debian-roots.sh, as test.sh does)"
        problems.append("\(expected.label): \(expected.hostPath) is missing\(advice)")
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
  package static func all() -> [PythonInterpreter] { discovery.found }

  /// Throws, naming what is missing or broken, unless all thirteen expected interpreters work.
  @discardableResult
  package static func requireAll() throws -> [PythonInterpreter] {
    let (found, problems) = discovery
    guard problems.isEmpty, found.count == expectedInterpreters.count else {
      throw TestSupportError(
        "expected \(expectedInterpreters.count) Python interpreters, found \(found.count); missing or broken:\n  "
          + problems.joined(separator: "\n  "))
    }
    return found
  }

  /// One line for the test log: which interpreters this run covers, and which it could not.
  package static var coverageReport: String {
    let (found, problems) = discovery
    var text = "Interpreters covered (\(found.count)/\(expectedInterpreters.count)): "
    text += found.map { "\($0.label)\($0.label == "\($0.version)" ? "" : " [\($0.version)]")" }.joined(separator: ", ")
    if !problems.isEmpty { text += "; NOT covered: " + problems.joined(separator: "; ") }
    return text
  }

  /// Asks the interpreter, started as the tests start it (through in-root.sh for a rooted one), for
  /// its version and whether libpython is a shared library it mapped.
  static func probe(_ expected: ExpectedInterpreter) throws -> PythonInterpreter {
    let code = """
      import sys
      maps = open('/proc/self/maps').read()
      shared = 'libpython%d.%d' % sys.version_info[:2] in maps
      sys.stdout.write('%d %d %d %d\\n' % (sys.version_info[0], sys.version_info[1], sys.version_info[2], shared))
      """
    let command = commandLine(for: expected)
    let result = try runCommand(command[0], Array(command.dropFirst()) + ["-S", "-c", code], timeout: .seconds(20))
    let fields = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    guard result.exitCode == 0, fields.count == 4 else {
      throw TestSupportError("\(expected) did not report its version:\n\(result)")
    }
    let version = PythonVersion(fields[0], fields[1], fields[2])
    guard expected.matches(version) else {
      throw TestSupportError("\(expected) reports version \(version), expected \(expected.label)")
    }
    return PythonInterpreter(
      label: expected.label, path: expected.path, root: expected.root, command: command,
      hostPath: expected.hostPath, version: version, isStaticBuild: fields[3] == 0)
  }
}
