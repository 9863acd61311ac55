//===--- SpeedscopeWriter.swift - speedscope's JSON file format ------------===//
//
// https://www.speedscope.app/file-format-schema.json. One "sampled" profile per thread (per
// (pid, python thread id)), named as py-spy names them and sorted by name; frames shared between
// profiles; samples are frame-index arrays root first with weights in seconds. With a timeline the
// samples are in time order, one per sample; without one each distinct stack is one sample whose
// weight is the stack's total.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct SpeedscopeWriter: ProfileWriter {
  var name: String { "speedscope" }
  var summary: String { "speedscope's JSON, one profile per thread, samples in time order (speedscope.app)" }
  var fileExtension: String { "json" }
  var needsTimeline: Bool { true }
  var needsThreadNames: Bool { true }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    // speedscope frames: (name, full file name, line when shown).
    struct Key: Hashable {
      var name: String
      var file: String
      var line: Int
    }
    var sharedFrames = Interner<Key>()
    var frameMap = [UInt32?](repeating: nil, count: profile.frames.count)
    func frameIndex(_ id: FrameID) -> UInt32 {
      if let cached = frameMap[Int(id)] { return cached }
      let frame = profile.frames[Int(id)].shown(options)
      let index = sharedFrames.intern(Key(name: frame.name, file: frame.filename, line: frame.line))
      frameMap[Int(id)] = index
      return index
    }

    // Per thread: the stacks and weights (in nanoseconds) of its samples.
    struct ThreadSamples {
      var stacks: [StackID] = []
      var weights: [UInt64] = []
    }
    var perThread: [ThreadIndex: ThreadSamples] = [:]
    if !profile.timeline.isEmpty {
      for sample in profile.timeline {
        perThread[sample.thread, default: ThreadSamples()].stacks.append(sample.stack)
        perThread[sample.thread]!.weights.append(sample.weightNanoseconds)
      }
    } else {
      for (thread, entries) in profile.totalsByThread() {
        var samples = ThreadSamples()
        for entry in entries {
          samples.stacks.append(entry.stack)
          samples.weights.append(entry.total.weightNanoseconds)
        }
        perThread[thread] = samples
      }
    }

    let multiProcess = profile.hasSeveralProcesses
    let ordered = perThread.keys
      .map { (index: $0, name: threadTitle(profile.threads[Int($0)], multiProcess: multiProcess)) }
      .sorted { $0.name != $1.name ? $0.name < $1.name : $0.index < $1.index }

    // The profiles are written first (they assign frame indices), then the shared frames.
    var profiles: [UInt8] = []
    for (n, thread) in ordered.enumerated() {
      let samples = perThread[thread.index]!
      if n > 0 { profiles.append(UInt8(ascii: ",")) }
      profiles.append("{\"type\":\"sampled\",\"name\":")
      profiles.append(json: thread.name)
      profiles.append(",\"unit\":\"seconds\",\"startValue\":0,\"endValue\":")
      profiles.append(fixed: Int64(clamping: samples.weights.reduce(0, &+)), fractionDigits: 9)
      profiles.append(",\"samples\":[")
      for (i, stack) in samples.stacks.enumerated() {
        if i > 0 { profiles.append(UInt8(ascii: ",")) }
        profiles.append(UInt8(ascii: "["))
        for (j, frame) in profile.stacks[Int(stack)].enumerated() {
          if j > 0 { profiles.append(UInt8(ascii: ",")) }
          profiles.append(decimal: UInt64(frameIndex(frame)))
        }
        profiles.append(UInt8(ascii: "]"))
      }
      profiles.append("],\"weights\":[")
      for (i, weight) in samples.weights.enumerated() {
        if i > 0 { profiles.append(UInt8(ascii: ",")) }
        profiles.append(fixed: Int64(clamping: weight), fractionDigits: 9)
      }
      profiles.append("]}")
    }

    var out: [UInt8] = []
    out.append("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"profiles\":[")
    out.append(contentsOf: profiles)
    out.append("],\"shared\":{\"frames\":[")
    for (i, frame) in sharedFrames.values.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      out.append("{\"name\":")
      out.append(json: frame.name)
      out.append(",\"file\":")
      out.append(json: frame.file)
      // py-spy's keys exactly (consumers read frames into a fixed record): `line` always (0 when
      // not shown, and on thread pseudo-frames), `col` always null.
      out.append(",\"line\":")
      out.append(decimal: frame.line)
      out.append(",\"col\":null}")
    }
    out.append("]},\"activeProfileIndex\":0,\"exporter\":")
    out.append(json: "spyglass@\(options.version)")
    out.append(",\"name\":")
    out.append(json: profile.info.title.isEmpty ? "spyglass profile" : profile.info.title)
    out.append("}\n")
    return out
  }
}
