import Foundation
import SpyglassModel
import SpyglassProcess
import SpyglassProfile
import TestSupport
import Testing

@testable import SpyglassOutput

#if canImport(FoundationXML)
  import FoundationXML
#endif

// MARK: - Fixtures

/// Two threads of one process, nested stacks, a timeline; 10 samples at 100 Hz (10 ms each).
private func sampleProfile(timeline: Bool = true) -> Profile {
  var profile = Profile(
    info: RecordingInfo(
      title: "spyglass record -- python3 app.py", rate: 100, pythonVersion: "3.12.1",
      durationSeconds: 0.1,
      startUnixNanoseconds: 1_700_000_000_000_000_000, sampleCount: 10),
    keepsTimeline: timeline)
  let main = profile.intern(
    Frame(name: "<module>", filename: "/srv/app/app.py", shortFilename: "app.py", line: 7))
  let work = profile.intern(
    Frame(name: "work", filename: "/srv/app/app.py", shortFilename: "app.py", line: 3))
  let loop = profile.intern(
    Frame(name: "loop", filename: "/srv/app/app.py", shortFilename: "app.py", line: 12))
  let sleep = profile.intern(
    Frame(name: "sleep", filename: "/srv/app/util.py", shortFilename: "util.py", line: 5))
  let run = profile.intern(
    Frame(
      name: "run", filename: "/usr/lib/python3.12/threading.py", shortFilename: "threading.py",
      line: 990))
  let t1 = profile.thread(
    ThreadInfo(pid: 4242, threadID: 0x7F00_0000_1000, osThreadID: 4242, name: "MainThread"))
  let t2 = profile.thread(
    ThreadInfo(pid: 4242, threadID: 0x7F00_0000_2000, osThreadID: 4243, name: "worker"))
  let a = profile.intern(stack: [main, work])
  let b = profile.intern(stack: [main, work, loop])
  let c = profile.intern(stack: [main])
  let d = profile.intern(stack: [run, sleep])
  // Thread 1: a a b b b c a ; thread 2: d d d   (interleaved in time)
  let schedule: [(ThreadIndex, StackID)] = [
    (t1, a), (t2, d), (t1, a), (t1, b), (t2, d), (t1, b), (t1, b), (t2, d), (t1, c), (t1, a),
  ]
  for (i, (thread, stack)) in schedule.enumerated() {
    profile.add(
      thread: thread, stack: stack, weightNanoseconds: 10_000_000,
      timeNanoseconds: UInt64(i) * 10_000_000)
  }
  return profile
}

/// Names no output may let through unescaped.
private let hostileNames: [String] = [
  "<script>alert(1)</script>",
  "</svg><svg onload=alert(2)>",
  "quote\"apos'amp&lt;",
  "nul\u{0}byte",
  "esc\u{1B}[31mred\u{1B}[0m",
  "line\nbreak\rreturn\ttab",
  String(decoding: [0x62, 0x61, 0x64, 0xFF, 0xFE, 0xC3, 0x28], as: UTF8.self),
  "nonchar\u{FFFE}\u{FFFF}",
  "]]></script><script>alert(3)</script>",
  "semi;colon",
  String(repeating: "x", count: 100_000),
]

private func hostileProfile() -> Profile {
  var profile = Profile(
    info: RecordingInfo(
      title: "<script>alert('title')</script> & \u{1B}]0;pwn\u{7}", rate: 100,
      pythonVersion: "3.13\u{0}"),
    keepsTimeline: true)
  let thread = profile.thread(ThreadInfo(pid: 1, threadID: 2, name: "</svg>\"'\u{0}"))
  let frames = hostileNames.map {
    profile.intern(
      Frame(name: $0, filename: "/tmp/<evil>&\"'.py", shortFilename: "<evil>\u{0}.py", line: 1))
  }
  for i in frames.indices {
    let stack = profile.intern(stack: Array(frames[0...i]))
    profile.add(
      thread: thread, stack: stack, weightNanoseconds: 10_000_000,
      timeNanoseconds: UInt64(i) * 10_000_000)
    profile.add(
      thread: thread, stack: stack, weightNanoseconds: 10_000_000,
      timeNanoseconds: UInt64(i) * 10_000_000 + 1)
  }
  return profile
}

// MARK: - Helpers

/// Renders `profile` in the registered format `name`.
func render(_ profile: Profile, as name: String, options: WriterOptions) throws -> [UInt8] {
  try #require(OutputFormat(name: name), "no format \(name)").render(profile, options: options)
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> URL {
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("spyglass-output-\(UUID().uuidString)\(suffix)")
  try Data(bytes).write(to: url)
  return url
}

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .appendingPathComponent("Fixtures")
private let speedscopeSchema = fixtures.appendingPathComponent("speedscope-file-format.schema.json")

/// Runs python3 (found on PATH) and returns its exit status and standard output.
private func python(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3"] + arguments
  let out = Pipe()
  let err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  let output = out.fileHandleForReading.readDataToEndOfFile()
  let error = err.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (
    process.terminationStatus, String(decoding: output, as: UTF8.self),
    String(decoding: error, as: UTF8.self)
  )
}

private func jsonObject(_ string: String) throws -> [String: Any] {
  try #require(try JSONSerialization.jsonObject(with: Data(string.utf8)) as? [String: Any])
}

/// Parses `bytes` with Foundation's XMLParser; returns the parse error if any, and the text of
/// every `<text>` / `<title>` element and every attribute value, for content checks.
private final class XMLCollector: NSObject, XMLParserDelegate {
  var texts: [String] = []
  var attributes: [String] = []
  var elements: [String] = []
  var current = ""
  func parser(
    _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
    qualifiedName: String?,
    attributes: [String: String]
  ) {
    elements.append(name)
    self.attributes.append(contentsOf: attributes.values)
    current = ""
  }
  func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
  func parser(_ parser: XMLParser, foundCDATA data: Data) {
    current += String(decoding: data, as: UTF8.self)
  }
  func parser(
    _ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?
  ) {
    texts.append(current)
    current = ""
  }
}

private func parseXML(_ bytes: [UInt8]) -> (ok: Bool, error: String?, collector: XMLCollector) {
  let parser = XMLParser(data: Data(bytes))
  let collector = XMLCollector()
  parser.delegate = collector
  let ok = parser.parse()
  return (ok, parser.parserError.map { "\($0)" }, collector)
}

/// Also checks well-formedness with Python's expat parser (stricter about invalid characters).
private func pythonParsesXML(_ bytes: [UInt8]) throws -> Bool {
  let file = try temporaryFile(bytes, suffix: ".svg")
  defer { try? FileManager.default.removeItem(at: file) }
  let result = try python([
    "-c", "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])", file.path,
  ])
  if result.status != 0 { print(result.error) }
  return result.status == 0
}

// MARK: - Formats

@Suite("Output")
struct OutputTests {
  /// The registry: one entry per format, names unique, the flame graph the default.
  @Test func registry() throws {
    let all = OutputFormat.all
    #expect(
      all.map(\.name) == ["flamegraph", "speedscope", "chrometrace", "raw", "pprof", "pstats", "callgrind", "spyglass"])
    #expect(all.map(\.fileExtension) == ["svg", "json", "json", "txt", "pb.gz", "prof", "callgrind", "spyglass"])
    #expect(all.filter(\.needsTimeline).map(\.name) == ["speedscope", "chrometrace", "spyglass"])
    #expect(Set(all.map(\.name)).count == all.count)
    #expect(all.allSatisfy { !$0.summary.isEmpty && $0.name == $0.name.lowercased() && !$0.name.contains(" ") })
    #expect(OutputFormat.default.name == "flamegraph")
    #expect(OutputFormat(name: "ChromeTrace")?.name == "chrometrace")
    #expect(OutputFormat(name: "svg") == nil)
    #expect(OutputFormat.recording.name == "spyglass")
  }

  /// The one interner: dense ids in order of first appearance, values in id order.
  @Test func interner() {
    var interner = Interner<String>()
    #expect(interner.intern("a") == 0)
    #expect(interner.intern("b") == 1)
    #expect(interner.intern("a") == 0)
    #expect(interner.insert("c") == (2, true))
    #expect(interner.insert("b") == (1, false))
    #expect(interner.values == ["a", "b", "c"])
    #expect(interner.id(of: "c") == 2 && interner.id(of: "z") == nil)
    #expect(interner[1] == "b" && interner.count == 3)
  }

  @Test func numberFormatting() {
    func fixed(_ v: Int64, _ d: Int) -> String {
      var b: [UInt8] = []
      b.append(fixed: v, fractionDigits: d)
      return text(b)
    }
    #expect(fixed(10_000_000, 9) == "0.01")
    #expect(fixed(2_000_000_000, 9) == "2")
    #expect(fixed(1_500, 3) == "1.5")
    #expect(fixed(7, 3) == "0.007")
    #expect(fixed(0, 6) == "0")
    #expect(fixed(-1_250, 3) == "-1.25")
    #expect(fixed(Int64.max, 0) == "9223372036854775807")
    #expect(fixed(Int64.min, 0) == "-9223372036854775808")
    var b: [UInt8] = []
    b.append(decimal: UInt64.max)
    b.append(UInt8(ascii: " "))
    b.append(rounded: 1179.99999, fractionDigits: 2)
    b.append(UInt8(ascii: " "))
    b.append(rounded: .nan, fractionDigits: 2)
    b.append(UInt8(ascii: " "))
    b.append(rounded: 0.125, fractionDigits: 2)
    #expect(text(b) == "18446744073709551615 1180 0 0.13")
  }

  @Test func escapers() {
    var json: [UInt8] = []
    json.append(json: "a\"b\\c\n\u{0}\u{1B}\u{2028}é😀")
    #expect(text(json) == #""a\"b\\c\n\u0000\u001B\u2028é😀""#)
    var xml: [UInt8] = []
    xml.append(xml: "<a href=\"x\">&'\u{0}\u{1B}\n\u{FFFE}é</a>")
    #expect(
      text(xml) == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\\x00\\x1B\\x0A\\u{FFFE}é&lt;/a&gt;")
    #expect(visible("plain") == "plain")
    #expect(visible("a\tb\u{85}") == "a\\x09b\\x85")
  }

  // MARK: raw

  @Test func rawIsCollapsedStacks() throws {
    let raw = text(try render(sampleProfile(), as: "raw", options: WriterOptions()))
    #expect(
      raw == """
        <module> (app.py:7) 1
        <module> (app.py:7);work (app.py:3) 3
        <module> (app.py:7);work (app.py:3);loop (app.py:12) 3
        run (threading.py:990);sleep (util.py:5) 3

        """)
    let full = text(
      try render(sampleProfile(), as: "raw", options: WriterOptions(fullFilenames: true)))
    #expect(
      full.contains("run (/usr/lib/python3.12/threading.py:990);sleep (/srv/app/util.py:5) 3\n"))
  }

  @Test func rawWithoutLineNumbersMergesLines() throws {
    var profile = Profile()
    let thread = profile.thread(ThreadInfo(pid: 1, threadID: 1))
    let f1 = profile.intern(Frame(name: "f", filename: "a.py", line: 1))
    let f2 = profile.intern(Frame(name: "f", filename: "a.py", line: 2))
    for frame in [f1, f2, f2] {
      profile.add(
        thread: thread, stack: profile.intern(stack: [frame]), weightNanoseconds: 1,
        timeNanoseconds: 0)
    }
    #expect(
      text(try render(profile, as: "raw", options: WriterOptions()))
        == "f (a.py:1) 1\nf (a.py:2) 2\n")
    #expect(
      text(try render(profile, as: "raw", options: WriterOptions(showLineNumbers: false)))
        == "f (a.py) 3\n")
  }

  @Test func rawKeepsOneLinePerStackWithHostileNames() throws {
    let raw = text(try render(hostileProfile(), as: "raw", options: WriterOptions()))
    let lines = raw.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == hostileNames.count + 1)
    #expect(lines.last == "")
    for line in lines.dropLast() {
      #expect(line.hasSuffix(" 2"))
      #expect(!line.contains { $0.unicodeScalars.contains(where: { $0.value < 0x20 }) })
    }
    #expect(raw.contains("nul\\x00byte"))
    #expect(raw.contains("esc\\x1B[31mred"))
    #expect(raw.contains("line\\x0Abreak\\x0Dreturn\\x09tab"))
    #expect(raw.contains("semi;colon"))  // kept, as py-spy does
  }

  @Test func emptyProfiles() throws {
    let empty = Profile()
    #expect(try render(empty, as: "raw", options: WriterOptions()).isEmpty)
    let svg = try render(empty, as: "flamegraph", options: WriterOptions())
    #expect(parseXML(svg).ok)
    #expect(text(svg).contains("No samples"))
    let speedscope = try jsonObject(
      text(try render(empty, as: "speedscope", options: WriterOptions())))
    #expect((speedscope["profiles"] as? [Any])?.isEmpty == true)
    let trace = try JSONSerialization.jsonObject(
      with: Data(try render(empty, as: "chrometrace", options: WriterOptions())))
    #expect((trace as? [Any])?.isEmpty == true)
    let summary = try decodePprof(try render(empty, as: "pprof", options: WriterOptions()))
    #expect(summary["samples"] as? Int == 0)
  }

  // MARK: flamegraph

  @Test func flamegraphIsWellFormedAndComplete() throws {
    let svg = try render(sampleProfile(), as: "flamegraph", options: WriterOptions())
    let parsed = parseXML(svg)
    #expect(parsed.ok, "\(parsed.error ?? "")")
    #expect(try pythonParsesXML(svg))
    let titles = Set(parsed.collector.texts)
    for label in [
      "all", "<module> (app.py:7)", "work (app.py:3)", "loop (app.py:12)", "run (threading.py:990)",
      "sleep (util.py:5)",
    ] {
      #expect(titles.contains(label), "missing frame \(label)")
    }
    let svgText = text(svg)
    // 6 frames: all, <module>, work, loop, run, sleep.
    #expect(svgText.components(separatedBy: "<g class=\"f\"").count - 1 == 6)
    #expect(svgText.contains("data-total=\"10\""))
    #expect(svgText.contains("10 samples, Python 3.12.1"))
    #expect(svgText.contains("spyglass record -- python3 app.py"))
    #expect(svgText.contains("width=\"1180\""))  // the root spans the width
    // Widths are proportional: <module> has 7 of 10 samples.
    #expect(
      svgText.contains(
        "data-n=\"7\" data-d=\"1\"><title>&lt;module&gt; (app.py:7)</title><rect x=\"10\" y=\"76\" width=\"826\""
      ))
    #expect(
      svgText.contains("Reset Zoom") && svgText.contains(">Search<") && svgText.contains("<script"))
    // Self-contained: no external script, stylesheet, image or font.
    #expect(!svgText.contains("href=") && !svgText.contains("src=") && !svgText.contains("@import"))
    #expect(svgText.components(separatedBy: "http").count == 2)  // only the SVG namespace
    #expect(!flamegraphScript.contains("]]>"))
  }

  @Test func flamegraphScriptParses() throws {
    let node = ["/usr/bin/node", "/usr/local/bin/node"].first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
    guard let node else { return }
    let file = try temporaryFile(Array(flamegraphScript.utf8), suffix: ".js")
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: node)
    process.arguments = ["--check", file.path]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
  }

  @Test func flamegraphOmitsNarrowFramesAndTruncatesText() throws {
    var profile = Profile()
    let thread = profile.thread(ThreadInfo(pid: 1, threadID: 1))
    let wide = profile.intern(
      Frame(name: String(repeating: "w", count: 300), filename: "", line: 0))
    let narrow = profile.intern(Frame(name: "narrow", filename: "", line: 0))
    let wideStack = profile.intern(stack: [wide])
    let narrowStack = profile.intern(stack: [narrow])
    for _ in 0..<20_000 {
      profile.add(thread: thread, stack: wideStack, weightNanoseconds: 1, timeNanoseconds: 0)
    }
    // 1 of 20001 samples: 0.059 px wide.
    profile.add(thread: thread, stack: narrowStack, weightNanoseconds: 1, timeNanoseconds: 0)
    let svg = text(try render(profile, as: "flamegraph", options: WriterOptions()))
    #expect(!svg.contains("narrow"))
    // (1179.94 - 6) / 7.25 = 161 characters fit: 159 and "..".
    #expect(svg.contains(">" + String(repeating: "w", count: 159) + "..</text>"))
    #expect(FlamegraphWriter.truncated("abcdef", toFit: 6 * 7.25, charWidth: 7.25) == "abcdef")
    #expect(FlamegraphWriter.truncated("abcdefg", toFit: 6 * 7.25, charWidth: 7.25) == "abcd..")
    #expect(FlamegraphWriter.truncated("abcdefg", toFit: 2 * 7.25, charWidth: 7.25) == "")
  }

  @Test func flamegraphColoursAreWarmAndDeterministic() {
    #expect(FlamegraphWriter.color(for: "work") == FlamegraphWriter.color(for: "work"))
    for name in ["a", "work", "<module>", "run", "x\u{0}"] {
      let parts = FlamegraphWriter.color(for: name).dropFirst(4).dropLast().split(separator: ",")
        .compactMap { Int($0) }
      #expect(parts.count == 3)
      #expect(parts[0] >= 215 && parts[0] > parts[1] && parts[1] > parts[2])
    }
  }

  @Test func flamegraphSurvivesHostileNames() throws {
    let svg = try render(hostileProfile(), as: "flamegraph", options: WriterOptions())
    let parsed = parseXML(svg)
    #expect(parsed.ok, "\(parsed.error ?? "")")
    #expect(try pythonParsesXML(svg))
    let svgText = text(svg)
    #expect(!svgText.contains("<script>alert"))
    #expect(!svgText.contains("</svg><svg"))
    #expect(svgText.components(separatedBy: "<script").count == 2)  // only ours
    #expect(svgText.components(separatedBy: "]]>").count == 2)  // only ours
    #expect(!svgText.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    #expect(!svgText.unicodeScalars.contains { $0.value == 0xFFFE || $0.value == 0xFFFF })
    // The names come back intact (escaped for display) through the DOM.
    let texts = parsed.collector.texts
    #expect(texts.contains { $0.hasPrefix("<script>alert(1)</script> (<evil>\\x00.py:1)") })
    #expect(texts.contains { $0.hasPrefix("esc\\x1B[31mred") })
    #expect(texts.contains { $0.contains("bad\u{FFFD}") })
    #expect(parsed.collector.elements.filter { $0 == "script" }.count == 1)
    #expect(svg.count < 2_000_000)
  }

  // MARK: speedscope

  private static let speedscopeCheck = #"""
    import json, sys, jsonschema
    doc = json.load(open(sys.argv[1]))
    jsonschema.validate(doc, json.load(open(sys.argv[2])))
    frames = doc["shared"]["frames"]
    out = {"names": [], "ends": [], "samples": [], "frames": len(frames)}
    for p in doc["profiles"]:
        assert len(p["samples"]) == len(p["weights"]), "samples/weights length"
        for s in p["samples"]:
            for i in s:
                assert isinstance(i, int) and 0 <= i < len(frames), "frame index out of range"
        assert abs(sum(p["weights"]) - p["endValue"]) < 1e-9, "endValue is the sum of weights"
        assert p["startValue"] == 0
        out["names"].append(p["name"])
        out["ends"].append(p["endValue"])
        out["samples"].append([[frames[i]["name"] for i in s] for s in p["samples"]])
    assert out["names"] == sorted(out["names"]), "profiles sorted by name"
    print(json.dumps(out))
    """#

  private func checkSpeedscope(_ bytes: [UInt8]) throws -> [String: Any] {
    let file = try temporaryFile(bytes, suffix: ".json")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try python(["-c", Self.speedscopeCheck, file.path, speedscopeSchema.path])
    #expect(result.status == 0, "\(result.error)")
    return try jsonObject(result.output)
  }

  @Test func speedscopeValidatesWithTimeline() throws {
    let bytes = try render(sampleProfile(), as: "speedscope", options: WriterOptions())
    let summary = try checkSpeedscope(bytes)
    #expect(
      summary["names"] as? [String] == ["Thread 4242 \"MainThread\"", "Thread 4243 \"worker\""])
    #expect(summary["ends"] as? [Double] == [0.07, 0.03])
    let samples = try #require(summary["samples"] as? [[[String]]])
    // Time order, root first.
    #expect(
      samples[0] == [
        ["<module>", "work"], ["<module>", "work"], ["<module>", "work", "loop"],
        ["<module>", "work", "loop"],
        ["<module>", "work", "loop"], ["<module>"], ["<module>", "work"],
      ])
    #expect(samples[1] == [["run", "sleep"], ["run", "sleep"], ["run", "sleep"]])
    let doc = try jsonObject(text(bytes))
    #expect(doc["exporter"] as? String == "spyglass@\(spyglassVersion)")
    #expect(doc["name"] as? String == "spyglass record -- python3 app.py")
    #expect(doc["activeProfileIndex"] as? Int == 0)
    let frames = try #require((doc["shared"] as? [String: Any])?["frames"] as? [[String: Any]])
    #expect(
      frames.contains {
        $0["name"] as? String == "run"
          && $0["file"] as? String == "/usr/lib/python3.12/threading.py"
          && $0["line"] as? Int == 990
      })
    #expect(frames.allSatisfy { Set($0.keys) == ["name", "file", "line", "col"] }, "\(frames)")
    #expect(text(bytes).hasSuffix("}\n") && !text(bytes).dropLast().contains("\n"))
  }

  @Test func speedscopeFromTotalsAndWithoutLines() throws {
    let bytes = try render(
      sampleProfile(timeline: false), as: "speedscope",
      options: WriterOptions(showLineNumbers: false))
    let summary = try checkSpeedscope(bytes)
    #expect(summary["ends"] as? [Double] == [0.07, 0.03])
    #expect((summary["samples"] as? [[[String]]])?.map(\.count) == [3, 1])  // distinct stacks
    let doc = try jsonObject(text(bytes))
    let frames = try #require((doc["shared"] as? [String: Any])?["frames"] as? [[String: Any]])
    // py-spy's frame keys exactly, with line 0 when lines are not shown and col null.
    #expect(frames.allSatisfy { Set($0.keys) == ["name", "file", "line", "col"] }, "\(frames)")
    #expect(frames.allSatisfy { $0["line"] as? Int == 0 && $0["col"] is NSNull }, "\(frames)")
  }

  @Test func speedscopeNamesProcessesWhenSeveral() throws {
    var profile = Profile()
    let f = profile.intern(Frame(name: "f", filename: "a.py", line: 1))
    let stack = profile.intern(stack: [f])
    for pid in [Int32(20), 10] {
      let thread = profile.thread(ThreadInfo(pid: pid, threadID: 0xABC))
      profile.add(thread: thread, stack: stack, weightNanoseconds: 1_000, timeNanoseconds: 0)
    }
    let summary = try checkSpeedscope(
      try render(profile, as: "speedscope", options: WriterOptions()))
    #expect(
      summary["names"] as? [String] == [
        "Process 10 Thread 0xABC \"\"", "Process 20 Thread 0xABC \"\"",
      ])
  }

  @Test func speedscopeSurvivesHostileNames() throws {
    let summary = try checkSpeedscope(
      try render(hostileProfile(), as: "speedscope", options: WriterOptions()))
    let names = Set((summary["samples"] as? [[[String]]])?.flatMap { $0.flatMap { $0 } } ?? [])
    #expect(names.contains("<script>alert(1)</script>"))
    #expect(names.contains("nul\u{0}byte"))  // JSON carries the exact name
    #expect(names.contains("line\nbreak\rreturn\ttab"))
  }

  // MARK: chrometrace

  private static let traceCheck = #"""
    import json, sys
    events = json.load(open(sys.argv[1]))
    assert isinstance(events, list)
    open_frames, last_ts, names, out = {}, {}, {}, {"pairs": {}, "threads": {}, "processes": {}}
    for e in events:
        key = "%d/%d" % (e["pid"], e["tid"])
        if e["ph"] == "M":
            target = out["threads"] if e["name"] == "thread_name" else out["processes"]
            target[key if e["name"] == "thread_name" else str(e["pid"])] = e["args"]["name"]
            continue
        assert e["ph"] in ("B", "E") and e["cat"] == "spyglass" and "filename" in e["args"]
        assert e["ts"] >= last_ts.get(key, 0), "ts goes back"
        last_ts[key] = e["ts"]
        stack = open_frames.setdefault(key, [])
        if e["ph"] == "B":
            stack.append(e["name"])
            out["pairs"][key] = out["pairs"].get(key, 0) + 1
        else:
            assert stack and stack[-1] == e["name"], "unbalanced E"
            stack.pop()
    assert all(not s for s in open_frames.values()), "frames left open"
    out["end"] = last_ts
    print(json.dumps(out))
    """#

  private func checkTrace(_ bytes: [UInt8]) throws -> [String: Any] {
    let file = try temporaryFile(bytes, suffix: ".json")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try python(["-c", Self.traceCheck, file.path])
    #expect(result.status == 0, "\(result.error)")
    return try jsonObject(result.output)
  }

  @Test func chrometraceIsBalancedPerThread() throws {
    let bytes = try render(sampleProfile(), as: "chrometrace", options: WriterOptions())
    let summary = try checkTrace(bytes)
    // Thread 1: a a b b b c a → B <module>, work at 0; loop at 30ms; E loop, work at 80 ms; B work at 90 ms.
    #expect(summary["pairs"] as? [String: Int] == ["4242/4242": 4, "4242/4243": 2])
    #expect(
      summary["threads"] as? [String: String] == [
        "4242/4242": "MainThread (4242)", "4242/4243": "worker (4243)",
      ])
    #expect(
      summary["processes"] as? [String: String] == ["4242": "spyglass record -- python3 app.py"])
    #expect(summary["end"] as? [String: Int] == ["4242/4242": 100_000, "4242/4243": 80_000])
    let trace = text(bytes)
    #expect(
      trace.contains(
        #"{"name":"loop","cat":"spyglass","ph":"B","pid":4242,"tid":4242,"ts":30000,"args":{"filename":"/srv/app/app.py","line":12}}"#
      ))
    #expect(
      trace.contains(#"{"name":"work","cat":"spyglass","ph":"E","pid":4242,"tid":4242,"ts":80000"#))
  }

  @Test func chrometraceFromTotals() throws {
    let summary = try checkTrace(
      try render(sampleProfile(timeline: false), as: "chrometrace", options: WriterOptions()))
    // <module> [c], <module>;work [a], <module>;work;loop [b]: one <module>, one work, one loop.
    #expect(summary["pairs"] as? [String: Int] == ["4242/4242": 3, "4242/4243": 2])
    #expect(summary["end"] as? [String: Int] == ["4242/4242": 70_000, "4242/4243": 30_000])
  }

  @Test func chrometraceSurvivesHostileNames() throws {
    let summary = try checkTrace(
      try render(hostileProfile(), as: "chrometrace", options: WriterOptions()))
    #expect(summary["pairs"] as? [String: Int] == ["1/2": hostileNames.count])
  }

  // MARK: pprof

  private func decodePprof(_ bytes: [UInt8]) throws -> [String: Any] {
    let file = try temporaryFile(bytes, suffix: ".pb.gz")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try python([fixtures.appendingPathComponent("pprof_decode.py").path, file.path])
    #expect(result.status == 0, "\(result.output) \(result.error)")
    return try jsonObject(result.output)
  }

  @Test func pprofDecodes() throws {
    let bytes = try render(sampleProfile(), as: "pprof", options: WriterOptions())
    #expect(bytes.starts(with: [0x1F, 0x8B]))
    let summary = try decodePprof(bytes)
    #expect(summary["samples"] as? Int == 4)  // distinct (thread, stack)
    #expect(summary["functions"] as? Int == 5)
    #expect(summary["locations"] as? Int == 5)
    #expect(summary["function_names"] as? [String] == ["<module>", "loop", "run", "sleep", "work"])
    #expect(summary["sample_types"] as? [String] == ["samples/count", "cpu/nanoseconds"])
    #expect(summary["period_type"] as? String == "cpu/nanoseconds")
    #expect(summary["period"] as? Int == 10_000_000)
    #expect(summary["totals"] as? [Int] == [10, 100_000_000])
    #expect(summary["time_nanos"] as? Int == 1_700_000_000_000_000_000)
    #expect(summary["duration_nanos"] as? Int == 100_000_000)
    #expect(
      summary["stacks"] as? [String: Int] == [
        "<module>:7": 1, "<module>:7;work:3": 3, "<module>:7;work:3;loop:12": 3,
        "run:990;sleep:5": 3,
      ])
    #expect(
      summary["threads"] as? [String: Int] == [
        "Thread 4242 \"MainThread\"": 7, "Thread 4243 \"worker\"": 3,
      ])
    #expect(summary["pids"] as? [Int] == [4242])
    #expect((summary["comments"] as? [String])?.contains("python 3.12.1") == true)
  }

  /// The real consumer: Go's pprof (Debian's golang-go, which test.sh installs) reads the file,
  /// and shows every function under its own name (`<module>` included) with the right totals.
  @Test func pprofReadByGoToolPprof() throws {
    let go = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
    let tool = try #require(go, "go is not installed (apt-get install golang-go; test.sh does)")
    let file = try temporaryFile(try render(sampleProfile(), as: "pprof", options: WriterOptions()), suffix: ".pb.gz")
    defer { try? FileManager.default.removeItem(at: file) }
    let top = try runCommand(
      tool, ["tool", "pprof", "-top", "-sample_index=samples", file.path], timeout: .seconds(120),
      environment: [
        "HOME": NSTemporaryDirectory(), "PATH": "/usr/bin:/bin", "GOCACHE": NSTemporaryDirectory() + "go-cache",
      ])
    #expect(top.exitCode == 0, "\(top)")
    let rows = top.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    // flat, flat%, sum%, cum, cum%, name: samples per function as the profile has them.
    func row(_ name: String) -> [String]? { rows.first { $0.last == name } }
    #expect(row("<module>")?[3] == "7", "\(top.stdout)")
    #expect(row("work")?[3] == "6", "\(top.stdout)")
    #expect(row("loop")?[0] == "3", "\(top.stdout)")
    #expect(row("sleep")?[0] == "3", "\(top.stdout)")
    #expect(row("run")?[3] == "3", "\(top.stdout)")
    let traces = try runCommand(
      tool, ["tool", "pprof", "-traces", file.path], timeout: .seconds(120),
      environment: [
        "HOME": NSTemporaryDirectory(), "PATH": "/usr/bin:/bin", "GOCACHE": NSTemporaryDirectory() + "go-cache",
      ])
    #expect(traces.exitCode == 0, "\(traces)")
    #expect(traces.stdout.contains("thread:  Thread 4242 \"MainThread\""), "\(traces.stdout)")
    #expect(traces.stdout.contains("python 3.12.1"), "\(traces.stdout)")
  }

  @Test func pprofWithoutLineNumbersSharesLocations() throws {
    var profile = sampleProfile()
    let thread = profile.thread(ThreadInfo(pid: 4242, threadID: 0x7F00_0000_1000))
    let other = profile.intern(
      Frame(name: "work", filename: "/srv/app/app.py", shortFilename: "app.py", line: 4))
    profile.add(
      thread: thread, stack: profile.intern(stack: [other]), weightNanoseconds: 5,
      timeNanoseconds: 0)
    let withLines = try decodePprof(try render(profile, as: "pprof", options: WriterOptions()))
    #expect(withLines["functions"] as? Int == 5)
    #expect(withLines["locations"] as? Int == 6)
    let without = try decodePprof(
      try render(profile, as: "pprof", options: WriterOptions(showLineNumbers: false)))
    #expect(without["functions"] as? Int == 5)
    #expect(without["locations"] as? Int == 5)
  }

  @Test func pprofSurvivesHostileNames() throws {
    let summary = try decodePprof(
      try render(hostileProfile(), as: "pprof", options: WriterOptions()))
    #expect(summary["samples"] as? Int == hostileNames.count)
    #expect((summary["function_names"] as? [String])?.contains("nul\u{0}byte") == true)
  }

  // MARK: pstats

  /// pstats.Stats loads the file on 2.7 and 3.x alike (marshal version 2's codes), with sample
  /// counts where calls go and the weights as seconds; pseudo-frames are not functions.
  @Test func pstatsLoadsOnEveryPythonMajor() throws {
    var profile = sampleProfile()
    let thread = profile.thread(ThreadInfo(pid: 4242, threadID: 0x7F00_0000_1000))
    let pseudo = profile.intern(Frame(pseudo: "process 4242"))
    let work = profile.intern(Frame(name: "work", filename: "/srv/app/app.py", shortFilename: "app.py", line: 3))
    // A recursion counts once per sample.
    profile.add(
      thread: thread, stack: profile.intern(stack: [pseudo, work, work]), weightNanoseconds: 5_000_000_000,
      timeNanoseconds: 0)
    let file = try temporaryFile(try render(profile, as: "pstats", options: WriterOptions()), suffix: ".prof")
    defer { try? FileManager.default.removeItem(at: file) }
    let check = """
      import pstats, sys, json
      s = pstats.Stats(sys.argv[1])
      out = {}
      for (filename, line, name), (cc, nc, tt, ct, callers) in s.stats.items():
          out[name] = [filename, line, cc, nc, round(tt, 6), round(ct, 6), sorted(c[2] for c in callers)]
      s.sort_stats("cumulative").print_stats(3)
      print(json.dumps(out))
      """
    let pythons = PythonInterpreter.all().filter { ["2.7.18", "3.6.15", "3.11-debian", "3.13.0"].contains($0.label) }
    #expect(pythons.count == 4, "\(PythonInterpreter.coverageReport)")
    for python in pythons {
      let result = try runCommand(python.path, ["-c", check, file.path], timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(python.label): \(result)")
      let line = try #require(result.stdout.split(separator: "\n").last.map(String.init), "\(python.label)")
      let stats = try #require(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [Any]], "\(python.label): \(line)")
      #expect(Set(stats.keys) == ["<module>", "work", "loop", "run", "sleep"], "\(python.label): \(stats.keys)")
      let entry = try #require(stats["work"])
      #expect(entry[0] as? String == "/srv/app/app.py" && entry[1] as? Int == 0, "\(python.label): \(entry)")
      #expect(entry[2] as? Int == 7 && entry[3] as? Int == 7, "\(python.label): samples as calls \(entry)")
      #expect((entry[5] as? Double).map { abs($0 - 5.06) < 1e-9 } == true, "\(python.label): \(entry)")
      #expect((entry[4] as? Double).map { abs($0 - 5.03) < 1e-9 } == true, "\(python.label): \(entry)")
      #expect(entry[6] as? [String] == ["<module>", "work"], "\(python.label): callers \(entry)")
      #expect((stats["<module>"]?[6] as? [String])?.isEmpty == true)
    }
  }

  /// Integers of any size, as Python's marshal reads them.
  @Test func marshalIntegers() throws {
    var marshal = Marshal()
    marshal.beginTuple(6)
    for value: UInt64 in [0, 7, UInt64(Int32.max), UInt64(Int32.max) + 1, 1 << 40, .max] {
      marshal.append(integer: value)
    }
    let file = try temporaryFile(marshal.bytes, suffix: ".marshal")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try python(["-c", "import marshal, sys; print(marshal.load(open(sys.argv[1], 'rb')))", file.path])
    #expect(result.output == "(0, 7, 2147483647, 2147483648, 1099511627776, 18446744073709551615)\n", "\(result)")
  }

  // MARK: callgrind

  @Test func callgrindReadByCallgrindAnnotate() throws {
    let annotate = try #require(
      ["/usr/bin/callgrind_annotate"].first { FileManager.default.isExecutableFile(atPath: $0) },
      "callgrind_annotate is not installed (valgrind; test.sh installs it)")
    var profile = sampleProfile()
    profile.info.weighting = .cpu
    let bytes = try render(profile, as: "callgrind", options: WriterOptions())
    let callgrind = text(bytes)
    #expect(callgrind.hasPrefix("# callgrind format\nversion: 1\ncreator: spyglass "))
    #expect(callgrind.contains("\nevents: cpu_ns samples\nsummary: 100000000 10\n"), "\(callgrind)")
    // loop's self cost at line 12; the call work -> loop at line 3, landing on loop's first line.
    #expect(callgrind.contains("fn=(3) loop\n12 30000000 3\n"), "\(callgrind)")
    #expect(callgrind.contains("cfn=(3)\ncalls=3 12\n3 30000000 3\n"), "\(callgrind)")
    let file = try temporaryFile(bytes, suffix: ".callgrind")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try runCommand(annotate, [file.path], timeout: .seconds(60))
    #expect(result.exitCode == 0, "\(result)")
    #expect(result.stdout.contains("100,000,000 (100.0%) 10 (100.0%)  PROGRAM TOTALS"), "\(result.stdout)")
    #expect(result.stdout.contains("/srv/app/app.py:loop"), "\(result.stdout)")
    let inclusive = try runCommand(annotate, ["--inclusive=yes", file.path], timeout: .seconds(60))
    #expect(inclusive.stdout.contains("70,000,000 (70.00%) 7 (70.00%)  /srv/app/app.py:<module>"), "\(inclusive)")
    #expect(inclusive.stdout.contains("60,000,000 (60.00%) 6 (60.00%)  /srv/app/app.py:work"), "\(inclusive)")
  }

  @Test func callgrindSurvivesHostileNames() throws {
    let callgrind = text(try render(hostileProfile(), as: "callgrind", options: WriterOptions()))
    #expect(!callgrind.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "raw control characters")
    for line in callgrind.split(separator: "\n") {
      #expect(
        line.first == "#" || line.contains("=") || line.contains(":") || line.first?.isNumber == true,
        "not a callgrind line: \(line.prefix(100))")
    }
    #expect(callgrind.contains(") nul\\x00byte\n"), "\(callgrind.prefix(2000))")
    #expect(callgrind.contains("line\\x0Abreak\\x0Dreturn\\x09tab"))
  }

  @Test func pstatsSurvivesHostileNames() throws {
    let file = try temporaryFile(try render(hostileProfile(), as: "pstats", options: WriterOptions()), suffix: ".prof")
    defer { try? FileManager.default.removeItem(at: file) }
    let result = try python([
      "-c", "import pstats, sys, json; print(json.dumps(sorted(k[2] for k in pstats.Stats(sys.argv[1]).stats)))",
      file.path,
    ])
    #expect(result.status == 0, "\(result.error)")
    let names = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String]
    #expect(names.map(Set.init) == Set(hostileNames), "names come back exactly")
  }

  // MARK: the recording

  /// Every format renders the same from a recording read back as from the profile itself, with
  /// every option that shapes the output.
  @Test func recordingRoundTripsForEveryFormat() throws {
    for options in [
      WriterOptions(), WriterOptions(fullFilenames: true), WriterOptions(showLineNumbers: false),
    ] {
      for original in [sampleProfile(), hostileProfile()] {
        let recording = try render(original, as: "spyglass", options: options)
        #expect(recording.starts(with: [0x1F, 0x8B]))
        let back = try RecordingReader.read(recording)
        let readOptions = WriterOptions(back.info.frameOptions)
        #expect(readOptions.fullFilenames == options.fullFilenames)
        #expect(readOptions.showLineNumbers == options.showLineNumbers)
        #expect(back.info.title == original.info.title && back.info.rate == original.info.rate)
        #expect(back.info.durationSeconds == original.info.durationSeconds)
        #expect(back.frames == original.frames && back.stacks == original.stacks && back.threads == original.threads)
        #expect(back.timeline == original.timeline && back.totals == original.totals)
        for format in OutputFormat.all {
          #expect(
            try format.render(back, options: readOptions) == format.render(original, options: options),
            "\(format) \(options)")
        }
      }
    }
    // Doubles come back exactly.
    var odd = Profile(info: RecordingInfo(rate: 0.3, durationSeconds: 1.0 / 3), keepsTimeline: true)
    odd.info.startUnixNanoseconds = .max
    let back = try RecordingReader.read(try render(odd, as: "spyglass", options: WriterOptions()))
    #expect(back.info.rate == 0.3 && back.info.durationSeconds == 1.0 / 3 && back.info.startUnixNanoseconds == .max)
    // A profile that kept only totals cannot become a recording.
    #expect(throws: SpyglassError.self) {
      try render(sampleProfile(timeline: false), as: "spyglass", options: WriterOptions())
    }
  }

  @Test func gunzipIsBounded() throws {
    let zeros = try Compression.gzip([UInt8](repeating: 0, count: 1 << 20))
    #expect(try Compression.gunzip(zeros, limit: 1 << 20).count == 1 << 20)
    #expect(throws: CompressionError.tooLarge(limit: 1000)) { try Compression.gunzip(zeros, limit: 1000) }
    #expect(throws: CompressionError.truncated) {
      try Compression.gunzip(Array(zeros.prefix(zeros.count - 9)), limit: 1 << 21)
    }
    #expect(throws: CompressionError.trailingData) { try Compression.gunzip(zeros + [1], limit: 1 << 21) }
    #expect(throws: CompressionError.corrupt) { try Compression.gunzip(Array("hello".utf8), limit: 100) }
  }

  @Test func jsonReader() throws {
    var reader = JSONReader(
      Array(#" {"a": [1, 2, 3], "s": "x\"\n\u00e9\ud83d\ude00\ud800!", "d": -1.5e3, "n": null} "#.utf8))
    var seen: [String] = []
    try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
      seen.append(key)
      switch key {
      case "a": #expect(try reader.unsignedArray() == [1, 2, 3])
      case "s": #expect(try reader.string() == "x\"\né😀\u{FFFD}!")
      case "d": #expect(try reader.double() == -1500)
      default: #expect(try reader.optionalString() == nil)
      }
    }
    try reader.end()
    #expect(seen == ["a", "s", "d", "n"])
    func fails(_ text: String, truncated: Bool = false, _ read: (inout JSONReader) throws(JSONError) -> Void) {
      var reader = JSONReader(Array(text.utf8))
      do {
        try read(&reader)
        try reader.end()
        Issue.record("\(text) was accepted")
      } catch {
        #expect(error.truncated == truncated, "\(text): \(error)")
      }
    }
    fails("18446744073709551616") { (r: inout JSONReader) throws(JSONError) in _ = try r.unsigned() }
    fails("4294967296") { (r: inout JSONReader) throws(JSONError) in _ = try r.unsigned(maximum: UInt64(UInt32.max)) }
    fails("1.5") { (r: inout JSONReader) throws(JSONError) in _ = try r.unsigned() }
    fails("01") { (r: inout JSONReader) throws(JSONError) in _ = try r.unsigned() }
    fails("-9223372036854775809") { (r: inout JSONReader) throws(JSONError) in _ = try r.signed() }
    fails("1e999") { (r: inout JSONReader) throws(JSONError) in _ = try r.double() }
    fails("\"a\u{1}\"") {
      (r: inout JSONReader) throws(JSONError) in _ = try r.string()
    }
    fails("\"abc", truncated: true) { (r: inout JSONReader) throws(JSONError) in _ = try r.string() }
    fails("[1, 2", truncated: true) { (r: inout JSONReader) throws(JSONError) in _ = try r.unsignedArray() }
    fails("{\"a\" 1}") { (r: inout JSONReader) throws(JSONError) in try r.skipValue() }
    fails("[1] 2") { (r: inout JSONReader) throws(JSONError) in try r.skipValue() }
    fails(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) {
      (r: inout JSONReader) throws(JSONError) in try r.skipValue()
    }
    var deep = JSONReader(Array((String(repeating: "[", count: 60) + String(repeating: "]", count: 60)).utf8))
    try deep.skipValue()
  }
}
