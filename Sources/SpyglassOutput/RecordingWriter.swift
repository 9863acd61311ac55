//===--- RecordingWriter.swift - Spyglass's own lossless recording ---------===//
//
// `-f spyglass`: everything any writer uses, so that `spyglass convert` renders a recording in any
// format exactly as `record` would have written it. Gzipped JSON (Python's gzip and json modules
// read it), format "spyglass-recording", version 1; docs/recording-format.md describes every
// field. The recording's facts and the options that shaped its frames; its threads, frames and
// stacks as the profile interned them (ids are positions in these arrays); and every sample in time
// order, as four columns of equal length (thread, stack, nanoseconds since the start, weight in
// nanoseconds). One line per thread, frame and stack, so that `zcat` shows something readable.
// RecordingReader.swift reads it back.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct RecordingWriter: ProfileWriter {
  /// The `format` field of every recording.
  static let formatName = "spyglass-recording"
  /// The newest version this Spyglass writes and reads.
  static let version = Int64(RecordingProblem.readableVersion)

  var name: String { "spyglass" }
  var summary: String { "Spyglass's own lossless recording (every sample); `spyglass convert` renders it later" }
  var fileExtension: String { "spyglass" }
  var needsTimeline: Bool { true }
  var needsThreadNames: Bool { true }

  func render(_ profile: Profile, options: WriterOptions) throws(SpyglassError) -> [UInt8] {
    try gzip(Self.json(profile, options: options), format: name)
  }

  /// The uncompressed JSON.
  static func json(_ profile: Profile, options: WriterOptions) throws(SpyglassError) -> [UInt8] {
    guard profile.keepsTimeline || profile.totals.isEmpty else {
      throw .renderFailed(
        format: formatName, reason: "a recording holds every sample, and this profile kept only their totals")
    }
    let info = profile.info
    // The options the recording is rendered with are the ones it was written with.
    var frameOptions = info.frameOptions
    frameOptions.fullFilenames = options.fullFilenames
    if !options.showLineNumbers { frameOptions.lineNo = .noLine }

    var out: [UInt8] = []
    out.reserveCapacity(4096 + profile.frames.count * 96 + profile.timeline.count * 32)
    out.append("{\"format\":")
    out.append(json: formatName)
    out.append(",\"version\":")
    out.append(decimal: version)
    out.append(",\"spyglass\":")
    out.append(json: options.version)
    out.append(",\n\"info\":{\"title\":")
    out.append(json: info.title)
    out.append(",\"rate\":")
    out.append(double: info.rate)
    out.append(",\"python_version\":")
    out.append(json: info.pythonVersion)
    out.append(",\"duration_seconds\":")
    out.append(double: info.durationSeconds)
    out.append(",\"start_unix_nanoseconds\":")
    out.append(decimal: info.startUnixNanoseconds)
    out.append(",\"sample_count\":")
    out.append(decimal: info.sampleCount)
    out.append(",\"error_count\":")
    out.append(decimal: info.errorCount)
    out.append(",\"weighting\":")
    out.append(json: info.weighting.rawValue)
    out.append("},\n\"frame_options\":{\"line_mode\":")
    out.append(json: frameOptions.lineNo.recordingName)
    out.append(",\"full_filenames\":\(frameOptions.fullFilenames),\"thread_frames\":\(frameOptions.threadFrames)")
    out.append(",\"process_frames\":\(frameOptions.processFrames)},\n\"threads\":[")
    for (i, thread) in profile.threads.enumerated() {
      out.append(i == 0 ? "\n{\"pid\":" : ",\n{\"pid\":")
      out.append(decimal: Int64(thread.pid))
      out.append(",\"thread_id\":")
      out.append(decimal: thread.threadID)
      out.append(",\"os_thread_id\":")
      if let os = thread.osThreadID { out.append(decimal: Int64(os)) } else { out.append("null") }
      out.append(",\"name\":")
      if let name = thread.name { out.append(json: name) } else { out.append("null") }
      out.append(",\"cpu_nanoseconds\":")
      if let cpu = thread.cpuNanoseconds { out.append(decimal: cpu) } else { out.append("null") }
      out.append(UInt8(ascii: "}"))
    }
    out.append("],\n\"frames\":[")
    for (i, frame) in profile.frames.enumerated() {
      out.append(i == 0 ? "\n{\"name\":" : ",\n{\"name\":")
      out.append(json: frame.name)
      out.append(",\"filename\":")
      out.append(json: frame.filename)
      out.append(",\"short_filename\":")
      out.append(json: frame.shortFile)
      out.append(",\"line\":")
      out.append(decimal: frame.line)
      out.append(",\"first_line\":")
      out.append(decimal: frame.firstLine)
      out.append(",\"pseudo\":\(frame.isPseudo),\"library\":")
      if let library = frame.module { out.append(json: library) } else { out.append("null") }
      out.append(UInt8(ascii: "}"))
    }
    out.append("],\n\"stacks\":[")
    for (i, stack) in profile.stacks.enumerated() {
      out.append(i == 0 ? "\n[" : ",\n[")
      for (j, frame) in stack.enumerated() {
        if j > 0 { out.append(UInt8(ascii: ",")) }
        out.append(decimal: UInt64(frame))
      }
      out.append(UInt8(ascii: "]"))
    }
    let samples = profile.timeline
    out.append("],\n\"samples\":{\n\"thread\":[")
    column(&out, samples) { UInt64($0.thread) }
    out.append("],\n\"stack\":[")
    column(&out, samples) { UInt64($0.stack) }
    out.append("],\n\"time\":[")
    column(&out, samples) { $0.timeNanoseconds }
    out.append("],\n\"weight\":[")
    column(&out, samples) { $0.weightNanoseconds }
    out.append("]}}\n")
    return out
  }

  private static func column(_ out: inout [UInt8], _ samples: [TimelineSample], _ value: (TimelineSample) -> UInt64) {
    for (i, sample) in samples.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      out.append(decimal: value(sample))
    }
  }
}

extension OutputFormat {
  /// Spyglass's own recording (`-f spyglass`, `--save-recording`).
  package static var recording: OutputFormat { OutputFormat(RecordingWriter()) }
}

extension [UInt8] {
  /// A finite double as the shortest decimal that reads back as the same double (Swift's own
  /// printing, which JSON accepts: `100.0`, `0.25`, `1e-05`); non-finite values as 0.
  mutating func append(double value: Double) {
    append(value.isFinite ? "\(value)" : "0")
  }
}
