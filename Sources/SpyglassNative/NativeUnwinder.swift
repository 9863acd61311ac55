//===--- NativeUnwinder.swift - native stacks through libdwfl -----------===//
//
// One unwinder per live process or core file. It keeps libdwfl's session (the module list, each
// library's CFI and symbol table, opened once) for as long as the process is sampled, re-reports
// the modules when the file mappings in /proc/PID/maps change (checked at most once a second, and
// at once when a pc falls outside every known module), and resolves each function once (by its
// address range) and each shown pc once: a sample costs the unwind (the stopped thread's
// registers, read here, and its stack, read through a `ReadAhead` that keeps the pages it read
// for the unwind) and a table lookup per frame.
//
// What comes from the target (names, paths) is bounded here; writers escape it.
//
//===----------------------------------------------------------------------===//

import CElfutils
import Glibc
import SpyglassProcess

/// Why a native stack could not be had.
package enum NativeError: Error, Equatable, Sendable {
  /// The session could not be made (libdwfl's message).
  case cannotOpen(String)
  /// The thread's registers could not be read (it is not in a ptrace stop of this thread).
  case registersUnreadable
  /// Not even the first frame came back.
  case unwindFailed
  /// The core file has no such thread.
  case unknownThread
}

/// What one pc is: a function in a library, perhaps with a source line.
package struct NativeSymbol: Sendable, Hashable {
  /// The function's name, demangled (C++, Rust); nil for a stripped library with no symbol near.
  package var function: String?
  /// The library's path as the target maps it; nil when no module holds the pc.
  package var libraryPath: String?
  /// The library's file name (`libz.so.1`).
  package var library: String?
  /// The pc's offset in its library when there is no symbol (for `0x… (libname)`), else 0: pcs of
  /// one function and line are one symbol.
  package var libraryOffset: UInt64
  /// Source file and line where debug information gives them.
  package var sourceFile: String?
  package var line: Int

  package init(
    function: String?, libraryPath: String?, library: String?, libraryOffset: UInt64 = 0, sourceFile: String? = nil,
    line: Int = 0
  ) {
    self.function = function
    self.libraryPath = libraryPath
    self.library = library
    self.libraryOffset = libraryOffset
    self.sourceFile = sourceFile
    self.line = line
  }

  /// The name shown: the function, else `0x<offset>`.
  package var displayName: String {
    function ?? "0x" + String(libraryOffset, radix: 16)
  }
}

package final class NativeUnwinder {
  /// The deepest native stack kept (frames past it are cut).
  package static let maximumDepth = 1024
  /// Longest name or path kept from the target.
  static let maximumStringBytes = 1024

  // SAFETY: the session pointer is owned by this object, used only through the C functions, and
  // released once in deinit.
  private let session: OpaquePointer
  package let pid: Int32
  package let isCore: Bool
  private var pcs = [UInt64](repeating: 0, count: NativeUnwinder.maximumDepth)
  private var sps = [UInt64](repeating: 0, count: NativeUnwinder.maximumDepth)
  /// Each pc resolved so far, as an index into `symbols`.
  private var symbolOfPC: [UInt64: Int32] = [:]
  /// Every distinct symbol, with its source line, in the order first seen (indexes are stable for
  /// the session).
  package private(set) var symbols: [NativeSymbol] = []
  private var symbolIndex: [NativeSymbol: Int32] = [:]
  /// The same without source lines (`function(at:)`): enough to tell what a frame is, without
  /// reading any DWARF.
  private var functionOfPC: [UInt64: Int32] = [:]
  /// The address ranges of the functions resolved so far, sorted by start: a running thread's
  /// innermost pc is new on almost every sample, but seldom in a new function.
  private var functionRanges: [(start: UInt64, end: UInt64, index: Int32)] = []
  /// Functions of libraries without their own line table.
  private var functionsWithoutLines = Set<Int32>()
  package private(set) var functions: [NativeSymbol] = []
  private var functionIndex: [NativeSymbol: Int32] = [:]
  private var lastMaps: [UInt8] = []
  /// The file mappings are compared at most once a second, and the modules reported again for a pc
  /// outside them at most ten times a second.
  private var mapsThrottle = Throttle(seconds: 1)
  private var unknownPCThrottle = Throttle(seconds: 0.1)
  /// A live process's stack memory, read a page at a time and kept for one unwind.
  private let stack: ReadAhead<ProcessMemory>?

  /// A session over a live process (its libraries opened through /proc/PID/root, so a target in
  /// a container reads its own files).
  package init(pid: Int32) throws(NativeError) {
    var error = [CChar](repeating: 0, count: 512)
    let root = ProcFS.pathInTarget(pid, "")
    let stack = ReadAhead(ProcessMemory(pid: pid), missPolicy: .pages)
    // SAFETY: `error` outlives the call and its size is passed with it; the reader the context
    // points at is kept by this unwinder (`stack`) for as long as the session lives.
    let context = Unmanaged.passUnretained(stack).toOpaque()
    guard let session = unsafe spy_native_open_process(pid, root, Self.readWord, context, &error, error.count) else {
      throw .cannotOpen(Self.string(error))
    }
    self.session = session
    self.pid = pid
    self.isCore = false
    self.stack = stack
    lastMaps = Self.fileBackedLines((try? ProcFS.readFile("/proc/\(pid)/maps")) ?? [])
    _ = mapsThrottle.ready()
  }

  /// libdwfl's memory reads of a live process: a word through the unwinder's `stack` reader.
  private static let readWord: spy_native_read_word = { context, address, word in
    guard let context, let word else { return 0 }
    // SAFETY: the context is the unwinder's `stack`, which outlives the session (see init).
    let reader = unsafe Unmanaged<ReadAhead<ProcessMemory>>.fromOpaque(context).takeUnretainedValue()
    guard let value = try? reader.word(at: address) else { return 0 }
    unsafe word.pointee = value
    return 1
  }

  /// A core session's library paths as the process mapped them, by the address each is mapped at
  /// (libdwfl names a core's modules by their file names alone, or by the files it opened here).
  private var corePaths: [UInt64: String] = [:]

  /// A session over a core file; `executable` nil finds it from the core's notes. `mappedPaths`
  /// gives each library's path as the process saw it, by its lowest mapped address (NT_FILE), so
  /// frames name their libraries as a live process's do, and libraries libdwfl does not find by
  /// itself are looked for there, under `root` first (the folder the process's files are under).
  package init(
    corePath: String, executable: String?, root: String? = nil, mappedPaths: [UInt64: String] = [:]
  ) throws(NativeError) {
    var error = [CChar](repeating: 0, count: 512)
    let files = mappedPaths.sorted { $0.key < $1.key }
    let starts = files.map(\.key)
    // SAFETY: each strdup'ed copy is freed once, after the call (the session keeps its own).
    let paths: [UnsafePointer<CChar>?] = unsafe files.map { unsafe UnsafePointer(strdup($0.value)) }
    defer { for path in unsafe paths { unsafe free(UnsafeMutablePointer(mutating: path)) } }
    // SAFETY: as above; the strings and arrays outlive the call, and their count is passed with them.
    let opened = unsafe starts.withUnsafeBufferPointer { startBuffer in
      unsafe paths.withUnsafeBufferPointer { pathBuffer in
        unsafe spy_native_open_core(
          corePath, executable, root ?? "", startBuffer.baseAddress, pathBuffer.baseAddress, Int32(files.count),
          &error, error.count)
      }
    }
    guard let session = unsafe opened else { throw .cannotOpen(Self.string(error)) }
    self.session = session
    self.isCore = true
    self.pid = unsafe spy_native_core_pid(session)
    self.corePaths = mappedPaths
    self.stack = nil
  }

  deinit { unsafe spy_native_close(session) }

  /// The threads a core file holds.
  package func coreThreadIDs() -> [Int32] {
    var tids = [Int32](repeating: 0, count: 4096)
    let count = unsafe spy_native_core_threads(session, &tids, Int32(tids.count))
    return Array(tids.prefix(Int(count)))
  }

  /// Re-reports the modules when the process's file mappings changed since the last look (at most
  /// once a second unless `force`). Cached pcs are forgotten then: a library unmapped and another
  /// mapped at its address must not keep the old names.
  package func refreshIfMapsChanged(force: Bool = false) {
    if isCore { return }
    if !mapsThrottle.ready() && !force { return }
    guard let all = try? ProcFS.readFile("/proc/\(pid)/maps") else { return }
    let maps = Self.fileBackedLines(all)
    if maps == lastMaps { return }
    lastMaps = maps
    _ = unsafe spy_native_refresh(session)
    symbolOfPC.removeAll(keepingCapacity: true)
    functionOfPC.removeAll(keepingCapacity: true)
    functionRanges.removeAll(keepingCapacity: true)
  }

  /// A live thread's rip, rsp and rbp when it was unwound.
  package typealias Registers = (rip: UInt64, rsp: UInt64, rbp: UInt64)

  /// What `unwind` found.
  package enum Unwound {
    /// Each frame's pc and stack pointer, innermost first (frame i's own stack is
    /// [sps[i], sps[i + 1]); 0 when not known). Valid until the next call.
    case frames(pcs: ArraySlice<UInt64>, sps: ArraySlice<UInt64>, registers: Registers)
    /// The registers are `unchangedIf`'s: nothing was unwound.
    case unchanged
  }

  /// Unwinds one thread (stopped by this thread's ptrace in a live process), innermost first.
  /// With `unchangedIf`, a thread whose rip, rsp and rbp are those is not unwound again: a thread
  /// asleep in the same system call at the same stack depth has the same stack as before.
  package func unwind(thread tid: Int32, unchangedIf previous: Registers? = nil) throws(NativeError) -> Unwound {
    refreshIfMapsChanged()
    var registers: [UInt64]?
    var seen: Registers = (0, 0, 0)
    if let stack {
      guard let read = try? ThreadRegisters.read(tid: tid) else { throw .registersUnreadable }
      seen = (read.rip, read.rsp, read.rbp)
      if let previous, previous == seen { return .unchanged }
      registers = read.dwarf
      stack.begin()
    }
    var code: Int32 = 0
    // SAFETY: `pcs` and `sps` hold `pcs.count` words, the capacity passed; `registers` holds the
    // SPY_NATIVE_REGISTER_COUNT words the C side reads.
    let count = unsafe pcs.withUnsafeMutableBufferPointer { buffer in
      unsafe sps.withUnsafeMutableBufferPointer { stackPointers in
        if let registers {
          return unsafe registers.withUnsafeBufferPointer { values in
            unsafe spy_native_unwind(
              session, tid, values.baseAddress, buffer.baseAddress, stackPointers.baseAddress, Int32(buffer.count),
              &code)
          }
        }
        return unsafe spy_native_unwind(
          session, tid, nil, buffer.baseAddress, stackPointers.baseAddress, Int32(buffer.count), &code)
      }
    }
    stack?.clear()
    if count < 0 {
      switch code {
      case 1: throw .registersUnreadable
      case 3: throw .unknownThread
      default: throw .unwindFailed
      }
    }
    return .frames(pcs: pcs[..<Int(count)], sps: sps[..<Int(count)], registers: seen)
  }

  /// The symbol a pc (from `unwind`) is, with its source line, as an index into `symbols`:
  /// resolved once per pc.
  package func symbol(at pc: UInt64) -> Int32 {
    if let known = symbolOfPC[pc] { return known }
    let function = self.function(at: pc)
    // A library without its own line table: the function is the symbol (no lookup per pc).
    let index =
      functionsWithoutLines.contains(function)
      ? Self.intern(functions[Int(function)], in: &symbols, &symbolIndex)
      : Self.intern(resolve(pc, line: true).symbol, in: &symbols, &symbolIndex)
    if symbolOfPC.count > 1 << 20 { symbolOfPC.removeAll() }
    symbolOfPC[pc] = index
    return index
  }

  /// The function a pc is (no source line), as an index into `functions`: resolved once per pc.
  package func function(at pc: UInt64) -> Int32 {
    if let known = functionOfPC[pc] { return known }
    if let known = functionInRanges(pc) {
      if functionOfPC.count > 1 << 20 { functionOfPC.removeAll() }
      functionOfPC[pc] = known
      return known
    }
    var resolved = resolve(pc, line: false)
    if resolved.symbol.libraryPath == nil && !isCore && unknownPCThrottle.ready() {
      // A library mapped since the last look: report the modules again.
      refreshIfMapsChanged(force: true)
      resolved = resolve(pc, line: false)
    }
    let index = Self.intern(resolved.symbol, in: &functions, &functionIndex)
    if !resolved.moduleHasLines { functionsWithoutLines.insert(index) }
    let range = resolved.range
    if range.lowerBound < range.upperBound, range.contains(pc), functionRanges.count < 1 << 16 {
      let at = functionRanges.partitionPoint { $0.start < range.lowerBound }
      functionRanges.insert((range.lowerBound, range.upperBound, index), at: at)
    }
    if functionOfPC.count > 1 << 20 { functionOfPC.removeAll() }
    functionOfPC[pc] = index
    return index
  }

  private static func intern(
    _ symbol: NativeSymbol, in table: inout [NativeSymbol], _ index: inout [NativeSymbol: Int32]
  )
    -> Int32
  {
    if let existing = index[symbol] { return existing }
    let next = Int32(table.count)
    table.append(symbol)
    index[symbol] = next
    return next
  }

  /// The function whose known range holds `pc`.
  private func functionInRanges(_ pc: UInt64) -> Int32? {
    let after = functionRanges.partitionPoint { $0.start <= pc }
    guard after > 0 else { return nil }
    let candidate = functionRanges[after - 1]
    return pc < candidate.end ? candidate.index : nil
  }

  /// What libdwfl says of a pc: its symbol; the address range every pc of its function shares
  /// (empty when unknown); whether its library carries its own line table.
  private struct Resolved {
    var symbol: NativeSymbol
    var range: Range<UInt64> = 0..<0
    var moduleHasLines = false
  }

  private func resolve(_ pc: UInt64, line wantLine: Bool) -> Resolved {
    var raw = spy_native_symbol()
    guard unsafe spy_native_symbolize(session, pc, wantLine ? 1 : 0, &raw) == 0 else {
      return Resolved(
        symbol: NativeSymbol(function: nil, libraryPath: nil, library: nil, libraryOffset: pc, sourceFile: nil, line: 0)
      )
    }
    // SAFETY: the strings point into the session (valid until the next refresh, and copied here)
    // or, for `demangled`, into malloc'ed memory this function frees.
    let demangled = unsafe raw.demangled.map { unsafe Self.string($0) }
    unsafe free(raw.demangled)
    // A versioned name from the dynamic symbol table (`clock_nanosleep@GLIBC_2.2.5`) is shown
    // without its version.
    let mangled = unsafe raw.function.map { unsafe Self.string($0) }.map { name in
      name.firstIndex(of: "@").map { String(name[..<$0]) } ?? name
    }
    var function = demangled ?? mangled
    // A stripped library's pc shows as the nearest exported function before it, with the offset:
    // the name alone would claim a function the pc is probably not in.
    if raw.is_nearest != 0, let name = function { function = name + "+0x" + String(raw.symbol_offset, radix: 16) }
    var path = unsafe raw.module_path.map { unsafe Self.string($0) }
    if isCore, let mapped = corePaths[pc &- raw.module_offset] { path = mapped }
    let source = unsafe raw.source_file.map { unsafe Self.string($0) }
    let library = path.map { path in path.split(separator: "/").last.map(String.init) ?? path }
    // Relative source paths are as the compiler saw them; only the name is shown for them anyway.
    let symbol = NativeSymbol(
      function: function.flatMap { $0.isEmpty ? nil : $0 }, libraryPath: path, library: library,
      libraryOffset: function?.isEmpty == false ? 0 : raw.module_offset, sourceFile: source,
      line: source == nil ? 0 : Int(raw.line))
    let range = raw.range_start < raw.range_end ? raw.range_start..<raw.range_end : 0..<0
    return Resolved(symbol: symbol, range: range, moduleHasLines: raw.module_has_lines != 0)
  }

  /// The lines of a maps file that map a file (a path after the inode): what libdwfl's module list
  /// is made from. Anonymous mappings come and go with every large allocation and are left out, so
  /// a target that allocates does not make the modules be reported again.
  static func fileBackedLines(_ maps: [UInt8]) -> [UInt8] {
    var kept: [UInt8] = []
    for line in maps.split(separator: UInt8(ascii: "\n")) where line.contains(UInt8(ascii: "/")) {
      kept.append(contentsOf: line)
      kept.append(UInt8(ascii: "\n"))
    }
    return kept
  }

  /// A C string from the target's files, cut to `maximumStringBytes`, invalid UTF-8 repaired.
  private static func string(_ pointer: UnsafePointer<CChar>) -> String {
    var bytes: [UInt8] = []
    var cursor = unsafe pointer
    while bytes.count < maximumStringBytes {
      let byte = unsafe UInt8(bitPattern: cursor.pointee)
      if byte == 0 { break }
      bytes.append(byte)
      cursor = unsafe cursor + 1
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private static func string(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension Array {
  /// The first index whose element does not satisfy `belongsBefore` (the array is partitioned by it).
  func partitionPoint(_ belongsBefore: (Element) -> Bool) -> Int {
    var low = 0
    var high = count
    while low < high {
      let middle = (low + high) / 2
      if belongsBefore(self[middle]) { low = middle + 1 } else { high = middle }
    }
    return low
  }
}
