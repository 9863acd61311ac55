//===--- Uploading.swift - continuous profiling: --upload and its options ---===//
//
// `record --upload URL` and `agent --upload URL` cut what they sample into intervals
// (`--upload-interval`, 10 s) and send each interval's profile of each process to every backend
// given, labelled as `ProcessIdentity` says, while sampling goes on: the `Uploader` encodes and
// sends on threads of its own, queueing (bounded by bytes) while a backend is down or slow.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassExport
import SpyglassModel
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

extension UploadFormat: ExpressibleByArgument {}

/// `--label KEY=VALUE`.
struct LabelArgument: ExpressibleByArgument {
  let label: Label
  init?(argument: String) {
    guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
    label = Label(String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
  }
  var defaultValueDescription: String { "\(label.key)=\(label.value)" }
}

/// Continuous profiling's options, shared by record and agent.
struct UploadOptions: ParsableArguments {
  @Option(
    name: .customLong("upload"),
    help: ArgumentHelp(
      "Send a profile of every interval to this backend while recording (repeatable): a Pyroscope server's URL, or an OpenTelemetry Collector's OTLP/HTTP URL with --upload-format otlp; user:password@ in the URL is sent as basic auth, SPYGLASS_UPLOAD_TOKEN as a bearer token",
      valueName: "url"))
  var urls: [String] = []

  @Option(
    name: .customLong("upload-format"), help: "The backends' protocol: Pyroscope's Push API, or OTLP/HTTP profiles")
  var format: UploadFormat = .pyroscope

  @Option(
    name: .customLong("upload-interval"),
    help: ArgumentHelp("Seconds of samples in each uploaded profile", valueName: "seconds"))
  var interval: Double = 10

  @Option(
    name: .customLong("label"),
    help: ArgumentHelp("A label every uploaded profile carries (repeatable)", valueName: "key=value"))
  var labels: [LabelArgument] = []

  @Option(
    name: .customLong("service-name"),
    help:
      "The uploaded profiles' service name (default: each process's OTEL_SERVICE_NAME, then PYROSCOPE_APPLICATION_NAME, else its script or module name)"
  )
  var serviceName: String?

  @Option(name: .customLong("upload-tenant"), help: "The Pyroscope tenant to upload to (sent as X-Scope-OrgID)")
  var tenant: String?

  @Option(
    name: .customLong("upload-ca-file"),
    help: ArgumentHelp(
      "Trust the certificate authorities in this PEM file for HTTPS uploads (default: the system's)",
      valueName: "file"))
  var caFile: String?

  var enabled: Bool { !urls.isEmpty }

  func validate() throws {
    if !(interval >= 1 && interval <= 3600) {
      throw ValidationError("--upload-interval must be a number of seconds from 1 to 3600.")
    }
    if !enabled && (!labels.isEmpty || serviceName != nil || tenant != nil || caFile != nil) {
      throw ValidationError("--label, --service-name, --upload-tenant and --upload-ca-file need --upload URL.")
    }
    if let serviceName, serviceName.isEmpty { throw ValidationError("--service-name must not be empty.") }
  }

  /// The uploader's settings (URLs checked; an unreadable CA file is an error now, not at the
  /// first upload).
  func settings() throws(SpyglassError) -> UploadSettings {
    var destinations: [UploadDestination] = []
    for url in urls { destinations.append(try UploadDestination(url: url, format: format)) }
    var settings = UploadSettings(destinations: destinations)
    settings.caFile = caFile
    settings.tenant = tenant
    if let token = Environment.value("SPYGLASS_UPLOAD_TOKEN"), !token.isEmpty { settings.bearerToken = token }
    return settings
  }
}

/// A recording's continuous upload: its interval profiles, the identity of each process sampled
/// and the uploader.
final class ContinuousUpload {
  private let uploader: Uploader
  private var intervals: IntervalProfiles
  private var identities: [Int32: ProcessIdentity] = [:]
  /// Processes gone since the last interval was sent (their identities go once it is).
  private var gone: Set<Int32> = []
  private let serviceName: String?
  private let labels: [Label]
  /// `SPYGLASS_HOST_NAME` when set (a Kubernetes pod's UTS name is its own, not its node's: a
  /// DaemonSet passes `spec.nodeName` there), else the kernel's node name.
  private let hostName = Environment.value("SPYGLASS_HOST_NAME").flatMap { $0.isEmpty ? nil : $0 } ?? ProcFS.hostName()
  private let urls: [String]

  init(options: UploadOptions, rate: Double, weighting: RecordingInfo.Weighting) throws(SpyglassError) {
    let writerOptions = WriterOptions(fullFilenames: true, showLineNumbers: true)
    uploader = try Uploader(options.settings()) { profiles, format throws(SpyglassError) in
      try UploadEncoding.encode(profiles, as: format, options: writerOptions)
    }
    intervals = IntervalProfiles(interval: options.interval, rate: rate, weighting: weighting)
    serviceName = options.serviceName
    labels = options.labels.map(\.label)
    urls = options.urls
  }

  /// Adds one sampled thread of `process` to its profile of this interval.
  func add(_ thread: SampledThread, of process: AttachedProcess, weightNanoseconds: UInt64, timeNanoseconds: UInt64) {
    if identities[process.pid] == nil { identities[process.pid] = identity(of: process) }
    intervals.add(thread, of: process, weightNanoseconds: weightNanoseconds, timeNanoseconds: timeNanoseconds)
  }

  /// Sends the interval's profiles when it has run its length (call after every tick).
  func sendIfDue() {
    if intervals.isDue() { send() }
  }

  /// Ends the interval now and hands its profiles to the uploader.
  func send() {
    let profiles = intervals.cut().compactMap { pid, profile in
      identities[pid].map { IntervalProfile(profile: profile, process: $0) }
    }
    if !profiles.isEmpty { uploader.submit(profiles) }
    for pid in gone { identities[pid] = nil }
    gone.removeAll()
  }

  /// A process is gone: its identity is kept until its last interval is sent.
  func forget(_ pid: Int32) {
    gone.insert(pid)
  }

  /// Sends the last interval and what is queued (for at most `seconds`), then prints how the
  /// uploads went.
  func finish(within seconds: Double) {
    send()
    report(uploader.finish(within: seconds), final: true)
  }

  /// Prints how the uploads stand (SIGUSR1, and at the end).
  func report() { report(uploader.counts, final: false) }

  private func report(_ counts: [UploadCounts], final: Bool) {
    for count in counts {
      var line =
        "spyglass> Uploads to \(count.url): \(count.sentProfiles) profiles sent in \(count.sentRequests) requests"
      // At the end what was still queued has been counted as dropped (`finish`).
      if !final { line += ", \(count.queuedRequests) requests queued (\(count.queuedBytes) bytes)" }
      if count.droppedProfiles > 0 { line += ", \(count.droppedProfiles) profiles dropped (never sent)" }
      if count.failedAttempts > 0 { line += ", \(count.failedAttempts) failed attempts" }
      if let error = count.lastError { line += "; last error: \(terminalSafe(error))" }
      printError(line + ".")
    }
  }

  /// The labels of a process: service name, pid, host, Python version, container, `--label`s.
  private func identity(of process: AttachedProcess) -> ProcessIdentity {
    let info = process.source.info
    let environment = ProcFS.environmentValues(process.pid, names: Set(ServiceName.environmentVariables))
    let name =
      serviceName
      ?? ServiceName.of(commandLine: info.commandLine, environment: environment, executable: info.executable)
    return ProcessIdentity(
      serviceName: name, pid: process.pid, hostName: hostName, runtimeVersion: info.pythonVersion,
      containerID: ProcFS.containerID(process.pid), labels: labels)
  }
}
