//===--- CoreTarget.swift - a Python process in a core file -----------------===//
//
// A `PythonTarget` read from a core file instead of a live process: the mappings come from the core's
// segments and NT_FILE note (`CoreFile.maps`), the executable and libpython are opened by the
// paths the process saw (under `root` when it ran in another root; `executable` overrides the
// executable's file), their load biases are decided from those mappings as for a live process,
// and the interpreter is found by the same `LocatedInterpreter.locate` over a `CoreMemory`.
// Threads are walked by the same `StackWalker`, generic over the reader (`CoreSampler`), and
// per-version differences stay in the layouts and traits.
//
// OS thread ids: 3.11+ records each thread's (`native_thread_id`); before, glibc's struct pthread
// holds it at an offset found the way a live process's is (`PthreadTIDOffset.discover`), checked
// against the core's NT_PRSTATUS threads. When neither gives it, it is left unknown.
//
//===----------------------------------------------------------------------===//

import SpyglassELF
import SpyglassLayouts
import SpyglassModel
import SpyglassNative
import SpyglassProcess

extension PythonTarget where Memory == CoreMemory {
  /// Opens the core file at `path`. `executable` is the executable's file here (nil: the path in
  /// the core, under `root`); `root` is prepended to every path of the core (nil or "" for the
  /// process's own).
  package static func open(core path: String, executable executableFile: String? = nil, root: String? = nil)
    throws(SpyglassError) -> CoreTarget
  {
    let core: CoreFile
    do { core = try CoreFile(path: path) } catch { throw .coreUnreadable(path: path, reason: "\(error)") }
    let rootPrefix = root.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? ""
    let executablePath = core.executablePath ?? executableFile ?? ""
    func local(_ mapped: String) -> String {
      if mapped == executablePath, let executableFile { return executableFile }
      // gcore names the files as /proc/PID/maps shows them to gdb (already under the root);
      // the kernel as the process saw them.
      if rootPrefix.isEmpty || mapped.hasPrefix(rootPrefix + "/") { return mapped }
      return rootPrefix + mapped
    }
    let memory = CoreMemory(core: core, fileOpener: { local($0) })
    let commandLine =
      arguments(core: core, memory: memory) ?? core.arguments.map { $0.split(separator: " ").map(String.init) }
      ?? [executablePath]
    let maps = core.maps
    func open(_ mapped: String) -> MappedBinary? {
      let own = maps.filter { $0.path == mapped }
      guard !own.isEmpty, let file = try? ELFFile(path: local(mapped)), let bias = file.loadBias(for: own) else {
        return nil
      }
      return MappedBinary(path: mapped, file: file, bias: bias, maps: own)
    }
    let executable = executablePath.isEmpty ? nil : open(executablePath)
    let libraryPath = maps.filter { LocatedInterpreter.isLibPython($0.path) }.min { $0.offset < $1.offset }?.path
    let library = libraryPath.flatMap { open($0) }
    let binaries = [library, executable].compactMap { $0 }
    if binaries.isEmpty { throw .coreBinariesNotFound(path: path, executable: executablePath) }
    let found: Located
    do {
      found = try LocatedInterpreter.locate(
        pid: core.pid, executablePath: executablePath, memory: memory, maps: maps, binaries: binaries)
    } catch { throw error.inCore(path) }
    return CoreTarget(
      pid: core.pid, executablePath: executablePath, commandLine: commandLine, memory: memory, executable: executable,
      library: library, found: found, source: .core(core, root: rootPrefix))
  }

  /// The process's argv, read from its initial stack: the auxiliary vector there (found by its
  /// NT_AUXV copy, in the mapping AT_EXECFN points into) follows envp and its NULL, which follow
  /// argv and its NULL, which follow argc. gcore's NT_PRPSINFO has argv[0] alone and the kernel's
  /// the first 80 bytes, so they are only the fallback. Nil when the layout does not check out.
  static func arguments(core: CoreFile, memory: CoreMemory) -> [String]? {
    let auxv = core.auxiliaryVector
    guard auxv.count >= 2, let execfn = auxv.first(where: { $0.key == 31 })?.value,
      let stack = core.segments.first(where: { $0.vaddr <= execfn && execfn < $0.vaddr &+ $0.memsz })
    else { return nil }
    // The top of the stack: the strings, and above them (lower) the vectors, within ARG_MAX.
    let end = stack.vaddr &+ stack.memsz
    let span = Swift.min(stack.memsz, 4 << 20)
    let start = end &- span
    guard let bytes = try? memory.readBytes(at: start, count: Int(span)) else { return nil }
    let view = ByteView(bytes)
    // The first two pairs, as words, at an 8-byte boundary.
    let (k0, v0, k1, v1) = (auxv[0].key, auxv[0].value, auxv[1].key, auxv[1].value)
    var found: Int?
    var offset = 0
    while offset + 32 <= bytes.count {
      if view.u64(offset) == k0 && view.u64(offset + 8) == v0 && view.u64(offset + 16) == k1
        && view.u64(offset + 24) == v1
      {
        found = offset
        break
      }
      offset += 8
    }
    guard let auxvOffset = found, auxvOffset >= 8, view.u64(auxvOffset - 8) == 0 else { return nil }
    // Back over envp to argv's NULL, then over argv to argc.
    var cursor = auxvOffset - 16
    var steps = 0
    while cursor >= 0 && view.u64(cursor) != 0 && steps < 1 << 16 {
      cursor -= 8
      steps += 1
    }
    guard cursor >= 0, view.u64(cursor) == 0 else { return nil }
    var pointers: [UInt64] = []
    cursor -= 8
    while cursor >= 0 && pointers.count < 1 << 14 {
      let word = view.u64(cursor)
      if word == UInt64(pointers.count) && !pointers.isEmpty { break }
      guard word >= start && word < end else { return nil }
      pointers.append(word)
      cursor -= 8
    }
    guard cursor >= 0, !pointers.isEmpty else { return nil }
    return pointers.reversed().map { pointer in
      let from = Int(pointer - start)
      var to = from
      while to < bytes.count && bytes[to] != 0 && to - from < 1 << 16 { to += 1 }
      return String(decoding: bytes[from..<to], as: UTF8.self)
    }
  }

  /// The native stacks of the core's threads (`--native`).
  package func nativeStacks() throws(NativeError) -> NativeStacks {
    guard case .core(let core, let root) = source else { throw .cannotOpen("not a core file") }
    var paths: [UInt64: String] = [:]
    for mapping in core.fileMappings where paths[mapping.start] == nil { paths[mapping.start] = mapping.path }
    let unwinder = try NativeUnwinder(
      corePath: core.path, executable: executable?.file.path, root: root, mappedPaths: paths)
    return NativeStacks(
      unwinder: unwinder,
      merger: NativeMerger(evaluation: model.nativeEvaluation, interpreterBinaries: interpreterBinaries))
  }
}
