//===--- TaskStacks.swift - thread stacks into task stacks (--async-aware) ---===//
//
// The one transformation `record`, `top` and `Sampler` share in async-aware mode: a thread
// running a task shows the task's part of its stack under `<task NAME>` roots that follow who
// awaits it; with `.all`, every other task adds its own coroutine chain.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess

/// Thread stacks into task stacks (`--async-aware`).
package enum TaskStacks {
  /// Deepest awaited-by chain shown as `<task …>` roots.
  package static let maximumRoots = 64

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
  package static func apply(_ mode: AsyncMode, to threads: [SampledThread], tasks: AsyncSnapshot) -> [SampledThread] {
    // Awaiters are looked up only for tasks that have one.
    var byAddress: [RemoteAddress: Int] = [:]
    if tasks.tasks.contains(where: { !$0.awaitedBy.isEmpty }) {
      for (index, task) in tasks.tasks.enumerated() { byAddress[task.address] = index }
    }
    var result: [SampledThread] = []
    result.reserveCapacity(threads.count + (mode == .all ? tasks.tasks.count : 0))
    var shown = Set<RemoteAddress>()
    for thread in threads {
      guard let index = tasks.tasks.firstIndex(where: { $0.state == .running && $0.threadID == thread.threadID }) else {
        result.append(thread)
        continue
      }
      let task = tasks.tasks[index]
      var stack = thread
      if let frame = task.coroutineFrame,
        let index = thread.frames.firstIndex(where: { $0.address == frame && !$0.isNative })
      {
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
    guard mode == .all, !threads.isEmpty else { return result }
    for (index, task) in tasks.tasks.enumerated()
    where task.state != .done && !shown.contains(task.address) && !task.frames.isEmpty {
      // Its loop's thread, else the first (read in place: a thread record is not small).
      let home = threads.firstIndex { $0.threadID == task.threadID } ?? 0
      var stack = SampledThread(
        pid: threads[home].pid, threadState: threads[home].threadState, threadID: threads[home].threadID,
        osThreadID: threads[home].osThreadID, ownsGIL: false, frames: task.frames)
      stack.name = threads[home].name
      stack.roots = roots(of: index, in: tasks.tasks, byAddress: byAddress)
      stack.isTaskAtRest = true
      stack.task = task.address
      result.append(stack)
    }
    return result
  }
}
