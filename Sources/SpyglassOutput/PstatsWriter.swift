//===--- PstatsWriter.swift - Python's pstats file (cProfile's format) -----===//
//
// What `pstats.Stats(path)` loads (and snakeviz, tuna, gprof2dot read): Python's `marshal` of
// cProfile's stats dictionary,
//
//     {(filename, first_line, name): (calls, primitive_calls, own_seconds, total_seconds,
//                                     {caller_key: (calls, primitive_calls, own_s, total_s)})}
//
// A sampler sees where threads are, not how often functions are called: wherever the format has a
// call count it holds a number of samples, and the times are the samples' weights (CPU time with
// `--weight cpu`, 1/rate per sample otherwise), in seconds. Per function: the samples that had it
// on the stack (once per sample however deep it recurses) and their weight (`total`), the weight
// of those where it was the leaf (`own`); per caller edge, the same for the samples whose stack
// had that call, `own` being the weight where the callee was the leaf. Pseudo-frames (threads,
// processes, tasks) are left out: their callees become roots.
//
// Python's pstats files follow the marshal format of the Python that wrote them; this one uses
// only the codes of marshal version 2, which every CPython reads, 2.7 and 3.x alike: `{`…`0`
// dictionaries, `(` tuples with a 32-bit length, `u` UTF-8 strings, `i` 32-bit and `l`
// arbitrary-size integers, `g` binary doubles. Entries are written sorted, so a profile always
// gives the same bytes.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct PstatsWriter: ProfileWriter {
  var name: String { "pstats" }
  var summary: String { "Python's pstats file, sample counts as call counts (pstats.Stats, snakeviz)" }
  var fileExtension: String { "prof" }
  var needsTimeline: Bool { false }
  var needsThreadNames: Bool { false }

  /// cProfile's key of a function: (file name, first line, name).
  typealias Function = FunctionKey

  /// Samples, their weight, and the weight of those where the function (or the callee) was the leaf.
  struct Cost {
    var samples: UInt64 = 0
    var weight: UInt64 = 0
    var leafWeight: UInt64 = 0
  }

  struct Edge: Hashable {
    var caller: Function
    var callee: Function
  }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    let (functions, edges) = Self.totals(profile)
    var callers: [Function: [(Function, Cost)]] = [:]
    for (edge, cost) in edges { callers[edge.callee, default: []].append((edge.caller, cost)) }

    var out = Marshal()
    out.beginDictionary()
    for function in functions.keys.sorted() {
      let cost = functions[function] ?? Cost()
      out.append(function)
      out.beginTuple(5)
      out.append(integer: cost.samples)
      out.append(integer: cost.samples)
      out.append(seconds: cost.leafWeight)
      out.append(seconds: cost.weight)
      out.beginDictionary()
      for (caller, edge) in (callers[function] ?? []).sorted(by: { $0.0 < $1.0 }) {
        out.append(caller)
        out.beginTuple(4)
        out.append(integer: edge.samples)
        out.append(integer: edge.samples)
        out.append(seconds: edge.leafWeight)
        out.append(seconds: edge.weight)
      }
      out.endDictionary()
    }
    out.endDictionary()
    return out.bytes
  }

  /// Per function and per (caller, callee) edge, over every sample of every thread.
  static func totals(_ profile: Profile) -> (functions: [Function: Cost], edges: [Edge: Cost]) {
    let perStack = profile.totalsByStack()
    var functionOfFrame: [FrameID: Function] = [:]
    var functions: [Function: Cost] = [:]
    var edges: [Edge: Cost] = [:]
    var seenFunctions = Set<Function>()
    var seenEdges = Set<Edge>()
    for (stack, total) in perStack {
      let real: [Function] = profile.stacks[Int(stack)].compactMap { id in
        if let known = functionOfFrame[id] { return known }
        let frame = profile.frames[Int(id)]
        if frame.isPseudo { return nil }
        let function = Function(frame)
        functionOfFrame[id] = function
        return function
      }
      guard let leaf = real.last else { continue }
      seenFunctions.removeAll(keepingCapacity: true)
      for function in real where seenFunctions.insert(function).inserted {
        functions[function, default: Cost()].samples += total.count
        functions[function, default: Cost()].weight &+= total.weightNanoseconds
      }
      functions[leaf, default: Cost()].leafWeight &+= total.weightNanoseconds
      seenEdges.removeAll(keepingCapacity: true)
      for i in real.indices.dropLast() {
        let edge = Edge(caller: real[i], callee: real[i + 1])
        guard seenEdges.insert(edge).inserted else { continue }
        edges[edge, default: Cost()].samples += total.count
        edges[edge, default: Cost()].weight &+= total.weightNanoseconds
        if i + 1 == real.count - 1 { edges[edge, default: Cost()].leafWeight &+= total.weightNanoseconds }
      }
    }
    return (functions, edges)
  }
}

/// Python's marshal format, version 2's codes (see the file comment).
struct Marshal {
  private(set) var bytes: [UInt8] = []

  mutating func beginDictionary() { bytes.append(UInt8(ascii: "{")) }
  mutating func endDictionary() { bytes.append(UInt8(ascii: "0")) }

  mutating func beginTuple(_ count: Int) {
    bytes.append(UInt8(ascii: "("))
    append(int32: Int32(count))
  }

  mutating func append(_ function: FunctionKey) {
    beginTuple(3)
    append(string: function.filename)
    append(integer: Int64(function.firstLine))
    append(string: function.name)
  }

  /// A `str` (Python 3) or `unicode` (2.7): its UTF-8 bytes.
  mutating func append(string: String) {
    bytes.append(UInt8(ascii: "u"))
    let utf8 = Array(string.utf8)
    append(int32: Int32(clamping: utf8.count))
    bytes.append(contentsOf: utf8.prefix(Int(Int32.max)))
  }

  mutating func append(integer value: UInt64) {
    if value <= UInt64(Int32.max) {
      append(integer: Int64(value))
    } else {
      appendLong(magnitude: value, negative: false)
    }
  }

  mutating func append(integer value: Int64) {
    if let small = Int32(exactly: value) {
      bytes.append(UInt8(ascii: "i"))
      append(int32: small)
    } else {
      appendLong(magnitude: value.magnitude, negative: value < 0)
    }
  }

  /// A weight in nanoseconds as a float number of seconds.
  mutating func append(seconds nanoseconds: UInt64) {
    bytes.append(UInt8(ascii: "g"))
    var bits = (Double(nanoseconds) / 1e9).bitPattern
    for _ in 0..<8 {
      bytes.append(UInt8(truncatingIfNeeded: bits))
      bits >>= 8
    }
  }

  /// `l`: the digit count (negative for a negative number), then base-2^15 digits, least
  /// significant first, each as a 16-bit little-endian value.
  private mutating func appendLong(magnitude: UInt64, negative: Bool) {
    var digits: [UInt16] = []
    var rest = magnitude
    while rest > 0 {
      digits.append(UInt16(rest & 0x7FFF))
      rest >>= 15
    }
    bytes.append(UInt8(ascii: "l"))
    append(int32: negative ? -Int32(digits.count) : Int32(digits.count))
    for digit in digits {
      bytes.append(UInt8(truncatingIfNeeded: digit))
      bytes.append(UInt8(truncatingIfNeeded: digit >> 8))
    }
  }

  private mutating func append(int32 value: Int32) {
    let bits = UInt32(bitPattern: value)
    for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
  }
}
