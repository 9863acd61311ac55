//===--- CallgrindWriter.swift - the callgrind format (KCachegrind) ---------===//
//
// Valgrind's callgrind profile data format, which KCachegrind, QCachegrind and callgrind_annotate
// read (https://valgrind.org/docs/manual/cl-format.html). Positions are lines; two events, the
// samples' weight in nanoseconds (`cpu_ns` with `--weight cpu`, `sampled_ns` — 1/rate per
// sample — otherwise) and the number of samples.
//
// - self cost per (function, line): the samples whose leaf it was, at the line being run;
// - one call per (caller, line, callee) site and sample (once per sample however deep it
//   recurses), `calls=SAMPLES FIRST_LINE_OF_CALLEE` and the inclusive cost of those samples.
//
// A function is (name, full file name, first line); pseudo-frames (threads, processes, tasks) are
// left out, their callees becoming roots. Functions are written in (file, first line, name) order,
// their lines and call sites sorted, so a profile always gives the same bytes. Names and files
// use callgrind's name compression (`fn=(3) name` once, `fn=(3)` after). The format is line-based:
// control characters in names, files and the title become visible escapes (`\x0A`).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct CallgrindWriter: ProfileWriter {
  var name: String { "callgrind" }
  var summary: String { "callgrind's format, sample counts as call counts (KCachegrind, callgrind_annotate)" }
  var fileExtension: String { "callgrind" }
  var needsTimeline: Bool { false }
  var needsThreadNames: Bool { false }

  typealias Function = FunctionKey

  struct Cost {
    var weight: UInt64 = 0
    var samples: UInt64 = 0

    mutating func add(_ total: StackTotal) {
      weight &+= total.weightNanoseconds
      samples += total.count
    }
  }

  struct Site: Hashable {
    var caller: Function
    var line: Int
    var callee: Function
  }

  struct Own: Hashable {
    var function: Function
    var line: Int
  }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    let perStack = profile.totalsByStack()
    var own: [Own: Cost] = [:]
    var calls: [Site: Cost] = [:]
    // Where a call lands: the callee's first line, or (unknown) the lowest line it was seen at.
    var entryLine: [Function: Int] = [:]
    var seenSites = Set<Site>()
    for stack in perStack.keys.sorted() {
      let total = perStack[stack] ?? StackTotal()
      let real = profile.stacks[Int(stack)].map { profile.frames[Int($0)].shown(options) }.filter { !$0.isPseudo }
      guard let leaf = real.last else { continue }
      let functions = real.map(Function.init)
      for (frame, function) in zip(real, functions) {
        let line = function.firstLine != 0 ? function.firstLine : frame.line
        entryLine[function] = min(entryLine[function] ?? line, line)
      }
      own[Own(function: functions[functions.count - 1], line: leaf.line), default: Cost()].add(total)
      seenSites.removeAll(keepingCapacity: true)
      for i in real.indices.dropLast() {
        let site = Site(caller: functions[i], line: real[i].line, callee: functions[i + 1])
        if seenSites.insert(site).inserted { calls[site, default: Cost()].add(total) }
      }
    }

    var perFunction: [Function: (own: [(line: Int, cost: Cost)], calls: [(site: Site, cost: Cost)])] = [:]
    for (key, cost) in own { perFunction[key.function, default: ([], [])].own.append((key.line, cost)) }
    for (site, cost) in calls { perFunction[site.caller, default: ([], [])].calls.append((site, cost)) }
    let totalWeight = own.values.reduce(UInt64(0)) { $0 &+ $1.weight }
    let totalSamples = own.values.reduce(UInt64(0)) { $0 + $1.samples }

    var out: [UInt8] = []
    out.append("# callgrind format\nversion: 1\ncreator: spyglass ")
    out.append(visible: options.version)
    out.append("\ncmd: ")
    out.append(visible: profile.info.title.isEmpty ? "python" : profile.info.title)
    out.append("\npositions: line\nevents: ")
    out.append(profile.info.weighting == .cpu ? "cpu_ns" : "sampled_ns")
    out.append(" samples\nsummary: ")
    out.append(decimal: totalWeight)
    out.append(UInt8(ascii: " "))
    out.append(decimal: totalSamples)
    out.append("\n\n")

    var files = Interner<String>()
    var names = Interner<String>()
    func compressed(_ table: inout Interner<String>, _ text: String) {
      let (id, inserted) = table.insert(text)
      out.append(UInt8(ascii: "("))
      out.append(decimal: UInt64(id) + 1)
      out.append(UInt8(ascii: ")"))
      if inserted {
        out.append(UInt8(ascii: " "))
        out.append(visible: text)
      }
      out.append(UInt8(ascii: "\n"))
    }
    func costLine(_ line: Int, _ cost: Cost) {
      out.append(decimal: max(0, line))
      out.append(UInt8(ascii: " "))
      out.append(decimal: cost.weight)
      out.append(UInt8(ascii: " "))
      out.append(decimal: cost.samples)
      out.append(UInt8(ascii: "\n"))
    }
    for function in perFunction.keys.sorted() {
      guard let entries = perFunction[function] else { continue }
      out.append("fl=")
      compressed(&files, function.filename.isEmpty ? "???" : function.filename)
      out.append("fn=")
      compressed(&names, function.name)
      for (line, cost) in entries.own.sorted(by: { $0.line < $1.line }) { costLine(line, cost) }
      let sites = entries.calls.sorted {
        $0.site.line != $1.site.line ? $0.site.line < $1.site.line : $0.site.callee < $1.site.callee
      }
      for (site, cost) in sites {
        out.append("cfl=")
        compressed(&files, site.callee.filename.isEmpty ? "???" : site.callee.filename)
        out.append("cfn=")
        compressed(&names, site.callee.name)
        out.append("calls=")
        out.append(decimal: cost.samples)
        out.append(UInt8(ascii: " "))
        out.append(decimal: max(0, entryLine[site.callee] ?? 0))
        out.append(UInt8(ascii: "\n"))
        costLine(site.line, cost)
      }
      out.append(UInt8(ascii: "\n"))
    }
    return out
  }
}
