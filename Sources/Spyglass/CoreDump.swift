//===--- CoreDump.swift - the stacks of a core file of a Python process ---===//
//
// `spyglass dump --core`: every thread's stack read from a core file (the kernel's or gdb's
// `gcore`), as `StackTrace`s like a live process's, so the same writers print them. Nothing is
// running: threads are not paused, idle ones are all kept, and a thread counts as active when it
// holds the GIL (see `CoreTarget.threads`).
//
//===----------------------------------------------------------------------===//

import SpyglassELF
import SpyglassNative
import SpyglassProcess
import SpyglassStacks

/// Why a core file's stacks could not be read; `description` is one plain sentence.
package struct CoreDumpError: Error, Sendable, Equatable, CustomStringConvertible {
  package let description: String
}

/// A core file's stacks.
package enum CoreDump {
  /// Reads every thread of the core at `path`. `executable` is the python executable's file (when
  /// the core's path does not name it here); `root` the folder the process's paths are under.
  package static func read(
    path: String, executable: String?, root: String?, config: Config
  ) throws(CoreDumpError) -> (process: PythonProcessInfo, traces: [StackTrace]) {
    let target: CoreTarget
    do { target = try CoreTarget(path: path, executable: executable, root: root) } catch {
      throw CoreDumpError(description: sentence(error, path: path))
    }
    var native: NativeStacks?
    if config.native {
      do { native = try target.nativeStacks() } catch {
        throw CoreDumpError(description: "Could not read the native stacks of the core file \(path) (\(error)).")
      }
    }
    let walker = target.makeWalker()
    let threads: [ThreadStack]
    do { threads = try target.threads(walker: walker, native: native) } catch {
      throw CoreDumpError(description: sentence(error, path: path))
    }
    let info = PythonProcessInfo(
      pid: target.pid, commandLine: target.commandLine, executable: target.executablePath,
      pythonVersion: target.version.description)
    let shortener = FilenameShortener(root: root ?? "")
    let traces = threads.map { thread in
      var frames = thread.frames.map { frame in
        let code =
          frame.isNative ? (native?.code(frame.nativeSymbol) ?? walker.code(frame.code)) : walker.code(frame.code)
        return StackTraceBuilder.frame(frame, code: code, shortener: shortener, config: config)
      }
      if !frames.isEmpty { frames[frames.count - 1].isShimEntry = true }
      return StackTrace(
        pid: thread.pid, threadID: thread.threadID, threadName: thread.name,
        osThreadID: thread.osThreadID.map { UInt64($0) }, active: thread.active, ownsGIL: thread.ownsGIL,
        frames: frames, processInfo: info)
    }
    return (info, traces)
  }

  static func sentence(_ error: CoreTargetError, path: String) -> String {
    switch error {
    case .core(let core): return "Could not read the core file \(path): \(core)."
    case .attach(let attach):
      switch attach {
      case .notPython(_, let executable):
        return
          "The core file \(path) is not of a Python program: no CPython interpreter was found in it (executable \(executable); pass --exe when its file is elsewhere)."
      case .interpreterNotFound(_, let version):
        return
          "Could not find the Python \(version) interpreter state in the core file \(path) (was it dumped while the interpreter started or exited?)."
      default: return "Core file \(path): " + SpyglassError(attach).description
      }
    case .binariesNotFound(let executable):
      return
        "Could not open the executable of the core file \(path) (\(executable)) nor a libpython it maps; pass --exe PATH, or --core-root DIR when it ran in another root."
    case .read(let fault): return "Could not read the stacks in the core file \(path) (\(fault))."
    }
  }
}
