//===--- LocalsTests.swift - `spyglass dump --locals` ----------------------===//
//
// py-spy's local_vars case (Fixtures/scripts/local_vars.py, numpy part where numpy imports) on
// every interpreter, checked value by value, plus the bounds of the repr: huge and negative ints,
// sets, bytes, deep nesting, a 10 MB string and a 100000-item list, at -l (128 characters) and
// -ll (256). The text format shows the Arguments: / Locals: sections under the frame.
//
//===----------------------------------------------------------------------===//

import Foundation
import TestSupport
import Testing

/// What a local's repr must be.
private enum ExpectedRepr: CustomStringConvertible {
  case exact(String)
  /// A rule, described for failure messages.
  case rule(String, @Sendable (String) -> Bool)

  func matches(_ repr: String) -> Bool {
    switch self {
    case .exact(let text): return repr == text
    case .rule(_, let check): return check(repr)
    }
  }

  var description: String {
    switch self {
    case .exact(let text): return text.debugDescription
    case .rule(let text, _): return text
    }
  }
}

private enum LocalVars {
  static let script = "local_vars.py"
  static let functionLine = 56
  static let moduleLine = 60
  static let chinese = String(repeating: "\u{6D4B}\u{8BD5}1", count: 500)  // "测试1" * 500
  static let dashes = String(repeating: "-", count: 115)

  /// A string cut to `budget` characters the way py-spy does: `"` + budget − 5 characters + `..."`.
  static func cut(_ text: String, budget: Int) -> String { "\"" + String(text.prefix(budget - 5)) + "...\"" }

  /// `[0, 1, 2, ..., k, ...]` within the budget.
  static func boundedRange(_ budget: Int) -> ExpectedRepr {
    .rule("[0, 1, 2, …, k, ...] in at most \(budget) characters") { repr in
      guard repr.count <= budget, repr.hasPrefix("[0, 1, 2, 3, "), repr.hasSuffix(", ...]") else { return false }
      let numbers = repr.dropFirst().dropLast(6).components(separatedBy: ", ")
      return numbers.enumerated().allSatisfy { String($0.offset) == $0.element }
    }
  }

  /// `{"k": {"k": … {...} … }}` within the budget: nesting cut with `...`, not a crash.
  static func boundedNesting(_ budget: Int) -> ExpectedRepr {
    .rule("{\"k\": … {...} …} in at most \(budget) characters") { repr in
      guard repr.count <= budget, let cut = repr.range(of: "{...}") else { return false }
      let head = repr[..<cut.lowerBound]
      let tail = repr[cut.upperBound...]
      let depth = head.components(separatedBy: "{\"k\": ").count - 1
      return depth >= 1 && head == String(repeating: "{\"k\": ", count: depth)
        && tail == String(repeating: "}", count: depth)
    }
  }

  /// The arguments and locals of local_variable_lookup, in order: (name, is argument, repr).
  static func expected(_ python: PythonInterpreter, numpy: Bool, budget: Int) -> [(String, Bool, ExpectedRepr)] {
    var list: [(String, Bool, ExpectedRepr)] = [
      ("arg1", true, .exact("\"foo\"")),
      ("arg2", true, .exact("None")),
      ("arg3", true, .exact("True")),
      ("local1", false, .exact("[-1234, 5678]")),
      ("local2", false, .exact("(\"a\", \"b\", \"c\")")),
      ("local3", false, .exact("123456789123456789")),
      ("local4", false, .exact("3.1415")),
      ("local5", false, .exact("{\"a\": False, \"b\": (1, 2, 3)}")),
    ]
    let full6 = "(\"\(dashes)\", {\"key\": {\"key\": {\"key\": \"value\"}}})"
    if full6.count <= budget {
      list.append(("local6", false, .exact(full6)))
    } else if budget == 128 {
      // py-spy's form at the default budget: the dict that no longer fits is "...", not "{...}".
      list.append(("local6", false, .exact("(\"\(dashes)\", ...)")))
    } else {
      list.append(
        (
          "local6", false,
          .rule("(\"---…\", …) in at most \(budget) characters") {
            $0.hasPrefix("(\"\(dashes)\", ") && $0.hasSuffix(")") && $0.count <= budget
          }
        ))
    }
    if numpy {
      let values = ["True", "2", "3", "42", "43", "44", "45", "46", "7", "8"]
      for (offset, value) in values.enumerated() { list.append(("local\(7 + offset)", false, .exact(value))) }
      list.append(("local17", false, .rule("<numpy.ulonglong at 0x…>") { $0.hasPrefix("<numpy.ulonglong at 0x") }))
      list.append(("local18", false, .rule("<numpy.float16 at 0x…>") { $0.hasPrefix("<numpy.float16 at 0x") }))
      list.append(("local19", false, .exact("0.5")))
      list.append(("local20", false, .exact("0.7")))
      for (index, type) in [(21, "longdouble"), (22, "complex64"), (23, "complex128"), (24, "clongdouble")] {
        list.append(("local\(index)", false, .rule("<numpy.\(type) at 0x…>") { $0.hasPrefix("<numpy.\(type) at 0x") }))
      }
    }
    if python.isPython2 {
      // A 2.7 str holding UTF-8: cut on a character boundary, never inside one.
      let full = chinese
      list.append(
        (
          "local25", false,
          .rule("\"测试1…...\", a prefix cut on a character boundary, in at most \(budget) characters") { repr in
            guard repr.hasPrefix("\"\u{6D4B}\u{8BD5}1"), repr.hasSuffix("...\""), repr.count <= budget,
              !repr.unicodeScalars.contains("\u{FFFD}")
            else { return false }
            return full.hasPrefix(String(repr.dropFirst().dropLast(4)))
          }
        ))
    } else {
      list.append(("local25", false, .exact(cut(chinese, budget: budget))))
    }
    list += [
      ("local26", false, .exact("\"\"")),
      ("big", false, .exact("1606938044258990275541962092341162602522202993782792835301376")),
      ("negative_big", false, .exact("-515377520732011331036461129765621272702107522001")),
      ("small_set", false, .exact("{1, 2, 3}")),
      ("some_bytes", false, .exact(python.isPython2 ? "\"ab\\x00c\"" : "b\"ab\\x00c\"")),
      ("a_float", false, .exact("-2.5e-05")),
      ("some_text", false, .exact((python.isPython2 ? "u" : "") + "\"h\u{E9}llo \u{6D4B}\u{8BD5} \u{1F4A9}\"")),
      ("deep", false, boundedNesting(budget)),
      ("level", false, .exact("39")),
      ("huge_string", false, .exact(cut(String(repeating: "x", count: 300), budget: budget))),
      ("long_list", false, boundedRange(budget)),
    ]
    return list
  }
}

@Suite("dump --locals", .timeLimit(.minutes(10)))
struct LocalsTests {
  @Test func interpretersAreAllThere() throws {
    try PythonInterpreter.requireAll()
    print("dump --locals: " + PythonInterpreter.coverageReport)
  }

  @Test("local_vars.py", arguments: PythonInterpreter.all())
  func localVariables(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(
      python, script: Fixture.path(LocalVars.script), environment: ["PYTHONHASHSEED": "0"], timeout: .seconds(60))
    let numpy = process.readyLine == "READY numpy=1"
    #expect(numpy || process.readyLine == "READY numpy=0", "\(process.readyLine)")
    // test.sh installs numpy where wheels exist; there the numpy scalars must be checked.
    #expect(
      numpy == python.hasNumpyFromTestScript,
      "\(python.label): numpy \(numpy ? "imports" : "does not import"); test.sh installs it on pyenv's 3.9+ only")
    try process.waitUntilSleeping()
    for (flag, budget) in [("--locals", 128), ("-ll", 256)] {
      let result = try SpyglassRunner.run(["dump", "--pid", "\(process.pid)", flag, "--json"], timeout: .seconds(20))
      try #require(result.exitCode == 0, "\(result)")
      let threads = try DumpJSON.decode(result.stdout)
      let thread = try #require(threads.first { $0.frames.first?.name == "local_variable_lookup" }, "\(threads)")
      try #require(thread.frames.count == 2, "\(thread)")
      let frame = thread.frames[0]
      #expect(frame.line == LocalVars.functionLine && frame.shortFilename == LocalVars.script, "\(thread)")
      #expect(
        thread.frames[1].name == "<module>" && thread.frames[1].line == LocalVars.moduleLine, "\(thread)")
      #expect(thread.frames[1].locals == [], "a module frame has no fast locals: \(thread.frames[1])")
      let locals = try #require(frame.locals, "\(flag): no locals")
      let expected = LocalVars.expected(python, numpy: numpy, budget: budget)
      #expect(locals.map(\.name) == expected.map(\.0), "\(python) \(flag): names")
      for (name, isArgument, want) in expected {
        guard let local = locals.first(where: { $0.name == name }) else { continue }
        #expect(local.arg == isArgument, "\(python) \(flag) \(name): arg")
        #expect(local.addr != nil && local.addr != 0, "\(python) \(flag) \(name): addr")
        let repr = local.repr ?? "<nil>"
        let matches = want.matches(repr)  // (repr itself may hold control characters: not in the log)
        #expect(matches, "\(python) \(flag) \(name): got \(repr.debugDescription), want \(want)")
        #expect(repr.count <= budget, "\(python) \(flag) \(name): \(repr.count) characters")
        if case .rule(let text, _) = want, text.hasPrefix("<numpy."), let addr = local.addr {
          #expect(repr.hasSuffix(" at 0x\(String(addr, radix: 16))>"), "\(python) \(name): \(repr)")
        }
      }
    }

    // The text format: Arguments and Locals under the frame.
    let text = try SpyglassRunner.run(["dump", "--pid", "\(process.pid)", "--locals"], timeout: .seconds(20))
    #expect(text.exitCode == 0, "\(text)")
    let block = """
          local_variable_lookup (local_vars.py:\(LocalVars.functionLine))
              Arguments:
                  arg1: "foo"
                  arg2: None
                  arg3: True
              Locals:
                  local1: [-1234, 5678]
                  local2: ("a", "b", "c")

      """
    #expect(text.stdout.contains(block), "\(python): text dump:\n\(text.stdout)")
    #expect(text.stdout.contains("\n    <module> (local_vars.py:\(LocalVars.moduleLine))\n"), "\(text.stdout)")
  }

  /// Cell and free variables (py-spy leaves them out), with what their cells hold: `outer`'s
  /// captured local and captured argument, and `inner`'s view of both (closures.py).
  @Test("closures.py", arguments: PythonInterpreter.all())
  func closureCells(_ python: PythonInterpreter) throws {
    let process = try PythonProcess(python, script: Fixture.path("closures.py"), timeout: .seconds(60))
    try process.waitUntilSleeping()
    let result = try SpyglassRunner.run(
      ["dump", "--pid", "\(process.pid)", "--locals", "--json"], timeout: .seconds(20))
    try #require(result.exitCode == 0, "\(result)")
    let threads = try DumpJSON.decode(result.stdout)
    let thread = try #require(threads.first { $0.frames.first?.line == 14 }, "\(threads)")
    try #require(thread.frames.count == 3, "\(thread)")
    #expect(thread.frames[0].name.hasSuffix("inner") && thread.frames[1].name == "outer", "\(thread)")
    #expect(thread.frames[1].line == 17 && thread.frames[2].line == 20, "\(thread)")
    /// name → (argument, repr); a repr ending in "…" is a prefix.
    let expected: [[String: (Bool, String)]] = [
      [
        "extra": (true, "7"), "own": (false, "\"cell-value!from-arg\""), "captured": (false, "\"cell-value\""),
        "shared": (false, "\"from-arg\""),
      ],
      [
        "arg": (true, "1"), "shared": (true, "\"from-arg\""), "plain": (false, "42"), "inner": (false, "<function…"),
        "captured": (false, "\"cell-value\""),
      ],
    ]
    for (frame, want) in zip(thread.frames, expected) {
      let locals = frame.locals ?? []
      #expect(locals.map(\.name).sorted() == want.keys.sorted(), "\(python) \(frame.name): \(locals)")
      for local in locals {
        guard let (isArgument, repr) = want[local.name] else { continue }
        #expect(local.arg == isArgument, "\(python) \(frame.name) \(local.name): argument")
        let got = local.repr ?? "<nil>"
        let matches = repr.hasSuffix("…") ? got.hasPrefix(String(repr.dropLast())) : got == repr
        #expect(matches, "\(python) \(frame.name) \(local.name): got \(got), want \(repr)")
      }
    }
  }
}
