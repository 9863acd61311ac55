//===--- NativeMerge.swift - native and Python frames as one stack --------===//
//
// `--native` shows each thread's C stack with the interpreter's evaluation activations replaced
// by the Python frames they were running. Walking both stacks innermost first, every activation of
// an evaluation function (`PythonTraits.nativeEvaluation`) takes Python frames up to and including
// the next one entered from C (`SampledFrame.isEntry`: on ≤3.10 every frame, as each has its own
// activation). The interpreter's other functions are plumbing (calls, vectorcall, bytecode
// helpers) and are dropped, except the ones a user recognises in a profile: sleeping, waiting for
// a lock or the GIL, collecting garbage, importing. Frames of every other library stay. The C
// library's thread and process start frames outside the outermost Python frame are dropped.
//
// An activation is known by its function's name (`PythonTraits.nativeEvaluation`) or, where the
// interpreter is stripped of its local symbols (Debian's 3.14 and 3.15 run the loop in a function
// only its dynamic symbol table's neighbours name), by its place: on 3.12+ each evaluation keeps
// its entry shim frame in its own C stack frame, so the native frame whose stack holds the next
// shim's address (`SampledThread.shimAddresses`) is that evaluation.
//
// The two stacks are read at one moment from a stopped thread, so they agree; when they do not
// (an activation that has not pushed its frame yet, an unwind cut short), the merge still keeps
// every Python frame, in order, and says it did not line up.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassModel
import SpyglassNative
import SpyglassProcess

/// What the merge asks of a process's native symbols (`NativeUnwinder` answers it): the function
/// a pc is in (cheap: no line), and the symbol with its line (for frames that are shown).
package protocol NativeSymbolTable {
  /// The function `pc` is in, as an index into `functions`.
  func function(at pc: UInt64) -> Int32
  var functions: [NativeSymbol] { get }
  /// The symbol `pc` is, with its source line, as an index into `symbols`.
  func symbol(at pc: UInt64) -> Int32
  var symbols: [NativeSymbol] { get }
}

extension NativeUnwinder: NativeSymbolTable {}

/// How a native function takes part in a merged stack.
enum NativeRole: UInt8 {
  /// Shown as the Python frames it runs.
  case evaluation
  /// The interpreter's plumbing: not shown.
  case plumbing
  /// Shown.
  case shown
  /// The C library's: shown only inside the Python frames (outside them it is the thread's or
  /// the process's start-up).
  case start
}

package struct NativeMerger {
  let evaluation: PythonTraits.NativeEvaluation
  /// The paths (as the target maps them) of the binaries the interpreter is in.
  let interpreterBinaries: Set<String>
  private var roles: [NativeRole?] = []

  /// The interpreter functions kept in a merged stack, by name prefix: what a user recognises.
  static let recognisedInterpreterFunctions = [
    "time_sleep", "pysleep", "PyThread_acquire_lock", "acquire_timed", "lock_PyThread_acquire_lock",
    "rlock_acquire", "_PyMutex_Lock", "_PySemaphore_Wait", "take_gil", "gc_collect", "_PyGC_Collect", "collect",
    "PyImport_", "_PyImport_", "import_", "builtin___import__",
  ]
  /// Whether a library is the C library (its thread and process start-up frames are dropped
  /// outside the outermost Python frame, even where its local symbols are stripped).
  static func isCLibrary(_ name: String) -> Bool { name.hasPrefix("libc.so") || name.hasPrefix("libc-") }

  package init(evaluation: PythonTraits.NativeEvaluation, interpreterBinaries: Set<String>) {
    self.evaluation = evaluation
    self.interpreterBinaries = interpreterBinaries
  }

  private mutating func role(of index: Int, in symbols: [NativeSymbol]) -> NativeRole {
    if index < roles.count, let known = roles[index] { return known }
    let symbol = symbols[index]
    let name = symbol.function ?? ""
    let role: NativeRole
    if evaluation.evalFunctions.contains(name) {
      role = .evaluation
    } else if let path = symbol.libraryPath, interpreterBinaries.contains(path) {
      let helper = evaluation.evalHelperPrefixes.contains { name.hasPrefix($0) }
      role = !helper && Self.recognisedInterpreterFunctions.contains { name.hasPrefix($0) } ? .shown : .plumbing
    } else if let library = symbol.library, Self.isCLibrary(library) {
      role = .start
    } else {
      role = .shown
    }
    if roles.count <= index { roles.append(contentsOf: repeatElement(nil, count: index + 1 - roles.count)) }
    roles[index] = role
    return role
  }

  /// Merges a thread's Python frames (innermost first) with its native pcs (innermost first,
  /// from `unwinder`). Returns the merged frames, innermost first, and whether the stacks lined up
  /// (every evaluation activation had Python frames to show and every Python frame had one).
  package mutating func merge<Symbols: NativeSymbolTable>(
    python: [SampledFrame], shims: [RemoteAddress] = [], pcs: ArraySlice<UInt64>, sps: ArraySlice<UInt64>,
    unwinder: Symbols
  ) -> (frames: [SampledFrame], aligned: Bool) {
    var merged: [SampledFrame] = []
    merged.reserveCapacity(python.count + pcs.count)
    var next = 0
    var aligned = true
    var pending: [SampledFrame] = []  // start frames, kept only if Python frames follow
    var shim = 0
    for (position, pc) in zip(pcs.indices, pcs) {
      var frameRole = role(of: Int(unwinder.function(at: pc)), in: unwinder.functions)
      // The frame's own stack is from its stack pointer up to its caller's.
      if shim < shims.count, frameRole != .evaluation, position + 1 < sps.endIndex {
        let low = sps[position]
        let high = sps[position + 1]
        if low != 0 && low <= shims[shim] && shims[shim] < high { frameRole = .evaluation }
      }
      switch frameRole {
      case .plumbing:
        continue
      case .evaluation:
        guard next < python.count else {
          aligned = false
          continue
        }
        merged.append(contentsOf: pending)
        pending.removeAll()
        shim += 1
        repeat {
          merged.append(python[next])
          next += 1
        } while next < python.count && !python[next - 1].isEntry
      case .shown, .start:
        let index = unwinder.symbol(at: pc)
        let frame = SampledFrame.native(
          symbol: SymbolID(truncatingIfNeeded: index), line: Int32(clamping: unwinder.symbols[Int(index)].line), pc: pc)
        if frameRole == .start || next == python.count && !python.isEmpty {
          pending.append(frame)
        } else {
          merged.append(contentsOf: pending)
          pending.removeAll()
          merged.append(frame)
        }
      }
    }
    // Native frames outside the outermost Python frame: shown unless they are the C library's
    // start-up (a thread with no Python frames at all keeps them all).
    if python.isEmpty {
      merged.append(contentsOf: pending)
    } else {
      merged.append(
        contentsOf: pending.filter {
          role(of: Int(unwinder.function(at: $0.address)), in: unwinder.functions) != .start
        })
    }
    if next < python.count {
      aligned = false
      merged.append(contentsOf: python[next...])
    }
    return (merged, aligned)
  }
}

/// A process's native stacks: the unwinder, the merger, what each native symbol shows as, and
/// the counts `--native` reports at the end.
package final class NativeStacks {
  package let unwinder: NativeUnwinder
  var merger: NativeMerger
  /// Threads unwound, and those whose unwind failed (their Python frames were kept alone).
  package private(set) var unwound = 0
  package private(set) var unwindFailures = 0
  /// Merged stacks whose native and Python frames did not line up (all Python frames were kept).
  package private(set) var misaligned = 0
  /// Threads found asleep at the same place as in the previous sample (their stack reused).
  package private(set) var reused = 0
  /// Each idle thread's last merged stack: its registers and Python frames then, and the result.
  private var lastIdle: [Int32: (registers: NativeUnwinder.Registers, python: [SampledFrame], merged: [SampledFrame])] =
    [:]

  /// The generated C files of Cython modules met, mapped to their .pyx lines.
  private let cython: CythonSources

  package init(unwinder: NativeUnwinder, merger: NativeMerger) {
    self.unwinder = unwinder
    self.merger = merger
    cython = CythonSources(root: unwinder.isCore ? "" : "/proc/\(unwinder.pid)/root")
  }

  /// One thread's merged stack, innermost first; its Python frames alone when the unwind fails.
  /// A thread asleep in a system call (`idle`) with the registers and Python frames of its last
  /// sample has that sample's stack: it cannot have moved (most threads of a server are asleep
  /// most of the time, and each is then a register read instead of an unwind).
  package func stack(of tid: Int32, python: [SampledFrame], shims: [RemoteAddress], idle: Bool = false)
    -> [SampledFrame]
  {
    unwound += 1
    let last = idle ? lastIdle[tid].flatMap { $0.python == python ? $0 : nil } : nil
    let result: NativeUnwinder.Unwound
    do { result = try unwinder.unwind(thread: tid, unchangedIf: last?.registers) } catch {
      unwindFailures += 1
      return python
    }
    switch result {
    case .unchanged:
      reused += 1
      return last?.merged ?? python
    case .frames(let pcs, let sps, let registers):
      let (frames, aligned) = merger.merge(python: python, shims: shims, pcs: pcs, sps: sps, unwinder: unwinder)
      if !aligned { misaligned += 1 }
      if idle {
        if lastIdle.count > 4096 { lastIdle.removeAll() }
        lastIdle[tid] = (registers, python, frames)
      } else if lastIdle[tid] != nil {
        lastIdle[tid] = nil
      }
      return frames
    }
  }

  /// Native symbol `id` as a frame shows it.
  package func frame(_ id: SymbolID, line: Int32) -> Frame {
    let symbols = unwinder.symbols
    guard Int(id) < symbols.count else {
      return Frame(name: "?", filename: "?", module: "?", shortFilename: "?", line: 0)
    }
    let symbol = symbols[Int(id)]
    let name = NativeNames.pythonLevel(symbol.displayName)
    let library = symbol.libraryPath ?? "?"
    // A Cython function in its generated C file: the .pyx line that C line was made from (as
    // Cython's comments in the C file say), when the C file can be read.
    if symbol.function?.hasPrefix("__pyx_") == true, let source = symbol.sourceFile,
      let pyx = cython.pyxLocation(ofCFile: source, line: Int(line))
    {
      let first = cython.pyxLocation(ofCFile: source, line: symbol.line)?.line ?? pyx.line
      return Frame(
        name: name, filename: pyx.file, module: library,
        shortFilename: pyx.file.split(separator: "/").last.map(String.init) ?? pyx.file, line: pyx.line,
        firstLine: first)
    }
    let filename = symbol.sourceFile ?? library
    // With a source file: its own name; without: the library's file name.
    let short =
      (symbol.sourceFile != nil && symbol.line != 0 ? filename : library).split(separator: "/").last.map(String.init)
      ?? filename
    return Frame(
      name: name, filename: filename, module: library, shortFilename: short, line: Int(line), firstLine: symbol.line)
  }
}

/// Native names as a Python user knows them.
package enum NativeNames {
  /// A Cython function's C name (`__pyx_pw_6module_3Foo_5bar`: the wrapper, `__pyx_pf_…` the
  /// implementation) as its Python-level name (`module.Foo.bar`); any other name unchanged. Each
  /// part of the C name is a length-prefixed module name, then `_<n><name>` pieces.
  package static func pythonLevel(_ name: String) -> String {
    let prefixes = ["__pyx_pw_", "__pyx_pf_"]
    guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { return name }
    var rest = Substring(name.dropFirst(prefix.count))
    let lengthDigits = rest.prefix { $0.isASCII && $0.isNumber }
    guard let length = Int(lengthDigits), length > 0 else { return name }
    rest = rest.dropFirst(lengthDigits.count)
    guard rest.count >= length else { return name }
    var parts = [String(rest.prefix(length))]
    rest = rest.dropFirst(length)
    // `_<n><piece>` repeated: the n is Cython's counter, the piece a class or function name.
    for piece in rest.split(separator: "_", omittingEmptySubsequences: true) {
      let stripped = piece.drop { $0.isASCII && $0.isNumber }
      if stripped.count < piece.count && !stripped.isEmpty {
        parts.append(String(stripped))
      } else if let last = parts.popLast() {
        parts.append(last + "_" + piece)
      }
    }
    return parts.joined(separator: ".")
  }
}
