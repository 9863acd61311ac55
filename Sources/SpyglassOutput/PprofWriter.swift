//===--- PprofWriter.swift - gzipped pprof profile.proto --------------------===//
//
// The `perftools.profiles.Profile` message (Protos/profile.proto; Swift code generated into
// Generated/profile.pb.swift by Protos/generate.sh), gzip-compressed as pprof expects. One builder,
// `PprofBuilder`, makes every pprof Spyglass writes: the `pprof` output file here, and the profile
// inside each series of a Pyroscope upload (SpyglassExport). What differs between them is a
// `PprofShape`: the sample types, the sample labels, whether synthetic frames are kept and whether
// the title goes into the comments. Everything else is the same:
//
// - period type `cpu/nanoseconds`, period 1e9/rate;
// - one Function per distinct (name, full file name, first line), its start_line the code object's
//   first line; one Location per distinct (function, line) (line 0 when line numbers are off), all
//   in one Mapping ("python") that says it has functions, file names and lines: without it pprof
//   treats the locations as unsymbolized native code; functions have no system name (see below);
// - one Sample per (thread, stack) with location ids leaf first, in thread then stack id order;
// - time_nanos = start of the recording, duration_nanos = its length; comments name the exporter,
//   the title and the Python version.
//
// The `pprof` file's shape (`PprofShape.file`): sample types `samples/count` and `cpu/nanoseconds`
// (a stack's count and total weight), a `thread` string label (`Thread 4242 "MainThread"`) and a
// `pid` numeric label, every frame kept (thread and process pseudo-frames included).
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
    try PprofBuilder.encode(profile, options: options, shape: .file)
  }
}

/// What a pprof profile holds besides its frames, stacks and times: what its samples measure, how
/// they are labelled, which frames are kept.
package struct PprofShape: Sendable {
  /// Which total of a (thread, stack) a sample value is.
  package enum Measure: Sendable {
    /// The number of samples.
    case count
    /// The summed weight in nanoseconds (samples × period, or CPU time with `--weight cpu`).
    case weightNanoseconds
  }

  /// One sample type: its name and unit in the profile, and what its values are.
  package struct SampleType: Sendable {
    package var type: String
    package var unit: String
    package var measure: Measure
    package init(_ type: String, _ unit: String, _ measure: Measure) {
      self.type = type
      self.unit = unit
      self.measure = measure
    }
  }

  /// A sample label's value.
  package enum LabelValue: Sendable, Equatable {
    case string(String)
    case number(Int64)
  }

  /// The format's name, for errors.
  package var format: String
  package var sampleTypes: [SampleType]
  /// The sample labels' keys, in the order they are written.
  package var labelKeys: [String]
  /// The label values of one thread's samples, parallel to `labelKeys` (nil: that label is left
  /// out); the flag says whether the profile covers several processes.
  package var labels: @Sendable (_ thread: ThreadInfo, _ multiProcess: Bool) -> [LabelValue?]
  /// Whether synthetic frames (`thread (…)`, `process …`) stay in the stacks. When they are
  /// dropped, a stack left with no frame is dropped too, and stacks of one thread that become the
  /// same are one sample.
  package var keepsSyntheticFrames: Bool
  /// Whether the recording's title (its command line) is one of the comments.
  package var commentsTitle: Bool

  package init(
    format: String, sampleTypes: [SampleType], labelKeys: [String],
    labels: @escaping @Sendable (_ thread: ThreadInfo, _ multiProcess: Bool) -> [LabelValue?],
    keepsSyntheticFrames: Bool, commentsTitle: Bool
  ) {
    self.format = format
    self.sampleTypes = sampleTypes
    self.labelKeys = labelKeys
    self.labels = labels
    self.keepsSyntheticFrames = keepsSyntheticFrames
    self.commentsTitle = commentsTitle
  }

  /// The `pprof` output file's: counts and weights, `thread` and `pid` labels, every frame.
  package static let file = PprofShape(
    format: "pprof",
    sampleTypes: [SampleType("samples", "count", .count), SampleType("cpu", "nanoseconds", .weightNanoseconds)],
    labelKeys: ["thread", "pid"],
    labels: { thread, multiProcess in
      [.string(threadTitle(thread, multiProcess: multiProcess)), .number(Int64(thread.pid))]
    },
    keepsSyntheticFrames: true, commentsTitle: true)
}

extension RecordingInfo {
  /// The sampling period in nanoseconds (1e9/rate, truncated), nil when the rate is not a
  /// positive finite number.
  package var periodNanoseconds: Int64? {
    guard rate > 0, rate.isFinite else { return nil }
    return Int64(clamping: UInt64(1e9 / rate))
  }

  /// The duration in whole nanoseconds, nil when it is not a positive finite number below 9e18.
  package var durationNanoseconds: Int64? {
    let duration = durationSeconds * 1e9
    guard duration.isFinite, duration > 0, duration < 9e18 else { return nil }
    return Int64(duration)
  }
}

/// The one pprof builder (see the file's header).
package enum PprofBuilder {
  /// The profile in `shape`, serialized and gzipped.
  package static func encode(_ profile: Profile, options: WriterOptions, shape: PprofShape) throws(SpyglassError)
    -> [UInt8]
  {
    let message = build(profile, options: options, shape: shape)
    let encoded: [UInt8]
    do {
      encoded = try message.serializedBytes()
    } catch {
      throw SpyglassError.renderFailed(format: shape.format, reason: "cannot encode the profile: \(error)")
    }
    return try gzip(encoded, format: shape.format)
  }

  static func build(_ profile: Profile, options: WriterOptions, shape: PprofShape) -> Perftools_Profiles_Profile {
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
    result.sampleType = shape.sampleTypes.map { valueType($0.type, $0.unit) }
    result.periodType = valueType("cpu", "nanoseconds")
    if let period = profile.info.periodNanoseconds { result.period = period }
    result.timeNanos = Int64(clamping: profile.info.startUnixNanoseconds)
    if let duration = profile.info.durationNanoseconds { result.durationNanos = duration }

    // Functions and locations, interned per profile frame; ids are the interner's plus one (0 is
    // "no function" to pprof). A dropped frame has no location.
    struct LocationKey: Hashable {
      var function: UInt32
      var line: Int
    }
    var functions = Interner<FunctionKey>()
    var locations = Interner<LocationKey>()
    let locationOfFrame = profile.frames.map { frame -> UInt64? in
      if frame.isPseudo && !shape.keepsSyntheticFrames { return nil }
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
    let labelKeys = shape.labelKeys.map(string)
    let byThread = profile.totalsByThread()
    for thread in byThread.keys.sorted() {
      let info = profile.threads[Int(thread)]
      // The thread's stacks as location lists, leaf first. With every frame kept, each (thread,
      // stack) is its own sample; with synthetic frames dropped, stacks that become the same list
      // are one sample, and a stack left empty is no sample.
      var samples: [(locations: [UInt64], total: StackTotal)] = []
      var sampleOfLocations: [[UInt64]: Int] = [:]
      for entry in byThread[thread] ?? [] {
        let locations = profile.stacks[Int(entry.stack)].reversed().compactMap { locationOfFrame[Int($0)] }
        if shape.keepsSyntheticFrames {
          samples.append((locations, entry.total))
        } else if let index = sampleOfLocations[locations] {
          samples[index].total.count += entry.total.count
          samples[index].total.weightNanoseconds &+= entry.total.weightNanoseconds
        } else if !locations.isEmpty {
          sampleOfLocations[locations] = samples.count
          samples.append((locations, entry.total))
        }
      }
      // The thread's labels, once it is known to have a sample (their strings go in the table then).
      if samples.isEmpty { continue }
      let labels = zip(labelKeys, shape.labels(info, multiProcess)).compactMap {
        key, value -> Perftools_Profiles_Label? in
        guard let value else { return nil }
        var label = Perftools_Profiles_Label()
        label.key = key
        switch value {
        case .string(let text): label.str = string(text)
        case .number(let number): label.num = number
        }
        return label
      }
      for (locations, total) in samples {
        var sample = Perftools_Profiles_Sample()
        sample.locationID = locations
        sample.value = shape.sampleTypes.map {
          switch $0.measure {
          case .count: Int64(clamping: total.count)
          case .weightNanoseconds: Int64(clamping: total.weightNanoseconds)
          }
        }
        sample.label = labels
        result.sample.append(sample)
      }
    }

    result.comment = [string("spyglass \(options.version)")]
    if shape.commentsTitle, !profile.info.title.isEmpty { result.comment.append(string(profile.info.title)) }
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
