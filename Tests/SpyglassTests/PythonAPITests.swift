//===--- PythonAPITests.swift - the Python package from the source tree -----===//
//
// The package in python/ with the executable under test (SPYGLASS_BINARY), no wheel needed: the
// flame graph `spyglass.start(native=True, nonblocking=False)` saves labels native frames exactly as
// `spyglass record --native` does (both are the executable's writer over the same frames, the
// library included; the package once rebuilt them from pprof, which has no place for the library).
// The package's own unit tests are python/tests (test.sh runs them).
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

/// The `<title>` texts of a flame graph's frames, entities decoded.
private func frameLabels(_ svg: String) -> Set<String> {
  var labels = Set<String>()
  for part in svg.components(separatedBy: "<g class=\"f\"").dropFirst() {
    guard let start = part.range(of: "<title>"), let end = part.range(of: "</title>") else { continue }
    let escaped = String(part[start.upperBound..<end.lowerBound])
    labels.insert(
      escaped.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&"))
  }
  return labels
}

/// Frames by function name: what their labels show in parentheses, the line left out
/// (`deflate (libz.so.1)` → deflate: libz.so.1; `f (lib.so: f.c:12)` → f: lib.so: f.c;
/// `g (app.py:3)` → g: app.py).
private func places(_ labels: Set<String>) -> [String: Set<String>] {
  var result: [String: Set<String>] = [:]
  for label in labels {
    guard label.hasSuffix(")"), let open = label.range(of: " (", options: .backwards) else { continue }
    var place = String(label[open.upperBound...].dropLast())
    if let colon = place.range(of: ":", options: .backwards), place[colon.upperBound...].allSatisfy(\.isNumber) {
      place = String(place[..<colon.lowerBound])
    }
    result[String(label[..<open.lowerBound]), default: []].insert(place)
  }
  return result
}

@Suite("Python package from the source tree", .timeLimit(.minutes(5)))
struct PythonAPITests {
  @Test func nativeFramesAreLabelledAsRecordLabelsThem() throws {
    let python = try #require(
      PythonInterpreter.all().first { $0.label == "3.12.1" }, "\(PythonInterpreter.coverageReport)")
    let folder = try makeTemporaryDirectory("spyglass-python-native")
    defer { removeDirectory(folder) }
    let script = Fixture.path("native_api.py")
    var environment = ProcessInfo.processInfo.environment
    environment["PYTHONPATH"] = RepositoryFiles.root + "/python"
    environment["SPYGLASS_BINARY"] = try SpyglassRunner.executablePath()
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    let api = try runCommand(
      python.path, [script, "api", folder + "/api.svg"], timeout: .seconds(120), environment: environment)
    try #require(api.exitCode == 0, "\(api)")
    let record = try SpyglassRunner.run(
      ["record", "--native", "-r", "200", "-o", folder + "/record.svg", "--", python.path, script, "plain", "2"],
      timeout: .seconds(120))
    try #require(record.exitCode == 0, "\(record)")

    let fromAPI = places(frameLabels(try String(contentsOfFile: folder + "/api.svg", encoding: .utf8)))
    let fromRecord = places(frameLabels(try String(contentsOfFile: folder + "/record.svg", encoding: .utf8)))
    // Native functions are the ones record shows in a library.
    let native = fromRecord.filter { $0.value.contains { $0.contains(".so") } }
    let shared = Set(native.keys).intersection(fromAPI.keys)
    #expect(
      shared.contains { native[$0]?.contains { $0.hasPrefix("libz.so") } == true },
      "both show zlib's own frames: API \(fromAPI.keys.sorted()), record \(native.keys.sorted())")
    // A native function with a source line (the extension's, built with debug information) is where
    // a writer that drops the library labels it differently.
    #expect(
      shared.contains { native[$0]?.contains { $0.contains(".so: ") } == true },
      "both show a native frame with a source file: API \(fromAPI), record \(native)")
    // Each shows a function at the lines its samples happened to catch; the library (and, with a
    // source file, the library first) is the same in both.
    func libraries(_ places: Set<String>?) -> Set<String> {
      Set((places ?? []).map { $0.components(separatedBy: ": ")[0] })
    }
    for name in shared.sorted() {
      #expect(
        libraries(fromAPI[name]) == libraries(fromRecord[name]),
        "\(name) is labelled \(fromAPI[name] ?? []) by the API and \(fromRecord[name] ?? []) by record")
    }
  }
}
