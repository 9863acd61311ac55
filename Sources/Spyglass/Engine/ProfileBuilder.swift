//===--- ProfileBuilder.swift - sampled stacks into a Profile ---===//
//
// Folds each sampled thread stack into the profile model (SpyglassProfile): interned frames and
// stacks, thread and process pseudo-frames, weights.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile
import SpyglassStacks

/// Folds sampled stacks into a Profile: frame and stack interning keyed by cheap integers, thread
/// and process pseudo-frames, weights.
package struct ProfileBuilder {
  package var profile: Profile
  let lineNo: LineNo
  let showThreads: Bool
  let showProcesses: Bool
  private var frameCache: [FrameKey: FrameID] = [:]
  /// Each thread's last few distinct stacks, as sampled and as interned: a thread back in a stack
  /// it was in lately (a hot loop moving between a handful of lines) costs a few comparisons
  /// instead of hashing every frame and the stack.
  private var recentStacks: [Profile.ThreadKey: RecentStacks] = [:]
  private var pseudoFrames: [String: FrameID] = [:]
  private var scratch: [FrameID] = []

  struct RecentStacks {
    static let kept = 8
    var thread: ThreadIndex
    var entries: [(frames: [SampledFrame], roots: [String], stack: StackID)] = []
    var next = 0

    /// The interned stack of `frames` under `roots` if it is one of the kept ones.
    func find(_ frames: [SampledFrame], roots: [String]) -> StackID? {
      for entry in entries where entry.frames.count == frames.count && entry.roots == roots {
        if zip(entry.frames, frames).allSatisfy({ $0.isSame(as: $1) }) { return entry.stack }
      }
      return nil
    }

    mutating func keep(_ frames: [SampledFrame], roots: [String], as stack: StackID) {
      if entries.count < Self.kept {
        entries.append((frames, roots, stack))
      } else {
        entries[next] = (frames, roots, stack)
        next = (next + 1) % Self.kept
      }
    }
  }

  struct FrameKey: Hashable {
    var pid: Int32
    var frame: SpyglassStacks.FrameKey
  }

  package init(profile: Profile, lineNo: LineNo, showThreads: Bool, showProcesses: Bool) {
    self.profile = profile
    self.lineNo = lineNo
    self.showThreads = showThreads
    self.showProcesses = showProcesses
  }

  package mutating func pseudoFrame(_ name: String) -> FrameID {
    if let id = pseudoFrames[name] { return id }
    let id = profile.intern(Frame(pseudo: name))
    pseudoFrames[name] = id
    return id
  }

  /// Adds one thread's stack. Returns true the first time a thread is seen.
  @discardableResult
  package mutating func add(
    _ thread: SampledThread, resolver: FrameResolver, processLabels: [String], weightNanoseconds: UInt64,
    timeNanoseconds: UInt64
  ) -> Bool {
    // A thread with no Python frame (starting up, or past its last one at exit) has nothing to
    // show: it is not a sample (no format could draw it, and the counts must agree across formats).
    if thread.frames.isEmpty { return false }
    // A task-shaped stack is remembered per task (a thread shows many of them in one sample).
    let key = Profile.ThreadKey(pid: thread.pid, threadID: thread.task.map { $0 | 1 << 63 } ?? thread.threadID)
    // One hash per sample; the entry is read and updated in place through its index (no copy is
    // kept, so `keep` below finds its arrays unshared).
    let slot = recentStacks.index(forKey: key)
    let recentThread = slot.map { recentStacks.values[$0].thread }
    if let slot, let recentThread,
      profile.threads[Int(recentThread)].name == thread.name || thread.name == nil,
      let stack = recentStacks.values[slot].find(thread.frames, roots: thread.roots)
    {
      profile.add(
        thread: recentThread, stack: stack, weightNanoseconds: weightNanoseconds, timeNanoseconds: timeNanoseconds)
      return false
    }
    scratch.removeAll(keepingCapacity: true)
    if showProcesses { for label in processLabels { scratch.append(pseudoFrame(label)) } }
    let threadsBefore = profile.threads.count
    let threadIndex = profile.thread(
      ThreadInfo(pid: thread.pid, threadID: thread.threadID, osThreadID: thread.osThreadID, name: thread.name))
    if showThreads {
      let id = thread.osThreadID.map(String.init) ?? ("0x" + String(thread.threadID, radix: 16, uppercase: true))
      scratch.append(pseudoFrame(thread.name.map { "thread (\(id)): \($0)" } ?? "thread (\(id))"))
    }
    for root in thread.roots { scratch.append(pseudoFrame(root)) }
    for frame in thread.frames.reversed() {
      let shown: SampledFrame
      switch lineNo {
      case .lastInstruction: shown = frame
      case .first: shown = frame.on(line: resolver.firstLine(of: frame))
      case .noLine: shown = frame.on(line: 0)
      }
      let key = FrameKey(pid: thread.pid, frame: shown.key)
      if let id = frameCache[key] {
        scratch.append(id)
      } else {
        let id = profile.intern(resolver.frame(shown))
        frameCache[key] = id
        scratch.append(id)
      }
    }
    let stack = profile.intern(stack: scratch)
    profile.add(
      thread: threadIndex, stack: stack, weightNanoseconds: weightNanoseconds, timeNanoseconds: timeNanoseconds)
    if let slot, recentThread == threadIndex {
      recentStacks.values[slot].keep(thread.frames, roots: thread.roots, as: stack)
    } else {
      if recentStacks.count >= 65536 && slot == nil { recentStacks.removeAll() }
      var fresh = RecentStacks(thread: threadIndex)
      fresh.keep(thread.frames, roots: thread.roots, as: stack)
      recentStacks[key] = fresh
    }
    return thread.task == nil ? recentThread == nil : profile.threads.count > threadsBefore
  }
}
