//===--- OutputFormat.swift - the formats a recording can be written in -----===//
//
// `render(_:as:options:)` is the module's entry point: it turns a `Profile` into the bytes of one
// file. Each format lives in its own file; what they share (labels honouring the options, thread
// titles) is here, and escaping and number printing are in Bytes.swift.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

/// Spyglass's version: the one place it is written (`spyglass --version`, the wheel's version in
/// pyproject.toml, and outputs that name their exporter: speedscope's `exporter`, pprof's comments).
package let spyglassVersion = "0.1.0"

/// The file formats Spyglass writes (the same names as py-spy's `--format`, plus pprof).
package enum OutputFormat: String, CaseIterable, Sendable {
  /// A self-contained interactive SVG icicle graph.
  case flamegraph
  /// speedscope's JSON file format, one sampled profile per thread.
  case speedscope
  /// Chrome Trace Event JSON (chrome://tracing, Perfetto).
  case chrometrace
  /// Brendan Gregg's collapsed ("folded") stacks, as py-spy's `--format raw`.
  case raw
  /// A gzipped pprof `profile.proto`.
  case pprof

  /// The conventional file name extension, without the dot.
  package var fileExtension: String {
    switch self {
    case .flamegraph: "svg"
    case .speedscope, .chrometrace: "json"
    case .raw: "txt"
    case .pprof: "pb.gz"
    }
  }

  /// True when the format shows samples in time order, so the recording should keep a timeline.
  /// (Without one these writers fall back to the aggregated totals.)
  package var needsTimeline: Bool {
    switch self {
    case .speedscope, .chrometrace: true
    case .flamegraph, .raw, .pprof: false
    }
  }
}

/// Options shared by the writers.
package struct WriterOptions: Sendable {
  /// Show full file names instead of the shortened ones (flamegraph and raw labels).
  package var fullFilenames: Bool
  /// Show line numbers. When false, frames that differ only by line are merged.
  package var showLineNumbers: Bool
  /// Spyglass's version, for `exporter` fields.
  package var version: String

  package init(
    fullFilenames: Bool = false, showLineNumbers: Bool = true, version: String = spyglassVersion
  ) {
    self.fullFilenames = fullFilenames
    self.showLineNumbers = showLineNumbers
    self.version = version
  }
}

/// Errors a writer can raise.
package enum OutputError: Error, Equatable, CustomStringConvertible {
  /// Serialising the pprof message failed.
  case encodingFailed(String)
  /// zlib refused to compress.
  case compressionFailed(code: Int32)

  package var description: String {
    switch self {
    case .encodingFailed(let why): "cannot encode the profile: \(why)"
    case .compressionFailed(let code): "cannot gzip the profile (zlib error \(code))"
    }
  }
}

/// Renders `profile` in `format`.
package func render(_ profile: Profile, as format: OutputFormat, options: WriterOptions) throws
  -> [UInt8]
{
  switch format {
  case .raw: RawWriter.render(profile, options: options)
  case .flamegraph: FlamegraphWriter.render(profile, options: options)
  case .speedscope: SpeedscopeWriter.render(profile, options: options)
  case .chrometrace: ChromeTraceWriter.render(profile, options: options)
  case .pprof: try PprofWriter.render(profile, options: options)
  }
}

// MARK: - Shared helpers

extension Frame {
  /// The frame as the options show it: line dropped when line numbers are off.
  func shown(_ options: WriterOptions) -> Frame {
    if options.showLineNumbers || line == 0 { return self }
    var copy = self
    copy.line = 0
    return copy
  }
}

/// One collapsed stack: labels root first, and its totals over all threads.
struct CollapsedStack {
  var labels: [String]
  /// The function name of each frame (for colouring), parallel to `labels`.
  var names: [String]
  var count: UInt64
}

/// The profile's stacks merged across threads and labelled as the options say (py-spy's labels,
/// `Frame.label(fullFilenames:)`), sorted by labels for deterministic output. Stacks that render
/// to the same labels are merged. Control characters in labels are made visible here, once, so
/// every label-based writer (raw, flamegraph) shows the same text.
func collapsedStacks(_ profile: Profile, options: WriterOptions) -> [CollapsedStack] {
  var labelCache: [FrameID: String] = [:]
  func label(_ id: FrameID) -> String {
    if let cached = labelCache[id] { return cached }
    let text = visible(
      profile.frames[Int(id)].shown(options).label(fullFilenames: options.fullFilenames))
    labelCache[id] = text
    return text
  }
  var countPerStack: [StackID: UInt64] = [:]
  for (key, total) in profile.totals where total.count > 0 {
    countPerStack[key.stack, default: 0] += total.count
  }
  var result: [CollapsedStack] = []
  var indexByLabels: [[String]: Int] = [:]
  for (stack, count) in countPerStack {
    let ids = profile.stacks[Int(stack)]
    let labels = ids.map(label)
    if let i = indexByLabels[labels] {
      result[i].count += count
    } else {
      indexByLabels[labels] = result.count
      result.append(
        CollapsedStack(
          labels: labels, names: ids.map { profile.frames[Int($0)].name }, count: count))
    }
  }
  result.sort { $0.labels.lexicographicallyPrecedes($1.labels) }
  return result
}

/// The title of a thread in per-thread outputs: `Thread <displayID> "<name>"` (py-spy's form),
/// prefixed with `Process <pid> ` when the profile covers several processes.
func threadTitle(_ thread: ThreadInfo, multiProcess: Bool) -> String {
  let base = "Thread \(thread.displayID) \"\(thread.name ?? "")\""
  return multiProcess ? "Process \(thread.pid) \(base)" : base
}

extension Profile {
  /// True when threads from more than one process were sampled.
  var hasSeveralProcesses: Bool {
    guard let first = threads.first?.pid else { return false }
    return threads.contains { $0.pid != first }
  }

  /// Aggregated (stack, total) entries of each thread, sorted by stack id for determinism.
  func totalsByThread() -> [ThreadIndex: [(stack: StackID, total: StackTotal)]] {
    var result: [ThreadIndex: [(stack: StackID, total: StackTotal)]] = [:]
    for (key, total) in totals where total.count > 0 {
      result[key.thread, default: []].append((key.stack, total))
    }
    for key in result.keys { result[key]!.sort { $0.stack < $1.stack } }
    return result
  }
}
