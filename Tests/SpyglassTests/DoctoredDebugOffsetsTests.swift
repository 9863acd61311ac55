//===--- DoctoredDebugOffsetsTests.swift - targets whose debug offsets lie ---===//
//
// Spyglass trusts a 3.13+ target only as far as its `_Py_DebugOffsets` allow. These tests run
// Debian's real python3.14 and python3.15 from doctored copies of their executables (the table is
// initialised data in the file's `.PyRuntime` section, so a copy can say anything) and check what
// the user is told through the CLI:
//   * a table that says free-threaded: one sentence saying free-threaded builds are not supported;
//   * a table (and `Py_Version`) relabelled as an unknown later version whose shape is not the
//     newest known one: "does not know this interpreter's debug offsets (version X)";
//   * the newest known shape relabelled as a later version: read as that shape, with exact
//     frames (a later CPython that keeps the shape needs no new code).
// The interpreter itself never reads these bytes, so the doctored copies run normally.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassELF
import SpyglassLayouts
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Doctored debug offsets")
struct DoctoredDebugOffsetsTests {
  /// A copy of `python`'s executable with `patch` applied to the file bytes; the copy sits in a
  /// temporary folder that the rooted interpreter sees at the same path.
  static func doctoredCopy(
    of python: PythonInterpreter, patch: (ELFFile, inout [UInt8]) throws -> Void
  ) throws -> (interpreter: PythonInterpreter, folder: String) {
    let root = try #require(python.root, "\(python.label) is not a rooted interpreter")
    let original = root + python.path
    let file = try ELFFile(path: original)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
    try patch(file, &bytes)
    let folder = NSTemporaryDirectory() + "spyglass-doctored-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let copy = folder + "/" + URL(fileURLWithPath: python.path).lastPathComponent
    // Written close-on-exec: a descriptor still open for writing in a child another test spawns
    // at this moment would make exec of the copy fail with ETXTBSY.
    let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    try #require(fd >= 0, "cannot create \(copy)")
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    try #require(written == bytes.count, "short write of \(copy)")
    return (python.withExecutable(copy), folder)
  }

  /// The file offset of virtual address `address` (in a section with file contents).
  static func fileOffset(_ file: ELFFile, _ address: UInt64) throws -> Int {
    let section = try #require(
      file.sections.first { $0.type != .nobits && $0.addr <= address && address < $0.addr + $0.size },
      "no section holds 0x\(String(address, radix: 16))")
    return Int(section.offset + (address - section.addr))
  }

  static func put(_ value: UInt64, bytes count: Int, at offset: Int, in bytes: inout [UInt8]) {
    for k in 0..<count { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
  }

  /// Writes `table` member `member` of the `_PyRuntime` debug offsets in the file.
  static func setDebugMember(_ file: ELFFile, _ member: Int?, to value: UInt64, in bytes: inout [UInt8]) throws {
    let runtime = try #require(file.symbol(named: "_PyRuntime"), "no _PyRuntime symbol")
    let base = try fileOffset(file, runtime.value)
    #expect(Array(bytes[base..<base + 8]) == Array("xdebugpy".utf8), "the table starts with its cookie")
    put(value, bytes: 8, at: base + (try #require(member)), in: &bytes)
  }

  /// Relabels the interpreter as `hex` (PY_VERSION_HEX) in both places Spyglass reads a version.
  static func relabel(_ file: ELFFile, as hex: UInt32, in bytes: inout [UInt8]) throws {
    let version = try #require(file.symbol(named: "Py_Version"), "no Py_Version symbol")
    put(UInt64(hex), bytes: 4, at: try fileOffset(file, version.value), in: &bytes)
    try setDebugMember(file, DebugOffsetsTable.v3_13.version, to: UInt64(hex), in: &bytes)
  }

  static func interpreter(_ minor: Int) throws -> PythonInterpreter {
    let all = try PythonInterpreter.requireAll()
    return try #require(
      all.first { $0.version.major == 3 && $0.version.minor == minor && $0.root != nil },
      "no Debian 3.\(minor) in a root among \(all.map(\.label))")
  }

  static func dump(_ python: PythonInterpreter) throws -> (CommandResult, PythonProcess) {
    let process = try Fixture.start(python, "longsleep.py")
    try process.waitUntilSleeping(threadCount: 1)
    return (try SpyglassRunner.run(["dump", "--pid", "\(process.pid)"]), process)
  }

  static func expectOneSentence(_ result: CommandResult, containing needle: String) {
    #expect(result.exitCode == 1, "\(result)")
    let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(!message.contains("\n"), "one line on stderr:\n\(result)")
    #expect(message.contains(needle), "\(result)")
    #expect(!message.contains("Fatal error") && !message.contains("Stack dump"), "\(result)")
  }

  @Test func freeThreadedTableIsRefused() throws {
    let python = try Self.interpreter(14)
    let (doctored, folder) = try Self.doctoredCopy(of: python) { file, bytes in
      try Self.setDebugMember(file, DebugOffsetsTable.v3_14.freeThreaded, to: 1, in: &bytes)
    }
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (result, process) = try Self.dump(doctored)
    defer { process.stop() }
    Self.expectOneSentence(result, containing: "free-threaded build of Python 3.14")
    #expect(result.stderr.contains("not support"), "\(result)")
    #expect(process.isRunning, "the target is untouched")
  }

  @Test func unknownShapeIsRefused() throws {
    // 3.14's table relabelled 3.16: newer than every description, and not of the newest (3.15) shape.
    let python = try Self.interpreter(14)
    let (doctored, folder) = try Self.doctoredCopy(of: python) { file, bytes in
      try Self.relabel(file, as: 0x0310_00F0, in: &bytes)
    }
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (result, process) = try Self.dump(doctored)
    defer { process.stop() }
    Self.expectOneSentence(result, containing: "does not know this interpreter's debug offsets (version 3.16.0)")
  }

  @Test func mismatchedVersionIsRefused() throws {
    // The table claims 3.16 while Py_Version still says 3.15: the bytes are not what they claim.
    let python = try Self.interpreter(15)
    let (doctored, folder) = try Self.doctoredCopy(of: python) { file, bytes in
      try Self.setDebugMember(file, DebugOffsetsTable.v3_15.version, to: 0x0310_00F0, in: &bytes)
    }
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (result, process) = try Self.dump(doctored)
    defer { process.stop() }
    Self.expectOneSentence(result, containing: "does not know this interpreter's debug offsets (version 3.16.0)")
  }

  @Test func laterVersionWithTheNewestShapeIsRead() throws {
    // 3.15's table and Py_Version relabelled 3.16.0: read with the newest (3.15) shape.
    let python = try Self.interpreter(15)
    let (doctored, folder) = try Self.doctoredCopy(of: python) { file, bytes in
      try Self.relabel(file, as: 0x0310_00F0, in: &bytes)
    }
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (result, process) = try Self.dump(doctored)
    defer { process.stop() }
    #expect(result.exitCode == 0, "\(result)")
    #expect(result.stdout.contains("Python v3.16.0"), "\(result)")
    let lines = result.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    #expect(lines.contains("longsleep (longsleep.py:5)"), "\(result)")
    #expect(lines.contains { $0.hasPrefix("<module> (longsleep.py:") }, "\(result)")
  }
}
