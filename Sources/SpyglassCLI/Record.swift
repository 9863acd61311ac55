//===--- Record.swift - `spyglass record` ------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassOutput
import SpyglassProcess

/// `-f/--format` of record and convert: the registered formats (SpyglassOutput's `outputWriters`),
/// their names and one-line descriptions.
extension OutputFormat: ExpressibleByArgument {
  package init?(argument: String) { self.init(name: argument) }
  package var defaultValueDescription: String { name }
  package static var allValueStrings: [String] { all.map(\.name) }
  package static var allValueDescriptions: [String: String] {
    Dictionary(all.map { ($0.name, "\($0.summary) (.\($0.fileExtension))") }, uniquingKeysWith: { a, _ in a })
  }
  package static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
}

/// How samples are weighted.
enum Weighting: String, ExpressibleByArgument, CaseIterable {
  /// Every sample counts 1/rate seconds (py-spy's behaviour).
  case samples
  /// Every sample counts the CPU time its thread used since the thread's previous sample.
  case cpu
}

/// A duration in seconds, or `unlimited`.
struct Duration: ExpressibleByArgument {
  let seconds: Double?
  init?(argument: String) {
    if argument == "unlimited" {
      seconds = nil
    } else if let value = Double(argument), value > 0, value.isFinite {
      seconds = value
    } else {
      return nil
    }
  }
  var defaultValueDescription: String { seconds.map { String($0) } ?? "unlimited" }
}

/// How a target is read: options shared by record, top and dump.
struct ReadingOptions: ParsableArguments {
  @Flag(name: .shortAndLong, help: "Profile subprocesses of the original process")
  var subprocesses = false

  @Flag(
    name: .customLong("full-filenames"),
    help: "Show full Python filenames, instead of shortening to show only the package part")
  var fullFilenames = false

  @Flag(name: .shortAndLong, help: "Collect stack traces from native extensions written in Cython, C or C++")
  var native = false

  @Flag(
    help:
      "Don't pause the python process when collecting samples. Setting this option will reduce the performance impact of sampling, but may lead to inaccurate results"
  )
  var nonblocking = false

  func validate() throws {
    if native && nonblocking { throw ValidationError("Can't get native stack traces with the --nonblocking option.") }
  }
}

extension AsyncMode: ExpressibleByArgument {}

/// Options shared by record and top.
struct SamplingOptions: ParsableArguments {
  @Option(name: .shortAndLong, help: "PID of a running python program to spy on, in decimal or hex")
  var pid: ProcessID?

  @Option(name: .shortAndLong, help: "The number of samples to collect per second")
  var rate = SamplingRate(hertz: 100)

  @OptionGroup var reading: ReadingOptions

  @Flag(name: .shortAndLong, help: "Only include traces that are holding on to the GIL")
  var gil = false

  @Flag(name: .shortAndLong, help: "Include stack traces for idle threads")
  var idle = false

  @Flag(
    help: ArgumentHelp(
      "One stack per asyncio task, rooted at <task NAME> frames that follow who awaits it (CPython 3.11+)",
      discussion: "The event loop's own frames are left out; a thread running no task keeps its stack."))
  var asyncAware = false

  @Option(help: "With --async-aware: the running task only, or every task (suspended ones at their await)")
  var asyncMode: AsyncMode = .running

  var subprocesses: Bool { reading.subprocesses }
  var fullFilenames: Bool { reading.fullFilenames }
  var native: Bool { reading.native }
  var nonblocking: Bool { reading.nonblocking }

  @Argument(
    parsing: .postTerminator, help: ArgumentHelp("commandline of a python program to run", valueName: "python_program"))
  var program: [String] = []

  func validate() throws {
    if pid == nil && program.isEmpty {
      throw ValidationError("Either --pid PID or a program to run (after --) is required.")
    }
    if pid != nil && !program.isEmpty {
      throw ValidationError("Give either --pid or a program to run, not both.")
    }
    if !(rate.hertz > 0 && rate.hertz <= 1_000_000) {
      throw ValidationError("--rate must be a number of samples per second between 0 and 1000000.")
    }
  }

  /// The program to launch (everything after `--`).
  var command: [String] { program }

  /// The library's reading options for these command-line options.
  var config: Config {
    var config = Config()
    config.blocking = nonblocking ? .nonBlocking : .lock
    config.native = native
    config.subprocesses = subprocesses
    config.includeIdle = idle
    config.gilOnly = gil
    config.fullFilenames = fullFilenames
    config.asyncAware = asyncAware
    config.asyncMode = asyncMode
    return config
  }

  /// The library's session options for these command-line options.
  func session(wantNames: Bool) -> SessionOptions {
    var options = SessionOptions(pid: pid?.value, command: program, config: config)
    options.rate = rate.hertz
    options.wantNames = wantNames
    return options
  }
}

package struct Record: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract:
      "Records stack trace information to a flamegraph, speedscope, chrome trace, raw, pprof, pstats, callgrind or spyglass file",
    discussion: """
      Sampling stops at --duration, when the program exits, or on Ctrl-C / SIGTERM; in every case the \
      samples taken so far are written. Send SIGUSR1 to a running record to write the profile so far to \
      the output file without stopping (statistics at any time). A recording (-f spyglass, or \
      --save-recording beside another format) keeps every sample; `spyglass convert` renders it in any \
      format later, exactly as record would have.

      Examples:
        spyglass record -o profile.svg --pid 1234
        spyglass record -f speedscope -o profile.json -- python3 app.py
        spyglass record -o profile.svg --save-recording app.spyglass -- python3 app.py
        spyglass record --upload http://pyroscope:4040 --pid 1234
      """)

  @OptionGroup var sampling: SamplingOptions

  @OptionGroup(title: "Continuous profiling") var uploads: UploadOptions

  @Option(name: .shortAndLong, help: ArgumentHelp("Output filename", valueName: "filename"))
  var output: String?

  @Option(name: .shortAndLong, help: "Output file format")
  var format: OutputFormat = .default

  @Option(name: .shortAndLong, help: ArgumentHelp("The number of seconds to sample for", valueName: "duration"))
  var duration: Duration = Duration(argument: "unlimited")!

  @Flag(
    name: [.customShort("F"), .customLong("function")],
    help: "Aggregate samples by function's first line number, instead of current line number")
  var function = false

  @Flag(help: "Do not show line numbers")
  var nolineno = false

  @Flag(name: .shortAndLong, help: "Show thread ids in the output")
  var threads = false

  @Option(help: "Weight samples by count (samples) or by the CPU time each thread used between samples (cpu)")
  var weight: Weighting = .samples

  @Option(
    name: .customLong("summary-json"),
    help: ArgumentHelp(
      "Also write a JSON summary (per thread: Python and OS thread ids, name, samples, CPU nanoseconds) to this file, whenever the profile is written",
      valueName: "filename"))
  var summaryJSON: String?

  @Option(
    name: .customLong("save-recording"),
    help: ArgumentHelp(
      "Also write Spyglass's lossless recording (every sample) to this file, whenever the profile is written; `spyglass convert` renders it in any format later",
      valueName: "filename"))
  var saveRecording: String?

  @Flag(help: .hidden)
  var hideprogress = false

  package init() {}

  package func validate() throws {
    if function && nolineno { throw ValidationError("--function & --nolineno can't be used together") }
    if let saveRecording, saveRecording == output {
      throw ValidationError("--save-recording needs a file of its own, not the --output file")
    }
  }

  package func run() throws {
    try reportingFailures {
      // With --upload the profile is only sent, unless -o asks for a file too.
      let path = output ?? (uploads.enabled ? nil : defaultOutputName())
      if let path { try OutputFile(path).checkingWritable() }
      if let summaryJSON { try OutputFile(summaryJSON).checkingWritable() }
      if let saveRecording { try OutputFile(saveRecording).checkingWritable() }
      var recording = Recording(
        options: sampling, format: format, outputPath: path, duration: duration.seconds,
        lineNo: function ? .first : nolineno ? .noLine : .lastInstruction, showThreads: threads, weighting: weight,
        showProgress: !hideprogress && Terminal.isTerminal(2),
        title: "spyglass " + CommandLine.arguments.dropFirst().joined(separator: " "))
      recording.summaryPath = summaryJSON
      recording.recordingPath = saveRecording
      if uploads.enabled {
        recording.upload = try ContinuousUpload(
          options: uploads, rate: sampling.rate.hertz, weighting: weight == .cpu ? .cpu : .samples)
      }
      try recording.run()
    }
  }

  func defaultOutputName() -> String {
    let base: String
    if let program = sampling.command.first {
      base = program.split(separator: "/").last.map(String.init) ?? "profile"
    } else {
      base = String(sampling.pid?.value ?? 0)
    }
    return "\(base)-\(WallClock.fileNameTimestamp()).\(format.fileExtension)"
  }
}

/// `--rate`: samples per second. A fraction is allowed (`-r 0.5`: one sample every two seconds);
/// `--help` shows the default as py-spy does, `100`.
struct SamplingRate: ExpressibleByArgument, Sendable, Equatable {
  var hertz: Double

  init(hertz: Double) { self.hertz = hertz }

  init?(argument: String) {
    guard let value = Double(argument) else { return nil }
    hertz = value
  }

  var defaultValueDescription: String { formatRate(hertz) }
}
