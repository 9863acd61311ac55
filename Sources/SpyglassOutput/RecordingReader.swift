//===--- RecordingReader.swift - a recording file back into a Profile -------===//
//
// Reads what RecordingWriter writes (docs/recording-format.md) into the same `Profile` the
// recording was written from: the same frame, stack and thread tables in the same order, every
// sample added in the file's order (so the totals and the timeline are the recording's own), the
// same facts and frame options. A file is untrusted input: it is decompressed up to a limit, read
// by a bounded reader (JSONReader), and every id is checked against its table before anything is
// built; a damaged, cut or made-up file is a `RecordingProblem` with one plain reason.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassProfile

package enum RecordingReader {
  /// The most a recording may hold once decompressed.
  package static let maximumSize = 2 << 30

  /// The profile a recording file's bytes (gzipped, or plain JSON) hold.
  package static func read(_ bytes: [UInt8]) throws(RecordingProblem) -> Profile {
    if bytes.starts(with: [0x1F, 0x8B]) {
      let json: [UInt8]
      do {
        json = try Compression.gunzip(bytes, limit: maximumSize)
      } catch {
        switch error {
        case .truncated: throw .truncated
        case .tooLarge(let limit): throw .tooLarge(limit: limit)
        case .corrupt, .zlib: throw .corrupt("its gzip data does not decompress")
        case .trailingData: throw .corrupt("bytes follow its gzip data")
        }
      }
      return try decode(json)
    }
    let first = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
    guard first == UInt8(ascii: "{") else { throw .notARecording }
    return try decode(bytes)
  }

  /// The profile the recording's JSON holds.
  package static func decode(_ json: [UInt8]) throws(RecordingProblem) -> Profile {
    var parsed = Parsed()
    var reader = JSONReader(json)
    do {
      try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
        try parsed.read(key, from: &reader)
      }
      try reader.end()
    } catch {
      if let problem = parsed.problem { throw problem }
      if parsed.format != nil && parsed.format != RecordingWriter.formatName { throw .notARecording }
      if error.truncated { throw .truncated }
      throw parsed.format == nil && reader.offset < 64 ? .notARecording : .corrupt("\(error)")
    }
    return try parsed.profile()
  }

  /// The fields as read, checked once the whole object is in (JSON keys come in any order).
  private struct Parsed {
    var format: String?
    var version: Int64?
    var info = RecordingInfo()
    var frameOptions = FrameOptions()
    var threads: [ThreadInfo]?
    var frames: [Frame]?
    var stacks: [[UInt64]]?
    var samples: (thread: [UInt64]?, stack: [UInt64]?, time: [UInt64]?, weight: [UInt64]?) = (nil, nil, nil, nil)
    /// Set when reading stopped for a reason that is not the JSON's (a newer version, another format).
    var problem: RecordingProblem?

    mutating func read(_ key: String, from reader: inout JSONReader) throws(JSONError) {
      switch key {
      case "format":
        let value = try reader.string()
        format = value
        if value != RecordingWriter.formatName {
          problem = .notARecording
          throw JSONError(offset: reader.offset, problem: "another format")
        }
      case "version":
        let value = try reader.signed()
        version = value
        if value > Int64(RecordingWriter.version) || value < 1 {
          problem = value < 1 ? .invalid("version \(value)") : .newerVersion(value)
          throw JSONError(offset: reader.offset, problem: "another version")
        }
      case "info": try readInfo(&reader)
      case "frame_options": try readFrameOptions(&reader)
      case "threads":
        var list: [ThreadInfo] = []
        try reader.array { (reader: inout JSONReader) throws(JSONError) in list.append(try Self.thread(&reader)) }
        threads = list
      case "frames":
        var list: [Frame] = []
        try reader.array { (reader: inout JSONReader) throws(JSONError) in list.append(try Self.frame(&reader)) }
        frames = list
      case "stacks":
        var list: [[UInt64]] = []
        try reader.array { (reader: inout JSONReader) throws(JSONError) in
          list.append(try reader.unsignedArray(maximum: UInt64(UInt32.max)))
        }
        stacks = list
      case "samples":
        try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
          switch key {
          case "thread": samples.thread = try reader.unsignedArray(maximum: UInt64(UInt32.max))
          case "stack": samples.stack = try reader.unsignedArray(maximum: UInt64(UInt32.max))
          case "time": samples.time = try reader.unsignedArray()
          case "weight": samples.weight = try reader.unsignedArray()
          default: try reader.skipValue()
          }
        }
      default: try reader.skipValue()  // a field a later version 1 writer added
      }
    }

    mutating func readInfo(_ reader: inout JSONReader) throws(JSONError) {
      try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
        switch key {
        case "title": info.title = try reader.string()
        case "rate": info.rate = try reader.double()
        case "python_version": info.pythonVersion = try reader.string()
        case "duration_seconds": info.durationSeconds = try reader.double()
        case "start_unix_nanoseconds": info.startUnixNanoseconds = try reader.unsigned()
        case "sample_count": info.sampleCount = try reader.unsigned()
        case "error_count": info.errorCount = try reader.unsigned()
        case "weighting":
          let offset = reader.offset
          guard let weighting = RecordingInfo.Weighting(rawValue: try reader.string()) else {
            throw JSONError(offset: offset, problem: "expected \"samples\" or \"cpu\"")
          }
          info.weighting = weighting
        default: try reader.skipValue()
        }
      }
    }

    mutating func readFrameOptions(_ reader: inout JSONReader) throws(JSONError) {
      try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
        switch key {
        case "line_mode":
          let offset = reader.offset
          guard let mode = LineNo(recordingName: try reader.string()) else {
            throw JSONError(offset: offset, problem: "expected \"current\", \"first_line\" or \"none\"")
          }
          frameOptions.lineNo = mode
        case "full_filenames": frameOptions.fullFilenames = try reader.bool()
        case "thread_frames": frameOptions.threadFrames = try reader.bool()
        case "process_frames": frameOptions.processFrames = try reader.bool()
        default: try reader.skipValue()
        }
      }
    }

    static func thread(_ reader: inout JSONReader) throws(JSONError) -> ThreadInfo {
      var pid: Int32?
      var threadID: UInt64?
      var thread = ThreadInfo(pid: 0, threadID: 0)
      let start = reader.offset
      try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
        switch key {
        case "pid": pid = Int32(try reader.signed(minimum: Int64(Int32.min), maximum: Int64(Int32.max)))
        case "thread_id": threadID = try reader.unsigned()
        case "os_thread_id":
          thread.osThreadID =
            try reader.null() ? nil : Int32(try reader.signed(minimum: Int64(Int32.min), maximum: Int64(Int32.max)))
        case "name": thread.name = try reader.optionalString()
        case "cpu_nanoseconds": thread.cpuNanoseconds = try reader.null() ? nil : try reader.unsigned()
        default: try reader.skipValue()
        }
      }
      guard let pid, let threadID else { throw JSONError(offset: start, problem: "a thread without pid or thread_id") }
      thread.pid = pid
      thread.threadID = threadID
      return thread
    }

    static func frame(_ reader: inout JSONReader) throws(JSONError) -> Frame {
      var name: String?
      var filename: String?
      var shortFilename: String?
      var line = 0
      var firstLine = 0
      var pseudo = false
      var library: String?
      let start = reader.offset
      let lines = (minimum: Int64(Int32.min), maximum: Int64(Int32.max))
      try reader.object { (reader: inout JSONReader, key: String) throws(JSONError) in
        switch key {
        case "name": name = try reader.string()
        case "filename": filename = try reader.string()
        case "short_filename": shortFilename = try reader.string()
        case "line": line = Int(try reader.signed(minimum: lines.minimum, maximum: lines.maximum))
        case "first_line": firstLine = Int(try reader.signed(minimum: lines.minimum, maximum: lines.maximum))
        case "pseudo": pseudo = try reader.bool()
        case "library": library = try reader.optionalString()
        default: try reader.skipValue()
        }
      }
      guard let name, let filename else { throw JSONError(offset: start, problem: "a frame without name or filename") }
      return Frame(
        name: name, filename: filename, module: library, shortFilename: shortFilename ?? filename, line: line,
        firstLine: firstLine, kind: pseudo ? .synthetic : nil)
    }

    /// The profile, once every reference is known to be in range.
    func profile() throws(RecordingProblem) -> Profile {
      guard format == RecordingWriter.formatName else {
        throw format == nil && version == nil ? .notARecording : .invalid("no \"format\": \"spyglass-recording\"")
      }
      guard version != nil else { throw .invalid("no \"version\"") }
      guard let threads, let frames, let stacks else { throw .invalid("no threads, frames or stacks") }
      guard let threadColumn = samples.thread, let stackColumn = samples.stack, let times = samples.time,
        let weights = samples.weight
      else { throw .invalid("no samples") }
      guard threadColumn.count == stackColumn.count, stackColumn.count == times.count, times.count == weights.count
      else { throw .invalid("its sample columns differ in length") }
      for (index, stack) in stacks.enumerated() where stack.contains(where: { $0 >= UInt64(frames.count) }) {
        throw .invalid("stack \(index) names a frame that does not exist")
      }
      if let bad = threadColumn.firstIndex(where: { $0 >= UInt64(threads.count) }) {
        throw .invalid("sample \(bad) names a thread that does not exist")
      }
      if let bad = stackColumn.firstIndex(where: { $0 >= UInt64(stacks.count) }) {
        throw .invalid("sample \(bad) names a stack that does not exist")
      }
      var recorded = info
      recorded.frameOptions = frameOptions
      var profile = Profile(info: recorded, keepsTimeline: true)
      // The tables in file order: a file Spyglass wrote has no duplicates, so every id is its
      // position and the profile is the one written; a made-up file's duplicates are merged.
      let frameIDs = frames.map { profile.intern($0) }
      let stackIDs = stacks.map { stack in profile.intern(stack: stack.map { frameIDs[Int($0)] }) }
      let threadIndices = threads.map { profile.thread($0) }
      for i in threadColumn.indices {
        profile.add(
          thread: threadIndices[Int(threadColumn[i])], stack: stackIDs[Int(stackColumn[i])],
          weightNanoseconds: weights[i], timeNanoseconds: times[i])
      }
      return profile
    }
  }
}
