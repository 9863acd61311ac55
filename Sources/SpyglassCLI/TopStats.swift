//===--- TopStats.swift - the counters behind `spyglass top` ---------------===//
//
// Every sampled thread's stack is counted twice at once, per function (`name (file)`) and per line
// (`name (file:line)`), so that switching views with `L` shows the whole history at once. For each
// label: "own" counts the stacks it was the innermost frame of, "total" the stacks it appeared in
// anywhere (once per stack, however deep the recursion). Both are kept for the interval in progress,
// the last completed interval (what the percentage columns show) and the whole run.
//
//===----------------------------------------------------------------------===//

import SpyglassStacks

/// Own and total counts of one label.
struct TopCounts: Equatable {
  var own = 0
  var total = 0
}

/// Sample-level counters of one interval (or of the whole run).
struct TopInterval: Equatable {
  /// Ticks at which the processes were sampled.
  var samples = 0
  /// Counted stacks whose thread held the GIL.
  var gil = 0
  /// Counted stacks whose thread was running (not idle).
  var active = 0
}

/// One label's counts for display.
struct TopRow: Equatable {
  var label: String
  /// For the percentage columns: the interval shown (or the whole run, for a final summary).
  var interval: TopCounts
  /// For the time columns: the whole run.
  var overall: TopCounts
}

/// The sort column, chosen with keys 1 to 4.
enum TopSortColumn: Int, CaseIterable {
  case ownPercent = 1
  case totalPercent = 2
  case ownTime = 3
  case totalTime = 4

  var title: String {
    switch self {
    case .ownPercent: return "%Own"
    case .totalPercent: return "%Total"
    case .ownTime: return "OwnTime"
    case .totalTime: return "TotalTime"
    }
  }
}

/// Counts per label, for one way of labelling frames.
struct TopTable {
  struct Key: Hashable {
    var pid: Int32
    var frame: FrameKey
  }

  private(set) var labels: [String] = []
  private var indexByLabel: [String: Int] = [:]
  private var indexByKey: [Key: Int] = [:]
  private(set) var current: [TopCounts] = []
  private(set) var shown: [TopCounts] = []
  private(set) var overall: [TopCounts] = []
  /// The stack a label was last counted in (for "once per stack").
  private var lastStack: [UInt64] = []

  /// The index of the label for `key`, creating it with `makeLabel` the first time.
  mutating func index(_ key: Key, _ makeLabel: () -> String) -> Int {
    if let index = indexByKey[key] { return index }
    let label = makeLabel()
    let index: Int
    if let existing = indexByLabel[label] {
      index = existing
    } else {
      index = labels.count
      labels.append(label)
      indexByLabel[label] = index
      current.append(TopCounts())
      shown.append(TopCounts())
      overall.append(TopCounts())
      lastStack.append(0)
    }
    indexByKey[key] = index
    return index
  }

  /// Counts label `index` in stack number `stack` (`own`: it is the innermost frame).
  mutating func count(_ index: Int, own: Bool, stack: UInt64) {
    if own {
      current[index].own += 1
      overall[index].own += 1
    }
    if lastStack[index] != stack {
      lastStack[index] = stack
      current[index].total += 1
      overall[index].total += 1
    }
  }

  /// The interval in progress becomes the one shown; a new one starts.
  mutating func endInterval() {
    swap(&shown, &current)
    for index in current.indices { current[index] = TopCounts() }
  }

  /// Forgets every count (the labels stay known).
  mutating func reset() {
    for index in labels.indices {
      current[index] = TopCounts()
      shown[index] = TopCounts()
      overall[index] = TopCounts()
    }
  }

  /// The labels seen since the last reset, with the counts to show.
  func rows(intervalSource: TopStats.IntervalSource) -> [TopRow] {
    var rows: [TopRow] = []
    for index in labels.indices where overall[index].total > 0 {
      let interval: TopCounts
      switch intervalSource {
      case .current: interval = current[index]
      case .shown: interval = shown[index]
      case .overall: interval = overall[index]
      }
      rows.append(TopRow(label: labels[index], interval: interval, overall: overall[index]))
    }
    return rows
  }
}

/// Everything `top` counts.
struct TopStats {
  enum IntervalSource {
    case current
    case shown
    case overall
  }

  private(set) var byFunction = TopTable()
  private(set) var byLine = TopTable()
  private(set) var current = TopInterval()
  /// The last completed interval, nil before the first one ends (or after a reset).
  private(set) var shown: TopInterval?
  private(set) var overall = TopInterval()
  /// Threads and processes seen at the last tick.
  private(set) var threads = 0
  private(set) var processes = 0
  private var stackNumber: UInt64 = 0
  private var rootNumbers: [String: Int32] = [:]

  /// Counts one thread's stack (innermost frame first). `label(frame)` names a frame (the
  /// per-function label is asked for the frame on line 0).
  mutating func add(
    pid: Int32, frames: [SampledFrame], roots: [String] = [], ownsGIL: Bool, active: Bool,
    label: (SampledFrame) -> String
  ) {
    if ownsGIL { current.gil += 1 }
    if active { current.active += 1 }
    if ownsGIL { overall.gil += 1 }
    if active { overall.active += 1 }
    stackNumber &+= 1
    for (position, frame) in frames.enumerated() {
      let function = frame.on(line: 0)
      let functionIndex = byFunction.index(TopTable.Key(pid: pid, frame: function.key)) { label(function) }
      byFunction.count(functionIndex, own: position == 0, stack: stackNumber)
      let line = byLine.index(TopTable.Key(pid: pid, frame: frame.key)) { label(frame) }
      byLine.count(line, own: position == 0, stack: stackNumber)
    }
    // --async-aware's `<task NAME>` roots count as functions of their own (keyed apart from code).
    for root in roots {
      let number = rootNumbers[root] ?? Int32(rootNumbers.count)
      rootNumbers[root] = number
      let key = TopTable.Key(pid: pid, frame: FrameKey(id: .max, isNative: false, line: number))
      byFunction.count(byFunction.index(key) { root }, own: frames.isEmpty, stack: stackNumber)
      byLine.count(byLine.index(key) { root }, own: frames.isEmpty, stack: stackNumber)
    }
  }

  /// Ends one tick at which `threads` threads in `processes` processes were sampled.
  mutating func endTick(threads: Int, processes: Int) {
    current.samples += 1
    overall.samples += 1
    self.threads = threads
    self.processes = processes
  }

  /// The interval in progress becomes the one the percentages show.
  mutating func endInterval() {
    shown = current
    current = TopInterval()
    byFunction.endInterval()
    byLine.endInterval()
  }

  /// Forgets everything counted so far (key R).
  mutating func reset() {
    current = TopInterval()
    shown = nil
    overall = TopInterval()
    byFunction.reset()
    byLine.reset()
  }

  /// What the percentage columns are computed from: the last completed interval, or the one in
  /// progress before any has completed; the whole run with `overallPercentages`.
  func source(overallPercentages: Bool) -> IntervalSource {
    if overallPercentages { return .overall }
    return shown == nil ? .current : .shown
  }

  func interval(_ source: IntervalSource) -> TopInterval {
    switch source {
    case .current: return current
    case .shown: return shown ?? current
    case .overall: return overall
    }
  }

  /// The rows, sorted by `column` (largest first; ties by the other columns, then by label).
  func sortedRows(perLine: Bool, column: TopSortColumn, source: IntervalSource) -> [TopRow] {
    let rows = (perLine ? byLine : byFunction).rows(intervalSource: source)
    func keys(_ row: TopRow) -> [Int] {
      let all = [row.interval.own, row.interval.total, row.overall.own, row.overall.total]
      let first = all[column.rawValue - 1]
      return [first] + all.enumerated().filter { $0.offset != column.rawValue - 1 }.map(\.element)
    }
    let keyed = rows.map { (keys($0), $0) }
    return keyed.sorted { a, b in
      if a.0 != b.0 { return a.0.lexicographicallyPrecedes(b.0, by: >) }
      return a.1.label < b.1.label
    }.map(\.1)
  }
}
