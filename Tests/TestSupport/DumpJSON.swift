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

public struct DumpLocal: Decodable, Sendable, Equatable {
  public let name: String
  public let addr: UInt64?
  public let arg: Bool
  public let repr: String?
}

public struct DumpFrame: Decodable, Sendable, Equatable, CustomStringConvertible {
  public let name: String
  public let filename: String
  public let module: String?
  public let shortFilename: String?
  public let line: Int
  public let locals: [DumpLocal]?
  public let isEntry: Bool
  public let isShimEntry: Bool

  enum CodingKeys: String, CodingKey {
    case name, filename, module, line, locals
    case shortFilename = "short_filename"
    case isEntry = "is_entry"
    case isShimEntry = "is_shim_entry"
  }

  public init(from decoder: Decoder) throws {
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
  public var description: String { "\(name) (\(shortFilename ?? filename):\(line))" }
}

public struct DumpThread: Decodable, Sendable, CustomStringConvertible {
  public let pid: Int
  public let threadID: UInt64
  public let threadName: String?
  public let osThreadID: Int?
  public let active: Bool
  public let ownsGIL: Bool
  public let frames: [DumpFrame]

  enum CodingKeys: String, CodingKey {
    case pid, active, frames
    case threadID = "thread_id"
    case threadName = "thread_name"
    case osThreadID = "os_thread_id"
    case ownsGIL = "owns_gil"
  }

  public init(from decoder: Decoder) throws {
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
  public var description: String {
    let status = active ? (ownsGIL ? "active+gil" : "active") : (ownsGIL ? "idle+gil" : "idle")
    var text = "Thread \(osThreadID.map(String.init) ?? String(format: "0x%llX", threadID)) (\(status))"
    if let threadName { text += ": \"\(threadName)\"" }
    text += " [thread_id \(threadID)]"
    for frame in frames { text += "\n    \(frame)" }
    return text
  }
}

public enum DumpJSON {
  static let threadKeys: Set<String> = [
    "pid", "thread_id", "thread_name", "os_thread_id", "active", "owns_gil", "frames", "process_info",
  ]
  static let frameKeys: Set<String> = [
    "name", "filename", "module", "short_filename", "line", "locals", "is_entry", "is_shim_entry",
  ]

  /// Decodes `dump --json` output strictly.
  public static func decode(_ text: String) throws -> [DumpThread] {
    try checkShape(text)
    return try JSONDecoder().decode([DumpThread].self, from: Data(text.utf8))
  }

  /// Throws unless `text` is an array of thread objects with exactly py-spy's keys, and
  /// `process_info` is null (dump without subprocesses).
  public static func checkShape(_ text: String) throws {
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
public struct OracleReport: Decodable, Sendable {
  public let threads: [OracleThread]

  public static func decode(_ line: String) throws -> OracleReport {
    do {
      return try JSONDecoder().decode(OracleReport.self, from: Data(line.utf8))
    } catch {
      throw TestSupportError("bad oracle report (\(error)):\n\(line)")
    }
  }
}

public struct OracleThread: Decodable, Sendable, CustomStringConvertible {
  public let ident: UInt64
  public let name: String?
  public let nativeID: Int?
  public let frames: [OracleFrame]

  enum CodingKeys: String, CodingKey {
    case ident, name, frames
    case nativeID = "native_id"
  }

  public var description: String {
    var text = "Thread ident \(ident)\(nativeID.map { " native_id \($0)" } ?? ""): \"\(name ?? "?")\""
    for frame in frames { text += "\n    \(frame)" }
    return text
  }
}

public struct OracleFrame: Decodable, Sendable, Equatable, CustomStringConvertible {
  public let name: String
  public let filename: String
  public let line: Int

  public init(name: String, filename: String, line: Int) {
    self.name = name
    self.filename = filename
    self.line = line
  }

  public var description: String { "\(name) (\(filename):\(line))" }
}

extension DumpFrame {
  /// The (name, filename, line) triple that the differential tests compare.
  public var identity: OracleFrame { OracleFrame(name: name, filename: filename, line: line) }
}
