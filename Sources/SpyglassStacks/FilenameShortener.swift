//===--- FilenameShortener.swift - package-relative file names ------------===//
//
// As py-spy: walk up from the file's directory while each directory is a package (holds
// __init__.py) and show the path from the outermost package down. Looked up through
// /proc/PID/root so container paths resolve from the host. Cached per file name.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

package final class FilenameShortener {
  package let pid: Int32
  private var cache: [String: String] = [:]

  package init(pid: Int32) { self.pid = pid }

  package func short(_ filename: String) -> String {
    if let cached = cache[filename] { return cached }
    let result = compute(filename)
    if cache.count > 65536 { cache.removeAll() }
    cache[filename] = result
    return result
  }

  private func compute(_ filename: String) -> String {
    guard filename.hasPrefix("/") else { return filename }
    var components = filename.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    guard components.count > 1 else { return filename }
    let file = components.removeLast()
    var kept = [file]
    var depth = 0
    while !components.isEmpty && depth < 64 {
      depth += 1
      let directory = "/" + components.joined(separator: "/")
      guard ProcFS.fileExists(ProcFS.pathInTarget(pid, directory + "/__init__.py"))
      else { break }
      kept.insert(components.removeLast(), at: 0)
    }
    return kept.joined(separator: "/")
  }
}
