//===--- ELFTests.swift - SpyglassELF against the binaries on this machine -===//
//
// Symbols, sections and build IDs are compared with what binutils (nm, readelf) report for the
// pyenv libpython builds, Debian's /usr/bin/python3.11 and the executables of the Debian roots
// (python3.13 to python3.15, read at their host paths); load biases are checked on live
// processes by reading Py_Version through them; truncated, patched and random files must throw.
//
//===----------------------------------------------------------------------===//

import Foundation
import Glibc
import SpyglassELF
import SpyglassProcess
import TestSupport
import Testing

// MARK: - Helpers

private let pyenvRoot = ProcessInfo.processInfo.environment["PYENV_ROOT"] ?? "/root/.pyenv"
private let systemPython = "/usr/bin/python3.11"
/// The executables of the rooted Debian interpreters (statically linked, stripped), as the host sees
/// them: the ELF files a profiler on the host opens through /proc/PID/root.
private let rootedExecutables = PythonInterpreter.expectedInterpreters.filter { $0.root != nil }.map(\.hostPath)

/// Every `versions/*/lib/libpython*.so.1.0` of the pyenv installation, sorted.
private func pyenvLibraries() -> [String] {
  let versions =
    (try? FileManager.default.contentsOfDirectory(atPath: "\(pyenvRoot)/versions")) ?? []
  var result: [String] = []
  for version in versions {
    let lib = "\(pyenvRoot)/versions/\(version)/lib"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []
    for name in names where name.hasPrefix("libpython") && name.hasSuffix(".so.1.0") {
      result.append("\(lib)/\(name)")
    }
  }
  return result.sorted()
}

/// (major, minor) from a path containing `/versions/X.Y.Z/`.
private func pythonVersion(of path: String) -> (major: Int, minor: Int)? {
  let parts = path.split(separator: "/")
  guard let at = parts.firstIndex(of: "versions"), at + 1 < parts.count else { return nil }
  let numbers = parts[at + 1].split(separator: ".").compactMap { Int($0) }
  guard numbers.count >= 2 else { return nil }
  return (numbers[0], numbers[1])
}

/// Runs a tool and returns its standard output (standard error discarded).
private func run(_ arguments: [String]) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = arguments
  let output = Pipe()
  process.standardOutput = output
  process.standardError = FileHandle.nullDevice
  try process.run()
  let data = output.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return String(decoding: data, as: UTF8.self)
}

/// `nm --defined-only` (or `nm -D --defined-only`): every value printed for each name. Version
/// suffixes (`name@@VERSION`) are dropped.
private func nmSymbols(_ path: String, dynamic: Bool) throws -> [String: [UInt64]] {
  let text = try run(["nm"] + (dynamic ? ["-D"] : []) + ["--defined-only", path])
  var result: [String: [UInt64]] = [:]
  for line in text.split(separator: "\n") {
    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    guard fields.count == 3, let value = UInt64(fields[0], radix: 16) else { continue }
    let name = String(
      fields[2].split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)[0])
    result[name, default: []].append(value)
  }
  return result
}

/// One row of `readelf -S -W`.
private struct ReadelfSection: Equatable {
  var index: Int
  var name: String
  var type: String
  var addr: UInt64
  var offset: UInt64
  var size: UInt64
  var entsize: UInt64
  var flags: String
  var link: UInt32
  var info: UInt32
  var align: UInt64
}

/// Parses `readelf -S -W`. The name can be empty (section 0) and the flags column can be empty, so
/// the row is anchored on the first 16-digit address and on the last three decimal columns.
private func readelfSections(_ path: String) throws -> [ReadelfSection] {
  let text = try run(["readelf", "-S", "-W", path])
  var result: [ReadelfSection] = []
  for line in text.split(separator: "\n") {
    guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"), open < close,
      let index = Int(line[line.index(after: open)..<close].trimmingCharacters(in: .whitespaces))
    else { continue }
    let tokens = line[line.index(after: close)...].split(
      separator: " ", omittingEmptySubsequences: true
    ).map(
      String.init)
    guard
      let addressAt = tokens.firstIndex(where: { $0.count == 16 && UInt64($0, radix: 16) != nil }),
      addressAt >= 1
    else { continue }
    let type = tokens[addressAt - 1]
    let name = tokens[0..<(addressAt - 1)].joined(separator: " ")
    let rest = Array(tokens[addressAt...])
    guard rest.count == 7 || rest.count == 8 else { continue }
    let hex = { (s: String) in UInt64(s, radix: 16) ?? .max }
    let tail = rest.suffix(3)
    result.append(
      ReadelfSection(
        index: index, name: name, type: type, addr: hex(rest[0]), offset: hex(rest[1]),
        size: hex(rest[2]),
        entsize: hex(rest[3]), flags: rest.count == 8 ? rest[4] : "",
        link: UInt32(tail[tail.startIndex]) ?? .max,
        info: UInt32(tail[tail.startIndex + 1]) ?? .max,
        align: UInt64(tail[tail.startIndex + 2]) ?? .max))
  }
  return result
}

/// Section flags as readelf's letters, in bit order, then one "o" for any OS-specific bit
/// (SHF_MASKOS): binutils 2.40 shows GCC 16's SHF_GNU_RETAIN (Debian sid's python3.14 and 3.15
/// keep `.stapsdt.base` with it) that way.
private func flagLetters(_ flags: ELFSectionFlags) -> String {
  let letters: [(ELFSectionFlags, Character)] = [
    (.write, "W"), (.alloc, "A"), (.execInstr, "X"), (.merge, "M"), (.strings, "S"),
    (.infoLink, "I"),
    (.linkOrder, "L"), (ELFSectionFlags(rawValue: 0x100), "O"), (.group, "G"), (.tls, "T"),
    (.compressed, "C"),
  ]
  let osSpecific = flags.rawValue & 0x0ff0_0000 != 0 ? "o" : ""
  return String(letters.filter { flags.contains($0.0) }.map(\.1)) + osSpecific
}

/// The hex build ID printed by `readelf -n`.
private func readelfBuildID(_ path: String) throws -> String? {
  let text = try run(["readelf", "-n", path])
  for line in text.split(separator: "\n") {
    let trimmed = line.trimmingCharacters(in: .whitespaces)
    if trimmed.hasPrefix("Build ID: ") { return String(trimmed.dropFirst("Build ID: ".count)) }
  }
  return nil
}

/// A python process started with a script that prints "ok <hexversion>" and then sleeps; killed
/// with SIGKILL by `stop()`.
private final class PythonChild {
  let process = Process()
  let pid: Int32
  let hexVersion: UInt32

  init(executable: String) throws {
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = [
      "-c", "import sys, time; print('ok', sys.hexversion, flush=True); time.sleep(30)",
    ]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    pid = process.processIdentifier
    // Wait for the "ok" line: only then has the loader mapped everything.
    var text = ""
    while !text.contains("\n") {
      let data = output.fileHandleForReading.availableData
      if data.isEmpty { break }
      text += String(decoding: data, as: UTF8.self)
    }
    let fields = text.split(whereSeparator: \.isWhitespace)
    guard fields.count >= 2, fields[0] == "ok", let version = UInt32(fields[1]) else {
      kill(pid, SIGKILL)
      process.waitUntilExit()
      throw ChildFailed(output: text)
    }
    hexVersion = version
  }

  func stop() {
    kill(pid, SIGKILL)
    process.waitUntilExit()
  }

  struct ChildFailed: Error { var output: String }
}

/// The inode of a file, to find its entries in /proc/PID/maps whatever path the process used.
private func inode(of path: String) -> UInt64? {
  var info = stat()
  guard stat(path, &info) == 0 else { return nil }
  return UInt64(info.st_ino)
}

/// A scratch directory removed at the end of a test.
private final class ScratchDirectory {
  let path: String
  init() {
    var template = Array("/tmp/spyglass-elf-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    path = made.map { String(cString: $0) } ?? "/tmp/spyglass-elf-\(getpid())"
    _ = mkdir(path, 0o700)
  }
  func write(_ name: String, _ bytes: [UInt8]) -> String {
    let file = "\(path)/\(name)"
    _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
    return file
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Uses every query of a file that parsed, to show that none of them traps on garbage.
private func exercise(_ file: ELFFile) {
  _ = file.symbol(named: "main")
  _ = file.symbol(named: "_PyRuntime")
  _ = file.symbols(in: .dynamic).count
  _ = file.symbols(in: .full).count
  _ = file.bss
  _ = file.buildIDHex
  _ = file.firstExecutableLoadSegment
  for section in file.sections { _ = file.contents(of: section) }
  for segment in file.programHeaders {
    _ = file.loadBias(mapStart: 0x7f00_0000_0000, mapOffset: segment.offset & ~4095)
    _ = file.loadBias(mapStart: 0, mapOffset: segment.offset, executable: true)
    _ = file.bytes(atVirtualAddress: segment.vaddr, count: 16)
    _ = file.bytes(atVirtualAddress: segment.vaddr &+ segment.filesz &- 1, count: 8)
  }
}

// MARK: - Tests

@Suite struct ELFTests {
  @Test func pyenvLibrariesArePresent() {
    #expect(pyenvLibraries().count >= 9, "expected pyenv 2.7 and 3.6 ... 3.13 under \(pyenvRoot)")
  }

  @Test(arguments: pyenvLibraries())
  func libpythonInterpreterSymbols(path: String) throws {
    let file = try ELFFile(path: path)
    let version = try #require(pythonVersion(of: path))
    #expect(file.type == .sharedObject)
    #expect(file.machine == 62)
    #expect(file.hasFullSymbolTable)
    let full = try nmSymbols(path, dynamic: false)
    let dynamic = try nmSymbols(path, dynamic: true)

    let names = ["_PyRuntime", "Py_Version", "interp_head", "_PyThreadState_Current"]
    for name in names {
      #expect(file.symbol(named: name)?.value == full[name]?.first, "\(name) in \(path)")
    }
    let atLeast = { (minor: Int) in
      version.major > 3 || (version.major == 3 && version.minor >= minor)
    }
    if atLeast(7) {
      let runtime = try #require(file.symbol(named: "_PyRuntime"))
      #expect(runtime.value == dynamic["_PyRuntime"]?.first)
      #expect(runtime.type == .object && runtime.binding == .global)
      #expect(runtime.table == .dynamic)
      if atLeast(10) {
        // 3.10+ put _PyRuntime at the start of its own section; before that it is in .bss.
        let section = try #require(file.section(named: ".PyRuntime"))
        #expect(runtime.value == section.addr)
      } else {
        #expect(file.section(named: ".PyRuntime") == nil)
        let bss = try #require(file.bss)
        #expect(runtime.value >= bss.addr && runtime.value < bss.addr + bss.size)
      }
    } else {
      #expect(file.symbol(named: "_PyRuntime") == nil)
      #expect(file.section(named: ".PyRuntime") == nil)
      let head = try #require(file.symbol(named: "interp_head"))
      #expect(head.binding == .local)
      #expect(head.table == .full)
      #expect(head.value == full["interp_head"]?.first)
      #expect(dynamic["interp_head"] == nil)
      let current = try #require(file.symbol(named: "_PyThreadState_Current"))
      #expect(current.value == dynamic["_PyThreadState_Current"]?.first)
    }
    if atLeast(11) {
      let pyVersion = try #require(file.symbol(named: "Py_Version"))
      #expect(pyVersion.value == dynamic["Py_Version"]?.first)
      // `const unsigned long Py_Version`: 8 bytes, the hex version in the low 4.
      #expect(pyVersion.size == 8)
      // Py_Version is a const in .rodata: the file holds its value.
      let bytes = try #require(file.bytes(atVirtualAddress: pyVersion.value, count: 4))
      let hex =
        UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
      #expect(hex >> 24 == UInt32(version.major) && (hex >> 16) & 0xff == UInt32(version.minor))
    } else {
      #expect(file.symbol(named: "Py_Version") == nil)
    }
  }

  @Test(arguments: pyenvLibraries() + [systemPython] + rootedExecutables)
  func everySymbolMatchesNM(path: String) throws {
    let file = try ELFFile(path: path)
    let dynamic = try nmSymbols(path, dynamic: true)
    #expect(dynamic.count > 1000)
    var mismatches: [String] = []
    for (name, values) in dynamic where values.count == 1 {
      if file.symbol(named: name)?.value != values[0] { mismatches.append(name) }
    }
    if file.hasFullSymbolTable {
      // Names defined once: locals with the same name in several files are ambiguous.
      let full = try nmSymbols(path, dynamic: false)
      #expect(full.count > 4000)
      for (name, values) in full where values.count == 1 {
        if file.symbol(named: name)?.value != values[0] { mismatches.append(name) }
      }
      #expect(Set(file.symbols(in: .full).map(\.name)) == Set(full.keys))
    }
    #expect(Set(file.symbols(in: .dynamic).map(\.name)) == Set(dynamic.keys))
    #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
  }

  @Test(
    arguments: pyenvLibraries() + [systemPython, "\(pyenvRoot)/versions/3.12.1/bin/python3.12"] + rootedExecutables)
  func sectionsMatchReadelf(path: String) throws {
    let file = try ELFFile(path: path)
    let expected = try readelfSections(path)
    #expect(expected.count > 20)
    let actual = file.sections.map { section in
      ReadelfSection(
        index: section.index, name: section.name, type: section.type.description,
        addr: section.addr,
        offset: section.offset, size: section.size, entsize: section.entsize,
        flags: flagLetters(section.flags),
        link: section.link, info: section.info, align: section.addralign)
    }
    #expect(actual == expected)
    let bss = try #require(file.bss)
    let readelfBSS = try #require(expected.first { $0.name == ".bss" })
    #expect(bss.addr == readelfBSS.addr && bss.size == readelfBSS.size && bss.type == .nobits)
    if let version = pythonVersion(of: path), version.major == 3, version.minor >= 10,
      path.contains("libpython")
    {
      #expect(file.section(named: ".PyRuntime") != nil)
    }
    #expect(file.buildIDHex == (try readelfBuildID(path)))
    #expect(file.buildID?.count == 20)
  }

  @Test func systemPythonIsStrippedFixedAddressExecutable() throws {
    let file = try ELFFile(path: systemPython)
    #expect(file.type == .executable)
    #expect(!file.hasFullSymbolTable)
    #expect(file.section(named: ".symtab") == nil)
    let dynamic = try nmSymbols(systemPython, dynamic: true)
    let runtime = try #require(file.symbol(named: "_PyRuntime"))
    #expect(runtime.value == dynamic["_PyRuntime"]?.first)
    #expect(runtime.table == .dynamic)
    let section = try #require(file.section(named: ".PyRuntime"))
    #expect(runtime.value == section.addr)
    let pyVersion = try #require(file.symbol(named: "Py_Version"))
    #expect(pyVersion.value == dynamic["Py_Version"]?.first)
    let bytes = try #require(file.bytes(atVirtualAddress: pyVersion.value, count: 4))
    #expect(bytes[3] == 3 && bytes[2] == 11 && bytes[0] & 0xf0 == 0xf0)
    // A fixed-address executable is loaded where it says.
    #expect(file.loadBias(mapStart: 0x40_0000, mapOffset: 0) == 0)
    #expect(file.firstExecutableLoadSegment?.vaddr == 0x41_f000)
  }

  @Test func loadBiasFormula() throws {
    // libpython3.12: the RW segment starts in the file page where the read-only one ends, at a
    // different virtual page: that page must be resolved to the segment that starts there.
    let path = "\(pyenvRoot)/versions/3.12.1/lib/libpython3.12.so.1.0"
    let file = try ELFFile(path: path)
    let loads = file.loadSegments
    try #require(loads.count == 4)
    let base: UInt64 = 0x7f12_3450_0000
    for segment in loads {
      let pageOffset = segment.offset & ~4095
      let start = base + (segment.vaddr & ~4095)
      #expect(file.loadBias(mapStart: start, mapOffset: pageOffset, pageSize: 4096) == base)
      #expect(
        file.loadBias(
          mapStart: start, mapOffset: pageOffset, executable: segment.isExecutable, pageSize: 4096)
          == base)
    }
    // A piece of the RW segment split off by the RELRO mprotect.
    let rw = loads[3]
    let splitOffset = (rw.offset & ~4095) + 0x76000
    #expect(
      file.loadBias(
        mapStart: base + (rw.vaddr & ~4095) + 0x76000, mapOffset: splitOffset, pageSize: 4096)
        == base)
    // An offset no segment maps.
    #expect(file.loadBias(mapStart: base, mapOffset: 0x4000_0000, pageSize: 4096) == nil)
    #expect(file.firstExecutableLoadSegment == loads[1])
  }

  @Test func loadBiasOnLiveSystemPython() throws {
    // Debian's python3.11 is a fixed-address executable with the interpreter linked in.
    try checkLiveProcess(executable: systemPython, files: [systemPython]) { hex in
      hex >> 16 == 0x030B && hex & 0xf0 == 0xf0
    }
  }

  @Test func loadBiasOnLivePyenvPython() throws {
    // pyenv's python3.12 is a small PIE that loads libpython3.12.so (which defines Py_Version).
    let root = "\(pyenvRoot)/versions/3.12.1"
    try checkLiveProcess(
      executable: "\(root)/bin/python3.12",
      files: ["\(root)/bin/python3.12", "\(root)/lib/libpython3.12.so.1.0"]
    ) { $0 == 0x030C_01F0 }
  }

  /// Starts `executable`, computes the load bias of each of `files` from every one of its
  /// /proc/PID/maps entries, and checks the bias by reading code, read-only data and Py_Version
  /// through it.
  private func checkLiveProcess(
    executable: String, files: [String], expectedVersion: (UInt32) -> Bool
  ) throws {
    let child = try PythonChild(executable: executable)
    defer { child.stop() }
    #expect(
      expectedVersion(child.hexVersion), "hexversion 0x\(String(child.hexVersion, radix: 16))")
    let maps = try MemoryMap.read(pid: child.pid)
    let memory = ProcessMemory(pid: child.pid)
    var versionsRead = 0
    for path in files {
      let file = try ELFFile(path: path)
      let node = try #require(inode(of: path))
      let fileMaps = maps.filter { $0.inode == node && !$0.path.isEmpty }
      try #require(!fileMaps.isEmpty, "\(path) is not mapped")
      // The bias agrees with every mapping of the file, RELRO-split pieces included, and is the
      // preferred meaning of the executable mapping.
      let bias = try #require(file.loadBias(for: fileMaps))
      for map in fileMaps {
        let candidates = file.loadBiasCandidates(
          mapStart: map.start, mapOffset: map.offset, executable: map.executable)
        #expect(candidates.contains(bias), "\(path) \(map)")
        if map.executable { #expect(file.loadBias(for: map) == bias) }
      }
      if file.type == .executable { #expect(bias == 0) } else { #expect(bias != 0) }
      // The code and read-only data are where the bias says.
      for name in [".rodata", ".text"] {
        let section = try #require(file.section(named: name))
        let expected = try #require(file.contents(of: section)).prefix(64)
        let actual = try memory.readBytes(at: section.addr &+ bias, count: expected.count)
        #expect(Array(expected) == actual, "\(name) of \(path)")
      }
      if let pyVersion = file.symbol(named: "Py_Version") {
        let value = try memory.readUInt32(at: pyVersion.value &+ bias)
        #expect(value == child.hexVersion, "Py_Version 0x\(String(value, radix: 16)) in \(path)")
        let runtime = try #require(file.symbol(named: "_PyRuntime"))
        #expect(maps.contains { $0.contains(runtime.value &+ bias) && $0.writable })
        versionsRead += 1
      }
    }
    #expect(versionsRead == 1)
  }

  @Test func symbolLookupIsFast() throws {
    let file = try ELFFile(path: "\(pyenvRoot)/versions/3.12.1/lib/libpython3.12.so.1.0")
    let clock = ContinuousClock()
    let elapsed = clock.measure {
      for name in [
        "_PyRuntime", "Py_Version", "_PyThreadState_Current", "PyEval_EvalFrameDefault", "missing",
      ] {
        _ = file.symbol(named: name)
      }
    }
    #expect(elapsed < .seconds(2), "\(elapsed)")
  }

  @Test func truncatedAndGarbageFilesThrow() throws {
    let scratch = ScratchDirectory()
    let source = "\(pyenvRoot)/versions/2.7.18/lib/libpython2.7.so.1.0"
    let original = try #require(FileManager.default.contents(atPath: source)).map { $0 }

    func expectThrows(
      _ name: String, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
    ) -> ELFError? {
      let path = scratch.write(name, bytes)
      do {
        _ = try ELFFile(path: path)
        Issue.record("\(name) parsed", sourceLocation: sourceLocation)
        return nil
      } catch {
        return error
      }
    }

    if case .notELF? = expectThrows("empty", []) {
    } else {
      Issue.record("empty file is not notELF")
    }
    if case .truncated? = expectThrows("magic", Array(original.prefix(3))) {
    } else {
      Issue.record("3 bytes")
    }
    if case .truncated? = expectThrows("first64", Array(original.prefix(64))) {
    } else {
      Issue.record("64 bytes")
    }
    if case .truncated? = expectThrows("first1000", Array(original.prefix(1000))) {
    } else {
      Issue.record("1000 bytes")
    }
    if case .truncated? = expectThrows("half", Array(original.prefix(original.count / 2))) {
    } else {
      Issue.record("half")
    }

    // e_shoff past the end of the file, and so large that offset + size overflows.
    for shoff in [UInt64(original.count), UInt64(original.count) + 4096, UInt64.max - 100] {
      var patched = original
      withUnsafeBytes(of: shoff.littleEndian) { patched.replaceSubrange(40..<48, with: $0) }
      if case .truncated? = expectThrows("shoff", patched) {
      } else {
        Issue.record("shoff \(shoff)")
      }
    }
    // e_phoff past the end.
    var phoff = original
    withUnsafeBytes(of: UInt64(original.count - 10).littleEndian) {
      phoff.replaceSubrange(32..<40, with: $0)
    }
    if case .truncated? = expectThrows("phoff", phoff) {} else { Issue.record("phoff") }
    // 32-bit class and big-endian.
    var class32 = original
    class32[4] = 1
    if case .unsupportedClass(1)? = expectThrows("class32", class32) {
    } else {
      Issue.record("class")
    }
    var bigEndian = original
    bigEndian[5] = 2
    if case .unsupportedByteOrder(2)? = expectThrows("msb", bigEndian) {
    } else {
      Issue.record("byte order")
    }
    // e_shstrndx out of range.
    var shstrndx = original
    shstrndx[62] = 0xf0
    shstrndx[63] = 0x00
    if case .badIndex? = expectThrows("shstrndx", shstrndx) {} else { Issue.record("shstrndx") }

    var random = FuzzRandom(seed: 0x5EED)
    for i in 0..<20 {
      let count = Int(random.next() % 8192)
      let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      if case .notELF? = expectThrows("random\(i)", bytes) {} else { Issue.record("random \(i)") }
      // Random bytes behind a valid identification.
      let prefixed = Array(original.prefix(16)) + bytes
      _ = expectThrows("prefixed\(i)", prefixed)
    }
  }

  @Test func mutatedFilesNeverTrap() throws {
    // A small real ELF file with a .symtab; its headers, tables and notes are mutated at random and
    // every query is run on whatever still parses.
    let scratch = ScratchDirectory()
    let source = "\(pyenvRoot)/versions/3.12.1/bin/python3.12"
    let original = try #require(FileManager.default.contents(atPath: source)).map { $0 }
    let pristine = try ELFFile(path: source)
    let shoff = Int(original[40]) | Int(original[41]) << 8 | Int(original[42]) << 16
    let tables = pristine.sections.filter {
      $0.type == .symtab || $0.type == .dynsym || $0.type == .strtab
    }
    var random = FuzzRandom(seed: 42)
    var parsed = 0
    for i in 0..<300 {
      var bytes = original
      for _ in 0..<(1 + random.next() % 6) {
        let region = random.next() % 4
        let position: Int
        switch region {
        case 0: position = Int(random.next() % 64)
        case 1: position = 64 + Int(random.next() % (56 * 13))
        case 2: position = shoff + Int(random.next() % UInt64(max(1, bytes.count - shoff)))
        default:
          let table = tables[Int(random.next() % UInt64(tables.count))]
          position = Int(table.offset) + Int(random.next() % max(1, table.size))
        }
        guard position < bytes.count else { continue }
        bytes[position] =
          random.next() % 3 == 0 ? 0xff : UInt8(truncatingIfNeeded: random.next())
      }
      if random.next() % 8 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count))) }
      let path = scratch.write("mutated\(i % 4)", bytes)
      if let file = try? ELFFile(path: path) {
        parsed += 1
        exercise(file)
      }
    }
    #expect(parsed > 0)
  }
}
