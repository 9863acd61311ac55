//===--- Profile.swift - what a recording is made of ----------------------===//
//
// The profile model sits between the sampler and the writers. Frames and stacks are interned once
// (a frame is a FrameID, a stack a StackID, both `Interner` ids), samples are aggregated as they
// arrive (so memory stays flat with duration), and for the formats that need every sample
// (speedscope, chrome trace, Spyglass's own recording) a per-sample record of 24 bytes (thread,
// stack, time and weight in nanoseconds) is kept only when asked for. Times and weights are kept
// in nanoseconds on both paths, so a writer sees the same numbers whether it reads the totals, the
// timeline, or a recording read back from a file.
//
//===----------------------------------------------------------------------===//

import SpyglassModel

extension Frame {
  /// A synthetic frame (`thread (…)`, `process …`, `<task …>`): no file, line 0.
  package init(pseudo name: String) { self.init(name: name, filename: "", line: 0, kind: .synthetic) }

  /// Whether it is a synthetic frame (a thread's, a process's or a task's label).
  package var isPseudo: Bool { kind == .synthetic }

  /// The short file name, or the file name when there is no short one.
  package var shortFile: String { shortFilename ?? filename }

  /// The frame as a profile keeps it: what identifies it for a user (names, files, lines,
  /// library, kind), without what only one look at it had (locals, entry flags).
  package var profiled: Frame {
    Frame(
      name: name, filename: filename, module: module, shortFilename: shortFile, line: line, firstLine: firstLine,
      kind: kind)
  }

  /// The label used by the flame graph, raw and top (`FrameLabel.text`).
  package func label(fullFilenames: Bool) -> String {
    FrameLabel.text(
      name: name, file: fullFilenames ? filename : shortFile, shortFile: shortFile, line: line, library: module)
  }
}

extension LineNo {
  /// The line mode's name in a recording file: `current`, `first_line` or `none`.
  package var recordingName: String {
    switch self {
    case .lastInstruction: "current"
    case .first: "first_line"
    case .noLine: "none"
    }
  }

  package init?(recordingName: String) {
    guard let mode = [LineNo.lastInstruction, .first, .noLine].first(where: { $0.recordingName == recordingName })
    else { return nil }
    self = mode
  }
}

/// How a frame is labelled everywhere it is shown as text (flame graph, raw, top, dump): a Python
/// frame `name (file:line)`, `name (file)` or `name`; a native frame `name (library)`, or with a
/// source line `name (library: file:line)`, the library by its file name (`libz.so.1`).
package enum FrameLabel {
  /// `shortFile` tells a native frame with a source file (it differs from the library's name).
  package static func text(name: String, file: String, shortFile: String, line: Int, library libraryPath: String?)
    -> String
  {
    if let libraryPath {
      let library = fileName(libraryPath)
      if shortFile == library || file.isEmpty { return "\(name) (\(library))" }
      return line != 0 ? "\(name) (\(library): \(file):\(line))" : "\(name) (\(library): \(file))"
    }
    if file.isEmpty { return name }
    if line != 0 { return "\(name) (\(file):\(line))" }
    return "\(name) (\(file))"
  }

  /// The last component of a path.
  package static func fileName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
  }
}

package typealias FrameID = UInt32
package typealias StackID = UInt32
package typealias ThreadIndex = UInt32

/// A thread (of one process) that samples were taken from.
package struct ThreadInfo: Hashable, Sendable {
  package var pid: Int32
  /// The Python thread id (the pthread_t value).
  package var threadID: UInt64
  /// The OS thread id, when known.
  package var osThreadID: Int32?
  /// The `threading` name, when known.
  package var name: String?
  /// CPU time the thread used over the recording, in nanoseconds, when measured.
  package var cpuNanoseconds: UInt64?

  package init(
    pid: Int32, threadID: UInt64, osThreadID: Int32? = nil, name: String? = nil, cpuNanoseconds: UInt64? = nil
  ) {
    self.pid = pid
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.name = name
    self.cpuNanoseconds = cpuNanoseconds
  }

  /// How the thread is named in outputs: the OS tid in decimal when known, else the pthread id in hex.
  package var displayID: String {
    if let osThreadID { return String(osThreadID) }
    return "0x" + String(threadID, radix: 16, uppercase: true)
  }
}

/// An aggregated stack: how many samples had it, and their total weight.
package struct StackTotal: Sendable, Equatable {
  package var count: UInt64
  /// Sum of weights in nanoseconds (1/rate per sample, or CPU time with --weight cpu).
  package var weightNanoseconds: UInt64
  package init(count: UInt64 = 0, weightNanoseconds: UInt64 = 0) {
    self.count = count
    self.weightNanoseconds = weightNanoseconds
  }

  mutating func add(weightNanoseconds weight: UInt64) {
    count += 1
    weightNanoseconds &+= weight
  }
}

/// One sample in time order (kept only when the profile `keepsTimeline`): 24 bytes.
package struct TimelineSample: Sendable, Equatable {
  package var thread: ThreadIndex
  package var stack: StackID
  /// Nanoseconds since the start of the recording.
  package var timeNanoseconds: UInt64
  /// Weight in nanoseconds (as the totals add it up).
  package var weightNanoseconds: UInt64
  package init(thread: ThreadIndex, stack: StackID, timeNanoseconds: UInt64, weightNanoseconds: UInt64) {
    self.thread = thread
    self.stack = stack
    self.timeNanoseconds = timeNanoseconds
    self.weightNanoseconds = weightNanoseconds
  }
}

/// The options that shaped a recording's frames: what a writer needs to know about them, and what
/// a recording file keeps so that it renders as the recording itself would have.
package struct FrameOptions: Sendable, Equatable {
  /// Which line a frame shows (`--function`: the first; `--nolineno`: none).
  package var lineNo: LineNo
  /// `--full-filenames`: labels show full file names instead of the shortened ones.
  package var fullFilenames: Bool
  /// `--threads`: every stack starts with a `thread (ID): NAME` pseudo-frame.
  package var threadFrames: Bool
  /// `--subprocesses`: every stack starts with `process …` pseudo-frames.
  package var processFrames: Bool

  package init(
    lineNo: LineNo = .lastInstruction, fullFilenames: Bool = false, threadFrames: Bool = false,
    processFrames: Bool = false
  ) {
    self.lineNo = lineNo
    self.fullFilenames = fullFilenames
    self.threadFrames = threadFrames
    self.processFrames = processFrames
  }
}

/// Facts about the recording that writers print (titles, summaries, metadata).
package struct RecordingInfo: Sendable, Equatable {
  /// The command line of the profiler or the profiled program, for titles.
  package var title: String
  /// Requested sampling rate in Hz.
  package var rate: Double
  package var pythonVersion: String
  /// Wall-clock duration of the recording in seconds.
  package var durationSeconds: Double
  /// Unix time of the start, in nanoseconds.
  package var startUnixNanoseconds: UInt64
  package var sampleCount: UInt64
  package var errorCount: UInt64
  /// "samples" (counts) or "cpu" (CPU-time weighted).
  package var weighting: Weighting
  /// The options that shaped the frames.
  package var frameOptions: FrameOptions

  package enum Weighting: String, Sendable, CaseIterable { case samples, cpu }

  package init(
    title: String = "", rate: Double = 100, pythonVersion: String = "", durationSeconds: Double = 0,
    startUnixNanoseconds: UInt64 = 0, sampleCount: UInt64 = 0, errorCount: UInt64 = 0,
    weighting: Weighting = .samples, frameOptions: FrameOptions = FrameOptions()
  ) {
    self.frameOptions = frameOptions
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
package struct Profile: Sendable {
  private var frameTable = Interner<Frame>()
  private var stackTable = Interner<[FrameID]>()
  private var threadKeys = Interner<ThreadKey>()

  /// The frames, indexed by FrameID.
  package var frames: [Frame] { frameTable.values }
  /// Interned stacks, root first, indexed by StackID.
  package var stacks: [[FrameID]] { stackTable.values }

  /// The threads, indexed by ThreadIndex (one per (pid, Python thread id)).
  package private(set) var threads: [ThreadInfo] = []

  /// Aggregated totals per (thread, stack).
  package private(set) var totals: [SampleKey: StackTotal] = [:]

  /// Samples in time order; empty unless `keepsTimeline`.
  package private(set) var timeline: [TimelineSample] = []
  package let keepsTimeline: Bool

  package var info: RecordingInfo

  package struct ThreadKey: Hashable, Sendable {
    package var pid: Int32
    package var threadID: UInt64
    package init(pid: Int32, threadID: UInt64) {
      self.pid = pid
      self.threadID = threadID
    }
  }

  /// What samples are totalled by: a thread and a stack.
  package struct SampleKey: Hashable, Sendable {
    package var thread: ThreadIndex
    package var stack: StackID
    package init(thread: ThreadIndex, stack: StackID) {
      self.thread = thread
      self.stack = stack
    }
  }

  package init(info: RecordingInfo = RecordingInfo(), keepsTimeline: Bool = false) {
    self.info = info
    self.keepsTimeline = keepsTimeline
  }

  /// Interns a frame (as `Frame.profiled` keeps it).
  package mutating func intern(_ frame: Frame) -> FrameID { frameTable.intern(frame.profiled) }

  /// Interns a stack given root first.
  package mutating func intern(stack: [FrameID]) -> StackID { stackTable.intern(stack) }

  /// Registers a thread, or updates its name/OS id/CPU time when they become known.
  package mutating func thread(_ info: ThreadInfo) -> ThreadIndex {
    let (index, inserted) = threadKeys.insert(ThreadKey(pid: info.pid, threadID: info.threadID))
    if inserted {
      threads.append(info)
    } else {
      if let name = info.name { threads[Int(index)].name = name }
      if let os = info.osThreadID { threads[Int(index)].osThreadID = os }
      if let cpu = info.cpuNanoseconds { threads[Int(index)].cpuNanoseconds = cpu }
    }
    return index
  }

  /// Records one sample of `stack` on `thread`.
  package mutating func add(
    thread: ThreadIndex, stack: StackID, weightNanoseconds: UInt64, timeNanoseconds: UInt64
  ) {
    let key = SampleKey(thread: thread, stack: stack)
    totals[key, default: StackTotal()].add(weightNanoseconds: weightNanoseconds)
    if keepsTimeline {
      timeline.append(
        TimelineSample(
          thread: thread, stack: stack, timeNanoseconds: timeNanoseconds, weightNanoseconds: weightNanoseconds))
    }
  }

  /// Total samples over all threads and stacks.
  package var totalSamples: UInt64 { totals.values.reduce(0) { $0 + $1.count } }
}
