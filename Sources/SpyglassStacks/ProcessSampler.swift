//===--- ProcessSampler.swift - one consistent look at a process ----------===//
//
// Combines the OS view (which threads run, their kernel ids) with the interpreter view (frames,
// GIL, names). Whether a thread is idle comes from the pause in blocking mode (was it stopped
// inside a sleeping system call?) and from its OS run state in non-blocking mode; in blocking mode
// every thread is held only for the walk itself, and when idle threads are dropped anyway, a
// thread the kernel has asleep is not held at all.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassNative
import SpyglassProcess

/// One thread's stack, resolved.
package struct ThreadStack: Sendable {
  package var pid: Int32
  package var threadID: UInt64
  package var osThreadID: Int32?
  package var name: String?
  package var active: Bool
  package var ownsGIL: Bool
  /// Innermost first.
  package var frames: [SampledFrame]
  /// With `localsBudget`: each frame's arguments and locals (same order as `frames`).
  package var locals: [[LocalVariable]]?
  /// Synthetic outermost frames (`<task NAME>` in async-aware mode), outermost first.
  package var roots: [String] = []
  /// An async-aware stack of a suspended task (not of a thread running it): it uses no CPU.
  package var isTaskAtRest = false
  /// The task an async-aware stack shows (its object's address), nil for a thread's own stack.
  package var task: RemoteAddress?

  package init(
    pid: Int32, threadID: UInt64, osThreadID: Int32?, name: String?, active: Bool, ownsGIL: Bool,
    frames: [SampledFrame], locals: [[LocalVariable]]? = nil, roots: [String] = [], isTaskAtRest: Bool = false
  ) {
    self.pid = pid
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.name = name
    self.active = active
    self.ownsGIL = ownsGIL
    self.frames = frames
    self.locals = locals
    self.roots = roots
    self.isTaskAtRest = isTaskAtRest
  }
}

package enum SampleError: Error, Equatable, Sendable {
  /// The process exited.
  case processExited
  /// The kernel refused to let us pause or read the process.
  case permissionDenied
  /// A read failed (torn state in non-blocking mode, or garbage).
  case read(ReadFault)
  /// Pausing failed for another reason.
  case pause(errno: Int32)
}

package final class ProcessSampler {
  package let target: PythonTarget
  package let walker: StackWalker<ProcessMemory>
  package let blocking: Bool
  package var pid: Int32 { target.pid }

  private var runStates: [Int32: ThreadRunState] = [:]
  private lazy var taskList = TaskList(pid: target.pid)
  private var tasks: [Int32] = []
  /// Blocking mode, per sample: the tasks to pause, and those left running because they slept.
  private var tasksToHold: [Int32] = []
  private var asleepThreadIDs = Set<Int32>()
  /// Blocking mode: the OS ids of the Python threads the last full sample found (nil until every
  /// one of them is known), and the tasks listed then. A task listed then that is not a Python
  /// thread (a native worker pool, a BLAS or I/O thread with no thread state) is never paused: it
  /// has no Python stack to keep still, and pausing hundreds of them stalls the process (py-spy
  /// stops every thread: py-spy #872). A task new since then is paused until it is known; a native
  /// thread that becomes a Python thread later (PyGILState_Ensure) is read unpaused for one sample,
  /// as in non-blocking mode, and paused from the next.
  private var pythonTaskIDs: Set<Int32>?
  private var knownTasks = Set<Int32>()
  private var knownTaskList: [Int32] = []
  private var pythonTaskList: [Int32] = []
  /// When the struct pthread tid offset was last searched for (≤3.10), -1 before the first search.
  /// A search fails when a thread is starting or exiting at that moment (its pthread_t and the
  /// task list disagree), so it is retried every quarter second until it succeeds.
  private var pthreadOffsetSearchedAt: Double = -1
  private var names: [UInt64: String] = [:]
  private var namesReadAt: Double = -1
  /// The asyncio tasks of the last sample taken `readingTasks` (nil when they could not be read).
  package private(set) var lastTasks: AsyncSnapshot?
  private var asyncio: AsyncioReader<ProcessMemory>?
  private var asyncioHasDebugOffsets = false
  private var asyncioDebugSearchedAt: Double = -1
  /// `--native`: the unwinder and merger, nil until `enableNative()`.
  package private(set) var native: NativeStacks?

  package init(target: PythonTarget, blocking: Bool) {
    self.target = target
    self.walker = target.makeWalker()
    self.blocking = blocking
  }

  /// Takes one sample of every thread (or only the GIL holder).
  /// With `localsBudget` > 0, every frame's arguments and locals are read too (while the target is
  /// still paused), their reprs cut to that many characters. Without `walkingIdleThreads`, idle
  /// threads (see `active`) may come back without frames: a caller that drops them saves the walk.
  ///
  /// Blocking mode lists the process's tasks to pause them (only the Python threads, once a sample
  /// has told them apart; without `walkingIdleThreads`, only those whose wchan does not say they
  /// sleep); the pause tells which of them were asleep in a
  /// system call. Non-blocking mode needs no task list: it walks first and then
  /// reads the OS run state of the threads it found that do not hold the GIL.
  ///
  /// With `readingTasks`, the asyncio tasks are read too, while the target is still paused, into
  /// `lastTasks`.
  package func sample(
    onlyGILHolder: Bool = false, wantNames: Bool = true, localsBudget: Int = 0, walkingIdleThreads: Bool = true,
    readingTasks: Bool = false
  ) throws(SampleError) -> [ThreadStack] {
    var pause: ProcessPause?
    asleepThreadIDs.removeAll(keepingCapacity: true)
    if blocking {
      if let taskList { taskList.refresh(&tasks) } else { tasks = ProcFS.threadIDs(pid) }
      if tasks.isEmpty { throw .processExited }
      // Idle threads that would be dropped are not held either: a thread the kernel has asleep
      // cannot change its stack until it wakes, and it would be dropped as idle, so it is left
      // alone (with 50 threads waiting for the GIL, most of a round's ptrace calls). Only a
      // thread whose wchan names a sleeping function counts; the pause judges the rest.
      tasksToHold.removeAll(keepingCapacity: true)
      for tid in tasks {
        if let python = pythonTaskIDs, !python.contains(tid), knownTasks.contains(tid) { continue }
        // A native stack is read from the thread's registers, so every Python thread is held.
        if !walkingIdleThreads && !onlyGILHolder && native == nil, runState(tid)?.isAsleepPerWchan() == true {
          asleepThreadIDs.insert(tid)
        } else {
          tasksToHold.append(tid)
        }
      }
      if !tasksToHold.isEmpty {
        do { pause = try ProcessPause(pid: pid, threads: tasksToHold, notingIdleThreads: !onlyGILHolder) } catch {
          switch error {
          case .processGone: throw .processExited
          case .permissionDenied: throw .permissionDenied
          case .system(let code): throw .pause(errno: code)
          }
        }
      }
    }
    // Blocking: asleep per wchan (not held) or per the pause's look at the held thread's registers.
    let idleInBlockingMode = { (tid: Int32) in
      self.asleepThreadIDs.contains(tid) || (pause?.idleThreadIDs.contains(tid) ?? false)
    }
    let threads: [SampledThread]
    // Non-blocking without idle threads: the walk asks for each non-holder's run state itself, so a
    // thread it walked with its OS id in hand was running (or its state unreadable).
    let runStateReadInWalk = !blocking && !walkingIdleThreads && !onlyGILHolder
    do {
      if walkingIdleThreads || onlyGILHolder {
        threads = try walker.sample(onlyGILHolder: onlyGILHolder)
      } else if blocking {
        threads = try walker.sample(isIdle: idleInBlockingMode)
      } else {
        threads = try walker.sample(isIdle: { !(self.isRunning($0) ?? true) })
      }
    } catch {
      pause?.resume()
      if error == .processGone || !ProcFS.processExists(pid) { throw .processExited }
      throw .read(error)
    }
    var locals: [[[LocalVariable]]] = []
    if localsBudget > 0 {
      locals = threads.map { thread in thread.frames.map { walker.locals(of: $0, budget: localsBudget) } }
    }
    if readingTasks { lastTasks = readTasks(threads) }
    let tidFromPthread = target.layout.tstateNativeThreadID == nil
    var nativeFrames: [[SampledFrame]?] = []
    if let native, let pause {
      // Native stacks are read while the threads are held; ≤3.10 needs the thread ids first.
      if tidFromPthread && walker.pthreadTIDOffset == nil { discoverPthreadOffset(threads) }
      let held = Set(pause.threadIDs)
      nativeFrames = threads.map { thread in
        guard !thread.skippedAsIdle, let tid = walker.osThreadID(of: thread),
          held.contains(tid)
        else { return nil }
        return native.stack(
          of: tid, python: thread.frames, shims: thread.shimAddresses, idle: pause.idleThreadIDs.contains(tid))
      }
    }
    pause?.resume()

    if wantNames && threads.contains(where: { names[$0.threadID] == nil }) {
      let now = monotonicSeconds()
      if namesReadAt < 0 || now - namesReadAt > 0.25 {
        namesReadAt = now
        if let fresh = try? walker.threadNames() { names = fresh }
      }
    }
    if tidFromPthread && walker.pthreadTIDOffset == nil { discoverPthreadOffset(threads) }
    var result: [ThreadStack] = []
    result.reserveCapacity(threads.count)
    for (index, thread) in threads.enumerated() {
      var tid = walker.osThreadID(of: thread)
      // A tid read from struct pthread counts only when the thread exists (a torn read is not one).
      if tidFromPthread, let value = tid, runState(value) == nil { tid = nil }
      var active = true
      if thread.skippedAsIdle {
        active = false
      } else if !onlyGILHolder, let tid {
        if blocking {
          // What the pause saw (a thread too new to have been held counts as running).
          active = !idleInBlockingMode(tid)
        } else {
          // Non-blocking: the GIL holder is running Python (CPython releases the GIL around every
          // blocking call), so only the other threads' OS run states are read.
          active =
            thread.ownsGIL || (runStateReadInWalk && thread.nativeThreadID != nil) || (isRunning(tid) ?? true)
        }
      }
      if active, let leaf = thread.frames.first, isIdleFrame(walker.code(leaf.code)) { active = false }
      if onlyGILHolder { active = true }
      var frames = thread.frames
      var frameLocals = locals.isEmpty ? nil : locals[index]
      if index < nativeFrames.count, let merged = nativeFrames[index] {
        frames = merged
        if let pythonLocals = frameLocals {
          // Locals stay with their Python frames (which keep their order); native frames have none.
          var next = 0
          frameLocals = merged.map { frame in
            if frame.isNative || next >= pythonLocals.count { return [] }
            next += 1
            return pythonLocals[next - 1]
          }
        }
      }
      result.append(
        ThreadStack(
          pid: pid, threadID: thread.threadID, osThreadID: tid, name: names[thread.threadID], active: active,
          ownsGIL: thread.ownsGIL, frames: frames, locals: frameLocals))
    }
    if blocking && !onlyGILHolder { notePythonTasks(result) }
    if runStates.count > (blocking ? tasks.count : result.count) + 16 {
      pruneRunStates(keeping: blocking ? Set(tasks) : Set(result.compactMap(\.osThreadID)))
    }
    return result
  }

  /// Searches for struct pthread's tid offset (≤3.10), at most every quarter second.
  private func discoverPthreadOffset(_ threads: [SampledThread]) {
    guard pthreadOffsetSearchedAt < 0 || monotonicSeconds() - pthreadOffsetSearchedAt >= 0.25 else { return }
    pthreadOffsetSearchedAt = monotonicSeconds()
    walker.pthreadTIDOffset = PthreadTIDOffset.discover(
      memory: target.memory, pthreads: threads.map(\.threadID), tasks: Set(ProcFS.threadIDs(pid)))
  }

  /// Turns on native stacks (`--native`, blocking mode only): from the next sample every held
  /// Python thread's stack is its native stack merged with its Python frames.
  package func enableNative() throws(NativeError) {
    if native != nil { return }
    let unwinder = try NativeUnwinder(pid: pid)
    let binaries = Set([target.executable?.path, target.library?.path, target.executablePath].compactMap { $0 })
    native = NativeStacks(
      unwinder: unwinder, merger: NativeMerger(evaluation: target.model.nativeEvaluation, interpreterBinaries: binaries)
    )
  }

  /// Whether the target's version has asyncio awareness (3.11+).
  package var supportsTasks: Bool { target.model.taskRegistry != nil }

  /// The asyncio tasks now, with the threads just walked. On 3.14+ the target's `.AsyncioDebug`
  /// section is looked for until `_asyncio` is loaded (once a second).
  private func readTasks(_ threads: [SampledThread]) -> AsyncSnapshot? {
    let now = monotonicSeconds()
    if asyncio == nil
      || (target.model.taskRegistry == .threadLists && !asyncioHasDebugOffsets && now - asyncioDebugSearchedAt >= 1)
    {
      asyncioDebugSearchedAt = now
      let debug = target.asyncioDebugOffsets()
      if asyncio == nil || debug != nil {
        asyncio = try? AsyncioReader(walker: walker, debugOffsets: debug)
        asyncioHasDebugOffsets = debug != nil
      }
    }
    return try? asyncio?.snapshot(threads: threads.map { ($0.threadState, $0.threadID) })
  }

  /// Remembers which tasks are Python threads, after a sample that walked every thread (the sets
  /// are rebuilt only when the lists change, which a steady process does not do).
  private func notePythonTasks(_ result: [ThreadStack]) {
    pythonTaskList.removeAll(keepingCapacity: true)
    for thread in result {
      guard let tid = thread.osThreadID else {
        // A Python thread whose OS id is unknown: every task is paused until it is known.
        pythonTaskIDs = nil
        return
      }
      pythonTaskList.append(tid)
    }
    if pythonTaskIDs == nil || pythonTaskIDs?.count != pythonTaskList.count
      || !pythonTaskList.allSatisfy({ pythonTaskIDs?.contains($0) == true })
    {
      pythonTaskIDs = Set(pythonTaskList)
    }
    if knownTaskList != tasks {
      knownTaskList = tasks
      knownTasks = Set(tasks)
    }
  }

  /// Closes the run-state files of threads that ended: a target that starts and joins threads all
  /// the time would otherwise pile up open descriptors in Spyglass (up to 8192 threads' worth).
  private func pruneRunStates(keeping live: Set<Int32>) {
    for tid in Array(runStates.keys) where !live.contains(tid) { runStates[tid] = nil }
  }

  /// The code object behind a frame, or what a native frame is.
  package func code(_ id: CodeID) -> CodeInfo {
    if id & nativeCodeFlag != 0, let native { return native.code(Int(id & ~nativeCodeFlag)) }
    return walker.code(id)
  }

  /// The kept-open run-state files of a thread of this process, or nil when the thread does not
  /// exist.
  private func runState(_ tid: Int32) -> ThreadRunState? {
    if let file = runStates[tid] { return file }
    guard let file = ThreadRunState(pid: pid, tid: tid) else { return nil }
    if runStates.count > 8192 { runStates.removeAll() }
    runStates[tid] = file
    return file
  }

  /// Whether the OS has the thread running (state R), nil when it is gone.
  private func isRunning(_ tid: Int32) -> Bool? {
    guard let file = runState(tid) else { return nil }
    guard let running = file.isRunning() else {
      runStates[tid] = nil
      return nil
    }
    return running
  }

  /// py-spy's idle heuristic for a leaf frame: waiting in threading, selectors or a poll loop.
  func isIdleFrame(_ code: CodeInfo) -> Bool {
    let name = code.shortName
    let file = code.filename
    if name == "wait" && file.hasSuffix("threading.py") { return true }
    if name == "select" && file.hasSuffix("selectors.py") { return true }
    if name == "poll"
      && (file.hasSuffix("asyncore.py") || file.contains("zmq") || file.contains("gevent") || file.contains("tornado"))
    {
      return true
    }
    return false
  }
}
