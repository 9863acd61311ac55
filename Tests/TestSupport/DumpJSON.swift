//===--- DumpJSON.swift - `dump --json` and the oracle's report -----------===//
//
// `dump --json` prints py-spy's shape: an array of threads, newest first,
//   {"pid", "thread_id", "thread_name", "os_thread_id", "active", "owns_gil", "frames", "process_info"}
// with frames innermost first,
//   {"name", "filename", "module", "short_filename", "line", "locals", "is_entry", "is_shim_entry"}.
// Decoding is strict: every key must be present (nullable ones as null), and `checkShape` also
// rejects unknown keys, so the output stays interchangeable with py-spy's.
//
//===----------------------------------------------------------------------===//

import Foundation

package struct DumpLocal: Decodable, Sendable, Equatable {
  package let name: String
  package let addr: UInt64?
  package let arg: Bool
  package let repr: String?
}

package struct DumpFrame: Decodable, Sendable, Equatable, CustomStringConvertible {
  package let name: String
  package let filename: String
  package let module: String?
  package let shortFilename: String?
  package let line: Int
  package let locals: [DumpLocal]?
  package let isEntry: Bool
  package let isShimEntry: Bool

  enum CodingKeys: String, CodingKey {
    case name, filename, module, line, locals
    case shortFilename = "short_filename"
    case isEntry = "is_entry"
    case isShimEntry = "is_shim_entry"
  }

  package init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decode(String.self, forKey: .name)
    filename = try c.decode(String.self, forKey: .filename)
    module = try c.decode(String?.self, forKey: .module)
    shortFilename = try c.decode(String?.self, forKey: .shortFilename)
    line = try c.decode(Int.self, forKey: .line)
    locals = try c.decode([DumpLocal]?.self, forKey: .locals)
    isEntry = try c.decode(Bool.self, forKey: .isEntry)
    isShimEntry = try c.decode(Bool.self, forKey: .isShimEntry)
  }

  /// "name (short_filename:line)", as the text dump prints a frame.
  package var description: String { "\(name) (\(shortFilename ?? filename):\(line))" }
}

package struct DumpThread: Decodable, Sendable, CustomStringConvertible {
  package let pid: Int
  package let threadID: UInt64
  package let threadName: String?
  package let osThreadID: Int?
  package let active: Bool
  package let ownsGIL: Bool
  package let frames: [DumpFrame]

  enum CodingKeys: String, CodingKey {
    case pid, active, frames
    case threadID = "thread_id"
    case threadName = "thread_name"
    case osThreadID = "os_thread_id"
    case ownsGIL = "owns_gil"
  }

  package init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    pid = try c.decode(Int.self, forKey: .pid)
    threadID = try c.decode(UInt64.self, forKey: .threadID)
    threadName = try c.decode(String?.self, forKey: .threadName)
    osThreadID = try c.decode(Int?.self, forKey: .osThreadID)
    active = try c.decode(Bool.self, forKey: .active)
    ownsGIL = try c.decode(Bool.self, forKey: .ownsGIL)
    frames = try c.decode([DumpFrame].self, forKey: .frames)
  }

  /// A py-spy-like text rendering, for failure messages.
  package var description: String {
    let status = active ? (ownsGIL ? "active+gil" : "active") : (ownsGIL ? "idle+gil" : "idle")
    var text = "Thread \(osThreadID.map(String.init) ?? String(format: "0x%llX", threadID)) (\(status))"
    if let threadName { text += ": \"\(threadName)\"" }
    text += " [thread_id \(threadID)]"
    for frame in frames { text += "\n    \(frame)" }
    return text
  }
}

package enum DumpJSON {
  static let threadKeys: Set<String> = [
    "pid", "thread_id", "thread_name", "os_thread_id", "active", "owns_gil", "frames", "process_info",
  ]
  static let frameKeys: Set<String> = [
    "name", "filename", "module", "short_filename", "line", "locals", "is_entry", "is_shim_entry",
  ]

  /// Decodes `dump --json` output strictly.
  package static func decode(_ text: String) throws -> [DumpThread] {
    try checkShape(text)
    return try JSONDecoder().decode([DumpThread].self, from: Data(text.utf8))
  }

  /// Throws unless `text` is an array of thread objects with exactly py-spy's keys, and
  /// `process_info` is null (dump without subprocesses).
  package static func checkShape(_ text: String) throws {
    let value: Any
    do {
      value = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    } catch {
      throw TestSupportError("not JSON (\(error)):\n\(text)")
    }
    guard let threads = value as? [Any] else { throw TestSupportError("not a JSON array:\n\(text)") }
    for (index, element) in threads.enumerated() {
      guard let thread = element as? [String: Any] else {
        throw TestSupportError("thread \(index) is not an object")
      }
      let keys = Set(thread.keys)
      guard keys == threadKeys else {
        throw TestSupportError(
          "thread \(index) keys differ from py-spy's: missing \(threadKeys.subtracting(keys).sorted()), extra \(keys.subtracting(threadKeys).sorted())"
        )
      }
      guard thread["process_info"] is NSNull else {
        throw TestSupportError("thread \(index): process_info should be null, is \(thread["process_info"] ?? "?")")
      }
      guard let frames = thread["frames"] as? [Any] else {
        throw TestSupportError("thread \(index): frames is not an array")
      }
      for (frameIndex, frameElement) in frames.enumerated() {
        guard let frame = frameElement as? [String: Any] else {
          throw TestSupportError("thread \(index) frame \(frameIndex) is not an object")
        }
        let frameKeySet = Set(frame.keys)
        guard frameKeySet == frameKeys else {
          throw TestSupportError(
            "thread \(index) frame \(frameIndex) keys differ from py-spy's: missing \(frameKeys.subtracting(frameKeySet).sorted()), extra \(frameKeySet.subtracting(frameKeys).sorted())"
          )
        }
      }
    }
  }
}

/// The oracle fixture's report: the interpreter's own view (sys._current_frames()).
package struct OracleReport: Decodable, Sendable {
  package let threads: [OracleThread]

  package static func decode(_ line: String) throws -> OracleReport {
    do {
      return try JSONDecoder().decode(OracleReport.self, from: Data(line.utf8))
    } catch {
      throw TestSupportError("bad oracle report (\(error)):\n\(line)")
    }
  }
}

package struct OracleThread: Decodable, Sendable, CustomStringConvertible {
  package let ident: UInt64
  package let name: String?
  package let nativeID: Int?
  package let frames: [OracleFrame]

  enum CodingKeys: String, CodingKey {
    case ident, name, frames
    case nativeID = "native_id"
  }

  package var description: String {
    var text = "Thread ident \(ident)\(nativeID.map { " native_id \($0)" } ?? ""): \"\(name ?? "?")\""
    for frame in frames { text += "\n    \(frame)" }
    return text
  }
}

package struct OracleFrame: Decodable, Sendable, Equatable, CustomStringConvertible {
  package let name: String
  package let filename: String
  package let line: Int

  package init(name: String, filename: String, line: Int) {
    self.name = name
    self.filename = filename
    self.line = line
  }

  package var description: String { "\(name) (\(filename):\(line))" }
}

extension DumpFrame {
  /// The (name, filename, line) triple that the differential tests compare.
  package var identity: OracleFrame { OracleFrame(name: name, filename: filename, line: line) }
}
