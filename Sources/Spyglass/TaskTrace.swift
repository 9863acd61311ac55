//===--- TaskTrace.swift - asyncio tasks, as the library hands them out ---===//
//
// What `PythonSpy.tasks()` reads: every asyncio task of the process with its state, coroutine
// chain and awaiters; and the one transformation `record`, `top` and `Sampler` share in async-aware
// mode, from thread stacks to task-shaped stacks. Task names were read from the target: untrusted
// text like every name.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess
import SpyglassStacks

/// One asyncio task at one instant.
public struct TaskTrace: Sendable, Equatable, Hashable {
  public enum State: String, Sendable, Hashable {
    /// The task its event loop is running now.
    case running
    /// Waiting to be run, or suspended in an await.
    case pending
    /// Finished or cancelled but still referenced (seen before 3.14 only: 3.14 lists live tasks).
    case done
  }
  public var pid: Int32
  /// The task object's address (its `id()` in the target).
  public var id: UInt64
  public var name: String
  public var state: State
  /// The Python thread id (`threading.get_ident()`) of the thread running the task, for the
  /// running task.
  public var threadID: UInt64?
  /// Its coroutine chain, innermost first: each suspended coroutine at the line of its await.
  public var frames: [Frame]
  /// The ids of the tasks that await this one (a parent awaiting it, a `gather` or `TaskGroup`).
  public var awaitedBy: [UInt64]

  public init(
    pid: Int32, id: UInt64, name: String, state: State, threadID: UInt64?, frames: [Frame], awaitedBy: [UInt64]
  ) {
    self.pid = pid
    self.id = id
    self.name = name
    self.state = state
    self.threadID = threadID
    self.frames = frames
    self.awaitedBy = awaitedBy
  }
}

/// Thread stacks into task stacks (`--async-aware`).
package enum TaskStacks {
  /// Deepest awaited-by chain shown as `<task …>` roots.
  static let maximumRoots = 64

  /// The `<task NAME>` roots of a task, outermost first: its awaiters' chain (the first awaiter
  /// at each step), then the task itself.
  static func roots(of index: Int, in tasks: [AsyncTask], byAddress: [RemoteAddress: Int]) -> [String] {
    let task = tasks[index]
    guard let first = task.awaitedBy.first, let parent = byAddress[first] else { return ["<task " + task.name + ">"] }
    var chain = [task.name]
    var seen: Set<RemoteAddress> = [task.address]
    var cursor = parent
    while seen.insert(tasks[cursor].address).inserted, chain.count < maximumRoots {
      chain.append(tasks[cursor].name)
      guard let next = tasks[cursor].awaitedBy.first.flatMap({ byAddress[$0] }) else { break }
      cursor = next
    }
    return chain.reversed().map { "<task " + $0 + ">" }
  }

  /// The stacks of one sample in async-aware mode: a thread running a task shows its own frames
  /// down to the task's coroutine (the event loop's frames below it are dropped) under the task's
  /// roots; a thread running no task keeps its stack. With `.all`, every other task that is not done
  /// adds a stack of its coroutine chain under its roots, marked active (it is where that task is,
  /// however long it waits), on its loop's thread (else the first thread).
  package static func apply(_ mode: AsyncMode, to threads: [ThreadStack], tasks: AsyncSnapshot) -> [ThreadStack] {
    // Awaiters are looked up only for tasks that have one.
    var byAddress: [RemoteAddress: Int] = [:]
    if tasks.tasks.contains(where: { !$0.awaitedBy.isEmpty }) {
      for (index, task) in tasks.tasks.enumerated() { byAddress[task.address] = index }
    }
    var result: [ThreadStack] = []
    result.reserveCapacity(threads.count + (mode == .all ? tasks.tasks.count : 0))
    var shown = Set<RemoteAddress>()
    for thread in threads {
      guard let index = tasks.tasks.firstIndex(where: { $0.state == .running && $0.threadID == thread.threadID }) else {
        result.append(thread)
        continue
      }
      let task = tasks.tasks[index]
      var stack = thread
      if let frame = task.coroutineFrame, let index = thread.frames.firstIndex(where: { $0.frameAddress == frame }) {
        stack.frames = Array(thread.frames[...index])
      } else if !task.frames.isEmpty {
        stack.frames = task.frames
      }
      stack.locals = nil
      stack.roots = roots(of: index, in: tasks.tasks, byAddress: byAddress)
      stack.task = task.address
      shown.insert(task.address)
      result.append(stack)
    }
    guard mode == .all, let first = threads.first else { return result }
    for (index, task) in tasks.tasks.enumerated()
    where task.state != .done && !shown.contains(task.address) && !task.frames.isEmpty {
      let home = threads.first { $0.threadID == task.threadID } ?? first
      var stack = ThreadStack(
        pid: home.pid, threadID: home.threadID, osThreadID: home.osThreadID, name: home.name, active: true,
        ownsGIL: false, frames: task.frames, locals: nil,
        roots: roots(of: index, in: tasks.tasks, byAddress: byAddress),
        isTaskAtRest: true)
      stack.task = task.address
      result.append(stack)
    }
    return result
  }
}
