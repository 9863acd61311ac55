//===--- DumpWriter.swift - `spyglass dump` as text and JSON --------------===//
//
// Text: py-spy's layout (Process line, Python line, then each thread oldest first with its frames
// innermost first). Every string from the target is passed through `visible(_:)`, so a name can
// never put an escape sequence on the terminal. JSON: py-spy's field names, threads in interpreter
// order (newest first).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

/// `text` with control characters (ESC included) shown as visible escapes: safe for a terminal.
package func terminalSafe(_ text: String) -> String { visible(text) }

/// One process of a dump: its threads' traces (interpreter order: newest first) and, for a child
/// process, its parent's command line.
package struct DumpedProcess: Sendable, Equatable {
  package var info: PythonProcessInfo
  package var parentCommandLine: String?
  package var threads: [StackTrace]

  package init(info: PythonProcessInfo, parentCommandLine: String? = nil, threads: [StackTrace]) {
    self.info = info
    self.parentCommandLine = parentCommandLine
    self.threads = threads
  }

  /// `traces` by process, in the order the processes were read (the root first, even when it has
  /// no thread to show); `parentCommandLine` names each child's parent.
  package static func group(
    _ traces: [StackTrace], root: PythonProcessInfo, parentCommandLine: (Int32) -> String?
  ) -> [DumpedProcess] {
    var order: [Int32] = [root.pid]
    var infos: [Int32: PythonProcessInfo] = [root.pid: root]
    var threads: [Int32: [StackTrace]] = [:]
    for trace in traces {
      let info = trace.processInfo ?? root
      if infos[info.pid] == nil {
        infos[info.pid] = info
        order.append(info.pid)
      }
      threads[info.pid, default: []].append(trace)
    }
    return order.compactMap { pid in
      guard let info = infos[pid] else { return nil }
      return DumpedProcess(
        info: info, parentCommandLine: info.parentPID.flatMap(parentCommandLine), threads: threads[pid] ?? [])
    }
  }
}

extension StackTrace {
  /// `idle`, `active` or `active+gil`, as py-spy prints them.
  var status: String { !active ? "idle" : ownsGIL ? "active+gil" : "active" }

  /// The OS tid in decimal when known, else the pthread id in hex.
  var displayID: String {
    if let osThreadID { return String(osThreadID) }
    return "0x" + String(threadID, radix: 16, uppercase: true)
  }
}

package enum DumpWriter {
  /// The text dump of several processes (the first is the one asked for; others are children).
  package static func text(_ processes: [DumpedProcess], fullFilenames: Bool, separatorWidth: Int = 80) -> [UInt8] {
    var out: [UInt8] = []
    for (index, process) in processes.enumerated() {
      if index > 0 {
        // As py-spy: an empty line after the previous process's threads, then the rule.
        out.append("\n")
        out.append(String(repeating: "-", count: Swift.max(10, separatorWidth)))
        out.append("\n")
      }
      out.append("Process ")
      out.append(decimal: Int(process.info.pid))
      out.append(": ")
      out.append(visible: process.info.commandLine.joined(separator: " "))
      out.append("\nPython v")
      out.append(visible: process.info.pythonVersion)
      out.append(" (")
      out.append(visible: process.info.executable)
      out.append(")\n")
      if let parent = process.info.parentPID {
        out.append("Parent Process ")
        out.append(decimal: Int(parent))
        out.append(": ")
        out.append(visible: process.parentCommandLine ?? "")
        out.append("\n")
      }
      out.append("\n")
      for thread in process.threads.reversed() {
        out.append("Thread ")
        out.append(thread.displayID)
        out.append(" (")
        out.append(thread.status)
        out.append(")")
        if let name = thread.threadName {
          out.append(": \"")
          out.append(visible: name)
          out.append("\"")
        }
        out.append("\n")
        for frame in thread.frames {
          appendFrameLine(frame, fullFilenames: fullFilenames, to: &out)
          if let locals = frame.locals {
            let arguments = locals.filter(\.isArgument)
            let others = locals.filter { !$0.isArgument }
            for (title, group) in [("Arguments", arguments), ("Locals", others)] where !group.isEmpty {
              out.append("        ")
              out.append(title)
              out.append(":\n")
              for variable in group {
                out.append("            ")
                out.append(visible: variable.name)
                if let repr = variable.repr {
                  out.append(": ")
                  out.append(visible: repr)
                }
                out.append("\n")
              }
            }
          }
        }
      }
    }
    return out
  }

  /// "    name (file:line)\n", a frame as the text dump shows it (the line left out when unknown).
  private static func appendFrameLine(_ frame: Frame, fullFilenames: Bool, to out: inout [UInt8]) {
    let short = frame.shortFilename ?? frame.filename
    out.append("    ")
    out.append(
      visible: FrameLabel.text(
        name: frame.name, file: fullFilenames ? frame.filename : short, shortFile: short, line: frame.line,
        library: frame.module))
    out.append("\n")
  }

  /// The text of `dump --async`'s tasks, after the threads: each task with its state, its
  /// awaiters and its coroutine chain innermost first.
  package static func text(tasks: [TaskTrace], pid: Int32, cut: Int, fullFilenames: Bool) -> [UInt8] {
    var out: [UInt8] = []
    let names = taskNames(tasks)
    let running = tasks.filter { $0.state == .running }.count
    let pending = tasks.filter { $0.state == .pending }.count
    out.append("\nAsyncio tasks of process ")
    out.append(decimal: Int(pid))
    out.append(": ")
    out.append(decimal: tasks.count)
    out.append(" (")
    out.append(decimal: running)
    out.append(" running, ")
    out.append(decimal: pending)
    out.append(" pending, ")
    out.append(decimal: tasks.count - running - pending)
    out.append(" done)\n")
    if cut > 0 {
      out.append("(")
      out.append(decimal: cut)
      out.append(" more tasks not read: past the limit, or in a task list that cycles)\n")
    }
    for task in tasks {
      out.append("\nTask \"")
      out.append(visible: task.name)
      out.append("\" (")
      out.append(task.state.rawValue)
      if let thread = task.threadID {
        out.append(" on thread 0x")
        out.append(String(thread, radix: 16, uppercase: true))
      }
      out.append(")")
      let awaiters = task.awaitedBy.compactMap { names[$0] }
      if !awaiters.isEmpty {
        out.append(", awaited by ")
        for (index, name) in awaiters.enumerated() {
          if index > 0 { out.append(", ") }
          out.append("\"")
          out.append(visible: name)
          out.append("\"")
        }
      }
      out.append("\n")
      for frame in task.frames { appendFrameLine(frame, fullFilenames: fullFilenames, to: &out) }
    }
    return out
  }

  /// `dump --async --json`: `{"threads": [the threads, as without --async], "tasks": [...],
  /// "tasks_cut": N}`.
  package static func json(_ processes: [DumpedProcess], tasks: [TaskTrace], cut: Int) -> [UInt8] {
    let names = taskNames(tasks)
    var out: [UInt8] = []
    out.append("{\n  \"threads\": ")
    var threads = json(processes)
    while threads.last == UInt8(ascii: "\n") { threads.removeLast() }
    // Nested one level: JSON strings hold no raw newline, so every newline is layout.
    for byte in threads {
      out.append(byte)
      if byte == UInt8(ascii: "\n") { out.append("  ") }
    }
    out.append(",\n  \"tasks\": [")
    for (index, task) in tasks.enumerated() {
      out.append(index == 0 ? "\n" : ",\n")
      out.append("    {\n      \"name\": ")
      out.append(json: task.name)
      out.append(",\n      \"id\": ")
      out.append(decimal: task.id)
      out.append(",\n      \"state\": ")
      out.append(json: task.state.rawValue)
      out.append(",\n      \"thread_id\": ")
      if let thread = task.threadID { out.append(decimal: thread) } else { out.append("null") }
      out.append(",\n      \"frames\": [")
      for (i, frame) in task.frames.enumerated() {
        out.append(i == 0 ? "\n" : ",\n")
        out.append("        {\"name\": ")
        out.append(json: frame.name)
        out.append(", \"filename\": ")
        out.append(json: frame.filename)
        out.append(", \"short_filename\": ")
        out.append(json: frame.shortFilename ?? frame.filename)
        out.append(", \"line\": ")
        out.append(decimal: frame.line)
        out.append("}")
      }
      out.append(task.frames.isEmpty ? "]" : "\n      ]")
      out.append(",\n      \"awaited_by\": [")
      for (i, name) in task.awaitedBy.compactMap({ names[$0] }).enumerated() {
        if i > 0 { out.append(", ") }
        out.append(json: name)
      }
      out.append("]\n    }")
    }
    out.append(tasks.isEmpty ? "],\n" : "\n  ],\n")
    out.append("  \"tasks_cut\": ")
    out.append(decimal: cut)
    out.append("\n}\n")
    return out
  }

  /// The JSON dump: an array of every thread of every process, py-spy's field names, pretty-printed.
  package static func json(_ processes: [DumpedProcess]) -> [UInt8] {
    var out: [UInt8] = []
    out.append("[")
    var first = true
    for process in processes {
      for thread in process.threads {
        out.append(first ? "\n" : ",\n")
        first = false
        out.append("  {\n    \"pid\": ")
        out.append(decimal: Int(thread.pid))
        out.append(",\n    \"thread_id\": ")
        out.append(decimal: thread.threadID)
        out.append(",\n    \"thread_name\": ")
        if let name = thread.threadName { out.append(json: name) } else { out.append("null") }
        out.append(",\n    \"os_thread_id\": ")
        if let tid = thread.osThreadID { out.append(decimal: Int(tid)) } else { out.append("null") }
        out.append(",\n    \"active\": ")
        out.append(thread.active ? "true" : "false")
        out.append(",\n    \"owns_gil\": ")
        out.append(thread.ownsGIL ? "true" : "false")
        out.append(",\n    \"frames\": [")
        for (index, frame) in thread.frames.enumerated() {
          out.append(index == 0 ? "\n" : ",\n")
          out.append("      {\n        \"name\": ")
          out.append(json: frame.name)
          out.append(",\n        \"filename\": ")
          out.append(json: frame.filename)
          out.append(",\n        \"module\": ")
          if let library = frame.module { out.append(json: library) } else { out.append("null") }
          out.append(",\n        \"short_filename\": ")
          out.append(json: frame.shortFilename ?? frame.filename)
          out.append(",\n        \"line\": ")
          out.append(decimal: frame.line)
          out.append(",\n        \"locals\": ")
          if let locals = frame.locals {
            out.append("[")
            for (i, variable) in locals.enumerated() {
              out.append(i == 0 ? "\n" : ",\n")
              out.append("          {\"name\": ")
              out.append(json: variable.name)
              out.append(", \"addr\": ")
              out.append(decimal: variable.address)
              out.append(", \"arg\": ")
              out.append(variable.isArgument ? "true" : "false")
              out.append(", \"repr\": ")
              if let repr = variable.repr { out.append(json: repr) } else { out.append("null") }
              out.append("}")
            }
            out.append(locals.isEmpty ? "]" : "\n        ]")
          } else {
            out.append("null")
          }
          out.append(",\n        \"is_entry\": ")
          out.append(frame.isEntry ? "true" : "false")
          out.append(",\n        \"is_shim_entry\": ")
          out.append(frame.isShimEntry ? "true" : "false")
          out.append("\n      }")
        }
        out.append(thread.frames.isEmpty ? "],\n" : "\n    ],\n")
        out.append("    \"process_info\": null\n  }")
      }
    }
    out.append(first ? "]\n" : "\n]\n")
    return out
  }

  /// Task names by task id (awaiters are named, not numbered).
  private static func taskNames(_ tasks: [TaskTrace]) -> [UInt64: String] {
    var names: [UInt64: String] = [:]
    for task in tasks { names[task.id] = task.name }
    return names
  }
}
