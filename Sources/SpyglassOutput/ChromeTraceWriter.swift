//===--- ChromeTraceWriter.swift - Chrome Trace Event JSON ------------------===//
//
// A JSON array of trace events, loadable by Perfetto (ui.perfetto.dev) and chrome://tracing.
// For each thread: `M` metadata events naming the process (once per pid) and the thread, then
// `B`/`E` duration events obtained by diffing each sample's stack with the thread's previous one
// (as py-spy does): `E` for the frames that are gone, innermost first, then `B` for the new frames,
// outermost first, all at the sample's time. Frames compare equal when their name and file (and
// line, when line numbers are shown) match. At the end of the thread's samples every open frame
// is closed, at the end of its last sample (its time plus its weight).
//
// Without a timeline, the thread's aggregated stacks are laid end to end in label order (so
// shared prefixes stay open), each lasting its total weight.
//
// `ts` is in whole microseconds since the start of the recording; `tid` is the OS thread id when
// known, else the Python thread id.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct ChromeTraceWriter: ProfileWriter {
  var name: String { "chrometrace" }
  var summary: String { "Chrome Trace Event JSON, samples in time order (Perfetto, chrome://tracing)" }
  var fileExtension: String { "json" }
  var needsTimeline: Bool { true }
  var needsThreadNames: Bool { true }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    // Canonical frames: frames that must compare equal (same name, file and shown line) share an id.
    struct Key: Hashable {
      var name: String
      var filename: String
      var line: Int
    }
    var canonicalFrames = Interner<Key>()
    let canonical = profile.frames.map {
      let shown = $0.shown(options)
      return canonicalFrames.intern(Key(name: shown.name, filename: shown.filename, line: shown.line))
    }

    // Per thread: (time ns, stack) in order, and the end of the last sample.
    struct Track {
      var samples: [(time: UInt64, stack: StackID)] = []
      var end: UInt64 = 0
    }
    var tracks: [ThreadIndex: Track] = [:]
    if !profile.timeline.isEmpty {
      for sample in profile.timeline {
        // Whole microseconds, as `ts` has always been written (the timeline keeps nanoseconds).
        let time = sample.timeNanoseconds / 1000 * 1000
        var track = tracks[sample.thread, default: Track()]
        track.samples.append((time, sample.stack))
        track.end = max(track.end, time &+ sample.weightNanoseconds / 1000 * 1000)
        tracks[sample.thread] = track
      }
    } else {
      let labels = profile.frames.map { $0.shown(options).label(fullFilenames: true) }
      let period: UInt64 = profile.info.rate > 0 ? UInt64(1e9 / profile.info.rate) : 0
      for (thread, entries) in profile.totalsByThread() {
        let sorted = entries.map {
          (entry: $0, labels: profile.stacks[Int($0.stack)].map { labels[Int($0)] })
        }
        .sorted { $0.labels.lexicographicallyPrecedes($1.labels) }
        .map(\.entry)
        var track = Track()
        for entry in sorted {
          track.samples.append((track.end, entry.stack))
          let weight =
            entry.total.weightNanoseconds > 0
            ? entry.total.weightNanoseconds : entry.total.count * period
          track.end += weight
        }
        tracks[thread] = track
      }
    }

    let multiProcess = profile.hasSeveralProcesses
    let order = tracks.keys.sorted {
      let a = profile.threads[Int($0)]
      let b = profile.threads[Int($1)]
      return a.pid != b.pid ? a.pid < b.pid : $0 < $1
    }

    var out: [UInt8] = [UInt8(ascii: "[")]
    var first = true
    func beginEvent() {
      if !first { out.append(",\n") } else { out.append(UInt8(ascii: "\n")) }
      first = false
    }
    func ids(_ thread: ThreadInfo) {
      out.append(",\"pid\":")
      out.append(decimal: Int64(thread.pid))
      out.append(",\"tid\":")
      out.append(decimal: Self.tid(thread))
    }
    func metadata(_ name: String, _ value: String, _ thread: ThreadInfo) {
      beginEvent()
      out.append("{\"name\":\"\(name)\",\"ph\":\"M\"")
      ids(thread)
      out.append(",\"args\":{\"name\":")
      out.append(json: value)
      out.append("}}")
    }
    func event(_ phase: String, _ frameID: UInt32, _ thread: ThreadInfo, _ time: UInt64) {
      let frame = canonicalFrames[frameID]
      beginEvent()
      out.append("{\"name\":")
      out.append(json: frame.name)
      out.append(",\"cat\":\"spyglass\",\"ph\":\"\(phase)\"")
      ids(thread)
      out.append(",\"ts\":")
      out.append(fixed: Int64(clamping: time), fractionDigits: 3)
      out.append(",\"args\":{\"filename\":")
      out.append(json: frame.filename)
      if frame.line != 0 {
        out.append(",\"line\":")
        out.append(decimal: frame.line)
      }
      out.append("}}")
    }

    var namedProcesses: Set<Int32> = []
    for index in order {
      let thread = profile.threads[Int(index)]
      if namedProcesses.insert(thread.pid).inserted {
        let title =
          !multiProcess && !profile.info.title.isEmpty
          ? profile.info.title : "Process \(thread.pid)"
        metadata("process_name", title, thread)
      }
      let threadName =
        thread.name.map { "\($0) (\(thread.displayID))" } ?? "Thread \(thread.displayID)"
      metadata("thread_name", threadName, thread)

      let track = tracks[index]!
      var open: [UInt32] = []
      for (time, stack) in track.samples {
        let next = profile.stacks[Int(stack)].map { canonical[Int($0)] }
        var common = 0
        while common < open.count && common < next.count && open[common] == next[common] {
          common += 1
        }
        for frame in open[common...].reversed() { event("E", frame, thread, time) }
        for frame in next[common...] { event("B", frame, thread, time) }
        open = next
      }
      for frame in open.reversed() { event("E", frame, thread, track.end) }
    }
    out.append("\n]\n")
    return out
  }

  /// The `tid` of a thread's events: its OS thread id when known, else its Python thread id.
  static func tid(_ thread: ThreadInfo) -> UInt64 {
    if let os = thread.osThreadID { return UInt64(UInt32(bitPattern: os)) }
    return thread.threadID
  }
}
