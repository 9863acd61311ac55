//===--- FlamegraphWriter.swift - a self-contained interactive SVG ---------===//
//
// An icicle graph (root at the top, callees below, as py-spy draws it): the stacks of all threads
// are merged into one tree; every frame is a rectangle whose width is proportional to its sample
// count, siblings in label order. Frames narrower than `minimumWidth` pixels are left out (with
// their subtrees), like py-spy's `min_width = 0.1`.
//
// Layout of the file: a `<style>`, the title and subtitle, the "Reset Zoom" and "Search" controls,
// a details line and a "Matched" line, then `<g id="frames">` with one `<g class="f">` per frame:
//
//     <g class="f" data-s="START" data-n="COUNT" data-d="DEPTH">
//       <title>LABEL</title><rect …/><text …>TRUNCATED LABEL</text></g>
//
// and finally the script (FlamegraphScript.swift), a constant. Everything that comes from the
// target (names, files, the title) is only ever in XML text or attribute values, escaped by
// `append(xml:)`; the script reads it through the DOM and never interprets it as code or markup.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

struct FlamegraphWriter: ProfileWriter {
  var name: String { "flamegraph" }
  var summary: String { "an interactive SVG flame graph (icicle), self-contained, for a browser" }
  var fileExtension: String { "svg" }
  var needsTimeline: Bool { false }
  var needsThreadNames: Bool { false }

  static let width = 1200.0
  static let padding = 10.0
  static let frameHeight = 16.0
  static let fontSize = 12.0
  /// Advance of one character of the 12 px monospace font (0.6 em, rounded up a little).
  static let charWidth = 7.25
  /// Frames narrower than this (in pixels) are not drawn.
  static let minimumWidth = 0.1
  /// Where the first row of frames starts.
  static let framesTop = 60.0
  /// Labels longer than this (in Unicode scalars) are cut in the SVG, to bound its size.
  static let maximumLabelLength = 4096

  /// The merged call tree: node 0 is the root ("all").
  struct Tree {
    var labels: [String] = ["all"]
    var names: [String] = ["all"]
    var counts: [UInt64] = [0]
    var children: [[Int]] = [[]]

    /// Builds the tree from stacks sorted by labels: with that order, a child matching the next
    /// label can only be the last child added to its parent.
    init(_ stacks: [CollapsedStack]) {
      for stack in stacks {
        counts[0] += stack.count
        var node = 0
        for (label, name) in zip(stack.labels, stack.names) {
          if let last = children[node].last, labels[last] == label {
            node = last
          } else {
            let child = labels.count
            labels.append(label)
            names.append(name)
            counts.append(0)
            children.append([])
            children[node].append(child)
            node = child
          }
          counts[node] += stack.count
        }
      }
    }
  }

  func render(_ profile: Profile, options: WriterOptions) -> [UInt8] {
    let tree = Tree(collapsedStacks(profile, options: options))
    let total = tree.counts[0]
    let innerWidth = Self.width - 2 * Self.padding

    // Lay out the frames that are wide enough, depth first.
    struct Placed {
      var node: Int
      var start: UInt64
      var depth: Int
    }
    var placed: [Placed] = []
    var maxDepth = 0
    if total > 0 {
      var pending: [Placed] = [Placed(node: 0, start: 0, depth: 0)]
      while let item = pending.popLast() {
        placed.append(item)
        maxDepth = max(maxDepth, item.depth)
        var start = item.start
        var next: [Placed] = []
        for child in tree.children[item.node] {
          if Double(tree.counts[child]) / Double(total) * innerWidth >= Self.minimumWidth {
            next.append(Placed(node: child, start: start, depth: item.depth + 1))
          }
          start += tree.counts[child]
        }
        pending.append(contentsOf: next.reversed())
      }
    }

    let height = total > 0 ? Self.framesTop + Double(maxDepth + 1) * Self.frameHeight + 40 : 160
    var out: [UInt8] = []
    out.reserveCapacity(4096 + placed.count * 200)
    Self.header(&out, height: height, total: total)

    // Title (cut to the space between the controls, full text in its tooltip) and subtitle.
    let title = profile.info.title.isEmpty ? "Flame Graph" : profile.info.title
    out.append("<text id=\"title\" x=\"600\" y=\"26\" text-anchor=\"middle\"><title>")
    out.append(xml: Self.capped(title))
    out.append("</title>")
    out.append(xml: Self.truncated(Self.capped(title), toFit: 980, charWidth: 9.7))
    out.append("</text>\n<text id=\"subtitle\" x=\"600\" y=\"46\" text-anchor=\"middle\">")
    out.append(xml: Self.subtitle(profile, total: total))
    out.append("</text>\n")

    if total == 0 {
      out.append(
        "<text id=\"empty\" x=\"600\" y=\"100\" text-anchor=\"middle\">No samples</text>\n</svg>\n")
      return out
    }

    out.append("<text id=\"reset\" class=\"control hide\" x=\"10\" y=\"26\">Reset Zoom</text>\n")
    out.append(
      "<text id=\"search\" class=\"control\" x=\"1190\" y=\"26\" text-anchor=\"end\">Search</text>\n"
    )
    out.append("<text id=\"details\" x=\"10\" y=\"")
    out.append(rounded: height - 14, fractionDigits: 2)
    out.append("\"> </text>\n<text id=\"matched\" x=\"1190\" y=\"")
    out.append(rounded: height - 14, fractionDigits: 2)
    out.append("\" text-anchor=\"end\"></text>\n<g id=\"frames\">\n")

    var labelCache: [Int: String] = [:]
    for item in placed {
      let label = labelCache[item.node] ?? Self.capped(tree.labels[item.node])
      labelCache[item.node] = label
      let count = tree.counts[item.node]
      let x = Self.padding + Double(item.start) / Double(total) * innerWidth
      let w = Double(count) / Double(total) * innerWidth
      let y = Self.framesTop + Double(item.depth) * Self.frameHeight
      out.append("<g class=\"f\" data-s=\"")
      out.append(decimal: item.start)
      out.append("\" data-n=\"")
      out.append(decimal: count)
      out.append("\" data-d=\"")
      out.append(decimal: item.depth)
      out.append("\"><title>")
      out.append(xml: label)
      out.append("</title><rect x=\"")
      out.append(rounded: x, fractionDigits: 2)
      out.append("\" y=\"")
      out.append(rounded: y, fractionDigits: 2)
      out.append("\" width=\"")
      out.append(rounded: w, fractionDigits: 2)
      out.append("\" height=\"")
      out.append(rounded: Self.frameHeight - 1, fractionDigits: 2)
      out.append("\" rx=\"2\" fill=\"")
      out.append(item.node == 0 ? "rgb(226,200,160)" : Self.color(for: tree.names[item.node]))
      out.append("\"/><text x=\"")
      out.append(rounded: x + 3, fractionDigits: 2)
      out.append("\" y=\"")
      out.append(rounded: y + 11.5, fractionDigits: 2)
      out.append("\">")
      out.append(xml: Self.truncated(label, toFit: w - 6, charWidth: Self.charWidth))
      out.append("</text></g>\n")
    }
    out.append("</g>\n<script type=\"text/ecmascript\"><![CDATA[\n")
    out.append(flamegraphScript)
    out.append("]]></script>\n</svg>\n")
    return out
  }

  static func header(_ out: inout [UInt8], height: Double, total: UInt64) {
    out.append("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n")
    out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"1200\" height=\"")
    out.append(rounded: height, fractionDigits: 2)
    out.append("\" viewBox=\"0 0 1200 ")
    out.append(rounded: height, fractionDigits: 2)
    out.append("\" data-inverted=\"true\" data-total=\"")
    out.append(decimal: total)
    out.append("\" data-pad=\"")
    out.append(rounded: padding, fractionDigits: 2)
    out.append("\" data-inner=\"")
    out.append(rounded: width - 2 * padding, fractionDigits: 2)
    out.append("\" data-char-width=\"")
    out.append(rounded: charWidth, fractionDigits: 3)
    out.append("\" data-min-width=\"")
    out.append(rounded: minimumWidth, fractionDigits: 3)
    out.append("\">\n")
    out.append(
      """
      <defs><linearGradient id="background" x1="0" y1="0" x2="0" y2="1">\
      <stop offset="0%" stop-color="#fbfaf7"/><stop offset="100%" stop-color="#f3ead9"/>\
      </linearGradient></defs>
      <style>
      text { font-family: monospace; font-size: 12px; fill: #222; }
      #title { font-size: 16px; font-weight: bold; }
      #subtitle, #matched { fill: #555; }
      #empty { font-size: 18px; fill: #777; }
      .control { cursor: pointer; fill: #1f4f8f; text-decoration: underline; }
      .f { cursor: pointer; }
      .f text { pointer-events: none; }
      .f rect { stroke: #fbfaf7; stroke-width: 0.5; }
      .f:hover rect { stroke: #222; stroke-width: 1; }
      .f.anc rect { fill: #dedbd5; }
      .f.anc text { fill: #666; }
      .f.hit rect { fill: rgb(160,70,230); }
      .f.hit text { fill: #fff; }
      .hide { display: none; }
      </style>
      <rect x="0" y="0" width="100%" height="100%" fill="url(#background)"/>

      """)
  }

  /// "N samples, Python X.Y, D s, E errors" (parts that are known).
  static func subtitle(_ profile: Profile, total: UInt64) -> String {
    var parts = ["\(total) sample\(total == 1 ? "" : "s")"]
    if !profile.info.pythonVersion.isEmpty { parts.append("Python \(profile.info.pythonVersion)") }
    if profile.info.durationSeconds > 0 {
      var seconds: [UInt8] = []
      seconds.append(rounded: profile.info.durationSeconds, fractionDigits: 2)
      parts.append(String(decoding: seconds, as: UTF8.self) + " s")
    }
    if profile.info.errorCount > 0 {
      parts.append("\(profile.info.errorCount) error\(profile.info.errorCount == 1 ? "" : "s")")
    }
    return parts.joined(separator: ", ")
  }

  /// A warm colour (reds, oranges, yellows) chosen from a hash of the function name, so a function
  /// has the same colour everywhere and in every run.
  static func color(for name: String) -> String {
    var hash: UInt32 = 2_166_136_261  // FNV-1a
    for byte in name.utf8 {
      hash ^= UInt32(byte)
      hash = hash &* 16_777_619
    }
    // Spread the bits before taking the three channels.
    hash ^= hash >> 15
    hash = hash &* 0x2C1B_3C6D
    hash ^= hash >> 12
    let red = 215 + (hash & 0xFF) % 41
    let green = 85 + ((hash >> 8) & 0xFF) % 131
    let blue = 30 + ((hash >> 16) & 0xFF) % 56
    return "rgb(\(red),\(green),\(blue))"
  }

  /// `label` cut to `maximumLabelLength` scalars.
  static func capped(_ label: String) -> String {
    let scalars = label.unicodeScalars
    guard scalars.count > maximumLabelLength else { return label }
    var cut = String.UnicodeScalarView()
    cut.append(contentsOf: scalars.prefix(maximumLabelLength))
    return String(cut) + "..."
  }

  /// `label` cut to fit `available` pixels: whole if it fits, else its start and "..", or
  /// nothing when fewer than 3 characters fit. Counts Unicode scalars, as the script does.
  static func truncated(_ label: String, toFit available: Double, charWidth: Double) -> String {
    let fitting = available > 0 ? Int((available / charWidth).rounded(.down)) : 0
    if fitting < 3 { return "" }
    let scalars = label.unicodeScalars
    if scalars.count <= fitting { return label }
    var cut = String.UnicodeScalarView()
    cut.append(contentsOf: scalars.prefix(fitting - 2))
    return String(cut) + ".."
  }
}
