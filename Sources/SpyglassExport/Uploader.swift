//===--- Uploader.swift - interval profiles sent beside the sampling loop ---===//
//
// The sampling thread hands each interval's profiles to `submit`, which only appends them to a
// small inbox under a lock and wakes the uploader's thread: it never encodes, never touches the
// network, never waits for either. Two threads of the uploader's own do the rest:
//
//   the upload thread   takes the inbox, encodes each batch once per wire format (the injected
//                       encoder), appends the requests to each destination's bounded queue, and
//                       starts the next request of every destination that is free and due. It
//                       sleeps until news (a submission, an answer) or its next retry time.
//   one event loop      async-http-client's connections: sends, times out, and hands each answer
//                       back (a short critical section, then a wake-up of the upload thread).
//
// Each destination sends one request at a time, oldest first, and waits out its own back-off:
// a destination that fails or hangs holds only its own queue. `finish(within:)` stops taking
// profiles, lets the queues drain until its deadline, then cancels what is still on the wire,
// counts everything left as dropped, and shuts the connections and both threads down.
//
//===----------------------------------------------------------------------===//

import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SpyglassModel
import SpyglassProcess
import Synchronization

/// Encodes interval profiles into one request of a format (`UploadEncoding.encode`).
package typealias UploadEncoder =
  @Sendable ([IntervalProfile], UploadFormat) throws(SpyglassError) -> EncodedRequest

/// Sends interval profiles to every destination of its settings, beside the sampling loop.
package final class Uploader: Sendable {
  private let settings: UploadSettings
  private let encode: UploadEncoder
  private let report: @Sendable (String) -> Void
  private let group: MultiThreadedEventLoopGroup
  private let client: HTTPClient
  private let state: Mutex<UploaderState>
  private let wakeup = Wakeup()
  private let thread = Mutex<BackgroundThread?>(nil)
  /// Headers every request carries, per destination, built once.
  private let headers: [HTTPHeaders]

  /// Batches of profiles waiting to be encoded: the upload thread takes them within moments, so
  /// only a stalled encoder fills it; then the oldest batch is dropped (and counted).
  static let inboxLimit = 16
  /// The most bytes of an answer's body kept for its error sentence.
  static let excerptLimit = 160

  /// Starts the upload thread and the event loop. `report` receives each sentence for the user
  /// (standard error by default, as "spyglass> …").
  package init(
    _ settings: UploadSettings, encode: @escaping UploadEncoder,
    report: @escaping @Sendable (String) -> Void = { StandardStreams.printError("spyglass> " + $0) }
  ) throws(SpyglassError) {
    if let tenant = settings.tenant { try UploadDestination.checkHeader(name: "X-Scope-OrgID", value: tenant) }
    if let token = settings.bearerToken { try UploadDestination.checkHeader(name: "Authorization", value: token) }
    try UploadDestination.checkHeader(name: "User-Agent", value: settings.userAgent)

    var tls = TLSConfiguration.makeClientConfiguration()
    if let caFile = settings.caFile { tls.trustRoots = .certificates(try Uploader.loadCertificates(caFile)) }
    var configuration = HTTPClient.Configuration(
      tlsConfiguration: tls, redirectConfiguration: .disallow,
      timeout: .init(
        connect: .nanoseconds(Int64(max(0.001, settings.connectTimeout) * 1e9)),
        read: .nanoseconds(Int64(max(0.001, settings.requestTimeout) * 1e9))),
      decompression: .disabled)
    // A refused or failed connection fails its request at once: the retries, their back-off and
    // their messages are the uploader's own, and a connection refused surfaces immediately.
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 2

    self.settings = settings
    self.encode = encode
    self.report = report
    self.headers = settings.destinations.map { Uploader.headers(for: $0, settings) }
    self.state = Mutex(UploaderState(settings))
    self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    self.client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    do {
      let started = try BackgroundThread { [self] in self.run() }
      thread.withLock { $0 = started }
    } catch {
      try? client.syncShutdown()
      try? group.syncShutdownGracefully()
      throw .uploadStartFailed(errno: error.rawValue)
    }
  }

  /// Hands one interval's profiles over; returns at once. Encoding and sending happen on the
  /// uploader's threads. Ignored after `finish`.
  package func submit(_ profiles: [IntervalProfile]) {
    guard !profiles.isEmpty else { return }
    let taken = state.withLock { state in state.take(profiles) }
    if taken { wakeup.notify() }
  }

  /// Each destination's counts so far, in the order of the settings' destinations.
  package var counts: [UploadCounts] { state.withLock { state in state.lanes.map(\.counts) } }

  /// Stops taking profiles, sends what is queued until `seconds` from now, then cancels what is
  /// left on the wire, counts everything still queued as dropped, and stops the threads and
  /// connections. Returns the final counts; later calls return them again at once.
  package func finish(within seconds: Double) -> [UploadCounts] {
    let deadline = monotonicNanoseconds() &+ UInt64(max(0, min(seconds, 1e6)) * 1e9)
    let first = state.withLock { state -> Bool in
      guard case .running = state.phase else { return false }
      state.phase = .finishing(deadline: deadline)
      return true
    }
    if first {
      wakeup.notify()
      thread.withLock { $0?.join() }
      // Whatever is still on the wire was cancelled at the deadline: the shutdown only closes.
      try? client.shutdown().wait()
      try? group.syncShutdownGracefully()
    } else {
      // Another call is finishing: wait for it (the thread is joined once, under the lock).
      thread.withLock { _ in }
    }
    return counts
  }

  // MARK: - The upload thread

  private func run() {
    while true {
      for batch in state.withLock({ state in state.takeInbox() }) { encodeAndQueue(batch) }
      let now = monotonicNanoseconds()
      var sentences: [String] = []
      let step = state.withLock { state in state.nextStep(now: now, sentences: &sentences) }
      report(sentences)
      switch step {
      case .stop(let cancel):
        for task in cancel { task.cancel() }
        return
      case .work(let starts, let wake):
        for (lane, request, attempt) in starts { send(request, lane: lane, attempt: attempt) }
        if starts.isEmpty { wakeup.wait(until: wake) }
      }
    }
  }

  private func encodeAndQueue(_ batch: [IntervalProfile]) {
    var encoded: [UploadFormat: Result<EncodedRequest, SpyglassError>] = [:]
    for format in Set(settings.destinations.map(\.format)) {
      do throws(SpyglassError) {
        encoded[format] = .success(try encode(batch, format))
      } catch {
        encoded[format] = .failure(error)
      }
    }
    var sentences: [String] = []
    state.withLock { state in
      state.queue(encoded, profiles: batch.count, now: monotonicNanoseconds(), sentences: &sentences)
    }
    report(sentences)
  }

  private func send(_ request: EncodedRequest, lane: Int, attempt: UInt64) {
    let destination = settings.destinations[lane]
    var headers = self.headers[lane]
    headers.replaceOrAdd(name: "Content-Type", value: request.contentType)
    for header in destination.headers { headers.replaceOrAdd(name: header.key, value: header.value) }
    let httpRequest: HTTPClient.Request
    do {
      httpRequest = try HTTPClient.Request(
        url: destination.requestURL(path: request.path), method: .POST, headers: headers,
        body: .bytes(request.body))
    } catch {
      completed(
        lane: lane, attempt: attempt, .rejected(reason: "the request path '\(request.path.prefix(80))' is not valid"))
      return
    }
    var timeout = Int64(settings.requestTimeout * 1e9)
    if case .finishing(let deadline) = state.withLock({ $0.phase }) {
      timeout = min(timeout, Int64(deadline) - Int64(monotonicNanoseconds()))
    }
    let task = client.execute(
      request: httpRequest, delegate: AnswerCollector(), deadline: .now() + .nanoseconds(max(1, timeout)))
    state.withLock { state in state.started(task, lane: lane, attempt: attempt) }
    let requestTimeout = settings.requestTimeout
    let connectTimeout = settings.connectTimeout
    task.futureResult.whenComplete { [self] result in
      let outcome: AttemptOutcome
      switch result {
      case .success(let answer):
        outcome = RetryPolicy.outcome(
          status: answer.status, reasonPhrase: answer.reasonPhrase, retryAfter: answer.retryAfter,
          excerpt: answer.excerptText, nowUnixSeconds: Double(WallClock.unixSeconds()))
      case .failure(let error):
        outcome = .retry(
          reason: Uploader.describe(error, requestTimeout: requestTimeout, connectTimeout: connectTimeout),
          retryAfter: nil)
      }
      completed(lane: lane, attempt: attempt, outcome)
    }
  }

  /// An attempt's end (on the event loop, or on the upload thread for a request never sent).
  private func completed(lane: Int, attempt: UInt64, _ outcome: AttemptOutcome) {
    var sentences: [String] = []
    state.withLock { state in
      state.completed(lane: lane, attempt: attempt, outcome, now: monotonicNanoseconds(), sentences: &sentences)
    }
    report(sentences)
    wakeup.notify()
  }

  private func report(_ sentences: [String]) {
    for sentence in sentences { report(sentence) }
  }

  // MARK: - Requests

  /// The headers every request to `destination` carries but its content type.
  private static func headers(for destination: UploadDestination, _ settings: UploadSettings) -> HTTPHeaders {
    var headers = HTTPHeaders()
    headers.add(name: "User-Agent", value: settings.userAgent)
    if let authorization = destination.basicAuthorization {
      headers.add(name: "Authorization", value: authorization)
    } else if let token = settings.bearerToken {
      headers.add(name: "Authorization", value: "Bearer " + token)
    }
    if let tenant = settings.tenant { headers.add(name: "X-Scope-OrgID", value: tenant) }
    if destination.format == .pyroscope {
      // The Connect protocol's unary request: its version, and the client's deadline.
      headers.add(name: "Connect-Protocol-Version", value: "1")
      headers.add(name: "Connect-Timeout-Ms", value: String(Int64(max(1, settings.requestTimeout * 1000))))
    }
    return headers
  }

  private static func loadCertificates(_ path: String) throws(SpyglassError) -> [NIOSSLCertificate] {
    let pem: [UInt8]
    do {
      pem = try ProcFS.readFile(path, limit: 16 << 20)
    } catch {
      throw .uploadCAFileUnreadable(path: path, reason: error.description)
    }
    let certificates: [NIOSSLCertificate]
    do {
      certificates = try NIOSSLCertificate.fromPEMBytes(pem)
    } catch {
      throw .uploadCAFileUnreadable(
        path: path, reason: "it is not a PEM bundle of certificates (\(bounded(String(describing: error))))")
    }
    if certificates.isEmpty {
      throw .uploadCAFileUnreadable(path: path, reason: "it holds no PEM certificate")
    }
    return certificates
  }

  /// A failed attempt in a few words.
  static func describe(_ error: any Error, requestTimeout: Double, connectTimeout: Double) -> String {
    if let error = error as? HTTPClientError {
      switch error {
      case .deadlineExceeded, .readTimeout: return "no answer within \(formatSeconds(requestTimeout))"
      case .connectTimeout: return "no connection within \(formatSeconds(connectTimeout))"
      case .remoteConnectionClosed: return "the server closed the connection"
      case .cancelled: return "cancelled"
      default: return bounded(String(describing: error))
      }
    }
    if let error = error as? NIOConnectionError {
      if error.dnsAError != nil && error.dnsAAAAError != nil || error.connectionErrors.isEmpty {
        return "the host name '\(bounded(error.host))' cannot be resolved"
      }
      return describe(error.connectionErrors[0].error, requestTimeout: requestTimeout, connectTimeout: connectTimeout)
    }
    if let error = error as? IOError {
      if error.errnoCode == ECONNREFUSED { return "connection refused" }
      return "\(Errno(rawValue: error.errnoCode))"
    }
    if let channelError = error as? ChannelError, case .connectTimeout = channelError {
      return "no connection within \(formatSeconds(connectTimeout))"
    }
    let text = String(describing: error)
    if text.contains("CERTIFICATE_VERIFY_FAILED") {
      return "the server's certificate is not trusted: give the CA bundle that signed it (caFile)"
    }
    if error is NIOSSLExtraError || error is NIOSSLError { return "the TLS handshake failed: \(bounded(text))" }
    return bounded(text)
  }
}

/// Text of at most 200 characters, on one line.
func bounded(_ text: String) -> String {
  var out = ""
  for character in text.prefix(200) {
    out.append(character.isNewline || character == "\t" ? " " : character)
  }
  return text.count > 200 ? out + "…" : out
}

/// "0.5 s", "8 s", "1.5 s".
func formatSeconds(_ seconds: Double) -> String {
  if seconds >= 10 || seconds == seconds.rounded() { return "\(Int(seconds.rounded())) s" }
  return "\((seconds * 10).rounded() / 10) s"
}

// MARK: - State

/// Everything the uploader's threads share, behind one lock: the inbox, every destination's
/// queue and schedule, and the counts.
struct UploaderState {
  enum Phase {
    case running
    case finishing(deadline: UInt64)
    case stopped
  }

  /// One destination's side.
  struct Lane {
    let url: String
    var queue: UploadQueue
    var counts: UploadCounts
    /// The attempt on the wire (its number, and its task once started), if any.
    var sending: UInt64? = nil
    var task: HTTPClient.Task<UploadAnswer>? = nil
    var attempts: UInt64 = 0
    /// No attempt before this (monotonic nanoseconds).
    var notBefore: UInt64 = 0
    var consecutiveFailures = 0
    /// A failure was reported and its recovery not yet.
    var troubled = false
    var failureReports: Throttle
    var dropReports: Throttle
    /// Drops not told yet (the throttle held them back).
    var untoldDrops = 0
  }

  var phase = Phase.running
  var inbox: [[IntervalProfile]] = []
  var lanes: [Lane]
  let settings: UploadSettings

  init(_ settings: UploadSettings) {
    self.settings = settings
    lanes = settings.destinations.map {
      Lane(
        url: $0.url,
        queue: UploadQueue(limitBytes: settings.queueLimitBytes, limitRequests: settings.queueLimitRequests),
        counts: UploadCounts(url: $0.url), failureReports: Throttle(seconds: settings.reportInterval),
        dropReports: Throttle(seconds: settings.reportInterval))
    }
  }

  /// Takes a batch into the inbox (dropping the oldest when full); false once finishing.
  mutating func take(_ profiles: [IntervalProfile]) -> Bool {
    guard case .running = phase else { return false }
    if inbox.count >= Uploader.inboxLimit {
      let oldest = inbox.removeFirst()
      for index in lanes.indices { lanes[index].counts.droppedProfiles += oldest.count }
    }
    inbox.append(profiles)
    return true
  }

  mutating func takeInbox() -> [[IntervalProfile]] {
    defer { inbox.removeAll(keepingCapacity: true) }
    return inbox
  }

  /// One batch's requests (by format) into each destination's queue.
  mutating func queue(
    _ encoded: [UploadFormat: Result<EncodedRequest, SpyglassError>], profiles: Int, now: UInt64,
    sentences: inout [String]
  ) {
    for index in lanes.indices {
      guard let result = encoded[settings.destinations[index].format] else { continue }
      switch result {
      case .failure(let error):
        lanes[index].counts.droppedProfiles += profiles
        lanes[index].counts.lastError = bounded(error.description)
        if lanes[index].dropReports.ready(now: now) {
          sentences.append(
            "Could not encode \(profiles) profile\(profiles == 1 ? "" : "s") for upload to \(lanes[index].url): \(error.description)"
          )
        }
      case .success(let request):
        let dropped = lanes[index].queue.append(request, keepFirst: lanes[index].sending != nil)
        syncQueued(index)
        guard dropped.requests > 0 else { continue }
        lanes[index].counts.droppedProfiles += dropped.profiles
        lanes[index].counts.droppedBytes += dropped.bytes
        lanes[index].untoldDrops += dropped.profiles
        if lanes[index].dropReports.ready(now: now) {
          let count = lanes[index].untoldDrops
          lanes[index].untoldDrops = 0
          sentences.append(
            "Upload queue for \(lanes[index].url) is full (\(describeBytes(settings.queueLimitBytes))); dropped the oldest \(count) profile\(count == 1 ? "" : "s")."
          )
        }
      }
    }
  }

  enum Step {
    /// Start these attempts (lane, request, attempt number), or else sleep until `wake` (nil:
    /// until news).
    case work(starts: [(Int, EncodedRequest, UInt64)], wake: UInt64?)
    /// Finished: cancel these tasks and end the thread.
    case stop(cancel: [HTTPClient.Task<UploadAnswer>])
  }

  /// What the upload thread does next.
  mutating func nextStep(now: UInt64, sentences: inout [String]) -> Step {
    if !inbox.isEmpty { return .work(starts: [], wake: now) }
    var deadline: UInt64? = nil
    if case .finishing(let at) = phase { deadline = at }
    if let deadline {
      // Done when the deadline has come, or when nothing left can be sent before it.
      let idle = lanes.allSatisfy { $0.sending == nil && ($0.queue.isEmpty || $0.notBefore >= deadline) }
      if now >= deadline || idle { return .stop(cancel: abandon()) }
    }
    var starts: [(Int, EncodedRequest, UInt64)] = []
    var wake = deadline
    for index in lanes.indices where lanes[index].sending == nil {
      guard let request = lanes[index].queue.first else { continue }
      if lanes[index].notBefore <= now {
        lanes[index].attempts += 1
        lanes[index].sending = lanes[index].attempts
        starts.append((index, request, lanes[index].attempts))
      } else {
        wake = min(wake ?? .max, lanes[index].notBefore)
      }
    }
    return .work(starts: starts, wake: wake)
  }

  /// The end: whatever is queued or on the wire is dropped; the tasks to cancel.
  mutating func abandon() -> [HTTPClient.Task<UploadAnswer>] {
    phase = .stopped
    var cancel: [HTTPClient.Task<UploadAnswer>] = []
    for index in lanes.indices {
      if let task = lanes[index].task { cancel.append(task) }
      lanes[index].task = nil
      lanes[index].sending = nil
      let left = lanes[index].queue.removeAll()
      lanes[index].counts.droppedProfiles += left.profiles
      lanes[index].counts.droppedBytes += left.bytes
      syncQueued(index)
    }
    return cancel
  }

  mutating func started(_ task: HTTPClient.Task<UploadAnswer>, lane: Int, attempt: UInt64) {
    if case .stopped = phase {
      task.cancel()
      return
    }
    if lanes[lane].sending == attempt { lanes[lane].task = task }
  }

  mutating func completed(
    lane index: Int, attempt: UInt64, _ outcome: AttemptOutcome, now: UInt64, sentences: inout [String]
  ) {
    if case .stopped = phase { return }
    guard lanes[index].sending == attempt else { return }
    lanes[index].sending = nil
    lanes[index].task = nil
    let url = lanes[index].url
    switch outcome {
    case .sent:
      let request = lanes[index].queue.removeFirst()
      lanes[index].counts.sentRequests += 1
      lanes[index].counts.sentProfiles += request.profileCount
      lanes[index].consecutiveFailures = 0
      lanes[index].notBefore = 0
      if lanes[index].troubled {
        lanes[index].troubled = false
        lanes[index].failureReports.reset()
        sentences.append("Upload to \(url) works again.")
      }
    case .retry(let reason, let retryAfter):
      lanes[index].counts.failedAttempts += 1
      lanes[index].counts.lastError = bounded(reason)
      lanes[index].consecutiveFailures += 1
      let delay: Double
      if let retryAfter {
        // Never earlier than asked; a little later at random, so that agents spread out.
        let asked = min(max(0, retryAfter), settings.retryAfterLimit)
        delay = asked + Double.random(in: 0...min(1, asked * 0.1))
      } else {
        delay = RetryPolicy.backoff(
          failures: lanes[index].consecutiveFailures, initial: settings.retryInitialDelay,
          maximum: settings.retryMaxDelay, random: Double.random(in: 0...1))
      }
      lanes[index].notBefore = now &+ UInt64(delay * 1e9)
      let first = !lanes[index].troubled
      lanes[index].troubled = true
      if lanes[index].failureReports.ready(now: now) || first {
        let queued = lanes[index].queue.profiles
        sentences.append(
          "Upload to \(url) failed (\(bounded(reason))); retrying in \(formatSeconds(delay)), \(queued) profile\(queued == 1 ? "" : "s") queued."
        )
      }
    case .rejected(let reason):
      let request = lanes[index].queue.removeFirst()
      lanes[index].counts.droppedProfiles += request.profileCount
      lanes[index].counts.droppedBytes += request.body.count
      lanes[index].counts.lastError = bounded(reason)
      lanes[index].consecutiveFailures = 0
      lanes[index].notBefore = 0
      lanes[index].untoldDrops += request.profileCount
      if lanes[index].dropReports.ready(now: now) {
        let count = lanes[index].untoldDrops
        lanes[index].untoldDrops = 0
        sentences.append(
          "Upload to \(url) was refused (\(bounded(reason))); dropped \(count) profile\(count == 1 ? "" : "s"), not retried."
        )
      }
    }
    syncQueued(index)
  }

  private mutating func syncQueued(_ index: Int) {
    lanes[index].counts.queuedRequests = lanes[index].queue.count
    lanes[index].counts.queuedBytes = lanes[index].queue.bytes
  }
}

/// "32 MiB", "512 KiB", "100 bytes".
func describeBytes(_ bytes: Int) -> String {
  if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
  if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
  return "\(bytes) bytes"
}

// MARK: - Answers

/// What an answer was: its status, its `Retry-After` and the start of its body.
struct UploadAnswer: Sendable {
  var status = 0
  var reasonPhrase = ""
  var retryAfter: String? = nil
  var excerpt: [UInt8] = []

  /// The body's start as one line of text.
  var excerptText: String {
    let text = String(decoding: excerpt, as: UTF8.self)
    let line = String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    return line.split(separator: " ").joined(separator: " ")
  }
}

/// Keeps an answer's status and headers and at most `Uploader.excerptLimit` bytes of its body
/// (the rest is read and let go).
final class AnswerCollector: HTTPClientResponseDelegate, Sendable {
  typealias Response = UploadAnswer
  private let answer = Mutex(UploadAnswer())

  func didReceiveHead(task: HTTPClient.Task<UploadAnswer>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
    answer.withLock { answer in
      answer.status = Int(head.status.code)
      answer.reasonPhrase = String(head.status.reasonPhrase.prefix(60))
      answer.retryAfter = head.headers.first(name: "Retry-After").map { String($0.prefix(60)) }
    }
    return task.eventLoop.makeSucceededVoidFuture()
  }

  func didReceiveBodyPart(task: HTTPClient.Task<UploadAnswer>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
    answer.withLock { answer in
      let room = Uploader.excerptLimit - answer.excerpt.count
      if room > 0 { answer.excerpt.append(contentsOf: buffer.readableBytesView.prefix(room)) }
    }
    return task.eventLoop.makeSucceededVoidFuture()
  }

  func didFinishRequest(task: HTTPClient.Task<UploadAnswer>) throws -> UploadAnswer {
    answer.withLock { $0 }
  }
}
