//===--- ProfileWriting.swift - samples into profile files, from the library ---===//
//
// An embedding program that samples with `Sampler` (or reads `StackTrace`s with `PythonSpy`) turns
// them into any format `spyglass record` writes — flame graph, speedscope, Chrome trace, raw,
// pprof, pstats, callgrind, Spyglass's own recording — without the command line: a
// `ProfileRecorder` folds the stacks into the same profile model `record` uses and renders it with
// the same writers (SpyglassOutput's registry, listed by `ProfileFormat.all`).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile

/// A file format profiles are written in: every format `spyglass record -f` takes.
///
/// ```swift
/// let svg = ProfileFormat(name: "flamegraph")!
/// print(ProfileFormat.all.map(\.name))  // flamegraph, speedscope, chrometrace, raw, pprof, …
/// ```
public struct ProfileFormat: Sendable, Hashable, CustomStringConvertible {
  let format: OutputFormat

  init(_ format: OutputFormat) { self.format = format }

  /// The format `spyglass record -f NAME` writes, or nil when there is none of that name.
  public init?(name: String) {
    guard let format = OutputFormat(name: name) else { return nil }
    self.format = format
  }

  /// Every format, in the order `spyglass record --help` lists them (the flame graph first).
  public static var all: [ProfileFormat] { OutputFormat.all.map(ProfileFormat.init) }

  /// The name on the command line (`flamegraph`, `speedscope`, …).
  public var name: String { format.name }
  /// The conventional file name extension, without the dot (`svg`, `pb.gz`, …).
  public var fileExtension: String { format.fileExtension }
  /// One line on what the file is and what reads it.
  public var summary: String { format.summary }
  public var description: String { format.name }
}

/// Folds stack traces into a profile and writes it in any `ProfileFormat`, as `spyglass record`
/// writes its files.
///
/// ```swift
/// let sampler = try Sampler(pid: pid, config: Config(samplingRate: 200))
/// let recorder = ProfileRecorder(rate: 200, title: "my app", pythonVersion: sampler.version)
/// for sample in sampler.prefix(2000) { recorder.add(sample) }
/// try recorder.write(to: "profile.svg", format: ProfileFormat(name: "flamegraph")!)
/// ```
///
/// Every sample is kept (in time order), so every format can be rendered, as often as wanted, and
/// the `spyglass` format's recording converts later with `spyglass convert` exactly as the recorder
/// would render it. A recorder is not thread-safe: use it from one thread at a time.
public final class ProfileRecorder {
  private var profile: Profile
  private let threadFrames: Bool
  private let rate: Double
  private var scratch: [FrameID] = []
  private var latest: Duration = .zero

  /// - Parameters:
  ///   - rate: the sampling rate, in samples a second (the weight of a sample added without one is
  ///     1/rate, and pprof's period).
  ///   - title: shown as the flame graph's title, speedscope's name, pprof's comment.
  ///   - pythonVersion: the target's Python version (`Sampler.version`, `PythonSpy.version`).
  ///   - lineNo: the `Config.lineNo` the traces were read with (a recording keeps it).
  ///   - fullFilenames: label frames with full file names instead of the shortened ones.
  ///   - threadFrames: start every stack with a `thread (ID): NAME` frame (`record --threads`).
  public init(
    rate: Double = 100, title: String = "", pythonVersion: String = "", lineNo: LineNo = .lastInstruction,
    fullFilenames: Bool = false, threadFrames: Bool = false
  ) {
    self.rate = rate > 0 && rate.isFinite ? rate : 100
    self.threadFrames = threadFrames
    profile = Profile(
      info: RecordingInfo(
        title: title, rate: self.rate, pythonVersion: pythonVersion,
        startUnixNanoseconds: WallClock.unixSeconds() * 1_000_000_000,
        frameOptions: FrameOptions(lineNo: lineNo, fullFilenames: fullFilenames, threadFrames: threadFrames)),
      keepsTimeline: true)
  }

  /// How many thread stacks were added (a `Sample` adds one per trace).
  public var sampleCount: Int { Int(profile.info.sampleCount) }

  /// The length of the recording (the flame graph's subtitle, pprof's duration): each `add` with
  /// a later time than any before sets it to that time; set it after the last `add` to give
  /// another.
  public var duration: Duration {
    get { .nanoseconds(Int64(profile.info.durationSeconds * 1e9)) }
    set {
      let (seconds, attoseconds) = newValue.components
      profile.info.durationSeconds = max(0, Double(seconds) + Double(attoseconds) / 1e18)
    }
  }

  /// Sampling errors to show (the flame graph's subtitle).
  public var errorCount: Int {
    get { Int(profile.info.errorCount) }
    set { profile.info.errorCount = UInt64(max(0, newValue)) }
  }

  /// Adds every trace of a `Sampler`'s sample, at its time, each weighing 1/rate; the sample's
  /// errors count towards `errorCount`.
  public func add(_ sample: Sample) {
    add(sample.traces, at: sample.time)
    profile.info.errorCount += UInt64(sample.samplingErrors.count)
  }

  /// Adds `traces` (one look at some threads) at `time` since the start, each weighing `weight`
  /// (1/rate when nil). A trace without frames is not a sample (no format could draw it).
  public func add(_ traces: [StackTrace], at time: Duration, weight: Duration? = nil) {
    let nanoseconds = Self.nanoseconds(time)
    let weightNanoseconds = weight.map(Self.nanoseconds) ?? UInt64(1e9 / rate)
    for trace in traces where !trace.frames.isEmpty {
      let thread = profile.thread(
        ThreadInfo(
          pid: trace.pid, threadID: trace.threadID, osThreadID: trace.osThreadID.flatMap { Int32(exactly: $0) },
          name: trace.threadName))
      scratch.removeAll(keepingCapacity: true)
      if threadFrames {
        let id = trace.osThreadID.map(String.init) ?? ("0x" + String(trace.threadID, radix: 16, uppercase: true))
        let name = trace.threadName.map { "thread (\(id)): \($0)" } ?? "thread (\(id))"
        scratch.append(profile.intern(Frame(pseudo: name)))
      }
      for frame in trace.frames.reversed() { scratch.append(profile.intern(frame)) }
      profile.add(
        thread: thread, stack: profile.intern(stack: scratch), weightNanoseconds: weightNanoseconds,
        timeNanoseconds: nanoseconds)
      profile.info.sampleCount += 1
    }
    if time > latest {
      latest = time
      duration = time
    }
  }

  /// The profile as a file of `format`.
  public func render(format: ProfileFormat) throws(SpyglassError) -> [UInt8] {
    do {
      return try format.format.render(profile, options: WriterOptions(profile.info.frameOptions))
    } catch {
      throw .renderFailed(format: format.name, reason: error.description)
    }
  }

  /// Writes the profile as a file of `format` at `path` (a temporary file renamed over it, so a
  /// failed write never leaves half a file).
  public func write(to path: String, format: ProfileFormat) throws(SpyglassError) {
    let bytes = try render(format: format)
    do { try OutputFile(path).write(bytes) } catch { throw .outputWriteFailed(path: path, errno: error.rawValue) }
  }

  private static func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    return UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000).partialValue
      &+ UInt64(clamping: attoseconds / 1_000_000_000)
  }
}
