//===--- Upload.swift - what continuous profiling sends, and where ---------===//
//
// Continuous profiling cuts a recording into intervals (`--upload-interval`, 10 s by default):
// every interval, each sampled process's samples of that interval become one `IntervalProfile`
// (an ordinary `Profile` whose info says when the interval started and how long it was), labelled
// with the process's `ProcessIdentity`. Each destination (`--upload URL`, repeatable) encodes the
// interval's profiles into one request of its format (`UploadEncoding`) and the `Uploader` sends
// it beside the sampling loop: a slow or failing backend never holds a tick.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

/// A destination's wire format (`--upload-format`).
package enum UploadFormat: String, CaseIterable, Sendable {
  /// Grafana Pyroscope's Push API: `POST {URL}/push.v1.PusherService/Push` (Connect protocol,
  /// `application/proto`), one series per process, each a gzipped pprof.
  case pyroscope
  /// OTLP/HTTP profiles (opentelemetry-proto 1.10.0, `v1development`):
  /// `POST {URL}/v1development/profiles`, `application/x-protobuf`.
  case otlp
}

/// One label: a key and a value (`--label KEY=VALUE`, and the labels Spyglass derives).
package struct Label: Sendable, Equatable, Hashable {
  package var key: String
  package var value: String
  package init(_ key: String, _ value: String) {
    self.key = key
    self.value = value
  }
}

/// Who a profile is of: what labels every upload of one process. Keys are OpenTelemetry's
/// semantic-convention names; Pyroscope gets the same labels under Prometheus-legal names
/// (`service_name`, `process_pid`, `host_name`, …: dots become underscores).
package struct ProcessIdentity: Sendable, Equatable {
  /// `service.name` / `service_name`: `--service-name`, else the process's `OTEL_SERVICE_NAME`,
  /// then `PYROSCOPE_APPLICATION_NAME`, else its script or module name.
  package var serviceName: String
  /// `process.pid`.
  package var pid: Int32
  /// `host.name`.
  package var hostName: String
  /// `process.runtime.version`: the interpreter's version (`3.12.1`).
  package var runtimeVersion: String
  /// `container.id`, from the process's cgroup, when it runs in one.
  package var containerID: String?
  /// `--label KEY=VALUE`s, in the order given.
  package var labels: [Label]

  package init(
    serviceName: String, pid: Int32, hostName: String, runtimeVersion: String, containerID: String? = nil,
    labels: [Label] = []
  ) {
    self.serviceName = serviceName
    self.pid = pid
    self.hostName = hostName
    self.runtimeVersion = runtimeVersion
    self.containerID = containerID
    self.labels = labels
  }
}

/// One process's samples over one upload interval. The profile's `info` holds the interval:
/// `startUnixNanoseconds`, `durationSeconds`, the sampling `rate` and the weighting; its threads
/// carry their OS ids and names.
package struct IntervalProfile: Sendable {
  package var profile: Profile
  package var process: ProcessIdentity
  package init(profile: Profile, process: ProcessIdentity) {
    self.profile = profile
    self.process = process
  }
}

/// A request ready to send: the path under the destination's URL, its content type and body.
package struct EncodedRequest: Sendable, Equatable {
  /// `/push.v1.PusherService/Push` or `/v1development/profiles`.
  package var path: String
  package var contentType: String
  package var body: [UInt8]
  /// How many interval profiles (processes) it carries.
  package var profileCount: Int
  package init(path: String, contentType: String, body: [UInt8], profileCount: Int) {
    self.path = path
    self.contentType = contentType
    self.body = body
    self.profileCount = profileCount
  }
}
