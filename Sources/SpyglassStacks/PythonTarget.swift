//===--- PythonTarget.swift - finding the interpreter in a process or a core ---===//
//
// A target is a CPython process to read: a live one (`LiveTarget`, read with process_vm_readv) or
// one in a core file (`CoreTarget`, read from the core's segments and the files it maps). Either
// way the executable and libpython are found among its mappings and their ELF symbols read
// (through /proc/PID/root for a live process, so containers work from the host; under the
// process's root for a core), the version decided from the binary (Py_Version, then the version
// string, then a scan of .bss, then the file name), the PyInterpreterState located (from
// _PyRuntime / interp_head, else by scanning .PyRuntime and .bss for a word that walks like one)
// and where the GIL holder is recorded: one `locate`, generic over the memory reader. Nothing
// here stops a live target.
//
//===----------------------------------------------------------------------===//

import SpyglassELF
import SpyglassLayouts
import SpyglassModel
import SpyglassProcess

/// A binary mapped into the target: its ELF file and the load bias of its mappings.
package struct MappedBinary: Sendable {
  /// The path as the target sees it.
  package let path: String
  package let file: ELFFile
  package let bias: UInt64
  package let maps: [MemoryMap]

  /// The runtime address of a symbol, or nil when the binary does not define it.
  package func address(of name: String) -> RemoteAddress? {
    guard let symbol = file.symbol(named: name), symbol.value != 0 else { return nil }
    return bias &+ symbol.value
  }

  /// The runtime range of a section.
  package func range(of section: ELFSection) -> (start: RemoteAddress, size: Int) {
    (bias &+ section.addr, Int(clamping: section.size))
  }
}

/// A live process, attached.
package typealias LiveTarget = PythonTarget<ProcessMemory>
/// A process in a core file.
package typealias CoreTarget = PythonTarget<CoreMemory>

/// What a target is read from.
package enum TargetSource: Sendable {
  /// A live process.
  case process
  /// A core file: the file, and the folder the process's paths are under ("" for this machine's).
  case core(CoreFile, root: String)
}

/// A CPython process, ready to be walked: its binaries, and where its interpreter is.
package final class PythonTarget<Memory: MemoryReader>: @unchecked Sendable {
  package let pid: Int32
  package let executablePath: String
  package let commandLine: [String]
  package let memory: Memory
  package let executable: MappedBinary?
  package let library: MappedBinary?
  /// The interpreter: version, layout, traits, where its state and GIL are.
  package let found: Located
  package let source: TargetSource

  package var version: PythonVersion { found.version }
  package var layout: PythonLayout { found.layout }
  package var model: PythonTraits { found.model }
  package var interpreter: RemoteAddress { found.interpreter }
  package var gil: GILLocation { found.gil }
  /// `PyCode_Type`'s address, when the binary exports it.
  package var codeType: RemoteAddress? { found.codeType }
  /// Where the interpreter address was found: "symbol" or "scan".
  package var interpreterSource: String { found.interpreterSource }
  /// The target's own `_Py_DebugOffsets` (3.13+), which `layout` was merged from; nil before 3.13
  /// or when they could not be read (the generated table is used alone then).
  package var debugOffsets: DebugOffsets? { found.debugOffsets }

  init(
    pid: Int32, executablePath: String, commandLine: [String], memory: Memory, executable: MappedBinary?,
    library: MappedBinary?, found: Located, source: TargetSource
  ) {
    self.pid = pid
    self.executablePath = executablePath
    self.commandLine = commandLine
    self.memory = memory
    self.executable = executable
    self.library = library
    self.found = found
    self.source = source
  }

  /// A new walker over the target's memory.
  package func makeWalker() -> StackWalker<Memory> {
    StackWalker(
      memory: memory, layout: found.layout, model: found.model, offsets: found.walkOffsets,
      interpreter: found.interpreter, gil: found.gil, codeType: found.codeType)
  }

  /// The binaries that may hold the interpreter's symbols, libpython first.
  var binaries: [MappedBinary] { [library, executable].compactMap { $0 } }

  /// The paths (as the target maps them) of the binaries the interpreter runs in (for
  /// `NativeMerger`).
  package var interpreterBinaries: Set<String> {
    Set([executable?.path, library?.path, executablePath].compactMap { $0 })
  }

  /// The process as the library describes it.
  package func info(parent: Int32? = nil) -> PythonProcessInfo {
    PythonProcessInfo(
      pid: pid, commandLine: commandLine, executable: executablePath, pythonVersion: version.description,
      parentPID: parent)
  }

  // .. attaching ...............................................................

}

extension PythonTarget where Memory == ProcessMemory {
  /// Attaches to `pid`. `scanOnly` ignores the interpreter symbols and finds the interpreter by
  /// scanning (used to test the path stripped builds take).
  package static func attach(pid: Int32, scanOnly: Bool = false) throws(SpyglassError) -> LiveTarget {
    let executablePath: String
    do {
      executablePath = try ProcFS.executable(pid)
    } catch {
      if error.isPermissionDenied && ProcFS.processExists(pid) { throw .permissionDenied(pid: pid) }
      throw .noSuchProcess(pid: pid)
    }
    let maps: [MemoryMap]
    do { maps = try MemoryMap.read(pid: pid) } catch {
      if error.isPermissionDenied { throw .permissionDenied(pid: pid) }
      throw .noSuchProcess(pid: pid)
    }
    let memory = ProcessMemory(pid: pid)
    // Probe access once: a permission problem shows here rather than as "not Python".
    if let probe = maps.first(where: { $0.readable }) {
      do { _ = try memory.readBytes(at: probe.start, count: 8) } catch {
        if error == .permissionDenied { throw .permissionDenied(pid: pid) }
        if error == .processGone { throw .noSuchProcess(pid: pid) }
      }
    }
    let commandLine = ProcFS.commandLine(pid)
    let executable = LocatedInterpreter.openBinary(
      pid: pid, path: executablePath, maps: maps, fileOverride: "/proc/\(pid)/exe")
    let libraryPath = maps.filter { LocatedInterpreter.isLibPython($0.path) }.min { $0.offset < $1.offset }?.path
    let library = libraryPath.flatMap {
      LocatedInterpreter.openBinary(pid: pid, path: $0, maps: maps, fileOverride: nil)
    }
    let binaries = [library, executable].compactMap { $0 }

    let found = try LocatedInterpreter.locate(
      pid: pid, executablePath: executablePath, memory: memory, maps: maps, binaries: binaries, scanOnly: scanOnly)
    return LiveTarget(
      pid: pid, executablePath: executablePath, commandLine: commandLine, memory: memory, executable: executable,
      library: library, found: found, source: .process)
  }

  /// Attaches, retrying while a just-started interpreter is still initialising (up to `timeout`
  /// seconds). Errors that cannot go away by waiting are thrown at once.
  package static func attach(pid: Int32, waitingUpTo timeout: Double) throws(SpyglassError) -> LiveTarget {
    let deadline = monotonicSeconds() + timeout
    var lastError = SpyglassError.noSuchProcess(pid: pid)
    var attempts = 0
    while true {
      attempts += 1
      do throws(SpyglassError) {
        let target = try attach(pid: pid)
        // The interpreter must have at least one thread with a frame before it is useful. The
        // check reads the running target unpaused, so a walk can be torn by a thread that is
        // pushing and popping frames (a 2.7 recursion frees and reuses frame objects all the time:
        // one dump in a few thousand saw every attempt torn for half a second): from the second
        // attempt on, a torn walk is tried again at once, a few times, before waiting. The first
        // attempt tries once, so an interpreter still starting up (torn too) is given its 20 ms.
        //
        // An interpreter read whole whose threads hold no frame is still starting up, unless the
        // process is older than a second: an embedded interpreter (gdb's, a uWSGI master's) can
        // sit idle with no Python code running at all, a valid state to read.
        let walker = target.makeWalker()
        for _ in 0..<(attempts == 1 ? 1 : 16) {
          guard let threads = try? walker.sample() else { continue }
          if threads.contains(where: { !$0.frames.isEmpty }) { return target }
          if !threads.isEmpty, let age = ProcFS.age(pid), age >= 1 { return target }
          break  // read whole, but no frame yet: still starting
        }
        lastError = .interpreterNotFound(pid: pid, version: target.version.description)
      } catch {
        switch error {
        case .permissionDenied, .unsupportedVersion, .freeThreaded, .unknownDebugOffsets: throw error
        case .noSuchProcess:
          if attempts == 1 && !ProcFS.processExists(pid) { throw error }
          if !ProcFS.processExists(pid) || LocatedInterpreter.isZombie(pid) { throw .processExited(pid: pid) }
          lastError = error
        default: lastError = error
        }
      }
      if monotonicSeconds() >= deadline { throw lastError }
      sleepSeconds(0.02)
    }
  }
}

/// Where an interpreter is in a process's memory: everything a walker needs.
package struct Located: Sendable {
  package var version: PythonVersion
  package var layout: PythonLayout
  package var model: PythonTraits
  var walkOffsets: WalkOffsets
  package var interpreter: RemoteAddress
  package var gil: GILLocation
  package var codeType: RemoteAddress?
  package var interpreterSource: String
  package var debugOffsets: DebugOffsets?
}

/// Finding the interpreter, for live processes and core files alike.
package enum LocatedInterpreter {

  /// Finds the interpreter in a process's memory, given its mappings and its binaries (libpython
  /// first): the version, the layout (merged with the target's debug offsets), the interpreter
  /// state and the GIL's location. Shared by live processes and core files (`CoreTarget`), so it
  /// reads through any `MemoryReader`; `pid` only names the process in errors.
  package static func locate<Memory: MemoryReader>(
    pid: Int32, executablePath: String, memory: Memory, maps: [MemoryMap], binaries: [MappedBinary],
    scanOnly: Bool = false
  ) throws(SpyglassError) -> Located {
    guard let version = detectVersion(binaries: binaries, memory: memory, executablePath: executablePath) else {
      throw .notPython(pid: pid, executable: executablePath)
    }
    func symbol(_ name: String) -> RemoteAddress? {
      for binary in binaries { if let a = binary.address(of: name) { return a } }
      return nil
    }
    // `_PyRuntime`: its symbol, else (a build without it in .dynsym) the start of `.PyRuntime`,
    // where 3.13+ put it.
    let runtime: RemoteAddress? =
      symbol("_PyRuntime")
      ?? binaries.lazy.compactMap { binary in
        binary.file.section(named: ".PyRuntime").map { binary.range(of: $0).start }
      }.first

    // The target's own debug offsets (3.13+, and any newer version: they decide whether it can
    // be read at all). A known version without readable ones falls back to its generated table.
    var debugOffsets: DebugOffsets?
    let known = PythonTraits(version: version)
    if known?.hasDebugOffsets ?? (version.major == 3 && version > PythonTraits.newestSupported), let runtime {
      do {
        let bytes = try memory.readBytes(at: runtime, count: DebugOffsets.bytesNeeded)
        debugOffsets = try DebugOffsets(bytes: bytes)
      } catch let error as DebugOffsetsError {
        switch error {
        case .freeThreaded: throw .freeThreaded(pid: pid, version: version.description)
        case .unknownShape(let declared): throw .unknownDebugOffsets(pid: pid, version: declared.description)
        default: break
        }
      } catch {}
    }
    // The table must describe the interpreter the binary says it is (CPython's own rule for
    // remote debuggers): a mismatch means the bytes are not what they claim.
    if let debugOffsets, known != nil,
      (debugOffsets.version.major, debugOffsets.version.minor) != (version.major, version.minor)
    {
      throw .unknownDebugOffsets(pid: pid, version: debugOffsets.version.description)
    }
    guard
      let model = known
        ?? (debugOffsets != nil ? PythonTraits(assumingNewestFor: version) : nil)
    else {
      if version.major == 3 && version > PythonTraits.newestSupported {
        throw .unknownDebugOffsets(pid: pid, version: version.description)
      }
      throw .unsupportedVersion(pid: pid, version: version.description)
    }
    var layout = model.layout
    if let debugOffsets { layout = debugOffsets.layout(mergingInto: layout) }

    var interpreter: RemoteAddress?
    var source = "symbol"
    if model.interpreterDiscovery == .runtimeSymbol, let runtime {
      if !scanOnly, let headOffset = layout.runtimeInterpretersHead,
        let head = try? memory.readUInt64(at: runtime &+ UInt64(headOffset)),
        isInterpreter(head, layout: layout, memory: memory, maps: maps)
      {
        interpreter = head
      }
    } else if !(model.interpreterDiscovery == .runtimeSymbol), !scanOnly, let headSymbol = symbol("interp_head"),
      let head = try? memory.readUInt64(at: headSymbol), isInterpreter(head, layout: layout, memory: memory, maps: maps)
    {
      interpreter = head
    }
    if interpreter == nil {
      source = "scan"
      interpreter = scanForInterpreter(binaries: binaries, layout: layout, memory: memory, maps: maps)
    }
    guard let interpreter else { throw .interpreterNotFound(pid: pid, version: version.description) }

    var gil = GILLocation.unknown
    switch model.gilModel {
    case .tstateCurrentSymbol:
      if let address = symbol("_PyThreadState_Current") { gil = .threadStatePointer(address) }
    case .runtimeTstateCurrent:
      if let runtime, let current = layout.runtimeTstateCurrent {
        gil = .threadStatePointer(runtime &+ UInt64(current))
      }
    case .interpreterGil:
      if let gilOffset = layout.interpCevalGil,
        let state = try? memory.readUInt64(at: interpreter &+ UInt64(gilOffset)),
        state != 0
      {
        gil = .gilState(state)
      }
    }

    // Every member the walk reads must be in the layout (a build whose debug offsets leave one
    // out is one Spyglass cannot walk).
    guard let walkOffsets = try? WalkOffsets(layout, model, gil: gil) else {
      throw .unsupportedVersion(pid: pid, version: version.description)
    }
    return Located(
      version: version, layout: layout, model: model, walkOffsets: walkOffsets, interpreter: interpreter, gil: gil,
      codeType: symbol("PyCode_Type"), interpreterSource: source, debugOffsets: debugOffsets)
  }

  static func isZombie(_ pid: Int32) -> Bool { ProcStat.read(pid: pid)?.state == UInt8(ascii: "Z") }

  static func isLibPython(_ path: String) -> Bool {
    // /libpythonX.Y[m|d|u].so (possibly followed by a version suffix)
    guard let slash = path.lastIndex(of: "/") else { return false }
    let name = path[path.index(after: slash)...]
    guard name.hasPrefix("libpython") else { return false }
    var rest = name.dropFirst("libpython".count)
    guard let major = rest.first, major.isNumber else { return false }
    rest = rest.dropFirst()
    guard rest.first == "." else { return false }
    rest = rest.dropFirst()
    let minor = rest.prefix { $0.isNumber }
    guard !minor.isEmpty, minor.count <= 2 else { return false }
    rest = rest.dropFirst(minor.count)
    // Build flags: m (pymalloc, ≤3.7), d (debug), u (wide unicode, 2.7), t (free-threaded, 3.13+).
    while let flag = rest.first, "mdut".contains(flag) { rest = rest.dropFirst() }
    return rest.hasPrefix(".so")
  }

  static func openBinary(pid: Int32, path: String, maps: [MemoryMap], fileOverride: String?) -> MappedBinary? {
    let ownMaps = maps.filter { $0.path == path }
    guard !ownMaps.isEmpty else { return nil }
    let candidates = [fileOverride, ProcFS.pathInTarget(pid, path), path].compactMap { $0 }
    for candidate in candidates {
      guard let file = try? ELFFile.shared(path: candidate) else { continue }
      guard let bias = file.loadBias(for: ownMaps) else { continue }
      return MappedBinary(path: path, file: file, bias: bias, maps: ownMaps)
    }
    return nil
  }

  // .. version ...................................................................

  static func detectVersion<Memory: MemoryReader>(
    binaries: [MappedBinary], memory: Memory, executablePath: String
  ) -> PythonVersion? {
    for binary in binaries {
      if let address = binary.address(of: "Py_Version"), let hex = try? memory.readUInt32(at: address),
        let version = PythonVersion(hex: hex)
      {
        return version
      }
    }
    for binary in binaries {
      for name in ["Py_GetVersion.version", "version"] {
        if let address = binary.address(of: name), let bytes = try? memory.readBytes(at: address, count: 128),
          let version = PythonVersion.scan(bytes)
        {
          return version
        }
      }
    }
    for binary in binaries {
      guard let bss = binary.file.bss else { continue }
      let (start, size) = binary.range(of: bss)
      if let version = scanMemory(
        memory, start: start, size: Swift.min(size, 64 << 20), using: { PythonVersion.scan($0) })
      {
        return version
      }
    }
    // Last resort: the file name, python3.X → 3.X.0.
    let name = executablePath.split(separator: "/").last.map(String.init) ?? ""
    guard name.hasPrefix("python") else { return nil }
    let parts = name.dropFirst("python".count).split(separator: ".")
    guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1].prefix { $0.isNumber }) else {
      return nil
    }
    return PythonVersion(major: major, minor: minor, micro: 0)
  }

  /// Reads a region in 1 MiB chunks (overlapping by 256 bytes) and returns the first match.
  static func scanMemory<T, Memory: MemoryReader>(
    _ memory: Memory, start: RemoteAddress, size: Int, using match: ([UInt8]) -> T?
  )
    -> T?
  {
    let chunk = 1 << 20
    var offset = 0
    while offset < size {
      let count = Swift.min(chunk + 256, size - offset)
      if let bytes = try? memory.readBytes(at: start &+ UInt64(offset), count: count), let found = match(bytes) {
        return found
      }
      offset += chunk
    }
    return nil
  }

  // .. interpreter ...............................................................

  /// Whether `address` looks like a PyInterpreterState: mapped, with a thread list whose first
  /// thread points back at it (or an empty list while starting up).
  static func isInterpreter<Memory: MemoryReader>(
    _ address: RemoteAddress, layout: PythonLayout, memory: Memory, maps: [MemoryMap]
  )
    -> Bool
  {
    guard address != 0, address & 7 == 0, maps.contains(where: { $0.readable && $0.contains(address) }) else {
      return false
    }
    guard let headOffset = layout.interpThreadsHead, let interpOffset = layout.tstateInterp,
      let head = try? memory.readUInt64(at: address &+ UInt64(headOffset)), head != 0, head & 7 == 0
    else { return false }
    guard let back = try? memory.readUInt64(at: head &+ UInt64(interpOffset)) else { return false }
    return back == address
  }

  static func scanForInterpreter<Memory: MemoryReader>(
    binaries: [MappedBinary], layout: PythonLayout, memory: Memory, maps: [MemoryMap]
  ) -> RemoteAddress? {
    var regions: [(RemoteAddress, Int)] = []
    for binary in binaries {
      if let section = binary.file.section(named: ".PyRuntime") { regions.append(binary.range(of: section)) }
    }
    for binary in binaries {
      if let section = binary.file.section(named: ".data") { regions.append(binary.range(of: section)) }
      if let bss = binary.file.bss { regions.append(binary.range(of: bss)) }
    }
    let heap = maps.filter { $0.readable && $0.writable }
    for (start, size) in regions {
      let found: RemoteAddress? = scanMemory(memory, start: start, size: Swift.min(size, 64 << 20)) { bytes in
        let view = ByteView(bytes)
        var i = 0
        while i + 8 <= bytes.count {
          let word = view.u64(i)
          i += 8
          guard word > 0x10000, word & 7 == 0, heap.contains(where: { $0.contains(word) }) else { continue }
          if isInterpreter(word, layout: layout, memory: memory, maps: maps) { return word }
        }
        return nil
      }
      if let found { return found }
    }
    return nil
  }
}

extension PythonTarget where Memory == ProcessMemory {
  /// The target's `_Py_AsyncioModuleDebugOffsets` (3.14+), from the `.AsyncioDebug` section of
  /// whichever mapped binary has it: the `_asyncio` extension module, or the executable or
  /// libpython of a build with `_asyncio` built in. Nil when `_asyncio` is not loaded (yet) or
  /// the section does not describe a plausible table. The section is constant data: it is read
  /// from the file (through /proc/PID/root), not from the target.
  package func asyncioDebugOffsets() -> AsyncioDebugOffsets? {
    guard model.taskRegistry == .threadLists, let maps = try? MemoryMap.read(pid: pid) else { return nil }
    var candidates = [library, executable].compactMap { $0 }
    let extensionPaths = Set(maps.map(\.path).filter { $0.contains("/_asyncio.") || $0.contains("/_asyncio_") })
    for path in extensionPaths.sorted() {
      if let binary = LocatedInterpreter.openBinary(pid: pid, path: path, maps: maps, fileOverride: nil) {
        candidates.append(binary)
      }
    }
    for binary in candidates {
      guard let section = binary.file.section(named: ".AsyncioDebug"),
        let bytes = binary.file.contents(of: section), bytes.count >= AsyncioDebugOffsets.byteCount
      else { continue }
      let view = ByteView(bytes)
      if let offsets = AsyncioDebugOffsets(words: (0..<13).map { view.u64($0 * 8) }) { return offsets }
    }
    return nil
  }
}
