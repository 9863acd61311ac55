//===--- CoreSampler.swift - the stacks in a core file -----------------------===//
//
// A core file's threads, read as a live process's are (the same walker, resolver and traces):
// nothing runs, so nothing is paused, and a thread counts as active when it holds the GIL (the
// holder is the one that was running Python). OS thread ids are checked against the core's
// NT_PRSTATUS threads; with `--native`, each thread's native stack is unwound from the registers
// the core saved, in a libdwfl core session.
//
//===----------------------------------------------------------------------===//

import SpyglassELF
import SpyglassLayouts
import SpyglassModel
import SpyglassNative
import SpyglassProcess

package final class CoreSampler: StackSource {
  package let target: CoreTarget
  package let path: String
  package let walker: StackWalker<CoreMemory>
  package let resolver: FrameResolver
  package let info: PythonProcessInfo
  package var pid: Int32 { target.pid }
  package var version: PythonVersion { target.version }
  package var native: NativeStacks? { resolver.native }
  package var supportsTasks: Bool { false }
  package var lastTasks: AsyncSnapshot? { nil }
  private var names: [UInt64: String]?

  /// Opens the core at `path` (see `CoreTarget.open`).
  package init(path: String, executable: String?, root: String?) throws(SpyglassError) {
    target = try CoreTarget.open(core: path, executable: executable, root: root)
    self.path = path
    walker = target.makeWalker()
    info = target.info()
    resolver = FrameResolver(codes: walker.codes, native: nil, shortener: FilenameShortener(root: root ?? ""))
  }

  /// Turns on native stacks: from the next sample each thread's native stack (unwound from the
  /// registers the core saved) is merged with its Python frames.
  package func enableNative() throws(SpyglassError) {
    if native != nil { return }
    do { resolver.native = try target.nativeStacks() } catch {
      throw .coreNativeUnavailable(path: path, reason: "\(error)")
    }
  }

  package func sample(_ request: SampleRequest) throws(SpyglassError) -> [SampledThread] {
    guard case .core(let core, _) = target.source else { return [] }
    var sampled: [SampledThread]
    do { sampled = try walker.sample(pid: pid, onlyGILHolder: request.onlyGILHolder) } catch {
      throw .coreReadFailed(path: path, reason: "\(error)")
    }
    let tasks = Set(core.threadIDs)
    if target.layout.tstateNativeThreadID == nil && walker.pthreadTIDOffset == nil {
      walker.pthreadTIDOffset = PthreadTIDOffset.discover(
        memory: target.memory, pthreads: sampled.map(\.threadID), tasks: tasks)
    }
    if request.wantNames && names == nil { names = (try? walker.threadNames()) ?? [:] }
    for index in sampled.indices {
      var thread = sampled[index]
      var tid = walker.osThreadID(of: thread)
      if let known = tid, !tasks.contains(known) { tid = nil }
      if request.localsBudget > 0 {
        thread.locals = thread.frames.map { walker.locals(of: $0, budget: request.localsBudget) }
      }
      if let native, let tid {
        thread.takeMergedFrames(native.stack(of: tid, python: thread.frames, shims: thread.shimAddresses))
      }
      thread.osThreadID = tid
      thread.active = thread.ownsGIL
      thread.name = names?[thread.threadID]
      sampled[index] = thread
    }
    return sampled
  }
}
