//===--- Sampler.swift - stack traces at a steady rate, as a sequence ------===//
//
// py-spy's `Sampler`: a thread of its own samples the target (and, with `Config.subprocesses`,
// its children as they appear) at `Config.samplingRate` through the same loop `spyglass record`
// and `top` run, and hands each sample over through a bounded queue. Iterating the sampler takes
// the samples in order; leaving the loop (or `finish()`, or dropping the sampler) stops the thread, which lets go
// of the target: in blocking mode a thread is only ever held for one walk, so nothing stays
// paused whatever happens to the caller.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassStacks

/// One tick of a `Sampler`.
public struct Sample: Sendable {
  /// Every sampled thread's stack (idle ones only with `Config.includeIdle`).
  public var traces: [StackTrace]
  /// When the sample was taken, since the sampler started.
  public var time: Duration
  /// Why each process that could not be read at this tick was not (one failed read skips that
  /// process for one tick; it is not retried within the tick).
  public var samplingErrors: [SpyglassError]
  /// How far behind its schedule the sampler was at this tick (zero when on time).
  public var lateBy: Duration
}

/// Samples a Python process at `Config.samplingRate` on a thread of its own.
///
/// ```swift
/// let sampler = try Sampler(pid: pid, config: Config(samplingRate: 200))
/// for sample in sampler.prefix(1000) {
///   for trace in sample.traces where trace.ownsGIL { print(trace.frames.first?.name ?? "-") }
/// }
/// ```
///
/// The sequence ends when every sampled process has exited. A consumer slower than the rate
/// loses the oldest samples, never the newest (`droppedSamples` counts them); the sampling
/// thread never waits for the consumer.
public final class Sampler: Sequence, @unchecked Sendable {
  public let pid: Int32
  public let config: Config
  /// The root process's CPython version.
  public let version: String

  private let queue: BlockingQueue<Sample>
  private let stop = Stop()
  private var thread: BackgroundThread?

  /// Attaches to `pid` and starts sampling at once.
  public init(pid: Int32, config: Config) throws(SpyglassError) {
    if config.native && config.blocking != .lock { throw .nativeNeedsBlocking }
    self.pid = pid
    self.config = config
    let session = try SamplingSession(options: SessionOptions(pid: pid, config: config))
    version = session.pythonVersion
    // A second's worth of samples, at least 16.
    let queue = BlockingQueue<Sample>(capacity: Swift.max(16, config.samplingRate))
    self.queue = queue
    let stop = self.stop
    let config = self.config
    do {
      thread = try BackgroundThread {
        Sampler.run(session: session, config: config, queue: queue, stop: stop)
      }
    } catch {
      throw .threadStartFailed(errno: error.rawValue)
    }
  }

  deinit { finish() }

  /// Stops sampling (idempotent): the thread ends after its current tick and the sequence after
  /// the samples already queued.
  public func finish() {
    stop.set()
    queue.close()
    thread?.join()
    thread = nil
  }

  /// Whether sampling has ended (`finish`, the end of an iteration, or every target's exit).
  public var isFinished: Bool { queue.isClosed }

  /// How many samples a slow consumer lost.
  public var droppedSamples: Int { queue.dropped }

  /// The samples in order. Breaking out of a `for` loop over the sampler ends its iterator, and
  /// with it the sampling (as py-spy's: iterate a sampler once); `finish()` does the same.
  public struct Iterator: IteratorProtocol {
    let sampler: Sampler
    let scope: IterationScope
    public mutating func next() -> Sample? { sampler.queue.pop() }
  }

  public func makeIterator() -> Iterator { Iterator(sampler: self, scope: IterationScope(self)) }

  /// The sampling thread.
  private static func run(session: SamplingSession, config: Config, queue: BlockingQueue<Sample>, stop: Stop) {
    var session = session
    session.wakeEarly = { stop.isSet || queue.isClosed }
    let start = monotonicSeconds()
    var traces: [StackTrace] = []
    _ = session.run(
      start: start, shouldStop: { _ in stop.isSet || queue.isClosed },
      consume: { process, threads in
        var info = process.source.info
        info.parentPID = process.parent
        for thread in threads where config.keeps(thread) {
          traces.append(TraceBuilder.trace(of: thread, resolver: process.source.resolver, info: info, config: config))
        }
      },
      afterTick: { status in
        let now = monotonicSeconds() - start
        queue.push(
          Sample(
            traces: traces, time: .nanoseconds(Int64(now * 1e9)), samplingErrors: status.tickErrors,
            lateBy: .nanoseconds(Int64(status.lag * 1e9))))
        traces.removeAll(keepingCapacity: true)
      })
    queue.close()
  }
}

/// Lives as long as an iterator (and its copies): when the last copy goes, sampling ends.
final class IterationScope: @unchecked Sendable {
  private weak var sampler: Sampler?
  init(_ sampler: Sampler) { self.sampler = sampler }
  deinit { sampler?.finish() }
}

/// A flag one thread sets and another reads.
final class Stop: @unchecked Sendable {
  private let lock = Lock()
  private var value = false
  var isSet: Bool { lock.withLock { value } }
  func set() { lock.withLock { value = true } }
}
