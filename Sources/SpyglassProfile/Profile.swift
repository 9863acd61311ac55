//===--- Profile.swift - what a recording is made of ----------------------===//
//
// The profile model sits between the sampler and the writers. Frames and stacks are interned once
// (a frame is a FrameID, a stack a StackID), samples are aggregated as they arrive (so memory stays
// flat with duration), and for the timeline formats (speedscope, chrome trace) a compact per-sample
// record of 16 bytes (thread, stack, time offset, weight) is kept only when asked for.
//
//===----------------------------------------------------------------------===//

import SpyglassModel

extension Frame {
  /// A synthetic frame (`thread (…)`, `process …`, `<task …>`): no file, line 0.
  package init(pseudo name: String) { self.init(name: name, filename: "", line: 0) }

  /// The frame as a profile keeps it: what identifies it for a user (names, files, lines,
  /// library), without what only one look at it had (locals, entry flags).
  package var profiled: Frame {
    Frame(
      name: name, filename: filename, module: module, shortFilename: shortFilename ?? filename, line: line,
      firstLine: firstLine)
  }

  /// The label used by the flame graph, raw and top (`FrameLabel.text`).
  package func label(fullFilenames: Bool) -> String {
    let short = shortFilename ?? filename
    return FrameLabel.text(
      name: name, file: fullFilenames ? filename : short, shortFile: short, line: line, library: module)
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

  package init(pid: Int32, threadID: UInt64, osThreadID: Int32? = nil, name: String? = nil) {
    self.pid = pid
    self.threadID = threadID
    self.osThreadID = osThreadID
    self.name = name
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

/// One sample in time order (kept for timeline formats only): 16 bytes.
package struct TimelineSample: Sendable, Equatable {
  package var thread: ThreadIndex
  package var stack: StackID
  /// Microseconds since the start of the recording.
  package var timeMicroseconds: UInt32
  /// Weight in microseconds.
  package var weightMicroseconds: UInt32
  package init(thread: ThreadIndex, stack: StackID, timeMicroseconds: UInt32, weightMicroseconds: UInt32) {
    self.thread = thread
    self.stack = stack
    self.timeMicroseconds = timeMicroseconds
    self.weightMicroseconds = weightMicroseconds
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

  package enum Weighting: String, Sendable { case samples, cpu }

  package init(
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
package struct Profile: Sendable {
  package private(set) var frames: [Frame] = []
  private var frameIndex: [Frame: FrameID] = [:]

  /// Interned stacks, root first.
  package private(set) var stacks: [[FrameID]] = []
  private var stackIndex: [[FrameID]: StackID] = [:]

  package private(set) var threads: [ThreadInfo] = []
  private var threadIndex: [ThreadKey: ThreadIndex] = [:]

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
  package mutating func intern(_ shown: Frame) -> FrameID {
    let frame = shown.profiled
    if let id = frameIndex[frame] { return id }
    let id = FrameID(frames.count)
    frames.append(frame)
    frameIndex[frame] = id
    return id
  }

  /// Interns a stack given root first.
  package mutating func intern(stack: [FrameID]) -> StackID {
    if let id = stackIndex[stack] { return id }
    let id = StackID(stacks.count)
    stacks.append(stack)
    stackIndex[stack] = id
    return id
  }

  /// Registers a thread, or updates its name/OS id when they become known.
  package mutating func thread(_ info: ThreadInfo) -> ThreadIndex {
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
  package mutating func add(
    thread: ThreadIndex, stack: StackID, weightNanoseconds: UInt64, timeNanoseconds: UInt64
  ) {
    let key = SampleKey(thread: thread, stack: stack)
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
  package var totalSamples: UInt64 { totals.values.reduce(0) { $0 + $1.count } }
}
