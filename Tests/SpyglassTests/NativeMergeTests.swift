//===--- NativeMergeTests.swift - native and Python frames merged, on paper ---===//
//
// `NativeMerger` over a made-up symbol table: every rule of the merge (an evaluation activation
// becomes the Python frames up to the next entry frame, the interpreter's plumbing goes, the C
// library's start-up goes outside the Python frames only, a stripped evaluation is found by its
// shim, misaligned stacks keep every Python frame in order) checked frame by frame, without a
// process. `NativeTests` checks the same on real interpreters.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassNative
import SpyglassProcess
import SpyglassStacks
import Testing

/// A symbol table whose pcs are indexes: pc n is function `functions[n]` (and symbol n).
struct FakeSymbols: NativeSymbolTable {
  var functions: [NativeSymbol]
  var symbols: [NativeSymbol] { functions }
  func function(at pc: UInt64) -> Int32 { Int32(pc) }
  func symbol(at pc: UInt64) -> Int32 { Int32(pc) }
}

@Suite struct NativeMergeTests {
  static let python = "/usr/bin/python3.12"
  static func symbol(_ name: String?, _ library: String) -> NativeSymbol {
    NativeSymbol(
      function: name, libraryPath: library, library: library.split(separator: "/").last.map(String.init),
      libraryOffset: name == nil ? 0x1234 : 0)
  }

  /// pc 0 … 9: a stack as a thread in a C extension's callback sees it, innermost first.
  static let table = FakeSymbols(functions: [
    symbol("clock_nanosleep", "/lib/libc.so.6"),  // 0: the C library inside Python: kept
    symbol("time_sleep", python),  // 1: recognised interpreter function: kept
    symbol("_PyEval_EvalFrameDefault", python),  // 2: evaluation
    symbol("_PyObject_Vectorcall", python),  // 3: plumbing
    symbol("callback", "/srv/ext.so"),  // 4: an extension: kept
    symbol("_PyEval_EvalFrameDefault", python),  // 5: evaluation
    symbol("Py_RunMain", python),  // 6: plumbing
    symbol("__libc_start_main", "/lib/libc.so.6"),  // 7: start-up outside Python: dropped
    symbol(nil, python),  // 8: a stripped interpreter function (its evaluation by shim)
    symbol("_TAIL_CALL_LOAD_ATTR", python),  // 9: a 3.14 helper: plumbing, never "recognised"
  ])

  static func merger() -> NativeMerger {
    NativeMerger(
      evaluation: PythonTraits(major: 3, minor: 14)!.nativeEvaluation,
      interpreterBinaries: [python])
  }

  static func py(_ code: CodeID, entry: Bool = false) -> SampledFrame {
    .python(code: code, line: Int32(code) * 10, address: 0x1000 + UInt64(code), isEntry: entry)
  }

  /// What a merged stack shows: `py N` for Python frames, the function names for native ones.
  static func describe(_ frames: [SampledFrame]) -> [String] {
    frames.map { frame in
      switch frame {
      case .python(let code, _, _, _): "py \(code)"
      case .native(let symbol, _, _): table.functions[Int(symbol)].function ?? "?"
      }
    }
  }

  @Test func evaluationsBecomeTheirPythonFrames() {
    var merger = Self.merger()
    // Python: inner (entered from C by the callback), middle, outer (entered from C at start).
    let python = [Self.py(1, entry: true), Self.py(2), Self.py(3, entry: true)]
    let pcs: [UInt64] = [0, 1, 2, 3, 4, 5, 6, 7]
    let (frames, aligned) = merger.merge(
      python: python, pcs: pcs[...], sps: [UInt64](repeating: 0, count: 8)[...], unwinder: Self.table)
    #expect(aligned)
    #expect(
      Self.describe(frames) == ["clock_nanosleep", "time_sleep", "py 1", "callback", "py 2", "py 3"],
      "plumbing and start-up gone, each evaluation its frames up to the next entry frame")
  }

  @Test func aStrippedEvaluationIsFoundByItsShim() {
    var merger = Self.merger()
    // Frame 1 (the stripped pc 8) has the shim 0x7000 in its stack [0x6000, 0x8000).
    let python = [Self.py(1, entry: true)]
    let (frames, aligned) = merger.merge(
      python: python, shims: [0x7000], pcs: [4, 8, 7][...], sps: [0x5000, 0x6000, 0x8000][...],
      unwinder: Self.table)
    #expect(aligned)
    #expect(Self.describe(frames) == ["callback", "py 1"])
  }

  @Test func misalignedStacksKeepEveryPythonFrameInOrder() {
    var merger = Self.merger()
    // One evaluation for three Python frames that are all entry frames: two are left over.
    let python = [Self.py(1, entry: true), Self.py(2, entry: true), Self.py(3, entry: true)]
    let (frames, aligned) = merger.merge(
      python: python, pcs: [0, 2, 7][...], sps: [0, 0, 0][...], unwinder: Self.table)
    #expect(!aligned)
    #expect(Self.describe(frames) == ["clock_nanosleep", "py 1", "py 2", "py 3"])
    // An evaluation with no Python frame left: not lined up either, and nothing invented.
    let (more, alignedMore) = merger.merge(
      python: [Self.py(1, entry: true)], pcs: [2, 5][...], sps: [0, 0][...], unwinder: Self.table)
    #expect(!alignedMore)
    #expect(Self.describe(more) == ["py 1"])
  }

  @Test func aThreadWithoutPythonFramesKeepsItsNativeStack() {
    var merger = Self.merger()
    let (frames, aligned) = merger.merge(python: [], pcs: [0, 4, 7][...], sps: [0, 0, 0][...], unwinder: Self.table)
    #expect(aligned)
    #expect(Self.describe(frames) == ["clock_nanosleep", "callback", "__libc_start_main"])
  }

  @Test func helpersOfTheEvaluationArePlumbing() {
    var merger = Self.merger()
    let (frames, _) = merger.merge(
      python: [Self.py(1, entry: true)], pcs: [9, 2, 7][...], sps: [0, 0, 0][...], unwinder: Self.table)
    #expect(Self.describe(frames) == ["py 1"])
  }

  @Test func cythonNamesReadAsPythonNames() {
    #expect(NativeNames.pythonLevel("__pyx_pw_5cyhot_3Foo_5bar") == "cyhot.Foo.bar")
    #expect(NativeNames.pythonLevel("__pyx_pf_5cyhot_2cy_inner") == "cyhot.cy_inner")
    #expect(NativeNames.pythonLevel("memcpy") == "memcpy")
    #expect(NativeNames.pythonLevel("__pyx_pw_999x") == "__pyx_pw_999x", "a length past the name")
  }
}

/// Cython's line comments in a generated C file, mapped to .pyx lines.
@Suite struct CythonSourceMapTests {
  @Test func linesMapToTheLastCommentAboveThem() throws {
    let text = """
      #include "Python.h"
      static int x;
      /* "pkg/cyhot.pyx":3
       * def cy_call(f, int n):
       */
      int a = 1;
        /* "pkg/cyhot.pyx":7
       *         result += f(i)  # <<<<<<<<<<<<<<
       */
      int b = 2;
      /* "other.pxd":12
      int c = 3;
      /* "not-cython.txt":5
      int d = 4;
      /* "/abs/mod.pyx":99999999999
      """
    let map = try #require(CythonSourceMap(cSource: Array(text.utf8), directory: "/src"))
    #expect(map.pyxLocation(ofCLine: 1) == nil)
    #expect(map.pyxLocation(ofCLine: 2) == nil)
    #expect(map.pyxLocation(ofCLine: 3).map { [$0.file, "\($0.line)"] } == ["/src/pkg/cyhot.pyx", "3"])
    #expect(map.pyxLocation(ofCLine: 6).map { [$0.file, "\($0.line)"] } == ["/src/pkg/cyhot.pyx", "3"])
    #expect(map.pyxLocation(ofCLine: 10).map { [$0.file, "\($0.line)"] } == ["/src/pkg/cyhot.pyx", "7"])
    #expect(map.pyxLocation(ofCLine: 12).map { [$0.file, "\($0.line)"] } == ["/src/other.pxd", "12"])
    // Not a Cython source name, and a line number past 9 digits: no new location.
    #expect(map.pyxLocation(ofCLine: 14).map { [$0.file, "\($0.line)"] } == ["/src/other.pxd", "12"])
    #expect(map.pyxLocation(ofCLine: 15).map { [$0.file, "\($0.line)"] } == ["/src/other.pxd", "12"])
    #expect(map.pyxLocation(ofCLine: 0) == nil && map.pyxLocation(ofCLine: 1000) == nil)
  }

  @Test func aCFileWithoutCommentsIsNotCython() {
    #expect(CythonSourceMap(cSource: Array("int main(void) { return 0; }\n/* \"x\" */\n".utf8), directory: "/") == nil)
  }
}
