//===--- IntervalProfiles.swift - a recording cut into upload intervals ------===//
//
// Continuous profiling sends every interval's samples of each process as a profile of its own.
// `IntervalProfiles` folds each sampled thread into its process's profile of the current interval
// (one ProfileBuilder per process, started afresh every interval so that memory stays flat however
// long the recording runs) and `cut` hands them out with the interval they cover.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

package struct IntervalProfiles {
  /// The interval's length in seconds.
  package let interval: Double
  private let rate: Double
  private let weighting: RecordingInfo.Weighting
  private let lineNo: LineNo
  private var builders: [Int32: ProfileBuilder] = [:]
  /// The current interval's start: Unix time (for the profiles) and monotonic (for its length).
  private var startUnixNanoseconds: UInt64
  private var startMonotonic: Double

  package init(interval: Double, rate: Double, weighting: RecordingInfo.Weighting, lineNo: LineNo = .lastInstruction) {
    self.interval = interval
    self.rate = rate
    self.weighting = weighting
    self.lineNo = lineNo
    startUnixNanoseconds = WallClock.unixNanoseconds()
    startMonotonic = monotonicSeconds()
  }

  /// Adds one sampled thread of `process` (its interval profile is made on its first sample).
  package mutating func add(
    _ thread: SampledThread, of process: AttachedProcess, weightNanoseconds: UInt64, timeNanoseconds: UInt64
  ) {
    let pid = process.pid
    // Through the entry's index, in place: `builders[pid]?.add` would copy the builder (and with
    // it every table of its profile) on each sample.
    var slot = builders.index(forKey: pid)
    if slot == nil {
      builders[pid] = ProfileBuilder(
        profile: Profile(
          info: RecordingInfo(
            title: "", rate: rate, pythonVersion: process.source.version.description,
            startUnixNanoseconds: startUnixNanoseconds, weighting: weighting,
            frameOptions: FrameOptions(lineNo: lineNo, fullFilenames: true)),
          keepsTimeline: false),
        lineNo: lineNo, showThreads: false, showProcesses: false)
      slot = builders.index(forKey: pid)
    }
    guard let slot else { return }
    builders.values[slot].add(
      thread, resolver: process.source.resolver, processLabels: [], weightNanoseconds: weightNanoseconds,
      timeNanoseconds: timeNanoseconds)
  }

  /// Whether the current interval has run its length.
  package func isDue(now: Double = monotonicSeconds()) -> Bool { now - startMonotonic >= interval }

  /// Ends the current interval: each process's profile of it (those with samples), its info
  /// saying when it started and how long it ran; the next interval starts now.
  package mutating func cut(now: Double = monotonicSeconds()) -> [(pid: Int32, profile: Profile)] {
    let duration = Swift.max(0, now - startMonotonic)
    var result: [(pid: Int32, profile: Profile)] = []
    for (pid, builder) in builders where builder.profile.totalSamples > 0 {
      var profile = builder.profile
      profile.info.durationSeconds = duration
      profile.info.sampleCount = profile.totalSamples
      result.append((pid, profile))
    }
    result.sort { $0.pid < $1.pid }
    builders.removeAll(keepingCapacity: true)
    startUnixNanoseconds = WallClock.unixNanoseconds()
    startMonotonic = now
    return result
  }
}
