//===--- TopView.swift - what `spyglass top` draws -------------------------===//
//
// Pure functions from the counters to lines of text, so the layout is testable without a terminal:
//
//   Collecting samples from 'python3 app.py' (python v3.12.1)
//   Total Samples 200
//   GIL: 100.00%, Active: 100.00%, Threads: 1
//
//     %Own   %Total  OwnTime  TotalTime  Function (filename)
//    96.00%  96.00%    1.93s     1.93s   recurse (recursive.py)
//     4.00% 100.00%   0.070s     2.00s   <module> (recursive.py)
//
// Percentages are shares of the sampling ticks of the interval shown; times add up 1/rate per
// count over the whole run. Every line is cut to the terminal's width (in display columns), and
// every name taken from the target has already been through `terminalSafe`.
//
//===----------------------------------------------------------------------===//

/// What the header says about the session.
struct TopHeader {
  /// The program's command line (or a pid), already terminal-safe.
  var command: String
  var pythonVersion: String
  var subprocesses: Bool
  /// Sampling errors and ticks over the whole session.
  var errors: Int
  var ticks: Int
  /// The largest lag of the interval shown, in seconds.
  var lag: Double = 0
}

/// How the table is laid out.
struct TopLayout {
  var perLine = false
  var sort = TopSortColumn.ownTime
  var rate: Double
  /// Percentages over the whole run instead of over the last interval (the final summary).
  var overallPercentages = false
}

enum TopView {
  static let columnHeaderParts = ["  %Own", "   %Total", "  OwnTime", "  TotalTime"]

  /// The lines above the table.
  static func headerLines(_ header: TopHeader, interval: TopInterval, stats: TopStats) -> [String] {
    var first = "Collecting samples from '\(header.command)' (python v\(header.pythonVersion))"
    if header.subprocesses { first += " and subprocesses" }
    var second = "Total Samples \(stats.overall.samples)"
    if header.ticks > 100 {
      let errorRate = Double(header.errors) / Double(header.ticks) * 100
      if errorRate >= 1 { second += ", Error Rate \(fixed(errorRate, 2))%" }
    }
    let samples = Double(max(interval.samples, 1))
    var third =
      "GIL: \(fixed(Double(interval.gil) / samples * 100, 2))%, Active: \(fixed(Double(interval.active) / samples * 100, 2))%, Threads: \(stats.threads)"
    if header.subprocesses { third += ", Processes: \(stats.processes)" }
    var lines = [first, second, third]
    if header.lag > 1 {
      lines.append(
        "\(formatSeconds(header.lag)) behind in sampling, results may be inaccurate. Try reducing the sampling rate."
      )
    }
    return lines
  }

  static func columnHeader(perLine: Bool) -> String {
    columnHeaderParts.joined() + (perLine ? "  Function (filename:line)" : "  Function (filename)")
  }

  /// One table row.
  static func row(_ row: TopRow, samples: Int, rate: Double) -> String {
    let denominator = Double(max(samples, 1))
    let own = fixed(Double(row.interval.own) / denominator * 100, 2) + "%"
    let total = fixed(Double(row.interval.total) / denominator * 100, 2) + "%"
    let ownTime = formatTopTime(Double(row.overall.own) / rate)
    let totalTime = formatTopTime(Double(row.overall.total) / rate)
    return padLeft(own, 7) + " " + padLeft(total, 7) + " " + padLeft(ownTime, 8) + " "
      + padLeft(totalTime, 9) + "   "
      + row.label
  }

  /// The whole screen (or, with `height` nil, the table's first `maxRows` rows), each line cut to
  /// `width` columns. `sortMarker` wraps the sort column's title (for example in bold escapes); it
  /// is only applied when the header fits the width.
  static func lines(
    header: TopHeader, stats: TopStats, layout: TopLayout, width: Int, height: Int?,
    maxRows: Int = .max,
    sortMarker: (before: String, after: String)? = nil
  ) -> [String] {
    let source = stats.source(overallPercentages: layout.overallPercentages)
    let interval = stats.interval(source)
    var lines = headerLines(header, interval: interval, stats: stats).map {
      truncate($0, toWidth: width)
    }
    lines.append("")
    let plainHeader = columnHeader(perLine: layout.perLine)
    if let sortMarker, displayWidth(plainHeader) <= width {
      var parts = columnHeaderParts
      let index = layout.sort.rawValue - 1
      let title = layout.sort.title
      parts[index] =
        String(parts[index].dropLast(title.count)) + sortMarker.before + title + sortMarker.after
      lines.append(parts.joined() + String(plainHeader.dropFirst(columnHeaderParts.joined().count)))
    } else {
      lines.append(truncate(plainHeader, toWidth: width))
    }
    var room = maxRows
    if let height { room = min(room, height - lines.count) }
    if room > 0 {
      let rows = stats.sortedRows(perLine: layout.perLine, column: layout.sort, source: source)
      for entry in rows.prefix(room) {
        lines.append(
          truncate(row(entry, samples: interval.samples, rate: layout.rate), toWidth: width))
      }
    }
    if let height, lines.count > height { lines.removeLast(lines.count - max(height, 0)) }
    return lines
  }

  /// The help screen.
  static func helpLines(layout: TopLayout, width: Int) -> [String] {
    let lines = [
      "Spyglass top: keys",
      "",
      "  1   sort by %Own       share of the last interval's samples spent in the function itself",
      "  2   sort by %Total     share of the last interval's samples with the function on the stack",
      "  3   sort by OwnTime    time spent in the function itself since the start (default)",
      "  4   sort by TotalTime  time with the function on the stack since the start",
      "  L   show lines instead of functions, or back",
      "  R   reset the statistics",
      "  ?   show this help",
      "  q   quit (Ctrl-C too)",
      "",
      "Now sorted by \(layout.sort.title), showing \(layout.perLine ? "lines" : "functions").",
      "",
      "Press any key to close this help.",
    ]
    return lines.map { truncate($0, toWidth: width) }
  }

  /// Seconds as py-spy's top shows them: no decimals above 1000 s, one from 100 s, two from 1 s,
  /// three below.
  static func formatTopTime(_ seconds: Double) -> String {
    if seconds > 1000 { return fixed(seconds, 0) + "s" }
    if seconds >= 100 { return fixed(seconds, 1) + "s" }
    if seconds >= 1 { return fixed(seconds, 2) + "s" }
    return fixed(seconds, 3) + "s"
  }

  /// `value` with exactly `decimals` digits after the point (rounded half away from zero).
  static func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e15 else { return String(Int(value.rounded())) }
    let units = Int(scaled)
    let whole = units / Int(scale)
    let fraction = units % Int(scale)
    var text = (value < 0 && units != 0 ? "-" : "") + String(whole)
    if decimals > 0 {
      let digits = String(fraction)
      text += "." + String(repeating: "0", count: decimals - digits.count) + digits
    }
    return text
  }

  static func padLeft(_ text: String, _ width: Int) -> String {
    let missing = width - text.count
    return missing > 0 ? String(repeating: " ", count: missing) + text : text
  }

  /// `text` cut to at most `width` terminal columns.
  static func truncate(_ text: String, toWidth width: Int) -> String {
    guard width > 0 else { return "" }
    if text.utf8.count <= width && text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
    var used = 0
    var result = ""
    for character in text {
      let columns = displayWidth(character)
      if used + columns > width { break }
      used += columns
      result.append(character)
    }
    return result
  }

  /// How many terminal columns `text` takes.
  static func displayWidth(_ text: String) -> Int { text.reduce(0) { $0 + displayWidth($1) } }

  /// Columns of one character: 2 for East Asian wide characters and emoji, 0 for combining marks
  /// and other zero-width characters, else 1.
  static func displayWidth(_ character: Character) -> Int {
    var width = 0
    for scalar in character.unicodeScalars {
      let value = scalar.value
      if value < 0x7F {
        width = max(width, 1)
        continue
      }
      switch scalar.properties.generalCategory {
      case .nonspacingMark, .enclosingMark, .format: continue
      default: break
      }
      if scalar.properties.isEmojiPresentation || isWide(value) {
        width = 2
      } else {
        width = max(width, 1)
      }
    }
    return width
  }

  private static func isWide(_ value: UInt32) -> Bool {
    switch value {
    case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
      0xA000...0xA4CF,
      0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
      0x1F300...0x1F64F,
      0x1F900...0x1F9FF, 0x20000...0x3FFFD:
      return true
    default:
      return false
    }
  }
}
