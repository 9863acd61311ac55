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

import SpyglassProcess
import SpyglassStacks

/// One tick of a `Sampler`.
public struct Sample: Sendable {
  /// Every sampled thread's stack (idle ones only with `Config.includeIdle`).
  public var traces: [StackTrace]
  /// When the sample was taken, since the sampler started.
  public var time: Duration
  /// Processes that could not be read at this tick (one failed read skips that process for
  /// one tick; it is not retried within the tick).
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
    var options = SessionOptions(pid: pid)
    options.rate = Double(Swift.max(1, config.samplingRate))
    options.gilOnly = config.gilOnly
    options.includeIdle = config.includeIdle
    options.subprocesses = config.subprocesses
    options.nonblocking = config.blocking != .lock
    options.native = config.native
    options.asyncMode = config.asyncAware ? config.asyncMode : nil
    let session = try SamplingSession(options: options)
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
      throw .pauseFailed(pid: pid, errno: error.errno)
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
    let rootPID = session.rootPID
    session.wakeEarly = { stop.isSet || queue.isClosed }
    let start = monotonicSeconds()
    var traces: [StackTrace] = []
    var errorsBefore = 0
    var tracedByPID: [Int32: TracedView] = [:]
    _ = session.run(
      start: start, shouldStop: { _ in stop.isSet || queue.isClosed },
      consume: { process, threads in
        let view =
          tracedByPID[process.sampler.pid]
          ?? {
            let made = TracedView(process: process)
            tracedByPID[process.sampler.pid] = made
            return made
          }()
        for thread in threads where config.keeps(thread) {
          traces.append(view.trace(of: thread, config: config))
        }
      },
      afterTick: { status in
        let now = monotonicSeconds() - start
        let lag = status.lag
        var errors: [SpyglassError] = []
        if status.errors > errorsBefore {
          errors = Array(
            repeating: SpyglassError.readFailed(pid: rootPID, reason: "a read failed"),
            count: status.errors - errorsBefore)
          errorsBefore = status.errors
        }
        queue.push(
          Sample(
            traces: traces, time: .nanoseconds(Int64(now * 1e9)), samplingErrors: errors,
            lateBy: .nanoseconds(Int64(lag * 1e9))))
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

/// Turns an attached process's sampled threads into `StackTrace`s.
final class TracedView {
  let process: AttachedProcess
  let info: PythonProcessInfo

  init(process: AttachedProcess) {
    self.process = process
    let target = process.sampler.target
    info = PythonProcessInfo(
      pid: target.pid, commandLine: target.commandLine, executable: target.executablePath,
      pythonVersion: target.version.description)
  }

  func trace(of thread: ThreadStack, config: Config) -> StackTrace {
    StackTraceBuilder.trace(
      of: thread, sampler: process.sampler, shortener: process.shortener, info: info, config: config)
  }
}

/// The one conversion from a sampled thread to a `StackTrace`.
enum StackTraceBuilder {
  static func trace(
    of thread: ThreadStack, sampler: ProcessSampler, shortener: FilenameShortener, info: PythonProcessInfo,
    config: Config
  ) -> StackTrace {
    var frames: [Frame] = thread.frames.enumerated().map { index, frame in
      var made = self.frame(frame, sampler: sampler, shortener: shortener, config: config)
      made.locals = thread.locals?[index].map {
        LocalVariable(name: $0.name, address: $0.address, isArgument: $0.isArgument, repr: $0.repr)
      }
      return made
    }
    // Async-aware roots (`<task NAME>`) are the outermost frames.
    frames += thread.roots.reversed().map { Frame(name: $0, filename: "", line: 0) }
    if !frames.isEmpty { frames[frames.count - 1].isShimEntry = true }
    return StackTrace(
      pid: thread.pid, threadID: thread.threadID, threadName: thread.name,
      osThreadID: thread.osThreadID.map { UInt64($0) }, active: thread.active, ownsGIL: thread.ownsGIL,
      frames: frames, processInfo: info)
  }

  /// One sampled frame as the library hands it out.
  static func frame(_ frame: SampledFrame, sampler: ProcessSampler, shortener: FilenameShortener, config: Config)
    -> Frame
  {
    self.frame(frame, code: sampler.code(frame.code), shortener: shortener, config: config)
  }

  /// One sampled frame, whose code object (or native symbol) is `code`, as the library hands it out.
  static func frame(_ frame: SampledFrame, code: CodeInfo, shortener: FilenameShortener, config: Config) -> Frame {
    let line: Int
    switch config.lineNo {
    case .noLine: line = 0
    case .first: line = code.firstLine
    case .lastInstruction: line = Int(frame.line)
    }
    return Frame(
      name: code.name, filename: code.filename, module: code.library,
      shortFilename: config.fullFilenames && code.library == nil
        ? code.filename : NativeFrames.shortFilename(code, shortener: shortener), line: line,
      isEntry: frame.isEntry)
  }

  /// The tasks of one sample as the library hands them out.
  static func tasks(
    _ snapshot: AsyncSnapshot, pid: Int32, sampler: ProcessSampler, shortener: FilenameShortener, config: Config
  ) -> [TaskTrace] {
    snapshot.tasks.map { task in
      let state: TaskTrace.State
      switch task.state {
      case .running: state = .running
      case .pending: state = .pending
      case .done: state = .done
      }
      return TaskTrace(
        pid: pid, id: task.address, name: task.name, state: state,
        threadID: task.state == .running ? task.threadID : nil,
        frames: task.frames.map { frame($0, sampler: sampler, shortener: shortener, config: config) },
        awaitedBy: task.awaitedBy)
    }
  }
}
