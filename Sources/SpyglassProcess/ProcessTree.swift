//===--- ProcessTree.swift - children and grandchildren of a process ------===//

package enum ProcessTree {
  /// Every descendant of `root` (breadth first), with its parent, from the ppid field of
  /// /proc/*/stat.
  package static func descendants(of root: Int32) -> [(pid: Int32, parent: Int32)] {
    var children: [Int32: [Int32]] = [:]
    for pid in ProcFS.allPIDs() {
      guard let stat = ProcStat.read(pid: pid) else { continue }
      children[stat.parentPID, default: []].append(pid)
    }
    var result: [(pid: Int32, parent: Int32)] = []
    var queue = [root]
    var seen: Set<Int32> = [root]
    while !queue.isEmpty && result.count < 4096 {
      let parent = queue.removeFirst()
      for child in children[parent, default: []] where seen.insert(child).inserted {
        result.append((child, parent))
        queue.append(child)
      }
    }
    return result
  }
}

extension ProcessTree {
  /// A process as subprocess outputs name it: its pid and command line (the one place the
  /// command line of a process that is not read is read).
  package struct Member: Sendable, Equatable {
    package var pid: Int32
    package var commandLine: [String]

    /// `process PID:"command line"`, the label of its pseudo-frame.
    package var label: String { "process \(pid):\"\(commandLine.joined(separator: " "))\"" }
  }

  /// `pid` and its ancestors up to `root` (at most 64), outermost first.
  package static func ancestry(of pid: Int32, upTo root: Int32) -> [Member] {
    var chain: [Int32] = []
    var cursor: Int32? = pid
    while let current = cursor, chain.count < 64 {
      chain.insert(current, at: 0)
      if current == root { break }
      cursor = ProcStat.read(pid: current)?.parentPID
      if cursor == 0 || cursor == 1 { break }
    }
    return chain.map { Member(pid: $0, commandLine: ProcFS.commandLine($0)) }
  }
}
