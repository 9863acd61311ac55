//===--- NativeTests.swift - `--native`: merged native and Python stacks --===//
//
// Real targets on every interpreter: a ctypes qsort whose Python comparison sleeps (the C
// library's sleep, the callback, qsort and the Python caller, innermost first), a thread in
// zlib.compress (zlib's frames above the Python function), and a C extension built here with gcc
// against the interpreter's own headers that calls back into Python. The Python frames of a merged
// stack must be exactly the plain dump's, in order; the lines come from the fixture's own reading
// of its source. py-spy 0.4.3's `dump --native` of the same stopped process is the reference where
// it works (3.6–3.13 and Debian's 3.11).
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

/// The fixture's `READY {"mark": line, ...}`.
func markedLines(_ process: PythonProcess) throws -> [String: Int] {
  let json = String(process.readyLine.dropFirst("READY ".count))
  return try JSONDecoder().decode([String: Int].self, from: Data(json.utf8))
}

/// Waits until the process has `count` OS threads (the announcing thread has exited).
func waitForThreads(_ process: PythonProcess, count: Int) {
  let deadline = ContinuousClock.now + .seconds(10)
  while ProcFS.threadIDs(process.pid).count != count && ContinuousClock.now < deadline {
    usleep(20_000)
  }
}

func isCLibrary(_ module: String?) -> Bool {
  guard let name = module?.split(separator: "/").last else { return false }
  return name.hasPrefix("libc.so") || name.hasPrefix("libc-")
}

/// The qsort fixture's main thread, merged: the C library's sleep, compare at its sleep, qsort and
/// sort_forever at its call, innermost first.
func checkQsortStack(
  _ frames: [DumpFrame], lines: [String: Int], context: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
  let sleep = frames.firstIndex { isCLibrary($0.module) && ($0.name.contains("sleep") || $0.name.contains("select")) }
  let compare = frames.firstIndex { $0.module == nil && $0.name == "compare" && $0.line == lines["sleep"] }
  let qsort = frames.firstIndex { isCLibrary($0.module) && $0.name.hasPrefix("qsort") }
  let caller = frames.firstIndex { $0.module == nil && $0.name == "sort_forever" && $0.line == lines["qsort"] }
  let found = try #require(
    sleep.flatMap { a in compare.flatMap { b in qsort.flatMap { c in caller.map { d in (a, b, c, d) } } } },
    "sleep, compare, qsort or sort_forever missing: \(context)", sourceLocation: sourceLocation)
  #expect(
    found.0 < found.1 && found.1 < found.2 && found.2 < found.3,
    "not innermost first (sleep, compare, qsort, caller): \(context)", sourceLocation: sourceLocation)
}

/// `dump --native --json` of a process, decoded strictly.
private func nativeDump(_ process: PythonProcess, extra: [String] = []) throws -> [DumpThread] {
  let result = try SpyglassRunner.run(["dump", "--native", "--json", "--pid", "\(process.pid)"] + extra)
  try #require(result.exitCode == 0, "\(result)")
  return try DumpJSON.decode(result.stdout)
}

/// The Python frames of a merged stack (name and line), innermost first.
private func pythonFrames(_ frames: [DumpFrame]) -> [String] {
  frames.filter { $0.module == nil }.map { "\($0.name):\($0.line)" }
}

@Suite("--native", .serialized)
struct NativeTests {
  @Test func aaa_interpreterCoverage() throws {
    let all = try PythonInterpreter.requireAll()
    print("--native: Interpreters covered (\(all.count)/\(PythonInterpreter.expectedInterpreters.count)): \(all)")
  }

  /// The qsort callback's stack and the zlib thread's, against the target's own lines and its
  /// plain Python stack.
  @Test("ctypes qsort with a sleeping callback; zlib.compress", arguments: PythonInterpreter.all())
  func qsortAndZlib(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    let lines = try markedLines(process)
    waitForThreads(process, count: 2)
    let merged = try nativeDump(process)
    let main = try #require(merged.first { $0.osThreadID == Int(process.pid) }, "no main thread:\n\(merged)")
    let frames = main.frames
    let context = "\(python):\n\(main)"
    try checkQsortStack(frames, lines: lines, context: context)
    #expect(frames.last?.name == "<module>", "the outermost frame is the script: \(context)")
    for frame in frames {
      #expect(
        !["_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx"].contains(frame.name),
        "an evaluation frame was not replaced: \(context)")
    }
    // Every native frame names its library; every Python frame a file.
    for frame in frames where frame.module != nil { #expect(!frame.module!.isEmpty && !frame.name.isEmpty) }

    // The zlib thread is busy: one look may catch it in the C library (allocating, copying) on
    // its way into deflate, so up to 20 looks are taken until one is inside libz. Above
    // compress_forever there are only native frames in every look.
    var zlibSeen = false
    var looks: [DumpThread] = []
    for attempt in 0..<20 {
      let dump = attempt == 0 ? merged : try nativeDump(process)
      let zlibThread = try #require(dump.first { $0.threadName == "zlib" }, "no zlib thread:\n\(dump)")
      looks.append(zlibThread)
      let compress = try #require(
        zlibThread.frames.firstIndex {
          $0.module == nil && $0.name == "compress_forever" && $0.line == lines["compress"]
        }, "\(python):\n\(zlibThread)")
      let above = zlibThread.frames[..<compress]
      #expect(
        above.allSatisfy { $0.module != nil }, "only native frames above compress_forever: \(python):\n\(zlibThread)")
      if above.contains(where: { $0.module?.split(separator: "/").last?.hasPrefix("libz") == true }) {
        zlibSeen = true
        break
      }
    }
    #expect(zlibSeen, "zlib's frames above compress_forever in one of \(looks.count) looks: \(python):\n\(looks)")

    // The Python frames are the plain dump's, in order (the main thread is asleep in its
    // callback, so both reads see the same stack).
    let plain = try Reader.spyglass.dump(process)
    let plainMain = try #require(plain.first { $0.osThreadID == Int(process.pid) })
    #expect(
      pythonFrames(frames) == plainMain.frames.map { "\($0.name):\($0.line)" }, "\(context)\nplain:\n\(plainMain)")
  }

  /// A C extension calling back into Python: inner, the extension's function, outer.
  @Test("a C extension (built with gcc) that calls back into Python", arguments: PythonInterpreter.all())
  func extensionCallback(_ python: PythonInterpreter) throws {
    let directory = try NativeExtension.build(for: python)
    defer { removeDirectory(directory) }
    let process = try PythonProcess(python, script: Fixture.path("native_ext.py"), arguments: [directory])
    defer { process.stop() }
    let lines = try markedLines(process)
    waitForThreads(process, count: 1)
    let merged = try nativeDump(process)
    let main = try #require(merged.first { $0.osThreadID == Int(process.pid) }, "no main thread:\n\(merged)")
    let frames = main.frames
    let context = "\(python):\n\(main)"
    let inner = frames.firstIndex { $0.module == nil && $0.name == "inner" && $0.line == lines["sleep"] }
    let callBack = frames.firstIndex {
      $0.name == "spyglass_call_back" && $0.module?.split(separator: "/").last?.hasPrefix("spyglass_native_ext") == true
    }
    let outer = frames.firstIndex { $0.module == nil && $0.name == "outer" && $0.line == lines["call"] }
    let found = try #require(
      inner.flatMap { a in callBack.flatMap { b in outer.map { c in (a, b, c) } } },
      "inner, spyglass_call_back or outer missing: \(context)")
    #expect(found.0 < found.1 && found.1 < found.2, "not innermost first (inner, extension, outer): \(context)")
    // The extension's frame has its source line (built with -g).
    let extensionFrame = frames[found.1]
    #expect(extensionFrame.filename.hasSuffix("spyglass_native_ext.c") && extensionFrame.line > 0, "\(context)")
    // Nothing but native frames between inner and the extension (the interpreter's call plumbing
    // is dropped, the sleep is above inner).
    #expect(frames[(found.0 + 1)..<found.1].allSatisfy { $0.module != nil }, "\(context)")
    #expect(
      pythonFrames(frames) == [
        "inner:\(lines["sleep"] ?? 0)", "outer:\(lines["call"] ?? 0)", "<module>:\(frames.last?.line ?? 0)",
      ])
  }

  /// Where py-spy 0.4.3's `--native` works (3.6–3.13, Debian's 3.11, measured), its dump has the
  /// same Python frames and the same anchors (qsort between compare and sort_forever), and names
  /// the same libraries (`module`, a path) for native frames. Both read the process as it runs
  /// (py-spy fails on a SIGSTOPped one); the Python stacks of both threads do not change.
  @Test(
    "agrees with py-spy dump --native on a stopped process",
    arguments: PythonInterpreter.all().filter { $0.root == nil && !$0.isPython2 })
  func agreesWithPySpy(_ python: PythonInterpreter) throws {
    _ = try #require(try? PySpy.executablePath(), "py-spy 0.4.3 is required: \(PySpy.location)")
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    waitForThreads(process, count: 2)
    let ours = try nativeDump(process)
    let result = try PySpy.run(["dump", "--native", "--json", "--pid", "\(process.pid)"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let theirs = try JSONDecoder().decode([DumpThread].self, from: Data(result.stdout.utf8))
    for thread in ours {
      let other = try #require(theirs.first { $0.threadID == thread.threadID }, "py-spy lacks \(thread)")
      let context = "\(python)\nspyglass:\n\(thread)\npy-spy:\n\(other)"
      if thread.osThreadID == Int(process.pid) {
        #expect(pythonFrames(thread.frames) == pythonFrames(other.frames), "\(context)")
      } else {
        // The zlib thread runs between the two reads: the same functions, its line may differ
        // (the loop's back edge).
        #expect(
          thread.frames.filter { $0.module == nil }.map(\.name) == other.frames.filter { $0.module == nil }.map(\.name),
          "\(context)")
      }
      func anchors(_ frames: [DumpFrame]) -> [String] {
        frames.compactMap { frame in
          if frame.module == nil { return frame.name }
          if isCLibrary(frame.module), frame.name.hasPrefix("qsort") { return "qsort" }
          return nil
        }
      }
      #expect(anchors(thread.frames) == anchors(other.frames), "\(context)")
      if thread.osThreadID == Int(process.pid) {
        // The asleep main thread: the same libraries in its native frames. The interpreter's own
        // frames are left out of the comparison: a stripped interpreter whose separate debug
        // information is installed (Debian's python3.11-dbg ships it for /usr/bin/python3.11, and
        // test.sh installs that package) shows `time_sleep` to Spyglass, which reads
        // /usr/lib/debug, and nothing to py-spy, which does not.
        let interpreter = URL(fileURLWithPath: python.path).lastPathComponent
        func libraries(_ frames: [DumpFrame]) -> Set<String> {
          Set(frames.compactMap(\.module).filter { !$0.hasSuffix("/" + interpreter) })
        }
        #expect(libraries(thread.frames) == libraries(other.frames), "libraries differ: \(context)")
      }
    }
  }

  /// Bloomberg's pystack (`pystack remote --native`, 1.7.2; it reads 3.x only): its main thread
  /// has the same Python frames (its names are `co_name`, ours the qualified name on 3.11+) with a
  /// qsort frame between compare and sort_forever, as ours, where pystack can merge at all.
  @Test("agrees with pystack remote --native", arguments: PythonInterpreter.all().filter { !$0.isPython2 })
  func agreesWithPystack(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    waitForThreads(process, count: 2)
    let ours = try nativeDump(process)
    let main = try #require(ours.first { $0.osThreadID == Int(process.pid) })
    let result = try runCommand(
      "/usr/bin/env", ["pystack", "remote", "--native", "\(process.pid)"], timeout: .seconds(60))
    try #require(result.exitCode == 0, "pystack is required (pip install pystack): \(result)")
    // Its threads, outermost frame first: "(Python) File "F", line L, in NAME" and "(C) File ..., in NAME (LIB)".
    var threads: [Int: [(python: Bool, name: String, line: Int)]] = [:]
    var current: Int?
    for line in result.stdout.split(separator: "\n").map(String.init) {
      if line.hasPrefix("Traceback for thread ") {
        current = Int(line.dropFirst("Traceback for thread ".count).prefix { $0.isNumber })
        continue
      }
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      guard let current, trimmed.hasPrefix("(Python) File ") || trimmed.hasPrefix("(C) File "),
        let lineRange = trimmed.range(of: ", line "), let inRange = trimmed.range(of: ", in ")
      else { continue }
      let number = Int(trimmed[lineRange.upperBound...].prefix { $0.isNumber }) ?? 0
      let name = String(trimmed[inRange.upperBound...].split(separator: " ").first ?? "")
      threads[current, default: []].append((trimmed.hasPrefix("(Python)"), name, number))
    }
    let theirs = try #require(threads[Int(process.pid)], "no main thread in pystack's output:\n\(result.stdout)")
    let innermostFirst = Array(theirs.reversed())
    let context = "\(python)\nspyglass:\n\(main)\npystack:\n\(result.stdout)"
    let theirPython = innermostFirst.filter(\.python).map { "\($0.name):\($0.line)" }
    let ourPython = main.frames.filter { $0.module == nil }.map {
      "\($0.name.split(separator: ".").last.map(String.init) ?? $0.name):\($0.line)"
    }
    #expect(ourPython == theirPython, "\(context)")
    if result.stdout.contains("Unable to merge native stack") {
      // pystack 1.7.2 cannot merge on Debian's stripped 3.14/3.15 (measured); Spyglass can (the
      // qsort test above checks its shape there).
      print("note: \(python): pystack could not merge native and Python frames; Python frames compared only")
      return
    }
    let compare = innermostFirst.firstIndex { $0.python && $0.name == "compare" }
    let qsort = innermostFirst.firstIndex { !$0.python && $0.name.hasPrefix("qsort") }
    let caller = innermostFirst.firstIndex { $0.python && $0.name == "sort_forever" }
    #expect(
      compare != nil && qsort != nil && caller != nil && compare! < qsort! && qsort! < caller!,
      "pystack's shape: \(context)")
  }

  /// `record --native` (raw): the callback's stacks go through qsort.
  @Test("record --native", arguments: PythonInterpreter.all())
  func recordNative(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("native_qsort.py"))
    defer { process.stop() }
    waitForThreads(process, count: 2)
    let directory = try makeTemporaryDirectory("spyglass-native-record")
    defer { removeDirectory(directory) }
    let output = directory + "/native.txt"
    let result = try SpyglassRunner.run(
      ["record", "--native", "-f", "raw", "-d", "1", "-r", "50", "-i", "-o", output, "--pid", "\(process.pid)"],
      timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let text = try String(contentsOfFile: output, encoding: .utf8)
    let stacks = text.split(separator: "\n").map(String.init)
    let sorting = stacks.filter { $0.contains("sort_forever") && $0.contains(";compare (") }
    #expect(!sorting.isEmpty, "\(python): no sort stack:\n\(text.prefix(3000))")
    for stack in sorting {
      let qsort = stack.range(of: ";qsort")
      let compare = stack.range(of: ";compare (")
      #expect(qsort != nil && compare != nil && qsort!.lowerBound < compare!.lowerBound, "\(python): \(stack)")
    }
    #expect(
      stacks.contains { $0.contains("compress_forever") && $0.contains("(libz") }, "\(python):\n\(text.prefix(3000))")
  }

  @Test func nonblockingIsAUsageError() throws {
    let result = try SpyglassRunner.run(["dump", "--native", "--nonblocking", "--pid", "1"])
    #expect(result.exitCode == 2, "\(result)")
    #expect(result.stderr.contains("--nonblocking"), "\(result)")
  }
}

/// The test's C extension, built for one interpreter with the system's gcc.
enum NativeExtension {
  /// Builds native/spyglass_native_ext.c into a fresh folder the interpreter can import from.
  static func build(for python: PythonInterpreter) throws -> String {
    let probe = try runCommand(
      python.command[0],
      Array(python.command.dropFirst()) + [
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['include']); print(sysconfig.get_config_var('EXT_SUFFIX') or '.so')",
      ])
    let output = probe.stdout.split(separator: "\n").map(String.init)
    try #require(probe.exitCode == 0 && output.count == 2, "\(probe)")
    let include = (python.root ?? "") + output[0]
    // Debian keeps pyconfig.h in a multiarch folder under the root's /usr/include (searched after
    // the host's own C headers).
    let rootIncludes = python.root.map { ["-idirafter", $0 + "/usr/include"] } ?? []
    try #require(
      FileManager.default.fileExists(atPath: include + "/Python.h"),
      "\(python): no Python.h in \(include) (pyenv builds have headers; the Debian roots get python3.X-dev)")
    let directory = try makeTemporaryDirectory("spyglass-native-ext")
    let compile = try runCommand(
      "/usr/bin/gcc",
      [
        "-shared", "-fPIC", "-g", "-O1", "-fno-omit-frame-pointer", "-I", include,
      ] + rootIncludes + [
        Fixture.directory + "/../native/spyglass_native_ext.c", "-o", directory + "/spyglass_native_ext" + output[1],
      ], timeout: .seconds(60))
    try #require(compile.exitCode == 0, "gcc failed: \(compile)")
    return directory
  }
}
