//===--- FilenameShortener.swift - package-relative file names ------------===//
//
// As py-spy: walk up from the file's directory while each directory is a package (holds
// __init__.py) and show the path from the outermost package down; a file outside any package is
// its base name. Looked up through /proc/PID/root so container paths resolve from the host, and a
// relative file name through the target's working directory (/proc/PID/cwd; py-spy looks in its
// own). Cached per file name.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

package final class FilenameShortener {
  package let pid: Int32
  private var cache: [String: String] = [:]

  /// For a core file: the files are looked up under this folder (the process's root; "" for
  /// this one's), a relative name under it too (the process's working directory is not known).
  private let root: String?

  package init(pid: Int32) {
    self.pid = pid
    self.root = nil
  }

  /// A shortener for a process that no longer runs (a core file), its files under `root`.
  package init(root: String) {
    self.pid = 0
    self.root = root
  }

  package func short(_ filename: String) -> String {
    if let cached = cache[filename] { return cached }
    let result = compute(filename)
    if cache.count > 65536 { cache.removeAll() }
    cache[filename] = result
    return result
  }

  private func compute(_ filename: String) -> String {
    let absolute = filename.hasPrefix("/")
    var components = filename.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    guard components.count > 1 else { return absolute ? filename : components.last ?? filename }
    let file = components.removeLast()
    var kept = [file]
    var depth = 0
    while !components.isEmpty && depth < 64 {
      depth += 1
      // A relative name (a script started as `python ./tests/app.py` on ≤3.8) is relative to the
      // target's working directory: look there, through /proc/PID/cwd.
      let directory = components.joined(separator: "/")
      let marker =
        if let root {
          root + (absolute ? "/" : "") + directory + "/__init__.py"
        } else {
          absolute
            ? ProcFS.pathInTarget(pid, "/" + directory + "/__init__.py") : "/proc/\(pid)/cwd/\(directory)/__init__.py"
        }
      guard ProcFS.fileExists(marker) else { break }
      kept.insert(components.removeLast(), at: 0)
    }
    // `.` and `..` are never part of the short name (`./pkg/mod.py` is `pkg/mod.py`).
    while let first = kept.first, kept.count > 1, first == "." || first == ".." { kept.removeFirst() }
    return kept.joined(separator: "/")
  }
}
