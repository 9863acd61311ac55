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
import SpyglassModel
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

  package init(
    address: RemoteAddress, name: String, state: State, threadID: UInt64? = nil, frames: [SampledFrame] = [],
    awaitedBy: [RemoteAddress] = [], coroutineFrame: RemoteAddress? = nil
  ) {
    self.address = address
    self.name = name
    self.state = state
    self.threadID = threadID
    self.frames = frames
    self.awaitedBy = awaitedBy
    self.coroutineFrame = coroutineFrame
  }
}

/// Every task of an interpreter at one instant.
package struct AsyncSnapshot: Sendable {
  package var tasks: [AsyncTask] = []
  /// Tasks left out: past `ReadLimits.tasks`, or in a list that cycles.
  package var cut = 0

  package init() {}
}

/// A cache keyed by an address with one slot per `(address >> 4) & mask`: a lookup is a shift,
/// a mask and a compare (no hashing), and a collision only loses the older entry, which a cache
/// may always do.
struct DirectMap<Value> {
  private var keys: [RemoteAddress]
  private var values: [Value?]
  private let mask: Int

  /// `slots` is rounded to a power of two.
  init(slots: Int) {
    var size = 1
    while size < slots { size <<= 1 }
    keys = Array(repeating: 0, count: size)
    values = Array(repeating: nil, count: size)
    mask = size - 1
  }

  subscript(key: RemoteAddress) -> Value? {
    get {
      let slot = Int(truncatingIfNeeded: key >> 4) & mask
      return keys[slot] == key && key != 0 ? values[slot] : nil
    }
    set {
      let slot = Int(truncatingIfNeeded: key >> 4) & mask
      keys[slot] = key
      values[slot] = newValue
    }
  }

  mutating func removeAll() {
    for index in keys.indices where keys[index] != 0 {
      keys[index] = 0
      values[index] = nil
    }
  }
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
  /// Single reads go straight to the memory underneath; batches go through the walker's
  /// read-ahead (`readBatch`), in the round the threads were walked in.
  var memory: Memory { walker.memory }

  enum Kind: Equatable {
    case cTask, cFuture, pythonTask, pythonFuture, coroutine, generator, futureIter, method, string, integer, other
  }
  private var kinds = DirectMap<Kind>(slots: 1024)
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
    return kind(ofType: type)
  }

  /// What an object of type `type` is, cached per type.
  func kind(ofType type: RemoteAddress) -> Kind {
    guard type != 0 else { return .other }
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
    kinds[type] = kind
    return kind
  }

  private func isHeapType(_ type: RemoteAddress) -> Bool {
    ((try? objects.typeFlags(ofType: type)) ?? 0) & (1 << 9) != 0  // Py_TPFLAGS_HEAPTYPE
  }

  // .. caches ...................................................................

  /// What stays put between samples, trusted for a second.
  private var caches = Caches()
  /// Each task list's tasks at the previous look (3.14+): read in one batch, then checked link by link.
  private var listGuesses: [RemoteAddress: [RemoteAddress]] = [:]
  /// The read-ahead's batch `batchView` looks in.
  private var lastBatch = 0

  /// Where the Python-level registries are, each event loop's thread, gather() children and
  /// TaskGroup parents, task name texts, whether the instruction after a 3.11/3.12 frame's last
  /// one resumes an await, and how many bytes of each coroutine the last look needed: all trusted
  /// for a second, then read again.
  struct Caches {
    var throttle = Throttle(seconds: 1)
    var registries: Registries?
    var loopThreads: [RemoteAddress: UInt64?] = [:]
    var gatherChildren: [RemoteAddress: [RemoteAddress]] = [:]
    var groupParents: [RemoteAddress: RemoteAddress?] = [:]
    var resumesAwait = DirectMap<Bool>(slots: 4096)
    var readSizes = DirectMap<Int>(slots: 16384)
    var nameTexts = DirectMap<String>(slots: 16384)

    mutating func refresh() {
      guard throttle.ready() else { return }
      registries = nil
      loopThreads.removeAll(keepingCapacity: true)
      gatherChildren.removeAll(keepingCapacity: true)
      groupParents.removeAll(keepingCapacity: true)
      resumesAwait.removeAll()
      readSizes.removeAll()
      nameTexts.removeAll()
    }
  }

  struct Registries {
    /// The sets holding tasks (a WeakSet's `data` set of weak references, or a set of tasks).
    var sets: [(set: RemoteAddress, weak: Bool)] = []
    /// `_current_tasks` ({loop: task}).
    var currentTasks: RemoteAddress?
  }

  /// Reads `ranges` in one batch, as blocks of the walker's read-ahead round; `batchView(i)` then
  /// gives range i of it.
  private func readBatch(_ ranges: [ReadRange]) {
    lastBatch = walker.reader.prefetch(ranges)
  }

  /// Range `index` of the last batch, nil when it could not be read.
  private func batchView(_ index: Int) -> ByteView? { walker.reader.cached(range: index, inBatch: lastBatch) }

  // .. the snapshot .............................................................

  /// A task found, and its object's bytes when already read.
  private struct Found {
    var address: RemoteAddress
    var view: ByteView?
    var thread: UInt64?
  }

  /// Every task now. `threads` are the interpreter's thread states with their Python thread ids.
  package func snapshot(threads: [(threadState: RemoteAddress, threadID: UInt64)]) throws(ReadFault)
    -> AsyncSnapshot
  {
    caches.refresh()
    var snapshot = AsyncSnapshot()
    var found: [Found] = []
    var index: [RemoteAddress: Int] = [:]
    var running: [RemoteAddress: UInt64] = [:]
    func add(_ task: RemoteAddress, view: ByteView? = nil, thread: UInt64? = nil) {
      guard task != 0 else { return }
      if let known = index[task] {
        if found[known].thread == nil { found[known].thread = thread }
        return
      }
      if found.count >= ReadLimits.tasks {
        snapshot.cut += 1
        return
      }
      index[task] = found.count
      found.append(Found(address: task, view: view, thread: thread))
    }

    if model.taskRegistry == .threadLists, let runningOffset = layout.tstateAsyncioRunningTask,
      let headOffset = layout.tstateAsyncioTasksHead, let interpreterHead = layout.interpAsyncioTasksHead
    {
      // One batch: each thread's running task and first list node, and the interpreter's first node.
      let heads = threads.map { $0.threadState &+ UInt64(headOffset) } + [walker.interpreter &+ UInt64(interpreterHead)]
      let words: [ReadRange] = threads.map { ($0.threadState &+ UInt64(runningOffset), 8) } + heads.map { ($0, 8) }
      readBatch(words)
      for (position, thread) in threads.enumerated() {
        guard let task = batchView(position)?.u64(0), task != 0 else { continue }
        running[task] = thread.threadID
        add(task, thread: thread.threadID)
      }
      let firsts = heads.indices.map { batchView(threads.count + $0)?.u64(0) }
      for (position, head) in heads.enumerated() {
        let thread = position < threads.count ? threads[position].threadID : nil
        snapshot.cut += walkTaskList(head: head, first: firsts[position]) { add($0, view: $1, thread: thread) }
      }
    }

    // The Python-level registries: every task before 3.14, and tasks that are not C tasks after.
    if caches.registries == nil { caches.registries = findRegistries() }
    if let registries = caches.registries {
      // One batch of the sets' and the dict's sizes: an empty one is not read further.
      let sizes: [ReadRange] =
        registries.sets.map { ($0.set &+ UInt64(layout.setUsed ?? 0), 8) }
        + [(registries.currentTasks.map { $0 &+ UInt64(layout.dictUsed ?? 0) } ?? 0, 8)]
      readBatch(sizes)
      let used = sizes.indices.map { batchView($0).map { Int(clamping: $0.u64(0)) } ?? 1 }
      for (position, registry) in registries.sets.enumerated() where used[position] != 0 {
        let (tasks, total) = members(of: registry.set, weak: registry.weak)
        for task in tasks { add(task) }
        // A set holds more than the limit lets us read: the rest is counted, never read.
        snapshot.cut += Swift.max(0, total - tasks.count)
      }
      if let current = registries.currentTasks, used[registries.sets.count] != 0,
        let entries = try? objects.dictEntries(at: current)
      {
        for (loop, task) in entries {
          let thread = loopThread(loop)
          if running[task] == nil { running[task] = thread ?? 0 }
          add(task, thread: thread)
        }
      }
    }

    // The task objects not read yet, in one batch.
    let readSize = Swift.max(layout.taskObjectSize ?? 0, 16)
    let missing = found.indices.filter { found[$0].view == nil }
    let taskRanges: [ReadRange] = missing.map { (found[$0].address, readSize) }
    readBatch(taskRanges)
    for (index, position) in missing.enumerated() { found[position].view = batchView(index) }

    var reads: [TaskRead] = []
    reads.reserveCapacity(found.count)
    for item in found {
      guard let view = item.view ?? (try? ByteView(memory.readBytes(at: item.address, count: 16))) else { continue }
      let read: TaskRead?
      switch kind(ofType: view.u64(layout.objectType ?? 8)) {
      case .cTask where view.count >= readSize: read = try? readCTask(item.address, view)
      case .pythonTask: read = try? readPythonTask(item.address)
      default: read = nil
      }
      guard var read else { continue }
      if let thread = running[item.address] {
        read.task.state = .running
        read.task.threadID = thread == 0 ? nil : thread
      } else if let thread = item.thread {
        read.task.threadID = thread
      } else if read.loop != 0 {
        read.task.threadID = loopThread(read.loop)
      }
      reads.append(read)
    }
    readChains(&reads)

    // Made on first use: most tasks of a big program have no awaiter.
    var known: Set<RemoteAddress>?
    var awaitedBy: [RemoteAddress: [RemoteAddress]] = [:]
    func link(_ child: RemoteAddress, awaitedBy parent: RemoteAddress) {
      if known == nil { known = Set(reads.map(\.task.address)) }
      guard child != parent, known?.contains(child) == true, known?.contains(parent) == true else { return }
      if awaitedBy[child, default: []].contains(parent) { return }
      awaitedBy[child, default: []].append(parent)
    }
    // The kinds of what the tasks wait on, their types read in one batch.
    var waiterKinds: [RemoteAddress: Kind] = [:]
    let waiters = reads.compactMap { $0.explicitAwaiters == nil && $0.waiter != 0 ? $0.waiter : nil }
    if let typeOffset = layout.objectType {
      let types: [ReadRange] = waiters.map { ($0 &+ UInt64(typeOffset), 8) }
      readBatch(types)
      for (index, waiter) in waiters.enumerated() {
        if let type = batchView(index) { waiterKinds[waiter] = kind(ofType: type.u64(0)) }
      }
    }
    for read in reads {
      if let explicit = read.explicitAwaiters {
        for parent in explicit { link(read.task.address, awaitedBy: parent) }
        continue
      }
      // Before 3.14: what the task itself waits on (a task, or a gather() future's children) ...
      if read.waiter != 0 {
        switch waiterKinds[read.waiter] ?? .other {
        case .cTask, .pythonTask: link(read.waiter, awaitedBy: read.task.address)
        case .cFuture, .pythonFuture:
          for child in children(ofGather: read.waiter) { link(child, awaitedBy: read.task.address) }
        default: break
        }
      }
      // ... and a TaskGroup's done callback on the task, which names the group's parent task.
      for callback in read.callbacks {
        if let parent = groupParent(ofCallback: callback) { link(read.task.address, awaitedBy: parent) }
      }
    }
    snapshot.tasks = reads.map { read in
      var task = read.task
      task.awaitedBy = awaitedBy[task.address] ?? []
      return task
    }
    return snapshot
  }

  /// Walks a `struct llist_node` list of tasks from its head (first the previous look's tasks, read
  /// in one batch and followed while their links agree, then one node at a time); returns how many
  /// were past the limit (or 1 when the list cycles or cannot be read to its end).
  private func walkTaskList(head: RemoteAddress, first: RemoteAddress?, _ visit: (RemoteAddress, ByteView?) -> Void)
    -> Int
  {
    guard let nodeOffset = layout.taskNode, let size = layout.taskObjectSize else { return 0 }
    let guess = listGuesses[head] ?? []
    if !guess.isEmpty {
      readBatch(guess.map { (address: $0, count: size) })
    }
    var seen: [RemoteAddress] = []
    defer { listGuesses[head] = seen.count <= ReadLimits.tasks ? seen : [] }
    guard var node = first ?? (try? memory.readPointer(at: head)) else { return 1 }
    var cycle = CycleDetector()
    var steps = 0
    while node != 0 && node != head {
      steps += 1
      if steps > ReadLimits.taskListNodes || cycle.visit(node) { return 1 }
      let task = node &- UInt64(nodeOffset)
      var view: ByteView?
      if seen.count < guess.count, guess[seen.count] == task { view = batchView(seen.count) }
      if view == nil, steps <= ReadLimits.tasks { view = try? ByteView(memory.readBytes(at: task, count: size)) }
      if steps <= ReadLimits.tasks { seen.append(task) }
      visit(task, view)
      // `next` is the node's first member.
      guard let next = view.map({ $0.u64(nodeOffset) }) ?? (try? memory.readPointer(at: node)) else { return 1 }
      node = next
    }
    return 0
  }

  /// The registries of `asyncio.tasks` this version keeps tasks in.
  private func findRegistries() -> Registries? {
    guard let module = moduleDict() else { return nil }
    var found = Registries()
    let names = model.taskRegistry == .allTasksWeakSet ? ["_all_tasks"] : ["_scheduled_tasks", "_eager_tasks"]
    for name in names {
      guard let registry = try? objects.dictValue(at: module, forKey: name), registry != 0 else { continue }
      if let data = try? objects.instanceAttribute(of: registry, named: "data") {
        found.sets.append((data, true))
      } else {
        found.sets.append((registry, false))
      }
    }
    found.currentTasks = try? objects.dictValue(at: module, forKey: "_current_tasks")
    return found
  }

  /// The tasks in a registry set (through its weak references for a WeakSet's), at most
  /// `ReadLimits.tasks`, and how many the set holds.
  private func members(of set: RemoteAddress, weak: Bool) -> ([RemoteAddress], Int) {
    guard let items = try? objects.setItems(at: set, limit: ReadLimits.tasks) else { return ([], 0) }
    let used = (try? memory.readUInt64(at: set &+ UInt64(layout.setUsed ?? 0))).map { Int(clamping: $0) } ?? 0
    let total = Swift.min(Swift.max(used, items.count), 1 << 40)
    guard weak, let offset = layout.weakrefObject else { return (items, total) }
    let references: [ReadRange] = items.map { ($0 &+ UInt64(offset), 8) }
    readBatch(references)
    return (references.indices.compactMap { batchView($0)?.u64(0) }, total)
  }

  /// `asyncio.tasks`' globals, or nil when asyncio is not imported.
  private func moduleDict() -> RemoteAddress? {
    guard let modulesOffset = layout.interpModules, let moduleDictOffset = layout.moduleDict,
      let modules = try? memory.readPointer(at: walker.interpreter &+ UInt64(modulesOffset)),
      let module = try? objects.dictValue(at: modules, forKey: "asyncio.tasks"),
      let dict = try? memory.readPointer(at: module &+ UInt64(moduleDictOffset))
    else { return nil }
    return dict
  }

  /// The thread running an event loop (`BaseEventLoop._thread_id`), when it runs.
  private func loopThread(_ loop: RemoteAddress) -> UInt64? {
    if let known = caches.loopThreads[loop] { return known }
    var thread: UInt64?
    if let value = try? objects.instanceAttribute(of: loop, named: "_thread_id"), kind(of: value) == .integer,
      let ident = try? objects.integer(at: value)
    {
      thread = UInt64(bitPattern: ident)
    }
    caches.loopThreads[loop] = .some(thread)
    return thread
  }

  /// The children of a gather() future (its `_children`), none for another future.
  private func children(ofGather future: RemoteAddress) -> [RemoteAddress] {
    if let known = caches.gatherChildren[future] { return known }
    var children: [RemoteAddress] = []
    if let list = try? objects.instanceAttribute(of: future, named: "_children"),
      let items = try? objects.sequenceItems(list, isTuple: false, limit: ReadLimits.tasks)
    {
      children = items
    }
    caches.gatherChildren[future] = children
    return children
  }

  /// The parent task of the TaskGroup whose bound method `callback` is (`_on_task_done`), if it is one.
  private func groupParent(ofCallback callback: RemoteAddress) -> RemoteAddress? {
    if let known = caches.groupParents[callback] { return known }
    var parent: RemoteAddress?
    if kind(of: callback) == .method, let offset = layout.methodSelf,
      let owner = try? memory.readPointer(at: callback &+ UInt64(offset)), owner != 0,
      let task = try? objects.instanceAttribute(of: owner, named: "_parent_task")
    {
      parent = task
    }
    caches.groupParents[callback] = .some(parent)
    return parent
  }

  // .. one task ....................................................................

  struct TaskRead {
    var task: AsyncTask
    var coroutine: RemoteAddress
    var loop: RemoteAddress
    /// `_fut_waiter`: what the task waits on (before 3.14, to tell who awaits whom).
    var waiter: RemoteAddress
    /// Its done callbacks (a TaskGroup's bound method names the group).
    var callbacks: [RemoteAddress]
    /// 3.14+: `fut_awaited_by` (or the pure-Python `_Future__asyncio_awaited_by`), authoritative.
    var explicitAwaiters: [RemoteAddress]?
  }

  private func readCTask(_ address: RemoteAddress, _ view: ByteView) throws(ReadFault) -> TaskRead {
    let state = view.u32(try layout.futureState.member("futureState"))
    let coro = view.u64(try layout.taskCoro.member("taskCoro"))
    let nameObject = view.u64(try layout.taskName.member("taskName"))
    var callbacks: [RemoteAddress] = []
    var explicit: [RemoteAddress]?
    if let offset = layout.futureAwaitedBy {
      let awaitedBy = view.u64(offset)
      let isSet = layout.futureAwaitedByIsSet.map { view.u8($0) != 0 } ?? false
      explicit = awaitedBy == 0 ? [] : isSet ? ((try? objects.setItems(at: awaitedBy, limit: 4096)) ?? []) : [awaitedBy]
    } else {
      // Before 3.14 the callbacks tell a TaskGroup's children.
      if let offset = layout.futureCallback0, view.u64(offset) != 0 { callbacks.append(view.u64(offset)) }
      if let offset = layout.futureCallbacks, view.u64(offset) != 0 {
        callbacks += callbackFunctions(inList: view.u64(offset))
      }
    }
    let task = AsyncTask(
      address: address, name: taskName(nameObject), state: state == 0 ? .pending : .done, threadID: nil,
      frames: [], awaitedBy: [], coroutineFrame: nil)
    return TaskRead(
      task: task, coroutine: coro, loop: layout.futureLoop.map { view.u64($0) } ?? 0,
      waiter: view.u64(try layout.taskFutWaiter.member("taskFutWaiter")), callbacks: callbacks,
      explicitAwaiters: explicit)
  }

  private func readPythonTask(_ address: RemoteAddress) throws(ReadFault) -> TaskRead {
    func attribute(_ name: String) -> RemoteAddress {
      ((try? objects.instanceAttribute(of: address, named: name)) ?? nil) ?? 0
    }
    let stateText = (try? objects.string(at: attribute("_state"), limit: 16)) ?? "PENDING"
    let task = AsyncTask(
      address: address, name: taskName(attribute("_name")), state: stateText == "PENDING" ? .pending : .done,
      threadID: nil, frames: [], awaitedBy: [], coroutineFrame: nil)
    var callbacks: [RemoteAddress] = []
    var explicit: [RemoteAddress]?
    if model.taskRegistry == .threadLists {
      let awaiters = attribute("_Future__asyncio_awaited_by")
      explicit = awaiters == 0 ? [] : ((try? objects.setItems(at: awaiters, limit: 4096)) ?? [])
    } else {
      let list = attribute("_callbacks")
      if list != 0 { callbacks = callbackFunctions(inList: list) }
    }
    return TaskRead(
      task: task, coroutine: attribute("_coro"), loop: attribute("_loop"), waiter: attribute("_fut_waiter"),
      callbacks: callbacks, explicitAwaiters: explicit)
  }

  /// The callables of a future's callback list (a list of `(callback, context)` tuples).
  private func callbackFunctions(inList list: RemoteAddress) -> [RemoteAddress] {
    guard let entries = try? objects.sequenceItems(list, isTuple: false, limit: 64) else { return [] }
    return entries.compactMap { try? objects.sequenceItems($0, isTuple: true, limit: 1).first }
  }

  /// A task's name: a str, or (3.12+, until someone asks for it) the int of its `Task-N` name.
  private func taskName(_ object: RemoteAddress) -> String {
    if let text = caches.nameTexts[object] { return text }
    var text = "?"
    switch kind(of: object) {
    case .string: text = (try? objects.string(at: object, limit: 256)) ?? "?"
    case .integer: text = ((try? objects.integer(at: object)) ?? nil).map { "Task-\($0)" } ?? "?"
    default: break
    }
    caches.nameTexts[object] = text
    return text
  }

  // .. coroutine chains ................................................................

  /// Bytes read of each coroutine: its header, its embedded frame and the start of the frame's
  /// locals and value stack (where a small coroutine's awaited object is).
  private var coroutineReadSize: Int { (layout.genIframe ?? 0) + Swift.max(walker.interpreterFrameBytes, 64) + 256 }

  /// Every task's coroutine chain, one level of awaits at a time, each level in one batch read.
  private func readChains(_ reads: inout [TaskRead]) {
    guard let states = model.coroutineStates, let iframeOffset = layout.genIframe,
      let stateOffset = layout.genFrameState
    else { return }
    var level: [(task: Int, object: RemoteAddress)] = reads.indices.compactMap { index in
      reads[index].coroutine == 0 ? nil : (index, reads[index].coroutine)
    }
    let size = coroutineReadSize
    let frameEnd = iframeOffset + walker.interpreterFrameBytes
    let typeEnd = (layout.objectType ?? 8) + 8
    for _ in 0..<ReadLimits.awaitDepth where !level.isEmpty {
      // Each object as much as it needed last time (so that neighbours do not overlap and the
      // batch merges them into few iovecs), else the generous default.
      let objectRanges: [ReadRange] = level.map { ($0.object, caches.readSizes[$0.object] ?? size) }
      readBatch(objectRanges)
      var next: [(task: Int, object: RemoteAddress)] = []
      for (position, (task, object)) in level.enumerated() {
        guard
          var view = batchView(position) ?? (try? ByteView(memory.readBytes(at: object, count: typeEnd)))
        else { continue }
        let kind = kind(ofType: view.u64(layout.objectType ?? 8))
        guard kind == .coroutine || kind == .generator else {
          caches.readSizes[object] = typeEnd
          continue
        }
        if view.count < frameEnd {
          guard let full = try? ByteView(memory.readBytes(at: object, count: size)) else { continue }
          view = full
        }
        caches.readSizes[object] = frameEnd
        let state = Int8(bitPattern: view.u8(stateOffset))
        let suspended = states.suspended.contains(state)
        // Only a suspended or running frame has a place to show (not a finished or unstarted one).
        guard suspended || state == states.executing else { continue }
        let iframe = object &+ UInt64(iframeOffset)
        let frameView = ByteView(view.bytes, base: view.base + iframeOffset, count: view.count - iframeOffset)
        guard let (frame, instruction) = try? walker.interpreterFrame(in: frameView, at: iframe) else { continue }
        if reads[task].task.coroutineFrame == nil { reads[task].task.coroutineFrame = iframe }
        reads[task].task.frames.append(frame)
        guard suspended, awaits(state: state, instruction: instruction),
          let (awaited, slot) = try? awaitedObject(of: iframe, in: frameView), awaited != 0
        else { continue }
        if slot >= object, slot &- object < UInt64(maximumReadSize) {
          caches.readSizes[object] = Swift.max(frameEnd, Int(slot &- object) + 8)
        }
        next.append((task, awaited))
      }
      level = next
    }
    for index in reads.indices { reads[index].task.frames.reverse() }
  }

  /// Whether a suspended frame is suspended in an await (not at a plain `yield`).
  private func awaits(state: Int8, instruction: RemoteAddress) -> Bool {
    switch model.coroutineStates?.awaiting {
    case .states(let states)?: return states.contains(state)
    case .resumeOpcodes(let opcodes)?:
      if let known = caches.resumesAwait[instruction] { return known }
      // The code unit after the last instruction: RESUME with oparg 2 (after yield from) or 3 (after await).
      guard let unit = try? memory.readBytes(at: instruction &+ 2, count: 2), unit.count == 2 else { return false }
      let answer = opcodes.contains(unit[0]) && unit[1] >= 2
      caches.resumesAwait[instruction] = answer
      return answer
    case nil: return false
    }
  }

  private var awaitedSlot: Int { model.coroutineStates?.awaitedSlot ?? 1 }

  /// The object a frame suspended in an await awaits, on its value stack (from `frame`, the
  /// frame's bytes read so far, when they reach it).
  private func awaitedObject(of iframe: RemoteAddress, in frame: ByteView) throws(ReadFault) -> (
    RemoteAddress, slot: RemoteAddress
  ) {
    let localsplus = iframe &+ UInt64(try layout.iframeLocalsplus.member("iframeLocalsplus"))
    let slot: RemoteAddress
    let mask: UInt64
    if let offset = layout.iframeStackpointer {
      let pointer = frame.u64(offset)
      let below = UInt64(awaitedSlot) * 8
      guard pointer >= localsplus &+ below, pointer &- localsplus < 1 << 20 else { throw .implausible("stack pointer") }
      slot = pointer &- below
      mask = stackTagMask
    } else {
      let depth = Int(frame.i32(try layout.iframeStacktop.member("iframeStacktop")))
      guard depth >= awaitedSlot, depth < 1 << 16 else { throw .implausible("stack depth \(depth)") }
      slot = localsplus &+ UInt64(depth - awaitedSlot) * 8
      mask = ~0
    }
    let position = slot &- iframe
    if slot >= iframe, position &+ 8 <= UInt64(frame.count) { return (frame.u64(Int(position)) & mask, slot) }
    return (try memory.readUInt64(at: slot) & mask, slot)
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
