//===--- HostileNamesTests.swift - names made to break the output ---------===//
//
// hostile.py (Fixtures/scripts) gives its functions, qualified names, files, package folder, thread
// names and command line names that hold markup (<script>, </svg>, a CDATA end), quotes, '&', NUL,
// newlines, ANSI and OSC escape sequences, a C1 control, a lone surrogate (3.x) or invalid UTF-8
// (2.7), and 100 KB lengths. Every script payload, if it ever ran in a browser, would set
// data-pwned="…" on the root element and the document's title to "pwned".
//
// Checked:
//   - `dump` text: no raw control character from the target (ESC, NUL, C1, CR, tab: only the line
//     feeds Spyglass writes itself), the escapes shown visibly (`\x1B[31m`), bounded lines, and a
//     long name cut readably (ending in "…");
//   - `dump --json`: py-spy's shape, and every name exactly as the target has it (JSON can hold
//     NUL and ESC escaped), cut names ending in "…";
//   - `record` in every registered format: the SVG is well-formed XML (Python's minidom) and, opened
//     in headless Chromium, runs none of the injected scripts (while a control SVG with a real
//     script does mark itself, so the check is live); speedscope and chrometrace are JSON holding
//     the names exactly; raw has one `stack count` line per stack and no control character; pprof
//     decodes; pstats.Stats loads the names exactly; callgrind_annotate reads the callgrind file,
//     which holds no control character; the recording (Python's gzip and json) holds the names
//     exactly and converts to the very raw file recorded beside it;
//   - `top` with stdout in a pipe, for two seconds: no raw control character from the target.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// What hostile.py's names look like once read: lone surrogates and invalid UTF-8 become U+FFFD,
/// names are cut at Spyglass's read limits (4096 characters, 1024 for thread names) with a "…".
enum HostileNames {
  static func payload(_ tag: String) -> String {
    "document.documentElement.setAttribute('data-pwned','\(tag)');document.title='pwned'"
  }

  static func functionNames(_ python: PythonInterpreter) -> [String] {
    [
      "<script>" + payload("fn-script") + "</script>",
      "</svg><svg xmlns='http://www.w3.org/2000/svg' onload=\"" + payload("fn-svg") + "\"><text>",
      "]]><script>" + payload("fn-cdata") + "</script><![CDATA[",
      "quote\"double'single&amp;&lt;",
      "nul\u{0}byte",
      "ansi\u{1B}[31mred\u{1B}[0m",
      "osc\u{1B}]0;pwned-title\u{7}",
      "newline\nand\rreturn\ttab",
      "c1-\u{9B}31m",
      python.isPython2 ? "invalid\u{FFFD}\u{FFFD}utf8" : "lone\u{FFFD}surrogate",
      "long" + String(repeating: "L", count: 4096 - 4) + "…",
    ]
  }

  static func threadNames(_ python: PythonInterpreter) -> [String] {
    [
      "<script>" + payload("thread-script") + "</script>",
      "</svg><script>" + payload("thread-svg") + "</script>",
      "\"'&<>",
      "nul\u{0}thread",
      "\u{1B}[31mred-thread\u{1B}[0m",
      "\u{1B}]0;pwned-title\u{7}thread",
      "c1-\u{9B}31m-thread",
      (python.isPython2 ? "invalid\u{FFFD}\u{FFFD}utf8" : "lone\u{FFFD}surrogate") + "-thread",
      String(repeating: "T", count: 1024) + "…",
      "\u{1B}]0;pwned-title\u{7}<script>" + payload("main") + "</script>",
    ]
  }

  /// A command-line argument of the target, shown in dump's Process line.
  static let argument = "\u{1B}[35marg\u{7}"

  /// Starts hostile.py in a fresh folder; returns the process once its main thread spins.
  static func start(_ python: PythonInterpreter, folder: String) throws -> PythonProcess {
    let files = folder + "/files"
    try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
    let process = try PythonProcess(python, script: Fixture.path("hostile.py"), arguments: [files, argument])
    try process.waitForCPU()
    return process
  }
}

/// Characters that must never reach a terminal or a line-based file from the target: every C0
/// control but the line feed, DEL and the C1 controls.
func rawControlCharacters(_ text: String) -> [String] {
  var found: [String] = []
  for scalar in text.unicodeScalars where scalar != "\n" {
    let v = scalar.value
    if v < 0x20 || (v >= 0x7F && v <= 0x9F) { found.append(String(format: "U+%04X", v)) }
  }
  return found
}

/// A fresh folder under the temporary directory.
func makeScratchFolder(_ name: String) throws -> String {
  let folder = NSTemporaryDirectory() + "spyglass-\(name)-\(getpid())-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  return folder
}

/// Reads a pipe until end of file or `timeout`.
func readPipeToEnd(_ fd: Int32, timeout: Duration) -> [UInt8] {
  var bytes: [UInt8] = []
  let deadline = ContinuousClock.now + timeout
  var chunk = [UInt8](repeating: 0, count: 65536)
  while ContinuousClock.now < deadline {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let r = poll(&descriptor, 1, 100)
    if r < 0 && errno != EINTR { break }
    if r <= 0 { continue }
    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n > 0 {
      bytes.append(contentsOf: chunk[0..<n])
    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
      break
    }
  }
  return bytes
}

/// `python3 args...` (the system's, for minidom and the pprof decoder).
func runPython3(_ arguments: [String]) throws -> CommandResult {
  try runCommand("/usr/bin/env", ["python3"] + arguments, timeout: .seconds(60))
}

/// Headless Chromium: the DOM of `file` after its scripts ran (2 s of virtual time).
enum HeadlessChromium {
  static func path() throws -> String {
    guard let found = findOnPath("chromium") ?? findOnPath("chromium-browser") else {
      throw TestSupportError("chromium is not installed (apt-get install chromium; ./test.sh does)")
    }
    return found
  }

  static func dumpDOM(_ file: String) throws -> String {
    let profile = try makeScratchFolder("chromium-profile")
    defer { try? FileManager.default.removeItem(atPath: profile) }
    let result = try runCommand(
      try path(),
      [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)",
        "--virtual-time-budget=2000", "--dump-dom", "file://" + file,
      ], timeout: .seconds(90))
    guard result.exitCode == 0, !result.stdout.isEmpty else { throw TestSupportError("chromium failed:\n\(result)") }
    return result.stdout
  }
}

@Suite("Hostile names", .timeLimit(.minutes(10)))
struct HostileNamesTests {
  /// The record matrix runs on these (each records every format); dumps run on every interpreter.
  static let recordInterpreters: [PythonInterpreter] = PythonInterpreter.all().filter {
    ["2.7.18", "3.10.13", "3.12.1", "3.13.0"].contains($0.label)
  }

  @Test("dump and dump --json show hostile names safely", arguments: PythonInterpreter.all())
  func dump(_ python: PythonInterpreter) throws {
    let folder = try makeScratchFolder("hostile")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let process = try HostileNames.start(python, folder: folder)

    // JSON: exact names.
    let threads = try Reader.spyglass.dump(process)
    let functionNames = HostileNames.functionNames(python)
    let main = try #require(threads.first { $0.frames.last?.name == "<module>" }, "no main thread")
    let mainNames = main.frames.map(\.name)
    for name in functionNames {
      #expect(mainNames.contains(name), "main thread lacks \(name.debugDescription.prefix(120)): \(mainNames)")
    }
    #expect(
      main.frames.contains { $0.filename == "/srv/" + String(repeating: "F", count: 4096 - 5) + "…" },
      "the 100 KB co_filename, cut: \(main.frames.map { $0.filename.prefix(60) })")
    #expect(
      main.frames.contains { $0.filename.contains("</script><script>") && $0.filename.contains("\u{0}\u{1B}[33m") },
      "\(main.frames.map(\.filename))")
    #expect(
      main.frames.contains {
        $0.filename.contains("<img src=x onerror=") && $0.filename.hasSuffix("\u{1B}]0;t\u{7}.py")
      },
      "\(main.frames.map(\.filename))")
    let names = Set(threads.compactMap(\.threadName))
    for name in HostileNames.threadNames(python) {
      #expect(names.contains(name), "no thread named \(name.debugDescription.prefix(120)): \(names)")
    }
    #expect(threads.count == 10, "\(threads.count) threads")

    // Text: nothing raw, everything visible, lines bounded.
    let result = try SpyglassRunner.run(["dump", "--pid", "\(process.pid)"], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let text = result.stdout
    #expect(rawControlCharacters(text).isEmpty, "raw control characters: \(Set(rawControlCharacters(text)))")
    for visible in [
      "ansi\\x1B[31mred\\x1B[0m", "nul\\x00byte", "osc\\x1B]0;pwned-title\\x07", "newline\\x0Aand\\x0Dreturn\\x09tab",
      "c1-\\x9B31m", "\"\\x1B[31mred-thread\\x1B[0m\"", "\\x1B[35marg\\x07",
      "<script>" + HostileNames.payload("fn-script"),
    ] {
      #expect(text.contains(visible), "dump text lacks \(visible)")
    }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let longest = lines.map(\.count).max() ?? 0
    #expect(longest <= 2 * 4097 + 64, "a line of \(longest) characters")
    #expect(text.utf8.count < 256 * 1024, "\(text.utf8.count) bytes of dump")
    let longLine = try #require(lines.first { $0.contains("longLLLL") }, "no line with the long name")
    #expect(longLine.contains(String(repeating: "L", count: 4092) + "… ("), "the cut name ends in …")
    #expect(text.contains("\"" + String(repeating: "T", count: 1024) + "…\""), "the cut thread name ends in …")
    #expect(process.isRunning)
  }

  @Test("record: every format escapes hostile names; Chromium runs no injected script", arguments: recordInterpreters)
  func record(_ python: PythonInterpreter) throws {
    let folder = try makeScratchFolder("hostile-record")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let process = try HostileNames.start(python, folder: folder)
    let functionNames = HostileNames.functionNames(python)
    func record(_ format: String, _ file: String, _ extra: [String] = []) throws -> String {
      let path = folder + "/" + file
      let result = try SpyglassRunner.run(
        ["record", "-d", "1", "-r", "100", "--idle", "--threads", "-f", format, "-o", path, "--pid", "\(process.pid)"]
          + extra, timeout: .seconds(60))
      try #require(result.exitCode == 0, "\(result)")
      #expect(rawControlCharacters(result.stderr.replacingOccurrences(of: "\r", with: "")).isEmpty, "\(result)")
      return path
    }

    // Flame graph: well-formed, and inert in a browser.
    let svg = try record("flamegraph", "profile.svg")
    let parsed = try runPython3(["-c", "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])", svg])
    #expect(parsed.exitCode == 0, "minidom rejects the SVG:\n\(parsed)")
    let svgText = try String(contentsOfFile: svg, encoding: .utf8)
    #expect(!svgText.contains("<script>document"), "a payload's <script> is in the SVG as markup")
    #expect(svgText.contains("&lt;script&gt;document.documentElement"), "the payload is there, escaped")
    let dom = try HeadlessChromium.dumpDOM(svg)
    #expect(dom.hasPrefix("<svg"), "Chromium did not load the SVG as SVG:\n\(dom.prefix(300))")
    #expect(!dom.contains("data-pwned=\""), "an injected script ran: \(dom.prefix(2000))")
    #expect(!dom.contains("<title>pwned</title>"), "an injected script set the title")

    // Speedscope: JSON holding the names exactly.
    let speedscope = try record("speedscope", "profile.speedscope.json")
    let document = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: speedscope))) as? [String: Any])
    let shared = try #require(document["shared"] as? [String: Any])
    let frameNames = Set(((shared["frames"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
    for name in functionNames {
      #expect(frameNames.contains { $0.hasPrefix(name) }, "speedscope lacks \(name.debugDescription.prefix(100))")
    }

    // Chrome trace: JSON, names exact.
    let trace = try record("chrometrace", "profile.trace.json")
    let traceData = try Data(contentsOf: URL(fileURLWithPath: trace))
    let traceObject = try JSONSerialization.jsonObject(with: traceData)
    let events: [[String: Any]] =
      (traceObject as? [[String: Any]]) ?? ((traceObject as? [String: Any])?["traceEvents"] as? [[String: Any]]) ?? []
    let eventNames = Set(events.compactMap { $0["name"] as? String })
    #expect(!events.isEmpty)
    for name in functionNames {
      #expect(eventNames.contains { $0.hasPrefix(name) }, "chrometrace lacks \(name.debugDescription.prefix(100))")
    }

    // Raw: one "stack count" line per stack, nothing raw.
    let recording = folder + "/profile.spyglass"
    let raw = try String(
      contentsOfFile: try record("raw", "profile.txt", ["--save-recording", recording]), encoding: .utf8)
    #expect(rawControlCharacters(raw).isEmpty, "raw control characters in raw output")
    let rawLines = raw.split(separator: "\n")
    #expect(!rawLines.isEmpty)
    for line in rawLines {
      #expect(line.wholeMatch(of: /.+ [0-9]+/) != nil, "not a collapsed-stack line: \(line.prefix(200))")
    }
    #expect(raw.contains("nul\\x00byte"))

    // pprof: decodes, names exact.
    let pprof = try record("pprof", "profile.pb.gz")
    let decoder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "Fixtures/pprof_decode.py"
    ).path
    let decoded = try runPython3([decoder, pprof])
    try #require(decoded.exitCode == 0, "pprof_decode.py failed:\n\(decoded)")
    let summary = try #require(try JSONSerialization.jsonObject(with: Data(decoded.stdout.utf8)) as? [String: Any])
    let pprofNames = Set((summary["function_names"] as? [String]) ?? [])
    for name in functionNames {
      #expect(pprofNames.contains { $0.hasPrefix(name) }, "pprof lacks \(name.debugDescription.prefix(100))")
    }

    // pstats: Python's pstats loads it, names exact.
    let pstatsPath = try record("pstats", "profile.prof")
    let loaded = try runPython3([
      "-c", "import json, pstats, sys; print(json.dumps(sorted(set(k[2] for k in pstats.Stats(sys.argv[1]).stats))))",
      pstatsPath,
    ])
    try #require(loaded.exitCode == 0, "pstats.Stats failed:\n\(loaded)")
    let pstatsNames = Set((try JSONSerialization.jsonObject(with: Data(loaded.stdout.utf8)) as? [String]) ?? [])
    for name in functionNames {
      #expect(pstatsNames.contains { $0.hasPrefix(name) }, "pstats lacks \(name.debugDescription.prefix(100))")
    }

    // callgrind: nothing raw, and callgrind_annotate reads it.
    let callgrindPath = try record("callgrind", "profile.callgrind")
    let callgrind = try String(contentsOfFile: callgrindPath, encoding: .utf8)
    #expect(rawControlCharacters(callgrind).isEmpty, "raw control characters in the callgrind file")
    #expect(callgrind.contains("nul\\x00byte"))
    let annotate = try #require(findOnPath("callgrind_annotate"), "callgrind_annotate (valgrind; test.sh installs it)")
    let annotated = try runCommand(annotate, [callgrindPath], timeout: .seconds(60))
    #expect(annotated.exitCode == 0 && annotated.stdout.contains("PROGRAM TOTALS"), "\(annotated)")

    // The recording: names exact (gzip + json), and it converts to the raw file recorded with it.
    let names = try runPython3([
      "-c",
      "import gzip, json, sys; print(json.dumps([f['name'] for f in json.loads(gzip.open(sys.argv[1]).read().decode('utf-8'))['frames']]))",
      recording,
    ])
    try #require(names.exitCode == 0, "\(names)")
    let recorded = Set((try JSONSerialization.jsonObject(with: Data(names.stdout.utf8)) as? [String]) ?? [])
    for name in functionNames {
      #expect(recorded.contains { $0.hasPrefix(name) }, "the recording lacks \(name.debugDescription.prefix(100))")
    }
    let converted = folder + "/converted.txt"
    let convert = try SpyglassRunner.run(["convert", recording, "-f", "raw", "-o", converted])
    #expect(convert.exitCode == 0, "\(convert)")
    #expect(try String(contentsOfFile: converted, encoding: .utf8) == raw, "convert gives the raw file recorded")
    #expect(process.isRunning)
  }

  /// The check above is only worth something if this Chromium runs an SVG's scripts at all.
  @Test func chromiumRunsScriptsInSVG() throws {
    let folder = try makeScratchFolder("chromium-control")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let file = folder + "/control.svg"
    try """
    <?xml version="1.0"?>
    <svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>\(HostileNames.payload("control"))</script></svg>
    """.write(toFile: file, atomically: true, encoding: .utf8)
    let dom = try HeadlessChromium.dumpDOM(file)
    #expect(dom.contains("data-pwned=\"control\""), "Chromium did not run the control script:\n\(dom)")
  }

  @Test("top in a pipe shows hostile names without raw control characters")
  func top() throws {
    let python = try #require(PythonInterpreter.all().first { $0.label == "3.12.1" } ?? PythonInterpreter.all().last)
    let folder = try makeScratchFolder("hostile-top")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let process = try HostileNames.start(python, folder: folder)
    let top = try ChildProcess(
      executable: try SpyglassRunner.executablePath(),
      arguments: ["top", "--pid", "\(process.pid)", "--delay", "0.5", "--idle"], stdout: .pipe,
      stderr: .file(folder + "/stderr"))
    defer { top.stop() }
    usleep(2_000_000)
    top.signal(SIGINT)
    let status = top.wait(timeout: .seconds(10))
    let output = String(decoding: readPipeToEnd(top.stdoutFD, timeout: .seconds(3)), as: UTF8.self)
    let stderr = (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? ""
    #expect(status == .exited(0), "stdout:\n\(output.prefix(3000))\nstderr:\n\(stderr)")
    #expect(output.contains("Total Samples"), "stdout:\n\(output.prefix(3000))")
    #expect(rawControlCharacters(output).isEmpty, "raw control characters: \(Set(rawControlCharacters(output)))")
    #expect(rawControlCharacters(stderr).isEmpty, "raw control characters on stderr")
    #expect(output.contains("\\x1B"), "the escapes are shown visibly:\n\(output.prefix(3000))")
    #expect(process.isRunning)
  }
}
