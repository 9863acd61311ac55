//===--- CoreDumpTests.swift - `spyglass dump --core` ----------------------===//
//
// Every interpreter: the qsort fixture (its main thread asleep in a Python callback of libc's
// qsort) is dumped live, then gdb's `gcore` writes a core of it, and `dump --core --json` must
// show the main thread's Python frames exactly as the live dump did (names, files, lines), and
// with `--native` the qsort anchors NativeTests checks on the live process (sleep, compare, qsort,
// sort_forever, innermost first). A chrooted interpreter's core is read with `--core-root`.
// Kernel cores of a host and of a chrooted interpreter (SIGABRT, RLIMIT_CORE raised for the child
// with prlimit, core_pattern pointed at a temporary folder for the test and restored), and cores
// that are garbage or cut short: one sentence and exit 1. `--exe` for a core whose executable
// moved, and a small core made here, mutated thousands of times, read in-process.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassELF
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

// markedLines, waitForThreads and isCLibrary are NativeTests.swift's.

/// A fresh folder for cores (they are large: removed by the caller).
private func coreFolder() throws -> String {
  let folder = NSTemporaryDirectory() + "spyglass-cores-\(getpid())-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  return folder
}

/// `gcore` of a process: the core's path.
private func gcore(_ process: PythonProcess, into folder: String) throws -> String {
  let result = try runCommand("gcore", ["-o", folder + "/core", "\(process.pid)"], timeout: .seconds(120))
  let path = folder + "/core.\(process.pid)"
  try #require(FileManager.default.fileExists(atPath: path), "gcore failed: \(result)")
  return path
}

/// `dump --core PATH --json` (with the interpreter's root), required to succeed.
private func coreDump(_ core: String, _ python: PythonInterpreter, extra: [String] = []) throws -> [DumpThread] {
  var arguments = ["dump", "--core", core, "--json"] + extra
  if let root = python.root { arguments += ["--core-root", root] }
  let result = try SpyglassRunner.run(arguments, timeout: .seconds(60))
  try #require(result.exitCode == 0, "\(python): \(result)")
  return try DumpJSON.decode(result.stdout)
}

private func frameKeys(_ frames: [DumpFrame]) -> [String] {
  frames.map { "\($0.name) \($0.filename):\($0.line)" }
}

@Suite("dump --core", .serialized)
struct CoreDumpTests {
  /// A gcore of the qsort fixture, against the live dump; then with --native.
  @Test("gcore of the qsort fixture", arguments: PythonInterpreter.all())
  func gcoreOfQsort(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    let lines = try markedLines(process)
    waitForThreads(process, count: 2)
    let live = try Reader.spyglass.dump(process)
    let liveMain = try #require(live.first { $0.osThreadID == Int(process.pid) }, "no main thread:\n\(live)")
    let folder = try coreFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let core = try gcore(process, into: folder)
    process.stop()

    let dumped = try coreDump(core, python)
    let main = try #require(dumped.first { $0.threadID == liveMain.threadID }, "\(python): no main thread:\n\(dumped)")
    #expect(frameKeys(main.frames) == frameKeys(liveMain.frames), "\(python):\ncore:\n\(main)\nlive:\n\(liveMain)")
    #expect(main.osThreadID == Int(process.pid), "\(python): the main thread's OS id")
    #expect(dumped.count == live.count, "\(python): the threads:\ncore:\n\(dumped)\nlive:\n\(live)")
    #expect(dumped.contains { $0.threadName == "zlib" }, "\(python): the zlib thread:\n\(dumped)")
    var textArguments = ["dump", "--core", core]
    if let root = python.root { textArguments += ["--core-root", root] }
    let text = try SpyglassRunner.run(textArguments, timeout: .seconds(60))
    #expect(
      text.exitCode == 0
        && text.stdout.hasPrefix("Process \(process.pid): \(python.path) \(Fixture.path("native_qsort.py"))\n"),
      "\(python): the command line: \(text)")

    let merged = try coreDump(core, python, extra: ["--native"])
    let nativeMain = try #require(merged.first { $0.threadID == liveMain.threadID }, "\(python):\n\(merged)")
    let frames = nativeMain.frames
    let context = "\(python):\n\(nativeMain)"
    try checkQsortStack(frames, lines: lines, context: context)
    #expect(
      frameKeys(frames.filter { $0.module == nil }) == frameKeys(liveMain.frames),
      "the merged stack's Python frames: \(context)")
  }

  /// The newest host interpreter with a libpython, and the first chrooted one (whose kernel core
  /// names its files as the process saw them, inside its root).
  static let kernelCoreInterpreters: [PythonInterpreter] = {
    let all = PythonInterpreter.all()
    return [all.last { $0.root == nil && !$0.isStaticBuild && !$0.isPython2 }, all.first { $0.root != nil }]
      .compactMap { $0 }
  }()

  /// The kernel's own core (SIGABRT).
  @Test(arguments: kernelCoreInterpreters)
  func kernelCore(_ python: PythonInterpreter) throws {
    let folder = try coreFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let patternFile = "/proc/sys/kernel/core_pattern"
    let saved = try String(contentsOfFile: patternFile, encoding: .utf8)
    // The pattern is the machine's: changed only for this test, and put back.
    try (folder + "/core.%p").write(toFile: patternFile, atomically: false, encoding: .utf8)
    defer { try? saved.write(toFile: patternFile, atomically: false, encoding: .utf8) }

    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    waitForThreads(process, count: 2)
    let live = try Reader.spyglass.dump(process)
    let liveMain = try #require(live.first { $0.osThreadID == Int(process.pid) })
    let limit = try runCommand("prlimit", ["--pid", "\(process.pid)", "--core=unlimited"])
    try #require(limit.exitCode == 0, "\(limit)")
    kill(process.pid, SIGABRT)
    let core = folder + "/core.\(process.pid)"
    let deadline = ContinuousClock.now + .seconds(60)
    // The kernel writes the core before the process is reaped.
    while process.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
    try #require(FileManager.default.fileExists(atPath: core), "no kernel core at \(core)")

    let dumped = try coreDump(core, python)
    let main = try #require(dumped.first { $0.threadID == liveMain.threadID }, "\(python): no main thread:\n\(dumped)")
    #expect(frameKeys(main.frames) == frameKeys(liveMain.frames), "\(python):\ncore:\n\(main)\nlive:\n\(liveMain)")
    #expect(main.osThreadID == Int(process.pid))
    let merged = try coreDump(core, python, extra: ["--native"])
    let nativeMain = try #require(merged.first { $0.threadID == liveMain.threadID })
    #expect(
      frameKeys(nativeMain.frames.filter { $0.module == nil }) == frameKeys(liveMain.frames),
      "\(python): the merged stack's Python frames:\n\(nativeMain)")
    #expect(nativeMain.frames.contains { isCLibrary($0.module) && $0.name.hasPrefix("qsort") }, "\(nativeMain)")
    #expect(nativeMain.frames.contains { isCLibrary($0.module) && $0.name.contains("sleep") }, "\(nativeMain)")

    // The text format: the same header and frame lines as a live dump.
    let text = try SpyglassRunner.run(
      ["dump", "--core", core] + (python.root.map { ["--core-root", $0] } ?? []), timeout: .seconds(60))
    #expect(text.exitCode == 0, "\(text)")
    #expect(text.stdout.contains("Python v\(python.version)"), "\(text.stdout)")
    // The whole command line, from the process's initial stack.
    #expect(
      text.stdout.hasPrefix("Process \(process.pid): \(python.path) \(Fixture.path("native_qsort.py"))\n"),
      "\(text.stdout)")
    #expect(text.stdout.contains("    compare (native_qsort.py:"), "\(text.stdout)")
  }

  /// `--exe`: a core of a statically linked python (its interpreter is in the executable) whose
  /// file has moved since: without it no interpreter is found (and the sentence says to pass it),
  /// with it the stacks are the live ones.
  @Test func movedExecutable() throws {
    let python = try #require(
      PythonInterpreter.all().first { $0.root == nil && $0.isStaticBuild }, "no statically linked host interpreter")
    let folder = try coreFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let copy = folder + "/" + URL(fileURLWithPath: python.path).lastPathComponent
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: python.hostPath)))
    // Written close-on-exec (a descriptor open for writing in another test's child is ETXTBSY).
    let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    try #require(fd >= 0, "cannot create \(copy)")
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    try #require(written == bytes.count, "short write of \(copy)")

    let process = try PythonProcess(python.withExecutable(copy), script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    waitForThreads(process, count: 2)
    let live = try Reader.spyglass.dump(process)
    let liveMain = try #require(live.first { $0.osThreadID == Int(process.pid) })
    let core = try gcore(process, into: folder)
    process.stop()
    let moved = folder + "/moved-python"
    try FileManager.default.moveItem(atPath: copy, toPath: moved)

    let without = try SpyglassRunner.run(["dump", "--core", core, "--json"], timeout: .seconds(60))
    #expect(without.exitCode == 1 && without.stderr.contains("--exe"), "\(without)")
    let dumped = try coreDump(core, python, extra: ["--exe", moved])
    let main = try #require(dumped.first { $0.threadID == liveMain.threadID }, "\(dumped)")
    #expect(frameKeys(main.frames) == frameKeys(liveMain.frames), "core:\n\(main)\nlive:\n\(liveMain)")
    let merged = try coreDump(core, python, extra: ["--exe", moved, "--native"])
    let nativeMain = try #require(merged.first { $0.threadID == liveMain.threadID })
    #expect(
      frameKeys(nativeMain.frames.filter { $0.module == nil }) == frameKeys(liveMain.frames), "\(nativeMain)")
    #expect(nativeMain.frames.contains { isCLibrary($0.module) && $0.name.hasPrefix("qsort") }, "\(nativeMain)")
  }

  /// A file that is not a core, garbage, and a real core cut short: one sentence, exit 1.
  @Test func malformedCores() throws {
    let folder = try coreFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var cases: [(String, [UInt8])] = [
      ("empty", []),
      ("garbage", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }),
    ]
    // An ELF header that claims a core with program headers past the end.
    var header = [UInt8](repeating: 0, count: 64)
    header[0..<7] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]
    header[16] = 4  // ET_CORE
    header[18] = 62
    header[32] = 64  // e_phoff
    header[54] = 56  // e_phentsize
    header[56] = 200  // e_phnum
    cases.append(("header only", header))
    // A real ELF file that is not a core.
    let python = try #require(PythonInterpreter.all().first { $0.root == nil }, "no host interpreter")
    let executable = try [UInt8](Data(contentsOf: URL(fileURLWithPath: python.hostPath)))
    cases.append(("an executable", executable))

    // A real core, cut: at its notes, in the middle of its memory.
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    let core = try gcore(process, into: folder)
    process.stop()
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: core)))
    for fraction in [0.001, 0.01, 0.3, 0.7] {
      cases.append(("cut at \(fraction)", Array(bytes.prefix(Int(Double(bytes.count) * fraction)))))
    }
    // Notes overwritten with garbage after the program headers.
    var scrambled = Array(bytes.prefix(1 << 20))
    for i in stride(from: 4096, to: scrambled.count, by: 7) { scrambled[i] = 0xff }
    cases.append(("scrambled", scrambled))
    try? FileManager.default.removeItem(atPath: core)

    for (name, contents) in cases {
      let path = folder + "/" + name.replacingOccurrences(of: " ", with: "-")
      try Data(contents).write(to: URL(fileURLWithPath: path))
      for extra in [[], ["--native"]] {
        let result = try SpyglassRunner.run(["dump", "--core", path] + extra, timeout: .seconds(60))
        #expect(result.exitCode == 1, "\(name) \(extra): \(result)")
        let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(message.hasPrefix("spyglass: "), "\(name) \(extra): \(result)")
        #expect(!message.contains("\n"), "\(name) \(extra): one sentence: \(result)")
        #expect(result.stdout.isEmpty, "\(name) \(extra): \(result)")
      }
      try? FileManager.default.removeItem(atPath: path)
    }
    let missing = try SpyglassRunner.run(["dump", "--core", folder + "/no-such-core"])
    #expect(missing.exitCode == 1 && missing.stderr.contains("no-such-core"), "\(missing)")
  }

  /// A small core made here: an ELF header, a note segment (a thread, NT_FILE with two mappings,
  /// an auxiliary vector) and two memory segments, the second only partly in the file.
  static func syntheticCore() -> [UInt8] {
    func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    func note(_ type: UInt32, _ desc: [UInt8]) -> [UInt8] {
      var bytes = u32(5) + u32(UInt32(desc.count)) + u32(type) + Array("CORE\0\0\0\0".utf8)
      bytes += desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
      return bytes
    }
    var prstatus = [UInt8](repeating: 0, count: 336)
    prstatus.replaceSubrange(32..<36, with: u32(4242))
    var files = u64(2) + u64(4096) + u64(0x10000) + u64(0x11000) + u64(0) + u64(0x20000) + u64(0x22000) + u64(1)
    files += Array("/nonexistent/a\0/nonexistent/b\0".utf8)
    let auxv = u64(3) + u64(0x10040) + u64(31) + u64(0x20010) + u64(0) + u64(0)
    let notes = note(1, prstatus) + note(0x4649_4c45, files) + note(6, auxv)
    let headerSize = 64
    let phCount = 3
    let notesOffset = headerSize + phCount * 56
    let dataOffset = notesOffset + notes.count
    func ph(_ type: UInt32, _ flags: UInt32, _ offset: Int, _ vaddr: UInt64, _ filesz: Int, _ memsz: Int) -> [UInt8] {
      u32(type) + u32(flags) + u64(UInt64(offset)) + u64(vaddr) + u64(0) + u64(UInt64(filesz)) + u64(UInt64(memsz))
        + u64(1)
    }
    var bytes: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1] + [UInt8](repeating: 0, count: 9)
    bytes += u16(4) + u16(62) + u32(1) + u64(0) + u64(64) + u64(0) + u32(0) + u16(64) + u16(56) + u16(UInt16(phCount))
    bytes += u16(0) + u16(0) + u16(0)
    bytes += ph(4, 4, notesOffset, 0, notes.count, 0)
    bytes += ph(1, 5, dataOffset, 0x10000, 0x1000, 0x1000)
    bytes += ph(1, 6, dataOffset + 0x1000, 0x20000, 0x800, 0x2000)
    bytes += notes
    bytes += (0..<0x1800).map { UInt8(truncatingIfNeeded: $0) }
    return bytes
  }

  /// The synthetic core reads back, and thousands of mutations of its headers and notes never
  /// crash: each is a `CoreError` or a core whose reads stay inside what it holds.
  @Test func mutatedSyntheticCores() throws {
    let folder = try coreFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let original = Self.syntheticCore()
    let path = folder + "/core"
    try Data(original).write(to: URL(fileURLWithPath: path))
    let core = try CoreFile(path: path)
    #expect(core.threadIDs == [4242] && core.pid == 4242)
    #expect(core.fileMappings.map(\.path) == ["/nonexistent/a", "/nonexistent/b"])
    #expect(core.executablePath == "/nonexistent/a")
    let memory = CoreMemory(core: core, fileOpener: { _ in nil })
    #expect(try memory.readBytes(at: 0x10010, count: 4) == [0x10, 0x11, 0x12, 0x13])
    #expect(try memory.readBytes(at: 0x20000, count: 2) == [0x00, 0x01])
    #expect(throws: ReadFault.self) { try memory.readBytes(at: 0x207ff, count: 2) }  // past the file's part
    #expect(throws: ReadFault.self) { try memory.readBytes(at: 0x30000, count: 1) }

    var generator = SystemRandomNumberGenerator()
    let headerEnd = 64 + 3 * 56 + 600
    var outcomes = (errors: 0, read: 0)
    for _ in 0..<3000 {
      var bytes = original
      for _ in 0..<Int.random(in: 1...6, using: &generator) {
        let index = Int.random(in: 0..<Swift.min(headerEnd, bytes.count), using: &generator)
        bytes[index] = [0, 0xff, 0x7f, 0x80, UInt8.random(in: 0...255, using: &generator)].randomElement()!
      }
      if Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &generator)) }
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      do {
        let mutated = try CoreFile(path: path)
        _ = mutated.maps
        _ = mutated.executablePath
        let memory = CoreMemory(core: mutated, fileOpener: { _ in nil })
        for address: UInt64 in [0x10000, 0x10ff8, 0x20000, 0x207f0, 0x21ff8, 1, .max - 4] {
          _ = try? memory.readBytes(at: address, count: 16)
        }
        outcomes.read += 1
      } catch {
        outcomes.errors += 1
      }
    }
    #expect(outcomes.errors > 0 && outcomes.read > 0, "\(outcomes)")
  }
}
