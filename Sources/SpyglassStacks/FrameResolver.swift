//===--- FrameResolver.swift - sampled frames and threads as text ----------===//
//
// The one place a sample's ids become what a user reads: a `SampledFrame` (a code object or a
// native symbol of one process, and a line) becomes a `Frame` (names, files, library), and a
// `SampledThread` a `StackTrace`. The library's traces, core files' and live processes' dumps,
// and the profile's frames are all made here.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess

/// Resolves one process's frames: its code objects, its native symbols, its file names.
package final class FrameResolver {
  package let codes: CodeCache
  /// The native stacks (`--native`), whose symbols native frames name.
  package var native: NativeStacks?
  package let shortener: FilenameShortener

  package init(codes: CodeCache, native: NativeStacks?, shortener: FilenameShortener) {
    self.codes = codes
    self.native = native
    self.shortener = shortener
  }

  /// A frame as shown: its line as `lineNo` says, its short file name the package-relative one
  /// (or, with `fullFilenames`, the full one for Python frames).
  package func frame(_ frame: SampledFrame, lineNo: LineNo = .lastInstruction, fullFilenames: Bool = false) -> Frame {
    switch frame {
    case .python(let id, let line, _, let isEntry):
      let code = codes.code(id)
      let shown: Int
      switch lineNo {
      case .noLine: shown = 0
      case .first: shown = code.firstLine
      case .lastInstruction: shown = Int(line)
      }
      return Frame(
        name: code.name, filename: code.filename,
        shortFilename: fullFilenames ? code.filename : shortener.short(code.filename), line: shown,
        firstLine: code.firstLine, isEntry: isEntry)
    case .native(let symbol, let line, _):
      var resolved =
        native?.frame(symbol, line: line)
        ?? Frame(name: "?", filename: "?", module: "?", shortFilename: "?", line: 0)
      if lineNo == .noLine { resolved.line = 0 }
      return resolved
    }
  }

  /// The first line of a frame's function (0 for a native frame without a source line).
  package func firstLine(of frame: SampledFrame) -> Int32 {
    switch frame {
    case .python(let id, _, _, _): Int32(truncatingIfNeeded: codes.firstLine(of: id))
    case .native(let symbol, _, _): Int32(clamping: native?.unwinder.symbols[safe: Int(symbol)]?.line ?? 0)
    }
  }
}

extension Array {
  /// The element at `index`, nil when out of range.
  package subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Sampled threads as the library hands them out.
package enum TraceBuilder {
  /// One thread's `StackTrace`: its frames resolved (with their locals), its task roots as
  /// outermost pseudo-frames.
  package static func trace(
    of thread: SampledThread, resolver: FrameResolver, info: PythonProcessInfo, config: Config
  ) -> StackTrace {
    var frames: [Frame] = thread.frames.enumerated().map { index, frame in
      var made = resolver.frame(frame, lineNo: config.lineNo, fullFilenames: config.fullFilenames)
      if let locals = thread.locals, index < locals.count { made.locals = locals[index] }
      return made
    }
    // Async-aware roots (`<task NAME>`) are the outermost frames.
    frames += thread.roots.reversed().map { Frame(name: $0, filename: "", line: 0, kind: .synthetic) }
    if !frames.isEmpty { frames[frames.count - 1].isShimEntry = true }
    return StackTrace(
      pid: thread.pid, threadID: thread.threadID, threadName: thread.name,
      osThreadID: thread.osThreadID.map { UInt64($0) }, active: thread.active, ownsGIL: thread.ownsGIL,
      frames: frames, processInfo: info)
  }

  /// The tasks of one sample as the library hands them out.
  package static func tasks(
    _ snapshot: AsyncSnapshot, pid: Int32, resolver: FrameResolver, config: Config
  ) -> [TaskTrace] {
    snapshot.tasks.map { task in
      let state: TaskTrace.State
      switch task.state {
      case .running: state = .running
      case .pending: state = .pending
      case .done: state = .done
      }
      return TaskTrace(
        pid: pid, id: task.address, name: task.name, state: state,
        threadID: task.state == .running ? task.threadID : nil,
        frames: task.frames.map { resolver.frame($0, lineNo: config.lineNo, fullFilenames: config.fullFilenames) },
        awaitedBy: task.awaitedBy)
    }
  }
}

extension Config {
  /// Whether a sampled thread is handed out by a `Sampler`: idle ones only with `includeIdle`, and
  /// only the GIL holder with `gilOnly` (whatever its state).
  package func keeps(_ thread: SampledThread) -> Bool {
    gilOnly ? thread.ownsGIL : includeIdle || thread.active
  }
}
