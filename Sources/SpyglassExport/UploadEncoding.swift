//===--- UploadEncoding.swift - one interval's profiles as one request body --===//
//
// Every upload interval, each destination gets one request carrying every sampled process of the
// interval, in its wire format (docs/upload-formats.md describes both field by field):
//
// - `pyroscope`: Grafana Pyroscope's Push API, a `PushRequest` with one series per process whose
//   one raw profile is a gzipped pprof (PyroscopeEncoding.swift);
// - `otlp`: OTLP/HTTP profiles (opentelemetry-proto 1.10.0), an `ExportProfilesServiceRequest`
//   with one ResourceProfiles per process and one dictionary shared by all (OTLPEncoding.swift).
//
// What both formats share:
//
// - Frames are shown as `WriterOptions` says (line numbers on or off) with full file names, each
//   function keyed by (name, file, first line) as the `pprof` file keys it.
// - Synthetic frames (`thread (…)`, `process …`, `<task …>`) never go into an upload: an upload is
//   per process already, and each sample says its thread by its labels or attributes. A stack left
//   with no frame is dropped (its weight with it), and stacks of one thread that become the same
//   once those frames are gone are one sample.
// - A sample's value is its stack's weight in nanoseconds: samples × period, or CPU time with
//   `--weight cpu`; the sample type and the period type are both `cpu/nanoseconds`.
// - The profile's time is the interval's start, its duration the interval's length.
// - Identifiers that must be unique (Pyroscope's raw sample ID, OTLP's profile_id) are random.
// - Derived labels come first: a `--label` whose key (sanitised, for Pyroscope) is one of them,
//   or repeats an earlier `--label`'s, is left out; so is one with an empty key.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassOutput
import SpyglassProfile

/// Turns one interval's profiles into the request body of a destination's format.
package enum UploadEncoding {
  /// The request `format` sends for `profiles` (one process each). Random identifiers come from
  /// the system's generator.
  package static func encode(_ profiles: [IntervalProfile], as format: UploadFormat, options: WriterOptions)
    throws(SpyglassError) -> EncodedRequest
  {
    var random = SystemRandomNumberGenerator()
    return try encode(profiles, as: format, options: options, random: &random)
  }

  /// The same, with the random identifiers drawn from `random` (a seeded generator makes the
  /// output reproducible).
  package static func encode(
    _ profiles: [IntervalProfile], as format: UploadFormat, options: WriterOptions,
    random: inout some RandomNumberGenerator
  ) throws(SpyglassError) -> EncodedRequest {
    switch format {
    case .pyroscope: try pyroscopeRequest(profiles, options: options, random: &random)
    case .otlp: try otlpRequest(profiles, options: options, random: &random)
    }
  }
}

extension UploadEncoding {
  /// `count` random bytes.
  static func randomBytes(_ count: Int, _ random: inout some RandomNumberGenerator) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &random) }
  }

  /// A random (version 4) UUID in its text form: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
  static func randomUUID(_ random: inout some RandomNumberGenerator) -> String {
    var bytes = randomBytes(16, &random)
    bytes[6] = bytes[6] & 0x0F | 0x40
    bytes[8] = bytes[8] & 0x3F | 0x80
    let hex = bytes.map { byte in
      let text = String(byte, radix: 16)
      return byte < 0x10 ? "0" + text : text
    }
    return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
  }

  /// `labels` without empty keys and without keys already in `taken` or seen earlier in the list
  /// (the first of a key wins), `key` applied to each key first.
  static func userLabels(_ labels: [Label], excluding taken: Set<String>, key: (String) -> String) -> [Label] {
    var seen = taken
    var result: [Label] = []
    for label in labels {
      let name = key(label.key)
      guard !name.isEmpty, seen.insert(name).inserted else { continue }
      result.append(Label(name, label.value))
    }
    return result
  }
}
