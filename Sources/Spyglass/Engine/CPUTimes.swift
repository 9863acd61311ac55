//===--- CPUTimes.swift - CPU time each sampled thread used ---===//
//
// Per-thread CPU time over a recording (the summary) and between samples (`--weight cpu`).
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

/// Per-thread CPU time, first and last reading.
package struct CPUTimes {
  package init() {}

  /// A thread's reader is dropped (its file closed) once the thread has ended; its totals stay.
  private var readers: [Key: (reader: ThreadCPUTime?, first: UInt64, last: UInt64)] = [:]
  /// The threads whose reader is open, and the count at which they are next checked for ended ones.
  private var openKeys: [Key] = []
  private var sweepAt = 16
  private var refreshThrottle = Throttle(seconds: 1)
  package struct Key: Hashable {
    var pid: Int32
    var tid: Int32
  }

  /// Starts following a thread (reads its CPU time the first time it is seen).
  package mutating func note(pid: Int32, tid: Int32) {
    let key = Key(pid: pid, tid: tid)
    if readers[key] != nil { return }
    guard readers.count < 65536, let reader = ThreadCPUTime(pid: pid, tid: tid), let now = reader.read() else { return }
    readers[key] = (reader, now, now)
    opened(key)
  }

  /// Reads every followed thread's CPU time once more (at the end of a recording). A thread whose
  /// time cannot be read any more (it ended, or its process did) keeps its last reading.
  package mutating func refresh() {
    for (key, entry) in readers {
      if let reader = entry.reader, let now = reader.read() { readers[key] = (reader, entry.first, now) }
    }
  }

  /// Refreshes every followed thread at most once a second: a process that exits before the end
  /// of the recording keeps its threads' readings of the last second, not only their first ones.
  package mutating func refreshIfDue() {
    if refreshThrottle.ready() { refresh() }
  }

  /// CPU nanoseconds the thread used since the previous call (nil the first time).
  package mutating func delta(pid: Int32, tid: Int32) -> UInt64? {
    let key = Key(pid: pid, tid: tid)
    if let entry = readers[key] {
      guard let reader = entry.reader, let now = reader.read() else { return nil }
      readers[key] = (reader, entry.first, now)
      return now &- entry.last
    }
    guard readers.count < 65536, let reader = ThreadCPUTime(pid: pid, tid: tid), let now = reader.read() else {
      return nil
    }
    readers[key] = (reader, now, now)
    opened(key)
    return nil
  }

  package func total(pid: Int32, tid: Int32) -> UInt64? {
    guard let entry = readers[Key(pid: pid, tid: tid)] else { return nil }
    return entry.last &- entry.first
  }

  /// Closes the files of threads that ended (keeping their last reading) whenever the open ones
  /// double, so a target that starts and joins threads all the time does not pile up descriptors
  /// in Spyglass.
  private mutating func opened(_ key: Key) {
    openKeys.append(key)
    guard openKeys.count >= sweepAt else { return }
    var stillOpen: [Key] = []
    for key in openKeys {
      guard let entry = readers[key], let reader = entry.reader else { continue }
      if let now = reader.read() {
        readers[key] = (reader, entry.first, now)
        stillOpen.append(key)
      } else {
        readers[key] = (nil, entry.first, entry.last)
      }
    }
    openKeys = stillOpen
    sweepAt = openKeys.count + 16
  }
}
