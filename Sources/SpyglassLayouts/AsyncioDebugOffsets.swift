//===--- AsyncioDebugOffsets.swift - the `.AsyncioDebug` section (3.14+) ---===//
//
// CPython 3.14's `_asyncio` extension publishes `_Py_AsyncioModuleDebugOffsets` in an ELF section
// of its own, `.AsyncioDebug`: thirteen uint64 words that say where a task keeps its name,
// coroutine, awaited-by links and list node, and where a thread state and the interpreter state
// keep their task lists and running task. Pure data: reading the section is the stack layer's job.
//
//===----------------------------------------------------------------------===//

/// `_Py_AsyncioModuleDebugOffsets`, as the target's `_asyncio` describes itself.
package struct AsyncioDebugOffsets: Sendable, Equatable {
  package var taskSize: Int
  package var taskName: Int
  package var taskAwaitedBy: Int
  package var taskIsTask: Int
  package var taskAwaitedByIsSet: Int
  package var taskCoro: Int
  package var taskNode: Int
  package var interpreterSize: Int
  package var interpreterTasksHead: Int
  package var threadStateSize: Int
  package var threadStateRunningLoop: Int
  package var threadStateRunningTask: Int
  package var threadStateTasksHead: Int

  /// Bytes of the section this reads.
  package static let byteCount = 13 * 8

  /// Decodes the section's words; nil when they are not a plausible description (every offset
  /// inside the size of its struct, every size under 1 MiB).
  package init?(words: [UInt64]) {
    guard words.count >= 13, words.allSatisfy({ $0 < 1 << 20 }) else { return nil }
    let w = words.map { Int($0) }
    taskSize = w[0]
    taskName = w[1]
    taskAwaitedBy = w[2]
    taskIsTask = w[3]
    taskAwaitedByIsSet = w[4]
    taskCoro = w[5]
    taskNode = w[6]
    interpreterSize = w[7]
    interpreterTasksHead = w[8]
    threadStateSize = w[9]
    threadStateRunningLoop = w[10]
    threadStateRunningTask = w[11]
    threadStateTasksHead = w[12]
    let task = [taskName, taskAwaitedBy, taskIsTask, taskAwaitedByIsSet, taskCoro, taskNode]
    guard task.allSatisfy({ $0 >= 16 && $0 < taskSize }),
      interpreterTasksHead < interpreterSize,
      [threadStateRunningLoop, threadStateRunningTask, threadStateTasksHead].allSatisfy({ $0 < threadStateSize })
    else { return nil }
  }

  /// The layout with the thread-state and interpreter members taken from the section. Returns
  /// false when the generated task members disagree with it: the task members the section does
  /// not give (the state, the awaited future) were laid out for another shape then, and are not
  /// to be trusted.
  package func apply(to layout: inout PythonLayout) -> Bool {
    layout.tstateAsyncioRunningLoop = threadStateRunningLoop
    layout.tstateAsyncioRunningTask = threadStateRunningTask
    layout.tstateAsyncioTasksHead = threadStateTasksHead
    layout.interpAsyncioTasksHead = interpreterTasksHead
    let agrees =
      layout.taskObjectSize == taskSize && layout.taskName == taskName && layout.taskCoro == taskCoro
      && layout.taskNode == taskNode && layout.futureAwaitedBy == taskAwaitedBy
      && layout.futureAwaitedByIsSet == taskAwaitedByIsSet
    layout.taskName = taskName
    layout.taskCoro = taskCoro
    layout.taskNode = taskNode
    layout.futureAwaitedBy = taskAwaitedBy
    layout.futureAwaitedByIsSet = taskAwaitedByIsSet
    layout.taskObjectSize = taskSize
    return agrees
  }
}
