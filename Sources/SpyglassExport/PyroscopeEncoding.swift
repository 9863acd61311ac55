//===--- PyroscopeEncoding.swift - Grafana Pyroscope's Push API ------------===//
//
// `POST /push.v1.PusherService/Push`, `Content-Type: application/proto` (the Connect protocol):
// a `push.v1.PushRequest` (Protos/pyroscope/push.proto) with one `RawProfileSeries` per process.
// A series' one `RawSample` holds the process's interval as a gzipped pprof (`raw_profile`) and a
// random UUID (`ID`).
//
// The series labels: `__name__` = `process_cpu` (Pyroscope's CPU profile type), `service_name`,
// `process_pid`, `host_name`, `process_runtime_version`, `container_id` (only when known), then
// the `--label`s. Decisions:
//
// - Names are made Prometheus-legal (`[a-zA-Z_][a-zA-Z0-9_]*`, what Pyroscope checks): every other
//   character (a dot, a dash, anything not ASCII) becomes `_`, and a name starting with a digit
//   gets a leading `_`; names are cut at 1024 bytes and values at 2048 (on a character boundary),
//   Pyroscope's default limits, which refuse the whole request when passed.
// - A `--label` never replaces a derived label (`__name__`, `service_name`, …), never takes a
//   name starting with `__` (Pyroscope's own, e.g. `__delta__`), nor `thread_id`/`thread_name`
//   (see below). A label with an empty value is left out (Prometheus reads it as no label); an
//   empty service name is sent as `unspecified`, what Pyroscope fills in for none.
// - At most 28 labels a series: Pyroscope's default limit is 30 label names a series
//   (`max_label_names_per_series`), and its distributor adds each sample's string labels to the
//   series' labels before checking it (`extractSampleSeries`, then `ValidateLabels`), so the two
//   sample labels below count too. The derived labels always fit; of the `--label`s, the first
//   ones given are kept and those past the limit are dropped.
// - Labels are sent sorted by name, as Prometheus-style series are. Pyroscope does not require
//   it (its distributor sorts a series' labels before validating them, and refuses a repeated
//   name), but a sorted set is the one canonical form of a series.
//
// The pprof (`PprofBuilder` with the shape below, the `pprof` file's functions and locations):
// exactly one sample type, `cpu/nanoseconds` (a stack's weight); period type `cpu/nanoseconds`,
// period 1e9/rate; time_nanos the interval's start, duration_nanos its length; string labels
// `thread_id` (the OS thread id when known, else the pthread id in hex, `ThreadInfo.displayID`)
// and `thread_name` (when known; Pyroscope ignores numeric labels); no synthetic frames; the
// comments name Spyglass and the Python version but not the command line (which the `pprof`
// file's comments hold, and which may carry secrets a backend should not get).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassOutput
import SpyglassProfile
import SwiftProtobuf

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

extension UploadEncoding {
  /// The Push API's path under the destination's URL.
  package static let pyroscopePath = "/push.v1.PusherService/Push"
  /// Pyroscope's default `max_label_names_per_series`.
  package static let pyroscopeLabelLimit = 30
  /// The sample labels each profile's samples carry; Pyroscope adds them to the series' labels.
  package static let pyroscopeSampleLabelKeys = ["thread_id", "thread_name"]
  /// The most labels a series is sent with: the limit less the sample labels.
  package static var pyroscopeSeriesLabelLimit: Int { pyroscopeLabelLimit - pyroscopeSampleLabelKeys.count }
  /// Pyroscope's default `max_label_name_length` and `max_label_value_length`, in bytes.
  package static let pyroscopeMaxNameLength = 1024
  package static let pyroscopeMaxValueLength = 2048

  /// `key` as a Prometheus label name: each character outside `[a-zA-Z0-9_]` becomes `_`, a
  /// leading digit gets a `_` before it, and the name is cut at 1024 bytes. "" stays "".
  package static func prometheusLabelName(_ key: String) -> String {
    var name = String(
      String.UnicodeScalarView(
        key.unicodeScalars.map { scalar in
          switch scalar {
          case "a"..."z", "A"..."Z", "0"..."9", "_": scalar
          default: "_"
          }
        }))
    if let first = name.unicodeScalars.first, ("0"..."9").contains(first) { name = "_" + name }
    return String(name.prefix(pyroscopeMaxNameLength))
  }

  /// `value` cut to at most `limit` bytes of UTF-8, on a character boundary.
  static func truncated(_ value: String, bytes limit: Int) -> String {
    if value.utf8.count <= limit { return value }
    var result = ""
    var size = 0
    for character in value {
      size += character.utf8.count
      if size > limit { break }
      result.append(character)
    }
    return result
  }

  /// A process's series labels as the Push API gets them (see the file's header): sorted by name,
  /// at most `pyroscopeSeriesLabelLimit`.
  package static func pyroscopeLabels(_ process: ProcessIdentity) -> [Label] {
    let derived = [
      Label("__name__", "process_cpu"),
      Label("service_name", process.serviceName.isEmpty ? "unspecified" : process.serviceName),
      Label("process_pid", String(process.pid)),
      Label("host_name", process.hostName),
      Label("process_runtime_version", process.runtimeVersion),
      Label("container_id", process.containerID ?? ""),
    ]
    let reserved = Set(derived.map(\.key) + pyroscopeSampleLabelKeys)
    let user = userLabels(process.labels, excluding: reserved) { key in
      let name = prometheusLabelName(key)
      return name.hasPrefix("__") ? "" : name
    }
    return (derived + user).filter { !$0.value.isEmpty }
      .prefix(pyroscopeSeriesLabelLimit)
      .map { Label($0.key, truncated($0.value, bytes: pyroscopeMaxValueLength)) }
      .sorted { $0.key < $1.key }
  }

  static func pyroscopeRequest(
    _ profiles: [IntervalProfile], options: WriterOptions, random: inout some RandomNumberGenerator
  ) throws(SpyglassError) -> EncodedRequest {
    var request = PyroscopePushRequest()
    for interval in profiles {
      var series = PyroscopeRawProfileSeries()
      series.labels = pyroscopeLabels(interval.process).map { label in
        var pair = PyroscopeLabelPair()
        pair.name = label.key
        pair.value = label.value
        return pair
      }
      var sample = PyroscopeRawSample()
      sample.rawProfile = Data(try PprofBuilder.encode(interval.profile, options: options, shape: .pyroscope))
      sample.id = randomUUID(&random)
      series.samples = [sample]
      request.series.append(series)
    }
    let body: [UInt8]
    do {
      body = try request.serializedBytes()
    } catch {
      throw .renderFailed(format: UploadFormat.pyroscope.rawValue, reason: "cannot encode the push request: \(error)")
    }
    return EncodedRequest(
      path: pyroscopePath, contentType: "application/proto", body: body, profileCount: profiles.count)
  }
}

extension PprofShape {
  /// A Pyroscope series' profile (see PyroscopeEncoding.swift's header).
  static let pyroscope = PprofShape(
    format: UploadFormat.pyroscope.rawValue,
    sampleTypes: [SampleType("cpu", "nanoseconds", .weightNanoseconds)],
    labelKeys: UploadEncoding.pyroscopeSampleLabelKeys,
    labels: { thread, _ in
      let name = thread.name.flatMap { $0.isEmpty ? nil : $0 }
      return [
        .string(thread.displayID),
        name.map { .string(UploadEncoding.truncated($0, bytes: UploadEncoding.pyroscopeMaxValueLength)) },
      ]
    },
    keepsSyntheticFrames: false, commentsTitle: false)
}
