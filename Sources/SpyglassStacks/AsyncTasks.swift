//===--- AsyncTasks.swift - asyncio tasks and their await chains ---------===//
//
// Reads every asyncio task of an interpreter from outside: where the tasks are listed depends on
// the version (`PythonTraits.TaskRegistry`: `asyncio.tasks._all_tasks` on 3.11, `_scheduled_tasks`
// and `_eager_tasks` on 3.12/3.13, the thread states' task lists on 3.14+, whose members the
// target's `.AsyncioDebug` section describes), each task's name and state from its C object
// (Modules/_asynciomodule.c's TaskObj, laid out in PythonLayout) or, for the pure-Python asyncio,
// its instance attributes. A task's coroutine chain is followed from its coroutine through what
// each suspended coroutine awaits (the top of its own frame's value stack), and who awaits a task
// from the task's `fut_awaited_by` (3.14+) or, before, from the awaiting task's `_fut_waiter`
// (a task, or a `gather` future's children) and a TaskGroup's done callback on its children.
//
// Everything read is bounded: the task count (`ReadLimits.tasks`; the rest is counted, never
// walked into), chain depths, list walks (cycle-checked).
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

extension ReadLimits {
  /// Most tasks read in one look (more are counted as cut).
  package static let tasks = 10_000
  /// Most nodes of a task list walked, to count what is past `tasks`.
  package static let taskListNodes = 1_000_000
  /// Deepest coroutine chain followed (coroutine awaits coroutine awaits ...).
  package static let awaitDepth = 256
}

/// One asyncio task, read from the target.
package struct AsyncTask: Sendable, Equatable {
  package enum State: String, Sendable {
    /// The task its event loop is running now.
    case running
    /// Waiting to run or suspended in an await.
    case pending
    /// Finished or cancelled, but still referenced (before 3.14 only: 3.14 lists pending tasks).
    case done
  }
  /// The task object's address (its `id()`).
  package var address: RemoteAddress
  package var name: String
  package var state: State
  /// The Python thread id (`threading.get_ident()`) of the thread running it, for the running
  /// task; else of the thread whose loop it belongs to, when that is known.
  package var threadID: UInt64?
  /// Its coroutine chain, innermost first: for each suspended coroutine the line of its await.
  package var frames: [SampledFrame]
  /// The tasks that await this one (addresses of other tasks of the same snapshot).
  package var awaitedBy: [RemoteAddress]
  /// The frame of its outermost coroutine (the task's own coroutine): on the running thread's
  /// stack when the task runs.
  package var coroutineFrame: RemoteAddress?
}

/// Every task of an interpreter at one instant.
package struct AsyncSnapshot: Sendable {
  package var tasks: [AsyncTask] = []
  /// Tasks left out: past `ReadLimits.tasks`, or in a list that cycles.
  package var cut = 0

  package init() {}
}

/// Reads the asyncio tasks of one interpreter. One per sampler: it caches what kind of object each
/// type is and the text of task names.
package final class AsyncioReader<Memory: MemoryReader> {
  package let walker: StackWalker<Memory>
  /// The version's layout, with the target's `.AsyncioDebug` members (3.14+) applied.
  package let layout: PythonLayout
  package let model: PythonTraits
  /// Whether C task objects may be read: always before 3.14, and on 3.14+ when the target's
  /// `.AsyncioDebug` section agrees with the generated task layout (or there is none to check).
  package let cTasksReadable: Bool
  var objects: ObjectReader<Memory> { walker.objects }
  var memory: Memory { walker.memory }

  enum Kind: Equatable {
    case cTask, cFuture, pythonTask, pythonFuture, coroutine, generator, futureIter, method, string, integer, other
  }
  private var kinds: [RemoteAddress: Kind] = [:]
  private var nameTexts: [RemoteAddress: String] = [:]
  /// `asyncio.tasks`' module dict, found again when it stops answering.
  private var tasksModuleDict: RemoteAddress?
  private let stackTagMask: UInt64

  package init(walker: StackWalker<Memory>, debugOffsets: AsyncioDebugOffsets?) throws(ReadFault) {
    guard walker.model.taskRegistry != nil, walker.model.coroutineStates != nil else {
      throw .implausible("asyncio awareness needs CPython 3.11 or later")
    }
    self.walker = walker
    self.model = walker.model
    var layout = walker.layout
    cTasksReadable = debugOffsets.map { $0.apply(to: &layout) } ?? (walker.model.taskRegistry != .threadLists)
    self.layout = layout
    stackTagMask = ~(model.stackRef?.tagBits ?? 0)
    // Resolved once: every member a read needs.
    _ = try layout.genIframe.member("genIframe")
    _ = try layout.genFrameState.member("genFrameState")
  }

  // .. kinds of objects .......................................................

  /// What an object is, from its type (and the type's bases), cached per type.
  func kind(of object: RemoteAddress) -> Kind {
    guard object != 0, let type = try? objects.typeAddress(of: object) else { return .other }
    if let known = kinds[type] { return known }
    var kind = Kind.other
    var cursor = type
    for depth in 0..<16 {
      guard cursor != 0, let name = try? objects.typeName(ofType: cursor) else { break }
      switch name {
      case "_asyncio.Task": kind = .cTask
      case "_asyncio.Future": kind = .cFuture
      case "Task" where depth > 0 || isHeapType(cursor): kind = .pythonTask
      case "Future" where depth > 0 || isHeapType(cursor): kind = .pythonFuture
      case "coroutine" where depth == 0: kind = .coroutine
      case "generator" where depth == 0: kind = .generator
      case "_asyncio.FutureIter" where depth == 0: kind = .futureIter
      case "method" where depth == 0: kind = .method
      case "str" where depth == 0: kind = .string
      case "int" where depth == 0: kind = .integer
      default: break
      }
      if kind != .other { break }
      guard let base = try? memory.readPointer(at: cursor &+ UInt64(layout.typeBase ?? 0)), layout.typeBase != nil
      else { break }
      cursor = base
    }
    if kind == .cTask && !cTasksReadable { kind = .other }
    if kinds.count > 4096 { kinds.removeAll() }
    kinds[type] = kind
    return kind
  }

  private func isHeapType(_ type: RemoteAddress) -> Bool {
    ((try? objects.typeFlags(ofType: type)) ?? 0) & (1 << 9) != 0  // Py_TPFLAGS_HEAPTYPE
  }

  // .. the snapshot .............................................................

  /// Every task now. `threads` are the interpreter's thread states with their Python thread ids.
  package func snapshot(threads: [(threadState: RemoteAddress, threadID: UInt64)]) throws(ReadFault)
    -> AsyncSnapshot
  {
    var snapshot = AsyncSnapshot()
    var found: [RemoteAddress] = []
    var seen = Set<RemoteAddress>()
    var threadOf: [RemoteAddress: UInt64] = [:]
    var running: [RemoteAddress: UInt64] = [:]
    func add(_ task: RemoteAddress, thread: UInt64? = nil) {
      guard task != 0 else { return }
      if let thread, threadOf[task] == nil { threadOf[task] = thread }
      guard seen.insert(task).inserted else { return }
      if found.count >= ReadLimits.tasks {
        snapshot.cut += 1
      } else {
        found.append(task)
      }
    }

    if model.taskRegistry == .threadLists {
      for thread in threads {
        if let offset = layout.tstateAsyncioRunningTask,
          let task = try? memory.readPointer(at: thread.threadState &+ UInt64(offset)), task != 0
        {
          running[task] = thread.threadID
          add(task, thread: thread.threadID)
        }
        if let offset = layout.tstateAsyncioTasksHead {
          snapshot.cut += walkTaskList(head: thread.threadState &+ UInt64(offset)) { add($0, thread: thread.threadID) }
        }
      }
      if let offset = layout.interpAsyncioTasksHead {
        snapshot.cut += walkTaskList(head: walker.interpreter &+ UInt64(offset)) { add($0) }
      }
    }

    // The Python-level registries: every task before 3.14, and tasks that are not C tasks after.
    if let module = moduleDict() {
      let setNames: [String]
      switch model.taskRegistry {
      case .allTasksWeakSet: setNames = ["_all_tasks"]
      default: setNames = ["_scheduled_tasks", "_eager_tasks"]
      }
      for name in setNames {
        guard let registry = try? objects.dictValue(at: module, forKey: name) else { continue }
        for task in registryMembers(registry) { add(task) }
      }
      if let current = try? objects.dictValue(at: module, forKey: "_current_tasks"),
        let entries = try? objects.dictEntries(at: current)
      {
        for (loop, task) in entries {
          let thread = loopThread(loop)
          if running[task] == nil { running[task] = thread ?? 0 }
          add(task, thread: thread)
        }
      }
    }

    // Read each task; then who awaits whom.
    var reads: [TaskRead] = []
    reads.reserveCapacity(found.count)
    var loops: [RemoteAddress: UInt64?] = [:]
    for address in found {
      guard var read = readTask(address) else { continue }
      if let thread = running[address] {
        read.task.state = .running
        read.task.threadID = thread == 0 ? nil : thread
      } else if let thread = threadOf[address] {
        read.task.threadID = thread
      } else if read.loop != 0 {
        if loops[read.loop] == nil { loops[read.loop] = .some(loopThread(read.loop)) }
        read.task.threadID = loops[read.loop] ?? nil
      }
      reads.append(read)
    }
    let known = Set(reads.map(\.task.address))
    var awaitedBy: [RemoteAddress: [RemoteAddress]] = [:]
    func link(_ child: RemoteAddress, awaitedBy parent: RemoteAddress) {
      guard child != parent, known.contains(child), known.contains(parent) else { return }
      if awaitedBy[child, default: []].contains(parent) { return }
      awaitedBy[child, default: []].append(parent)
    }
    for read in reads {
      if let explicit = read.explicitAwaiters {
        for parent in explicit { link(read.task.address, awaitedBy: parent) }
        continue
      }
      // Before 3.14: what the task itself waits on ...
      if read.waiter != 0 {
        switch kind(of: read.waiter) {
        case .cTask, .pythonTask: link(read.waiter, awaitedBy: read.task.address)
        case .cFuture, .pythonFuture:
          // a gather() future: its children
          if let children = try? objects.instanceAttribute(of: read.waiter, named: "_children"),
            let items = try? objects.sequenceItems(children, isTuple: false, limit: ReadLimits.tasks)
          {
            for child in items { link(child, awaitedBy: read.task.address) }
          }
        default: break
        }
      }
      // ... and a TaskGroup's done callback on the task, which names the group's parent task.
      for callback in read.callbacks where kind(of: callback) == .method {
        guard let offset = layout.methodSelf,
          let owner = try? memory.readPointer(at: callback &+ UInt64(offset)), owner != 0,
          let parent = try? objects.instanceAttribute(of: owner, named: "_parent_task")
        else { continue }
        link(read.task.address, awaitedBy: parent)
      }
    }
    snapshot.tasks = reads.map { read in
      var task = read.task
      task.awaitedBy = awaitedBy[task.address] ?? []
      return task
    }
    return snapshot
  }

  /// Walks a `struct llist_node` list of tasks from its head; returns how many were past the limit
  /// (or 1 when the list cycles or cannot be read to its end).
  private func walkTaskList(head: RemoteAddress, _ visit: (RemoteAddress) -> Void) -> Int {
    guard let nodeOffset = layout.taskNode else { return 0 }
    var node = (try? memory.readPointer(at: head)) ?? 0
    var cycle = CycleDetector()
    var steps = 0
    while node != 0 && node != head {
      steps += 1
      if steps > ReadLimits.taskListNodes || cycle.visit(node) { return 1 }
      visit(node &- UInt64(nodeOffset))
      guard let next = try? memory.readPointer(at: node) else { return 1 }
      node = next
    }
    return 0
  }

  /// The tasks in a registry: a WeakSet (its `data` set of weak references) or a set of tasks.
  private func registryMembers(_ registry: RemoteAddress) -> [RemoteAddress] {
    var set = registry
    var weak = false
    if let data = try? objects.instanceAttribute(of: registry, named: "data") {
      set = data
      weak = true
    }
    guard let items = try? objects.setItems(at: set, limit: ReadLimits.tasks + 1) else { return [] }
    guard weak, let offset = layout.weakrefObject else { return items }
    return items.compactMap { try? memory.readPointer(at: $0 &+ UInt64(offset)) }
  }

  /// `asyncio.tasks`' globals, or nil when asyncio is not imported.
  private func moduleDict() -> RemoteAddress? {
    if let dict = tasksModuleDict, (try? objects.dictValue(at: dict, forKey: "_current_tasks")) != nil {
      return dict
    }
    tasksModuleDict = nil
    guard let modulesOffset = layout.interpModules, let moduleDictOffset = layout.moduleDict,
      let modules = try? memory.readPointer(at: walker.interpreter &+ UInt64(modulesOffset)),
      let module = try? objects.dictValue(at: modules, forKey: "asyncio.tasks"),
      let dict = try? memory.readPointer(at: module &+ UInt64(moduleDictOffset))
    else { return nil }
    tasksModuleDict = dict
    return dict
  }

  /// The thread running an event loop (`BaseEventLoop._thread_id`), when it runs.
  private func loopThread(_ loop: RemoteAddress) -> UInt64? {
    guard let value = try? objects.instanceAttribute(of: loop, named: "_thread_id"), kind(of: value) == .integer,
      let ident = try? objects.integer(at: value)
    else { return nil }
    return UInt64(bitPattern: ident)
  }

  // .. one task ....................................................................

  struct TaskRead {
    var task: AsyncTask
    var loop: RemoteAddress
    /// `_fut_waiter`: what the task waits on (before 3.14, to tell who awaits whom).
    var waiter: RemoteAddress
    /// Its done callbacks (a TaskGroup's bound method names the group).
    var callbacks: [RemoteAddress]
    /// 3.14+: `fut_awaited_by` (or the pure-Python `_Future__asyncio_awaited_by`), authoritative.
    var explicitAwaiters: [RemoteAddress]?
  }

  private func readTask(_ address: RemoteAddress) -> TaskRead? {
    switch kind(of: address) {
    case .cTask: return try? readCTask(address)
    case .pythonTask: return try? readPythonTask(address)
    default: return nil
    }
  }

  private func readCTask(_ address: RemoteAddress) throws(ReadFault) -> TaskRead {
    let size = try layout.taskObjectSize.member("taskObjectSize")
    let view = ByteView(try memory.readBytes(at: address, count: size))
    let state = view.u32(try layout.futureState.member("futureState"))
    let coro = view.u64(try layout.taskCoro.member("taskCoro"))
    let nameObject = view.u64(try layout.taskName.member("taskName"))
    var callbacks: [RemoteAddress] = []
    if let offset = layout.futureCallback0, view.u64(offset) != 0 { callbacks.append(view.u64(offset)) }
    if let offset = layout.futureCallbacks, view.u64(offset) != 0 {
      callbacks += callbackFunctions(inList: view.u64(offset))
    }
    var explicit: [RemoteAddress]?
    if let offset = layout.futureAwaitedBy {
      let awaitedBy = view.u64(offset)
      let isSet = layout.futureAwaitedByIsSet.map { view.u8($0) != 0 } ?? false
      explicit = awaitedBy == 0 ? [] : isSet ? ((try? objects.setItems(at: awaitedBy, limit: 4096)) ?? []) : [awaitedBy]
    }
    var task = AsyncTask(
      address: address, name: taskName(nameObject), state: state == 0 ? .pending : .done, threadID: nil,
      frames: [], awaitedBy: [], coroutineFrame: nil)
    (task.frames, task.coroutineFrame) = coroutineChain(coro)
    return TaskRead(
      task: task, loop: layout.futureLoop.map { view.u64($0) } ?? 0,
      waiter: view.u64(try layout.taskFutWaiter.member("taskFutWaiter")), callbacks: callbacks,
      explicitAwaiters: explicit)
  }

  private func readPythonTask(_ address: RemoteAddress) throws(ReadFault) -> TaskRead {
    func attribute(_ name: String) -> RemoteAddress {
      ((try? objects.instanceAttribute(of: address, named: name)) ?? nil) ?? 0
    }
    let stateText = (try? objects.string(at: attribute("_state"), limit: 16)) ?? "PENDING"
    var task = AsyncTask(
      address: address, name: taskName(attribute("_name")), state: stateText == "PENDING" ? .pending : .done,
      threadID: nil, frames: [], awaitedBy: [], coroutineFrame: nil)
    (task.frames, task.coroutineFrame) = coroutineChain(attribute("_coro"))
    var callbacks: [RemoteAddress] = []
    let list = attribute("_callbacks")
    if list != 0 { callbacks = callbackFunctions(inList: list) }
    var explicit: [RemoteAddress]?
    if model.taskRegistry == .threadLists {
      let awaiters = attribute("_Future__asyncio_awaited_by")
      explicit = awaiters == 0 ? [] : ((try? objects.setItems(at: awaiters, limit: 4096)) ?? [])
    }
    return TaskRead(
      task: task, loop: attribute("_loop"), waiter: attribute("_fut_waiter"), callbacks: callbacks,
      explicitAwaiters: explicit)
  }

  /// The callables of a future's callback list (a list of `(callback, context)` tuples).
  private func callbackFunctions(inList list: RemoteAddress) -> [RemoteAddress] {
    guard let entries = try? objects.sequenceItems(list, isTuple: false, limit: 64) else { return [] }
    return entries.compactMap { try? objects.sequenceItems($0, isTuple: true, limit: 1).first }
  }

  /// A task's name: a str, or (3.12+, until someone asks for it) the int of its `Task-N` name.
  private func taskName(_ object: RemoteAddress) -> String {
    if let text = nameTexts[object] { return text }
    var text = "?"
    switch kind(of: object) {
    case .string: text = (try? objects.string(at: object, limit: 256)) ?? "?"
    case .integer: text = ((try? objects.integer(at: object)) ?? nil).map { "Task-\($0)" } ?? "?"
    default: break
    }
    if nameTexts.count > 65536 { nameTexts.removeAll() }
    nameTexts[object] = text
    return text
  }

  // .. coroutine chains ................................................................

  /// The frames of a coroutine and of what it awaits, innermost first, and the frame of the
  /// outermost one.
  func coroutineChain(_ coroutine: RemoteAddress) -> ([SampledFrame], RemoteAddress?) {
    guard let states = model.coroutineStates, let iframeOffset = layout.genIframe,
      let stateOffset = layout.genFrameState
    else { return ([], nil) }
    var frames: [SampledFrame] = []
    var object = coroutine
    var outermost: RemoteAddress?
    for _ in 0..<ReadLimits.awaitDepth {
      let kind = kind(of: object)
      guard kind == .coroutine || kind == .generator else { break }
      guard let stateByte = try? memory.readBytes(at: object &+ UInt64(stateOffset), count: 1).first else { break }
      let state = Int8(bitPattern: stateByte)
      let iframe = object &+ UInt64(iframeOffset)
      let suspended = states.suspended.contains(state)
      // Only a suspended or running frame has a place to show (not a finished or unstarted one).
      guard suspended || state == states.executing else { break }
      guard let (frame, instruction) = try? walker.interpreterFrame(at: iframe) else { break }
      if outermost == nil { outermost = iframe }
      frames.append(frame)
      guard suspended, awaits(state: state, instruction: instruction),
        let awaited = try? stackTop(of: iframe), awaited != 0
      else { break }
      object = awaited
    }
    return (frames.reversed(), outermost)
  }

  /// Whether a suspended frame is suspended in an await (not at a plain `yield`).
  private func awaits(state: Int8, instruction: RemoteAddress) -> Bool {
    switch model.coroutineStates?.awaiting {
    case .states(let states)?: return states.contains(state)
    case .resumeOpcodes(let opcodes)?:
      // The code unit after the last instruction: RESUME with oparg 2 (after yield from) or 3 (after await).
      guard let unit = try? memory.readBytes(at: instruction &+ 2, count: 2), unit.count == 2 else { return false }
      return opcodes.contains(unit[0]) && unit[1] >= 2
    case nil: return false
    }
  }

  private var awaitedSlot: Int { model.coroutineStates?.awaitedSlot ?? 1 }

  /// The object a frame suspended in an await awaits, on its value stack.
  private func stackTop(of iframe: RemoteAddress) throws(ReadFault) -> RemoteAddress {
    let localsplus = iframe &+ UInt64(try layout.iframeLocalsplus.member("iframeLocalsplus"))
    if let offset = layout.iframeStackpointer {
      let pointer = try memory.readPointer(at: iframe &+ UInt64(offset))
      let below = UInt64(awaitedSlot) * 8
      guard pointer >= localsplus &+ below, pointer &- localsplus < 1 << 20 else { throw .implausible("stack pointer") }
      return try memory.readUInt64(at: pointer &- below) & stackTagMask
    }
    let depth = Int(
      Int32(bitPattern: try memory.readUInt32(at: iframe &+ UInt64(try layout.iframeStacktop.member("iframeStacktop"))))
    )
    guard depth >= awaitedSlot, depth < 1 << 16 else { throw .implausible("stack depth \(depth)") }
    return try memory.readPointer(at: localsplus &+ UInt64(depth - awaitedSlot) * 8)
  }
}

extension ObjectReader {
  /// The members of a set or frozenset, at most `limit`.
  package func setItems(at set: RemoteAddress, limit: Int) throws(ReadFault) -> [RemoteAddress] {
    let header = ByteView(try memory.readBytes(at: set, count: layout.setTable.member("setTable") + 8))
    let used = try Int(header.i64(layout.setUsed.member("setUsed")))
    let mask = try Int(header.i64(layout.setMask.member("setMask")))
    guard used >= 0, mask >= 0, mask < 1 << 24 else { throw .implausible("set size") }
    if used == 0 { return [] }
    let entrySize = try layout.setEntrySize.member("setEntrySize")
    let keyOffset = try layout.setEntryKey.member("setEntryKey")
    let slots = Swift.min(mask + 1, 1 << 22)
    let table = ByteView(
      try memory.readBytes(at: header.u64(layout.setTable.member("setTable")), count: slots * entrySize))
    var items: [RemoteAddress] = []
    for i in 0..<slots where items.count < limit {
      let key = table.u64(i * entrySize + keyOffset)
      // A deleted entry points at a shared dummy object (so more than `used` may come back): a
      // caller checks each item's kind.
      if key != 0 { items.append(key) }
    }
    return items
  }
}
