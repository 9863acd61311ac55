//===--- OutputFormat.swift - the formats a recording can be written in -----===//
//
// The module's seam: a format is a `ProfileWriter` (name, extension, needs, `render`), listed once in
// `outputWriters`; `OutputFormat` is a registered format by name, which `-f/--format` parses into.
// Each format lives in its own file; what they share (labels honouring the options, thread titles)
// is here, and escaping and number printing are in Bytes.swift.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProcess
import SpyglassProfile

/// Spyglass's version: the one place it is written (`spyglass --version`, the wheel's version in
/// pyproject.toml, and outputs that name their exporter: speedscope's `exporter`, pprof's comments).
package let spyglassVersion = "0.1.0"

/// One output format: its name on the command line, its file extension, what the recording must
/// keep for it, and how a `Profile` becomes the bytes of one file. Each format is one type
/// conforming to this, in a file of its own, listed once in `outputWriters`.
package protocol ProfileWriter: Sendable {
  /// The name `-f/--format` takes (lowercase, no spaces).
  var name: String { get }
  /// One line for `--help`: what the file is and what reads it.
  var summary: String { get }
  /// The conventional file name extension, without the dot.
  var fileExtension: String { get }
  /// True when the writer reads `profile.timeline` (every sample in time order), so the recording
  /// must keep one. A writer for which this is false reads only the aggregated totals.
  var needsTimeline: Bool { get }
  /// True when the writer shows thread names, so the sampler must read them.
  var needsThreadNames: Bool { get }
  /// The file's bytes.
  func render(_ profile: Profile, options: WriterOptions) throws(SpyglassError) -> [UInt8]
}

/// Every format Spyglass writes, in the order `--help` lists them; the first is the default.
/// Adding a format: a type conforming to `ProfileWriter` in a file of its own, a line here, and a
/// test (CONTRIBUTING.md, "Adding an output format").
package let outputWriters: [any ProfileWriter] = [
  FlamegraphWriter(),
  SpeedscopeWriter(),
  ChromeTraceWriter(),
  RawWriter(),
  PprofWriter(),
  PstatsWriter(),
  CallgrindWriter(),
  RecordingWriter(),
]

/// A registered format, by name: what `-f/--format` parses into and what the library hands out.
package struct OutputFormat: Sendable, Hashable, CustomStringConvertible {
  package let writer: any ProfileWriter

  package init(_ writer: any ProfileWriter) { self.writer = writer }

  /// The registered format called `name` (case-insensitive), or nil.
  package init?(name: String) {
    let wanted = name.lowercased()
    guard let writer = outputWriters.first(where: { $0.name == wanted }) else { return nil }
    self.writer = writer
  }

  /// Every registered format, in registry order.
  package static var all: [OutputFormat] { outputWriters.map(OutputFormat.init) }

  /// The default format (the registry's first: the flame graph).
  package static var `default`: OutputFormat { OutputFormat(outputWriters[0]) }

  package var name: String { writer.name }
  package var summary: String { writer.summary }
  package var fileExtension: String { writer.fileExtension }
  package var needsTimeline: Bool { writer.needsTimeline }
  package var needsThreadNames: Bool { writer.needsThreadNames }
  package var description: String { name }

  package func render(_ profile: Profile, options: WriterOptions) throws(SpyglassError) -> [UInt8] {
    try writer.render(profile, options: options)
  }

  /// Renders `profile` as its frame options say and writes it at `path` (`OutputFile`: a
  /// temporary file renamed over the old one).
  package func write(_ profile: Profile, to path: String) throws(SpyglassError) {
    let bytes = try render(profile, options: WriterOptions(profile.info.frameOptions))
    do { try OutputFile(path).write(bytes) } catch { throw .outputWriteFailed(path: path, errno: error.rawValue) }
  }

  package static func == (a: OutputFormat, b: OutputFormat) -> Bool { a.name == b.name }
  package func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// Options shared by the writers.
package struct WriterOptions: Sendable, Equatable {
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

  /// The options a recording made with `frameOptions` is written with (by `record`, and by
  /// `convert` from the recording file).
  package init(_ frameOptions: FrameOptions, version: String = spyglassVersion) {
    self.init(
      fullFilenames: frameOptions.fullFilenames, showLineNumbers: frameOptions.lineNo != .noLine, version: version)
  }
}

/// Renders `profile` in `format`.
package func render(_ profile: Profile, as format: OutputFormat, options: WriterOptions) throws(SpyglassError)
  -> [UInt8]
{
  try format.render(profile, options: options)
}

/// gzip via zlib (in the process layer), for the formats that are gzipped (`format` names the
/// format in the error).
func gzip(_ input: [UInt8], format: String) throws(SpyglassError) -> [UInt8] {
  do { return try Compression.gzip(input) } catch { throw .renderFailed(format: format, reason: "\(error)") }
}

// MARK: - Shared helpers

extension Frame {
  /// The frame as the options show it: line dropped when line numbers are off.
  package func shown(_ options: WriterOptions) -> Frame {
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
  // In stack id order, so that which of two stacks with the same labels names the merged one does
  // not depend on the dictionary's order (which changes from one process to the next).
  var labelled = Interner<[String]>()
  var result: [CollapsedStack] = []
  for stack in countPerStack.keys.sorted() {
    let ids = profile.stacks[Int(stack)]
    let count = countPerStack[stack] ?? 0
    let (index, inserted) = labelled.insert(ids.map(label))
    if inserted {
      result.append(
        CollapsedStack(
          labels: labelled[index], names: ids.map { profile.frames[Int($0)].name }, count: count))
    } else {
      result[Int(index)].count += count
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

/// A function as pprof, pstats and callgrind know it: its file name, first line and name (ordered
/// in that order, cProfile's key order).
struct FunctionKey: Hashable, Comparable {
  var filename: String
  var firstLine: Int
  var name: String

  init(_ frame: Frame) {
    filename = frame.filename
    firstLine = frame.firstLine
    name = frame.name
  }

  static func < (a: FunctionKey, b: FunctionKey) -> Bool {
    if a.filename != b.filename { return a.filename < b.filename }
    if a.firstLine != b.firstLine { return a.firstLine < b.firstLine }
    return a.name < b.name
  }
}

extension Profile {
  /// Each stack's totals over all threads.
  func totalsByStack() -> [StackID: StackTotal] {
    var result: [StackID: StackTotal] = [:]
    for (key, total) in totals where total.count > 0 {
      result[key.stack, default: StackTotal()].count += total.count
      result[key.stack, default: StackTotal()].weightNanoseconds &+= total.weightNanoseconds
    }
    return result
  }

  /// True when threads from more than one process were sampled.
  var hasSeveralProcesses: Bool {
    guard let first = threads.first?.pid else { return false }
    return threads.contains { $0.pid != first }
  }

  /// Aggregated (stack, total) entries of each thread, sorted by stack id for determinism.
  package func totalsByThread() -> [ThreadIndex: [(stack: StackID, total: StackTotal)]] {
    var result: [ThreadIndex: [(stack: StackID, total: StackTotal)]] = [:]
    for (key, total) in totals where total.count > 0 {
      result[key.thread, default: []].append((key.stack, total))
    }
    for key in result.keys { result[key]!.sort { $0.stack < $1.stack } }
    return result
  }
}
