//===--- RawWriter.swift - collapsed ("folded") stacks ----------------------===//
//
// py-spy's `--format raw`: one line per distinct stack, labels root first joined by `;`, a space
// and the sample count: `<module> (app.py:7);work (app.py:3) 42`. flamegraph.pl, inferno and
// speedscope read it.
//
// Like py-spy, a `;` inside a label is written as is (it will split that frame in two for tools
// that read the file back); a label cannot otherwise break the format, because control characters
// (newlines included) are replaced by visible escapes such as `\x0A`. Lines are sorted by their
// labels so the output is deterministic (py-spy writes them in hash order).
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct RawWriter: ProfileWriter {
  var name: String { "raw" }
  var summary: String { "collapsed stacks, one line per stack (flamegraph.pl, inferno, speedscope)" }
  var fileExtension: String { "txt" }
  var needsTimeline: Bool { false }
  var needsThreadNames: Bool { false }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    var out: [UInt8] = []
    // A stack without frames has no label to print; the format cannot express it.
    for stack in collapsedStacks(profile, options: options) where !stack.labels.isEmpty {
      for (i, label) in stack.labels.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ";")) }
        out.append(label)  // already made visible by collapsedStacks
      }
      out.append(UInt8(ascii: " "))
      out.append(decimal: stack.count)
      out.append(UInt8(ascii: "\n"))
    }
    return out
  }
}
