//===--- Tachyon.swift - CPython 3.15's own sampler as a second oracle ----===//
//
// CPython 3.15 ships a sampling profiler, Tachyon (`python3.15 -m profiling.sampling`), that reads
// another process's memory through the interpreter's own _remote_debugging module: the reference
// reader for the layouts of the version it ships with. It only reads targets of its own minor
// version, so it is run with the target's interpreter, inside the target's root:
//
//   nsenter --target PID --mount --root env -C /proc /usr/bin/python3.15 \
//     -m profiling.sampling dump --all-threads --no-gc PID
//
// (not through a fresh tools/in-root.sh: Tachyon opens the executable at the path the target's
// /proc/PID/maps shows it, and a reader in a mount namespace of its own sees that path from the
// host's side, /var/cache/.../sid/usr/bin/python3.15, which is not there inside the root. Joining
// the target's own namespace and root, as `docker exec` would, it sees /usr/bin/python3.15.
// The working folder is /proc because `dump` shows a file under the working folder by its
// relative path, and no frame's file is under /proc.)
//
// `dump` prints, for every thread, a traceback-like section, outermost frame first:
//
//   Stack dump for PID 16062, thread 16075 (idle; most recent call last):
//     File "/usr/lib/python3.15/threading.py", line 1181, in Thread._bootstrap
//       self._bootstrap_inner()
//     ...
//     File "<package>/Tests/SpyglassTests/Fixtures/scripts/oracle.py", line 47, in Holder.blocked
//       HELD.acquire()
//
//   Stack dump, thread 16062 (main thread, idle; most recent call last):
//     ...
//
// The thread number is the OS thread id; the details are "main thread", "has GIL", "on CPU",
// "waiting for GIL", "has exception" or "idle", comma-joined (plus "interpreter N" when there are
// several interpreters). A frame line without a line number is `File "F", in NAME`, one without
// a file just `NAME`; the source line under a frame is indented by four spaces; a thread without
// frames says "No Python frames". `Tachyon.parse` reads exactly that and rejects anything else.
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// One thread of a Tachyon dump, frames innermost first (as `dump --json` lists them).
package struct TachyonThread: Sendable, CustomStringConvertible {
  /// The OS thread id.
  package let threadID: Int
  /// The status words of the section header ("main thread", "idle", "has GIL", ...).
  package let status: [String]
  package let frames: [OracleFrame]

  package var isMainThread: Bool { status.contains("main thread") }
  package var hasGIL: Bool { status.contains("has GIL") }
  package var isOnCPU: Bool { status.contains("on CPU") }

  package var description: String {
    var text = "Thread \(threadID) (\(status.joined(separator: ", ")))"
    for frame in frames { text += "\n    \(frame)" }
    return text
  }
}

package enum Tachyon {
  /// Whether Tachyon ships with `python` (CPython 3.15 and later).
  package static func isAvailable(for python: PythonInterpreter) -> Bool { python.version.atLeast(3, 15) }

  /// The argv of a Tachyon dump of `pid`, a process of `python` (see the file comment).
  package static func command(_ python: PythonInterpreter, pid: Int32) throws -> [String] {
    let tachyon = [python.path, "-m", "profiling.sampling", "dump", "--all-threads", "--no-gc", "\(pid)"]
    guard python.root != nil else { return tachyon }
    guard let nsenter = findOnPath("nsenter") else {
      throw TestSupportError("nsenter is needed to run Tachyon in the target's root (util-linux)")
    }
    return [nsenter, "--target", "\(pid)", "--mount", "--root", "env", "-C", "/proc"] + tachyon
  }

  /// Runs `dump` on `pid` and parses it; throws (with Tachyon's output) when it fails.
  package static func dump(_ python: PythonInterpreter, pid: Int32, timeout: Duration = .seconds(30)) throws
    -> (threads: [TachyonThread], result: CommandResult)
  {
    let command = try command(python, pid: pid)
    var environment = ProcessInfo.processInfo.environment
    environment["NO_COLOR"] = "1"
    environment["PYTHON_COLORS"] = "0"
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment.removeValue(forKey: "FORCE_COLOR")
    environment.removeValue(forKey: "PYTHONPATH")
    environment.removeValue(forKey: "PYTHONHOME")
    let result = try runCommand(command[0], Array(command.dropFirst()), timeout: timeout, environment: environment)
    guard result.exitCode == 0 else { throw TestSupportError("Tachyon failed:\n\(result)") }
    do {
      let (dumpedPID, threads) = try parse(result.stdout)
      guard dumpedPID == Int(pid) else {
        throw TestSupportError("the dump is of PID \(dumpedPID.map(String.init) ?? "?"), not \(pid)")
      }
      return (threads, result)
    } catch {
      throw TestSupportError("cannot read Tachyon's dump (\(error)):\n\(result)")
    }
  }

  /// Parses `dump` output: the PID of the first header, and the threads in the order printed.
  package static func parse(_ text: String) throws -> (pid: Int?, threads: [TachyonThread]) {
    var pid: Int? = nil
    var threads: [TachyonThread] = []
    var current: (id: Int, status: [String], outermostFirst: [OracleFrame])? = nil
    func finish() {
      if let section = current {
        threads.append(
          TachyonThread(threadID: section.id, status: section.status, frames: section.outermostFirst.reversed()))
      }
      current = nil
    }
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      if line.isEmpty || line.hasPrefix("    ") { continue }  // between sections; a source line
      if let header = line.wholeMatch(of: /Stack dump(?: for PID (\d+))?, thread (\d+) \((.*)\):/) {
        finish()
        if let first = header.1, threads.isEmpty { pid = Int(first) }
        var details = header.3.split(separator: "; ").map(String.init)
        guard details.last == "most recent call last", let id = Int(header.2) else {
          throw TestSupportError("line \(number + 1): an unknown header: \(line)")
        }
        details.removeLast()
        let status = details.flatMap { $0.split(separator: ", ").map(String.init) }
        current = (id, status, [])
        continue
      }
      guard current != nil else { throw TestSupportError("line \(number + 1): text before the first header: \(line)") }
      if line == "No Python frames" { continue }
      if let frame = line.wholeMatch(of: #/  File "(.*)", line (\d+), in (.+)/#), let lineNumber = Int(frame.2) {
        current!.outermostFirst.append(OracleFrame(name: String(frame.3), filename: String(frame.1), line: lineNumber))
      } else if let frame = line.wholeMatch(of: #/  File "(.*)", in (.+)/#) {
        current!.outermostFirst.append(OracleFrame(name: String(frame.2), filename: String(frame.1), line: 0))
      } else if let frame = line.wholeMatch(of: #/  (\S.*)/#) {
        current!.outermostFirst.append(OracleFrame(name: String(frame.1), filename: "", line: 0))
      } else {
        throw TestSupportError("line \(number + 1): neither a header nor a frame: \(line)")
      }
    }
    finish()
    guard !threads.isEmpty else { throw TestSupportError("no thread in the dump") }
    return (pid, threads)
  }
}
