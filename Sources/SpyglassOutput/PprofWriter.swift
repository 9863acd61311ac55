//===--- PprofWriter.swift - gzipped pprof profile.proto --------------------===//
//
// The `perftools.profiles.Profile` message (Protos/profile.proto; Swift code generated into
// Generated/profile.pb.swift by Protos/generate.sh), gzip-compressed as pprof expects.
//
// - sample types `samples/count` and `cpu/nanoseconds` (a stack's count and total weight);
//   period type `cpu/nanoseconds`, period 1e9/rate;
// - one Function per distinct (name, full file name, first line), its start_line the code object's
//   first line; one Location per distinct (function, line) (line 0 when line numbers are off), all
//   in one Mapping ("python") that says it has functions, file names and lines: without it pprof
//   treats the locations as unsymbolized native code; functions have no system name (see below);
// - one Sample per (thread, stack) with location ids leaf first, a `thread` string label and a
//   `pid` numeric label;
// - time_nanos = start of the recording, duration_nanos = its length; comments name the exporter,
//   the title and the Python version.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassProfile
import SwiftProtobuf

enum PprofWriter {
  static func render(_ profile: Profile, options: WriterOptions) throws -> [UInt8] {
    let message = build(profile, options: options)
    let encoded: [UInt8]
    do {
      encoded = try message.serializedBytes()
    } catch {
      throw OutputError.encodingFailed(String(describing: error))
    }
    return try gzip(encoded)
  }

  static func build(_ profile: Profile, options: WriterOptions) -> Perftools_Profiles_Profile {
    var strings = StringTable()
    var result = Perftools_Profiles_Profile()

    func valueType(_ type: String, _ unit: String) -> Perftools_Profiles_ValueType {
      var value = Perftools_Profiles_ValueType()
      value.type = strings[type]
      value.unit = strings[unit]
      return value
    }
    result.sampleType = [valueType("samples", "count"), valueType("cpu", "nanoseconds")]
    result.periodType = valueType("cpu", "nanoseconds")
    if profile.info.rate > 0, profile.info.rate.isFinite {
      result.period = Int64(clamping: UInt64(1e9 / profile.info.rate))
    }
    result.timeNanos = Int64(clamping: profile.info.startUnixNanoseconds)
    let duration = profile.info.durationSeconds * 1e9
    if duration.isFinite, duration > 0, duration < 9e18 { result.durationNanos = Int64(duration) }

    // Functions and locations, interned per profile frame.
    struct FunctionKey: Hashable {
      var name: String
      var file: String
      var firstLine: Int
    }
    struct LocationKey: Hashable {
      var function: UInt64
      var line: Int
    }
    var functionIDs: [FunctionKey: UInt64] = [:]
    var locationIDs: [LocationKey: UInt64] = [:]
    var locationOfFrame = [UInt64](repeating: 0, count: profile.frames.count)
    for (i, frame) in profile.frames.enumerated() {
      let shown = frame.shown(options)
      let functionKey = FunctionKey(name: shown.name, file: shown.filename, firstLine: frame.firstLine)
      let functionID: UInt64
      if let id = functionIDs[functionKey] {
        functionID = id
      } else {
        functionID = UInt64(result.function.count + 1)
        functionIDs[functionKey] = functionID
        var function = Perftools_Profiles_Function()
        function.id = functionID
        function.name = strings[shown.name]
        // No system name: pprof "demangles" a function whose system name is its name, and its
        // C++ heuristics strip anything in angle brackets (`<module>` would show as nothing). A
        // function whose name differs from its system name counts as already demangled.
        function.filename = strings[shown.filename]
        function.startLine = Int64(frame.firstLine)
        result.function.append(function)
      }
      let locationKey = LocationKey(function: functionID, line: shown.line)
      if let id = locationIDs[locationKey] {
        locationOfFrame[i] = id
      } else {
        let id = UInt64(result.location.count + 1)
        locationIDs[locationKey] = id
        var line = Perftools_Profiles_Line()
        line.functionID = functionID
        line.line = Int64(shown.line)
        var location = Perftools_Profiles_Location()
        location.id = id
        location.mappingID = 1
        location.line = [line]
        result.location.append(location)
        locationOfFrame[i] = id
      }
    }

    // Samples, in (thread, stack) order for determinism.
    let multiProcess = profile.hasSeveralProcesses
    let threadKey = strings["thread"]
    let pidKey = strings["pid"]
    let byThread = profile.totalsByThread()
    for thread in byThread.keys.sorted() {
      let info = profile.threads[Int(thread)]
      var threadLabel = Perftools_Profiles_Label()
      threadLabel.key = threadKey
      threadLabel.str = strings[threadTitle(info, multiProcess: multiProcess)]
      var pidLabel = Perftools_Profiles_Label()
      pidLabel.key = pidKey
      pidLabel.num = Int64(info.pid)
      for entry in byThread[thread]! {
        var sample = Perftools_Profiles_Sample()
        sample.locationID = profile.stacks[Int(entry.stack)].reversed().map {
          locationOfFrame[Int($0)]
        }
        sample.value = [
          Int64(clamping: entry.total.count), Int64(clamping: entry.total.weightNanoseconds),
        ]
        sample.label = [threadLabel, pidLabel]
        result.sample.append(sample)
      }
    }

    result.comment = [strings["spyglass \(options.version)"]]
    if !profile.info.title.isEmpty { result.comment.append(strings[profile.info.title]) }
    if !profile.info.pythonVersion.isEmpty {
      result.comment.append(strings["python \(profile.info.pythonVersion)"])
    }

    var mapping = Perftools_Profiles_Mapping()
    mapping.id = 1
    mapping.filename = strings["python"]
    mapping.hasFunctions_p = true
    mapping.hasFilenames_p = true
    mapping.hasLineNumbers_p = true
    result.mapping = [mapping]

    result.stringTable = strings.strings
    return result
  }

  /// gzip via zlib (in the process layer).
  static func gzip(_ input: [UInt8]) throws -> [UInt8] {
    do { return try Compression.gzip(input) } catch { throw OutputError.compressionFailed(code: error.code) }
  }
}

/// pprof's string table: entry 0 is "", every other string appears once.
private struct StringTable {
  private(set) var strings: [String] = [""]
  private var index: [String: Int64] = ["": 0]

  subscript(_ text: String) -> Int64 {
    mutating get {
      if let i = index[text] { return i }
      let i = Int64(strings.count)
      strings.append(text)
      index[text] = i
      return i
    }
  }
}
