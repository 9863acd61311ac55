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
import SpyglassProfile
import SwiftProtobuf

struct PprofWriter: ProfileWriter {
  var name: String { "pprof" }
  var summary: String { "gzipped pprof profile.proto (go tool pprof, Grafana Pyroscope)" }
  var fileExtension: String { "pb.gz" }
  var needsTimeline: Bool { false }
  var needsThreadNames: Bool { true }

  func render(_ profile: Profile, options: WriterOptions) throws(SpyglassError) -> [UInt8] {
    let message = Self.build(profile, options: options)
    let encoded: [UInt8]
    do {
      encoded = try message.serializedBytes()
    } catch {
      throw SpyglassError.renderFailed(format: name, reason: "cannot encode the profile: \(error)")
    }
    return try gzip(encoded, format: name)
  }

  static func build(_ profile: Profile, options: WriterOptions) -> Perftools_Profiles_Profile {
    // The string table: entry 0 is "", every other string once.
    var strings = Interner<String>()
    _ = strings.intern("")
    func string(_ text: String) -> Int64 { Int64(strings.intern(text)) }
    var result = Perftools_Profiles_Profile()

    func valueType(_ type: String, _ unit: String) -> Perftools_Profiles_ValueType {
      var value = Perftools_Profiles_ValueType()
      value.type = string(type)
      value.unit = string(unit)
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

    // Functions and locations, interned per profile frame; ids are the interner's plus one (0 is
    // "no function" to pprof).
    struct LocationKey: Hashable {
      var function: UInt32
      var line: Int
    }
    var functions = Interner<FunctionKey>()
    var locations = Interner<LocationKey>()
    let locationOfFrame = profile.frames.map { frame -> UInt64 in
      let shown = frame.shown(options)
      let function = functions.intern(FunctionKey(shown))
      return UInt64(locations.intern(LocationKey(function: function, line: shown.line))) + 1
    }
    result.function = functions.values.enumerated().map { index, key in
      var function = Perftools_Profiles_Function()
      function.id = UInt64(index) + 1
      function.name = string(key.name)
      // No system name: pprof "demangles" a function whose system name is its name, and its
      // C++ heuristics strip anything in angle brackets (`<module>` would show as nothing). A
      // function whose name differs from its system name counts as already demangled.
      function.filename = string(key.filename)
      function.startLine = Int64(key.firstLine)
      return function
    }
    result.location = locations.values.enumerated().map { index, key in
      var line = Perftools_Profiles_Line()
      line.functionID = UInt64(key.function) + 1
      line.line = Int64(key.line)
      var location = Perftools_Profiles_Location()
      location.id = UInt64(index) + 1
      location.mappingID = 1
      location.line = [line]
      return location
    }

    // Samples, in (thread, stack) order for determinism.
    let multiProcess = profile.hasSeveralProcesses
    let threadKey = string("thread")
    let pidKey = string("pid")
    let byThread = profile.totalsByThread()
    for thread in byThread.keys.sorted() {
      let info = profile.threads[Int(thread)]
      var threadLabel = Perftools_Profiles_Label()
      threadLabel.key = threadKey
      threadLabel.str = string(threadTitle(info, multiProcess: multiProcess))
      var pidLabel = Perftools_Profiles_Label()
      pidLabel.key = pidKey
      pidLabel.num = Int64(info.pid)
      for entry in byThread[thread] ?? [] {
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

    result.comment = [string("spyglass \(options.version)")]
    if !profile.info.title.isEmpty { result.comment.append(string(profile.info.title)) }
    if !profile.info.pythonVersion.isEmpty {
      result.comment.append(string("python \(profile.info.pythonVersion)"))
    }

    var mapping = Perftools_Profiles_Mapping()
    mapping.id = 1
    mapping.filename = string("python")
    mapping.hasFunctions_p = true
    mapping.hasFilenames_p = true
    mapping.hasLineNumbers_p = true
    result.mapping = [mapping]

    result.stringTable = strings.values
    return result
  }
}
