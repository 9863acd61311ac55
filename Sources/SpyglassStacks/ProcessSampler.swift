//===--- ProcessSampler.swift - one consistent look at a live process ------===//
//
// Combines the OS view (which threads run, their kernel ids) with the interpreter view (frames,
// GIL, names). Whether a thread is idle comes from the pause in blocking mode (was it stopped
// inside a sleeping system call?) and from its OS run state in non-blocking mode; in blocking mode
// the Python threads are held only for the walk (and, with `--native`, their unwind), and when
// idle threads are dropped anyway, a thread the kernel has asleep is not held at all.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassModel
import SpyglassNative
import SpyglassProcess

package final class ProcessSampler: StackSource {
  package let target: LiveTarget
  package let walker: StackWalker<ProcessMemory>
  package let blocking: Bool
  package let resolver: FrameResolver
  package var pid: Int32 { target.pid }
  package var version: PythonVersion { target.version }
  package var native: NativeStacks? { resolver.native }
  package let info: PythonProcessInfo

  /// The process's threads as the OS sees them.
  private var threads: OSThreads
  /// Thread names, read from `threading` at most every quarter second while a thread has none;
  /// a thread that stays unnamed (threading never imported, a thread started from C) makes the
  /// reads back off to every 8 s, until a thread not seen before shows up.
  private var names: [UInt64: String] = [:]
  private var namesThrottle = Throttle(seconds: 0.25)
  private var unnamedAfterRead: Set<UInt64> = []
  /// ≤3.10: the struct pthread tid offset search, retried every quarter second until it succeeds
  /// (it fails when a thread is starting or exiting at that moment).
  private var pthreadOffsetThrottle = Throttle(seconds: 0.25)
  /// 3.11+: the OS thread ids read from thread states that are known to be the process's own
  /// (checked once each), and the corrections made for those that were not, in the order found.
  private var confirmedThreadIDs = Set<Int32>()
  package private(set) var threadIDCorrections: [ThreadIDCorrection] = []
  /// The asyncio tasks of the last sample taken `readingTasks` (nil when they could not be read).
  package private(set) var lastTasks: AsyncSnapshot?
  private var asyncio: AsyncioReader<ProcessMemory>?
  private var asyncioHasDebugOffsets = false
  /// 3.14+: the target's `.AsyncioDebug` section is looked for until `_asyncio` is loaded.
  private var asyncioDebugThrottle = Throttle(seconds: 1)

  package init(target: LiveTarget, blocking: Bool) {
    self.target = target
    self.walker = target.makeWalker()
    self.blocking = blocking
    self.info = target.info()
    self.threads = OSThreads(pid: target.pid)
    self.resolver = FrameResolver(codes: walker.codes, native: nil, shortener: FilenameShortener(pid: target.pid))
  }

  /// Takes one sample of every thread (see `SampleRequest`).
  ///
  /// Blocking mode lists the process's tasks to pause them (only the Python threads, once a sample
  /// has told them apart; without `walkingIdleThreads`, only those whose wchan does not say they
  /// sleep); the pause tells which of them were asleep in a system call. Non-blocking mode needs no
  /// task list: it walks first and then reads the OS run state of the threads it found that do not
  /// hold the GIL.
  ///
  /// A thread read between two frames (`SampledThread.incomplete`: the few instructions in which
  /// CPython links a frame in, entering a generator from C) is read again, once: in non-blocking
  /// mode at once (the target ran on meanwhile), in blocking mode once the target has run
  /// (`letTargetRun`: resumed and held again at once, a thread held in those instructions is
  /// still in them). What is still incomplete then is kept as read, and counted.
  package func sample(_ request: SampleRequest) throws(SpyglassError) -> [SampledThread] {
    let sampled = try sampleOnce(request)
    guard sampled.contains(where: { $0.incomplete }) else { return sampled }
    incompleteRetries += 1
    if blocking { letTargetRun() }
    return try sampleOnce(request)
  }

  /// Samples read again because a thread was read between two frames.
  package private(set) var incompleteRetries = 0

  /// Blocking mode, before a tick is read again: waits until the target has used
  /// `ReadLimits.retryProgressNanoseconds` more CPU (it has run past the instructions it was held
  /// in; on a loaded machine a resumed thread can wait milliseconds for a CPU), for at most
  /// `ReadLimits.retryWaitNanoseconds`; 1 ms when its CPU clock cannot be read.
  private func letTargetRun() {
    guard let clock = ProcessCPUClock(pid: pid), let start = clock.nanoseconds() else {
      sleepSeconds(0.001)
      return
    }
    let deadline = monotonicNanoseconds() &+ ReadLimits.retryWaitNanoseconds
    repeat {
      sleepSeconds(0.0002)
      guard let now = clock.nanoseconds() else { return }
      if now &- start >= ReadLimits.retryProgressNanoseconds { return }
    } while monotonicNanoseconds() < deadline
  }

  private func sampleOnce(_ request: SampleRequest) throws(SpyglassError) -> [SampledThread] {
    let pause = blocking ? try hold(request) : nil
    var sampled: [SampledThread]
    do {
      sampled = try walk(request, pause: pause)
    } catch {
      pause?.resume()
      if error == .processGone || !ProcFS.processExists(pid) { throw .processExited(pid: pid) }
      throw SpyglassError(error, pid: pid)
    }
    if request.localsBudget > 0 {
      for index in sampled.indices {
        sampled[index].locals = sampled[index].frames.map { walker.locals(of: $0, budget: request.localsBudget) }
      }
    }
    checkThreadIDs(&sampled)
    if request.readingTasks { lastTasks = readTasks(sampled) }
    if let native, let pause { mergeNativeStacks(&sampled, native: native, pause: pause) }
    pause?.resume()
    finish(&sampled, request: request, pause: pause)
    if blocking && !request.onlyGILHolder { threads.notePythonThreads(sampled) }
    threads.pruneRunStates(keepingFor: sampled, blocking: blocking)
    return sampled
  }

  /// Blocking mode: pauses the threads to hold (nil when there is none to hold).
  private func hold(_ request: SampleRequest) throws(SpyglassError) -> ProcessPause? {
    let asleepBeforeHold = !request.walkingIdleThreads && !request.onlyGILHolder && native == nil
    let tasks = threads.tasksToHold(skippingAsleep: asleepBeforeHold)
    guard let tasks else { throw .processExited(pid: pid) }
    if tasks.isEmpty { return nil }
    do {
      return try ProcessPause(pid: pid, threads: tasks, notingIdleThreads: !request.onlyGILHolder)
    } catch {
      // Every thread listed to hold exited meanwhile (short-lived workers, while the others slept
      // and were not listed): the process itself may well live on, and this sample is read
      // without a pause, as the threads too new to be held are.
      if error == .noSuchProcess {
        if ProcFS.processExists(pid) { return nil }
        throw .processExited(pid: pid)
      }
      if error.isPermissionDenied { throw .permissionDenied(pid: pid) }
      throw .pauseFailed(pid: pid, errno: error.rawValue)
    }
  }

  /// Walks the interpreter's threads; without `walkingIdleThreads`, those idle by the pause (or
  /// their run state) are not walked.
  private func walk(_ request: SampleRequest, pause: ProcessPause?) throws(ReadFault) -> [SampledThread] {
    if request.walkingIdleThreads || request.onlyGILHolder {
      return try walker.sample(pid: pid, onlyGILHolder: request.onlyGILHolder)
    }
    if blocking {
      return try walker.sample(pid: pid, isIdle: { self.threads.isIdle($0, pause: pause) })
    }
    return try walker.sample(pid: pid, isIdle: { !(self.threads.isRunning($0) ?? true) })
  }

  /// Replaces each held thread's frames by its merged native and Python stack (while held).
  private func mergeNativeStacks(_ sampled: inout [SampledThread], native: NativeStacks, pause: ProcessPause) {
    // ≤3.10 needs the thread ids first.
    if target.layout.tstateNativeThreadID == nil && walker.pthreadTIDOffset == nil { discoverPthreadOffset(sampled) }
    let held = Set(pause.threadIDs)
    for index in sampled.indices {
      let thread = sampled[index]
      guard !thread.skippedAsIdle, let tid = walker.osThreadID(of: thread), held.contains(tid) else { continue }
      sampled[index].takeMergedFrames(
        native.stack(
          of: tid, python: thread.frames, shims: thread.shimAddresses, idle: pause.idleThreadIDs.contains(tid)))
    }
  }

  /// Names, OS ids (checked against the process) and whether each thread is active.
  private func finish(_ sampled: inout [SampledThread], request: SampleRequest, pause: ProcessPause?) {
    if request.wantNames && sampled.contains(where: { names[$0.threadID] == nil }) {
      if sampled.contains(where: { names[$0.threadID] == nil && !unnamedAfterRead.contains($0.threadID) }) {
        namesThrottle.restoreInterval()
      }
      if namesThrottle.ready() {
        if let fresh = try? walker.threadNames() { names = fresh }
        unnamedAfterRead = Set(sampled.lazy.map(\.threadID).filter { self.names[$0] == nil })
        if !unnamedAfterRead.isEmpty { namesThrottle.backOff(upTo: 8) }
      }
    }
    let tidFromPthread = target.layout.tstateNativeThreadID == nil
    if tidFromPthread && walker.pthreadTIDOffset == nil { discoverPthreadOffset(sampled) }
    // Non-blocking without idle threads: the walk asked for each non-holder's run state itself, so
    // a thread it walked with its OS id in hand was running (or its state unreadable).
    let runStateReadInWalk = !blocking && !request.walkingIdleThreads && !request.onlyGILHolder
    for index in sampled.indices {
      var tid = walker.osThreadID(of: sampled[index])
      // A tid read from struct pthread counts only when the thread exists (a torn read is not one).
      if tidFromPthread, let value = tid, !threads.exists(value) { tid = nil }
      var active = sampled[index].active
      if request.onlyGILHolder {
        active = true
      } else if !sampled[index].skippedAsIdle, let tid {
        if blocking {
          // What the pause saw (a thread too new to have been held counts as running).
          active = !threads.isIdle(tid, pause: pause)
        } else {
          // Non-blocking: the GIL holder is running Python (CPython releases the GIL around every
          // blocking call), so only the other threads' OS run states are read.
          active =
            sampled[index].ownsGIL || (runStateReadInWalk && sampled[index].osThreadID != nil)
            || (threads.isRunning(tid) ?? true)
        }
      }
      // The innermost Python frame (under native frames with `--native`).
      if active && !request.onlyGILHolder,
        case .python(let code, _, _, _)? = sampled[index].frames.first(where: { !$0.isNative }),
        IdleFrames.isIdle(walker.code(code))
      {
        active = false
      }
      sampled[index].active = active
      sampled[index].osThreadID = tid
      if let name = names[sampled[index].threadID] { sampled[index].name = name }
    }
  }

  /// 3.11+: checks, once per id, that the OS thread id each thread state holds is a thread of this
  /// process. After a fork the interpreter was not told of (uWSGI forks its workers from C; so does
  /// `os.fork` on an embedded interpreter, or `fork()` through ctypes) the surviving thread state
  /// still holds the forking thread's id, a thread of another process: its run state, CPU time,
  /// pause and native stack would all be another thread's. The real id is the one glibc's struct
  /// pthread at the thread's pthread_t holds (the child's copy is updated by fork), else the one
  /// task of the process no other thread state claims; until it is found the thread has no OS id.
  private func checkThreadIDs(_ sampled: inout [SampledThread]) {
    guard target.layout.tstateNativeThreadID != nil else { return }
    var unconfirmed: [Int] = []
    for (index, thread) in sampled.enumerated() {
      guard let tid = thread.osThreadID, !confirmedThreadIDs.contains(tid) else { continue }
      if ProcFS.threadExists(pid: pid, tid: tid) {
        if confirmedThreadIDs.count >= 65536 { confirmedThreadIDs.removeAll() }
        confirmedThreadIDs.insert(tid)
      } else {
        unconfirmed.append(index)
      }
    }
    if unconfirmed.isEmpty { return }
    let tasks = Set(ProcFS.threadIDs(pid))
    if tasks.isEmpty { return }
    var claimed = Set(sampled.compactMap { $0.osThreadID }.filter { tasks.contains($0) })
    let pthreadOffset =
      walker.pthreadTIDOffset
      ?? PthreadTIDOffset.discover(
        memory: target.memory, pthreads: unconfirmed.map { sampled[$0].threadID }, tasks: tasks)
    for index in unconfirmed {
      guard let stale = sampled[index].osThreadID else { continue }
      var real: Int32?
      if let pthreadOffset, sampled[index].threadID != 0,
        let value = try? target.memory.readUInt32(at: sampled[index].threadID &+ UInt64(pthreadOffset)),
        value < UInt32(Int32.max), tasks.contains(Int32(value)), !claimed.contains(Int32(value))
      {
        real = Int32(value)
      } else if unconfirmed.count == 1 {
        let free = tasks.subtracting(claimed)
        if free.count == 1 { real = free.first }
      }
      if let real { claimed.insert(real) }
      sampled[index].osThreadID = real
      walker.threadIDCorrections[stale] = real ?? 0
      if threadIDCorrections.count < 64 {
        threadIDCorrections.append(ThreadIDCorrection(pid: pid, claimed: stale, real: real))
      }
    }
  }

  /// Searches for struct pthread's tid offset (≤3.10), at most every quarter second.
  private func discoverPthreadOffset(_ sampled: [SampledThread]) {
    guard pthreadOffsetThrottle.ready() else { return }
    walker.pthreadTIDOffset = PthreadTIDOffset.discover(
      memory: target.memory, pthreads: sampled.map(\.threadID), tasks: Set(ProcFS.threadIDs(pid)))
  }

  /// Turns on native stacks (`--native`, blocking mode only): from the next sample every held
  /// Python thread's stack is its native stack merged with its Python frames.
  package func enableNative() throws(NativeError) {
    if native != nil { return }
    let unwinder = try NativeUnwinder(pid: pid)
    resolver.native = NativeStacks(
      unwinder: unwinder,
      merger: NativeMerger(evaluation: target.model.nativeEvaluation, interpreterBinaries: target.interpreterBinaries))
  }

  package var supportsTasks: Bool { target.model.taskRegistry != nil }

  /// The asyncio tasks now, with the threads just walked.
  private func readTasks(_ sampled: [SampledThread]) -> AsyncSnapshot? {
    if asyncio == nil
      || (target.model.taskRegistry == .threadLists && !asyncioHasDebugOffsets && asyncioDebugThrottle.isDue())
    {
      _ = asyncioDebugThrottle.ready()
      let debug = target.asyncioDebugOffsets()
      if asyncio == nil || debug != nil {
        asyncio = try? AsyncioReader(walker: walker, debugOffsets: debug)
        asyncioHasDebugOffsets = debug != nil
      }
    }
    return try? asyncio?.snapshot(threads: sampled.map { ($0.threadState, $0.threadID) })
  }
}

/// A thread state whose OS thread id is not one of its process's threads (`ProcessSampler`).
package struct ThreadIDCorrection: Sendable, Equatable {
  package let pid: Int32
  /// The id the thread state holds.
  package let claimed: Int32
  /// The process's own thread it was matched to, nil when none could be.
  package let real: Int32?
}

/// py-spy's idle heuristic for a leaf frame: waiting in threading, selectors or a poll loop.
package enum IdleFrames {
  package static func isIdle(_ code: CodeInfo) -> Bool {
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

/// A live process's threads as the OS sees them: its task list, each thread's run state, and
/// which tasks are Python threads (in blocking mode only those are paused).
struct OSThreads {
  let pid: Int32
  private var runStates: [Int32: ThreadRunState] = [:]
  private let taskList: TaskList?
  private var tasks: [Int32] = []
  /// Blocking mode, per sample: the tasks to pause, and those left running because they slept.
  private var toHold: [Int32] = []
  private var asleep = Set<Int32>()
  /// Blocking mode: the OS ids of the Python threads the last full sample found (nil until every
  /// one of them is known), and the tasks listed then. A task listed then that is not a Python
  /// thread (a native worker pool, a BLAS or I/O thread with no thread state) is never paused: it
  /// has no Python stack to keep still, and pausing hundreds of them stalls the process (py-spy
  /// stops every thread: py-spy #872). A task new since then is paused until it is known; a native
  /// thread that becomes a Python thread later (PyGILState_Ensure) is read unpaused for one sample,
  /// as in non-blocking mode, and paused from the next.
  private var pythonTasks: Set<Int32>?
  private var knownTasks = Set<Int32>()
  private var knownTaskList: [Int32] = []

  init(pid: Int32) {
    self.pid = pid
    taskList = TaskList(pid: pid)
  }

  /// The tasks to hold this sample (nil when the process has none: it is gone). With
  /// `skippingAsleep`, a thread whose wchan says it sleeps is left alone: it cannot change its
  /// stack until it wakes, and it would be dropped as idle anyway.
  mutating func tasksToHold(skippingAsleep: Bool) -> [Int32]? {
    if let taskList { taskList.refresh(&tasks) } else { tasks = ProcFS.threadIDs(pid) }
    if tasks.isEmpty { return nil }
    asleep.removeAll(keepingCapacity: true)
    toHold.removeAll(keepingCapacity: true)
    for tid in tasks {
      if let python = pythonTasks, !python.contains(tid), knownTasks.contains(tid) { continue }
      if skippingAsleep, runState(tid)?.isAsleepPerWchan() == true {
        asleep.insert(tid)
      } else {
        toHold.append(tid)
      }
    }
    return toHold
  }

  /// Blocking: asleep per wchan (not held) or per the pause's look at the held thread's registers.
  func isIdle(_ tid: Int32, pause: ProcessPause?) -> Bool {
    asleep.contains(tid) || (pause?.idleThreadIDs.contains(tid) ?? false)
  }

  /// Whether the thread exists.
  mutating func exists(_ tid: Int32) -> Bool { runState(tid) != nil }

  /// Whether the OS has the thread running (state R), nil when it is gone.
  mutating func isRunning(_ tid: Int32) -> Bool? {
    guard let file = runState(tid) else { return nil }
    guard let running = file.isRunning() else {
      runStates[tid] = nil
      return nil
    }
    return running
  }

  /// Remembers which tasks are Python threads, after a sample that walked every thread (the sets
  /// are rebuilt only when the lists change, which a steady process does not do).
  mutating func notePythonThreads(_ sampled: [SampledThread]) {
    var python: [Int32] = []
    python.reserveCapacity(sampled.count)
    for thread in sampled {
      // A Python thread whose OS id is unknown: every task is paused until it is known.
      guard let tid = thread.osThreadID else {
        pythonTasks = nil
        return
      }
      python.append(tid)
    }
    if pythonTasks?.count != python.count || !python.allSatisfy({ pythonTasks?.contains($0) == true }) {
      pythonTasks = Set(python)
    }
    if knownTaskList != tasks {
      knownTaskList = tasks
      knownTasks = Set(tasks)
    }
  }

  /// Closes the run-state files of threads that ended: a target that starts and joins threads all
  /// the time would otherwise pile up open descriptors in Spyglass (up to 8192 threads' worth).
  mutating func pruneRunStates(keepingFor sampled: [SampledThread], blocking: Bool) {
    guard runStates.count > (blocking ? tasks.count : sampled.count) + 16 else { return }
    let live = blocking ? Set(tasks) : Set(sampled.compactMap(\.osThreadID))
    for tid in Array(runStates.keys) where !live.contains(tid) { runStates[tid] = nil }
  }

  /// The kept-open run-state files of a thread, or nil when the thread does not exist.
  private mutating func runState(_ tid: Int32) -> ThreadRunState? {
    if let file = runStates[tid] { return file }
    guard let file = ThreadRunState(pid: pid, tid: tid) else { return nil }
    if runStates.count > 8192 { runStates.removeAll() }
    runStates[tid] = file
    return file
  }
}
