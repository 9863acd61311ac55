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
