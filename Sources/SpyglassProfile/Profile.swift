//===--- Profile.swift - what a recording is made of ----------------------===//
//
// The profile model sits between the sampler and the writers. Frames and stacks are interned once
// (a frame is a FrameID, a stack a StackID), samples are aggregated as they arrive (so memory stays
// flat with duration), and for the timeline formats (speedscope, chrome trace) a compact per-sample
// record of 16 bytes (thread, stack, time offset, weight) is kept only when asked for.
//
//===----------------------------------------------------------------------===//

/// One frame as the user sees it. Pseudo-frames (`thread (…)`, `process …`) have an empty filename
/// and line 0.
public struct Frame: Hashable, Sendable {
  /// Function name (qualified on 3.11+).
  public var name: String
  /// The full file name as the target reports it.
  public var filename: String
  /// The shortened file name (package-relative), shown unless --full-filenames.
  public var shortFilename: String
  /// Line number; 0 means "no line" (--nolineno, or unknown).
  public var line: Int
  /// The line the function starts on (its code object's first line); 0 when unknown.
  public var firstLine: Int
  /// True for synthetic frames (thread/process labels, native frames).
  public var isPseudo: Bool

  public init(
    name: String, filename: String, shortFilename: String? = nil, line: Int, firstLine: Int = 0,
    isPseudo: Bool = false
  ) {
    self.name = name
    self.filename = filename
    self.shortFilename = shortFilename ?? filename
    self.line = line
    self.firstLine = firstLine
    self.isPseudo = isPseudo
  }

  /// The label used by the flame graph, raw and top: `name (file:line)`, `name (file)` or `name`.
  public func label(fullFilenames: Bool) -> String {
    let file = fullFilenames ? filename : shortFilename
    if file.isEmpty { return name }
    if line != 0 { return "\(name) (\(file):\(line))" }
    return "\(name) (\(file))"
  }
}

public typealias FrameID = UInt32
public typealias StackID = UInt32
public typealias ThreadIndex = UInt32

/// A thread (of one process) that samples were taken from.
public struct ThreadInfo: Hashable, Sendable {
  public var pid: Int32
  /// The Python thread id (the pthread_t value).
  public var threadID: UInt64
  /// The OS thread id, when known.
  public var osThreadID: Int32?
  /// The `threading` name, when known.
  public var name: String?
  /// CPU time the thread used over the recording, in nanoseconds, when measured.
  public var cpuNanoseconds: UInt64?

  public init(pid: Int32, threadID: UInt64, osThreadID: Int32? = nil, name: String? = nil) {
    self.pid = pid
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.name = name
  }

  /// How the thread is named in outputs: the OS tid in decimal when known, else the pthread id in hex.
  public var displayID: String {
    if let osThreadID { return String(osThreadID) }
    return "0x" + String(threadID, radix: 16, uppercase: true)
  }
}

/// An aggregated stack: how many samples had it, and their total weight.
public struct StackTotal: Sendable, Equatable {
  public var count: UInt64
  /// Sum of weights in nanoseconds (1/rate per sample, or CPU time with --weight cpu).
  public var weightNanoseconds: UInt64
  public init(count: UInt64 = 0, weightNanoseconds: UInt64 = 0) {
    self.count = count
    self.weightNanoseconds = weightNanoseconds
  }

  mutating func add(weightNanoseconds weight: UInt64) {
    count += 1
    weightNanoseconds &+= weight
  }
}

/// One sample in time order (kept for timeline formats only): 16 bytes.
public struct TimelineSample: Sendable, Equatable {
  public var thread: ThreadIndex
  public var stack: StackID
  /// Microseconds since the start of the recording.
  public var timeMicroseconds: UInt32
  /// Weight in microseconds.
  public var weightMicroseconds: UInt32
  public init(thread: ThreadIndex, stack: StackID, timeMicroseconds: UInt32, weightMicroseconds: UInt32) {
    self.thread = thread
    self.stack = stack
    self.timeMicroseconds = timeMicroseconds
    self.weightMicroseconds = weightMicroseconds
  }
}

/// Facts about the recording that writers print (titles, summaries, metadata).
public struct RecordingInfo: Sendable, Equatable {
  /// The command line of the profiler or the profiled program, for titles.
  public var title: String
  /// Requested sampling rate in Hz.
  public var rate: Double
  public var pythonVersion: String
  /// Wall-clock duration of the recording in seconds.
  public var durationSeconds: Double
  /// Unix time of the start, in nanoseconds.
  public var startUnixNanoseconds: UInt64
  public var sampleCount: UInt64
  public var errorCount: UInt64
  /// "samples" (counts) or "cpu" (CPU-time weighted).
  public var weighting: Weighting

  public enum Weighting: String, Sendable { case samples, cpu }

  public init(
    title: String = "", rate: Double = 100, pythonVersion: String = "", durationSeconds: Double = 0,
    startUnixNanoseconds: UInt64 = 0, sampleCount: UInt64 = 0, errorCount: UInt64 = 0,
    weighting: Weighting = .samples
  ) {
    self.title = title
    self.rate = rate
    self.pythonVersion = pythonVersion
    self.durationSeconds = durationSeconds
    self.startUnixNanoseconds = startUnixNanoseconds
    self.sampleCount = sampleCount
    self.errorCount = errorCount
    self.weighting = weighting
  }
}

/// A whole recording.
public struct Profile: Sendable {
  public private(set) var frames: [Frame] = []
  private var frameIndex: [Frame: FrameID] = [:]

  /// Interned stacks, root first.
  public private(set) var stacks: [[FrameID]] = []
  private var stackIndex: [[FrameID]: StackID] = [:]

  public private(set) var threads: [ThreadInfo] = []
  private var threadIndex: [ThreadKey: ThreadIndex] = [:]

  /// Aggregated totals per (thread, stack).
  public private(set) var totals: [ThreadStack: StackTotal] = [:]

  /// Samples in time order; empty unless `keepsTimeline`.
  public private(set) var timeline: [TimelineSample] = []
  public let keepsTimeline: Bool

  public var info: RecordingInfo

  public struct ThreadKey: Hashable, Sendable {
    public var pid: Int32
    public var threadID: UInt64
    public init(pid: Int32, threadID: UInt64) {
      self.pid = pid
      self.threadID = threadID
    }
  }

  public struct ThreadStack: Hashable, Sendable {
    public var thread: ThreadIndex
    public var stack: StackID
    public init(thread: ThreadIndex, stack: StackID) {
      self.thread = thread
      self.stack = stack
    }
  }

  public init(info: RecordingInfo = RecordingInfo(), keepsTimeline: Bool = false) {
    self.info = info
    self.keepsTimeline = keepsTimeline
  }

  public mutating func intern(_ frame: Frame) -> FrameID {
    if let id = frameIndex[frame] { return id }
    let id = FrameID(frames.count)
    frames.append(frame)
    frameIndex[frame] = id
    return id
  }

  /// Interns a stack given root first.
  public mutating func intern(stack: [FrameID]) -> StackID {
    if let id = stackIndex[stack] { return id }
    let id = StackID(stacks.count)
    stacks.append(stack)
    stackIndex[stack] = id
    return id
  }

  /// Registers a thread, or updates its name/OS id when they become known.
  public mutating func thread(_ info: ThreadInfo) -> ThreadIndex {
    let key = ThreadKey(pid: info.pid, threadID: info.threadID)
    if let index = threadIndex[key] {
      if let name = info.name { threads[Int(index)].name = name }
      if let os = info.osThreadID { threads[Int(index)].osThreadID = os }
      if let cpu = info.cpuNanoseconds { threads[Int(index)].cpuNanoseconds = cpu }
      return index
    }
    let index = ThreadIndex(threads.count)
    threads.append(info)
    threadIndex[key] = index
    return index
  }

  /// Records one sample of `stack` on `thread`.
  public mutating func add(
    thread: ThreadIndex, stack: StackID, weightNanoseconds: UInt64, timeNanoseconds: UInt64
  ) {
    let key = ThreadStack(thread: thread, stack: stack)
    totals[key, default: StackTotal()].add(weightNanoseconds: weightNanoseconds)
    if keepsTimeline {
      timeline.append(
        TimelineSample(
          thread: thread, stack: stack,
          timeMicroseconds: UInt32(clamping: timeNanoseconds / 1000),
          weightMicroseconds: UInt32(clamping: weightNanoseconds / 1000)))
    }
  }

  /// Total samples over all threads and stacks.
  public var totalSamples: UInt64 { totals.values.reduce(0) { $0 + $1.count } }
}
