//===--- CythonSources.swift - Cython's generated C lines as .pyx lines ----===//
//
// Cython writes, above the C code each line of a .pyx compiles to, a comment naming that line:
// `/* "cyhot.pyx":13` then the source line quoted. A native frame in the generated C file maps to
// the .pyx line of the last such comment at or above its C line, and to the .pyx file beside the C
// file. The C file is read once per path (bounded), through the target's root when it is live.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

/// The .pyx lines of one generated C file.
package struct CythonSourceMap: Sendable {
  /// The .pyx file and line of each C line (index: C line - 1), nil before the first comment.
  private var lines: [(file: Int32, line: Int32)?] = []
  private var files: [String] = []

  /// Largest generated C file read (Cython's output for a big module is a few MiB).
  static let maximumBytes = 64 << 20
  /// Most lines mapped (a C file past it keeps its first lines mapped).
  static let maximumLines = 4_000_000

  /// Maps the C source `text`, whose .pyx files are looked for in `directory`. Nil when it has no
  /// Cython line comment (a C file that is not Cython's).
  package init?(cSource text: [UInt8], directory: String) {
    var current: (file: Int32, line: Int32)?
    var fileIndex: [String: Int32] = [:]
    var start = 0
    var found = false
    while start < text.count && lines.count < Self.maximumLines {
      let end = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
      if let (name, line) = Self.marker(text[start..<end]) {
        let index: Int32
        if let known = fileIndex[name] {
          index = known
        } else {
          index = Int32(files.count)
          fileIndex[name] = index
          files.append(name.hasPrefix("/") ? name : directory + "/" + name)
        }
        current = (index, line)
        found = true
      }
      lines.append(current)
      start = end + 1
    }
    if !found { return nil }
  }

  /// The .pyx file and line of C line `line`, nil when none comes before it.
  package func pyxLocation(ofCLine line: Int) -> (file: String, line: Int)? {
    guard line >= 1, line <= lines.count, let entry = lines[line - 1] else { return nil }
    return (files[Int(entry.file)], Int(entry.line))
  }

  /// `/* "name.pyx":123` (after any indentation), as (name, 123).
  static func marker(_ line: ArraySlice<UInt8>) -> (String, Int32)? {
    var index = line.startIndex
    while index < line.endIndex, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") {
      index += 1
    }
    let prefix = Array("/* \"".utf8)
    guard line.endIndex - index > prefix.count, line[index..<(index + prefix.count)].elementsEqual(prefix) else {
      return nil
    }
    index += prefix.count
    guard let quote = line[index...].firstIndex(of: UInt8(ascii: "\"")), quote > index, quote - index <= 4096 else {
      return nil
    }
    let name = String(decoding: line[index..<quote], as: UTF8.self)
    guard name.hasSuffix(".pyx") || name.hasSuffix(".py") || name.hasSuffix(".pxd") || name.hasSuffix(".pxi"),
      !name.contains(where: { $0.isNewline || $0 == "\0" })
    else { return nil }
    var cursor = quote + 1
    guard cursor < line.endIndex, line[cursor] == UInt8(ascii: ":") else { return nil }
    cursor += 1
    var value: Int32 = 0
    var digits = 0
    while cursor < line.endIndex, line[cursor] >= UInt8(ascii: "0"), line[cursor] <= UInt8(ascii: "9"), digits < 9 {
      value = value * 10 + Int32(line[cursor] - UInt8(ascii: "0"))
      cursor += 1
      digits += 1
    }
    let moreDigits = cursor < line.endIndex && line[cursor] >= UInt8(ascii: "0") && line[cursor] <= UInt8(ascii: "9")
    guard digits > 0, value > 0, !moreDigits else { return nil }
    return (name, value)
  }
}

/// The source maps of the generated C files a process's native frames met, read once each.
package final class CythonSources {
  private let root: String
  private var maps: [String: CythonSourceMap?] = [:]

  /// `root`: where the target's files are seen from ("/proc/PID/root" for a live process, "" for
  /// a core file's, read on this machine).
  package init(root: String) { self.root = root }

  /// The .pyx location of line `line` of C file `path`, nil when `path` is not a Cython C file
  /// that can be read.
  package func pyxLocation(ofCFile path: String, line: Int) -> (file: String, line: Int)? {
    guard path.hasPrefix("/"), path.hasSuffix(".c") || path.hasSuffix(".cpp") else { return nil }
    if let known = maps[path] { return known?.pyxLocation(ofCLine: line) }
    var map: CythonSourceMap?
    if maps.count < 4096, let text = try? ProcFS.readFile(root + path, limit: CythonSourceMap.maximumBytes) {
      let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
      map = CythonSourceMap(cSource: text, directory: directory)
    }
    maps[path] = .some(map)
    return map?.pyxLocation(ofCLine: line)
  }
}
