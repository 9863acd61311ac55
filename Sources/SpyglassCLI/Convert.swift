//===--- Convert.swift - `spyglass convert`: a recording into any format ---===//
//
// Reads a recording (`record -f spyglass`, or `record --save-recording`) and writes it in any
// registered format, byte for byte as `record -f FORMAT` would have written the same samples: the
// recording keeps every sample, the tables in their order and the options that shaped the frames,
// and the writers are the same. The output path is checked before the recording is read; a
// recording that is missing, damaged, cut short or from a newer Spyglass is one sentence and exit 1.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile

package struct Convert: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract: "Converts a recording (record -f spyglass, or --save-recording) to another format",
    discussion: """
      The output is the file record would have written with -f FORMAT for the same samples, \
      byte for byte; the options that shaped the frames (--function, --nolineno, --threads, \
      --full-filenames, --subprocesses) are the recording's own.

      Examples:
        spyglass record -f spyglass -o app.spyglass -- python3 app.py
        spyglass convert app.spyglass -o app.svg
        spyglass convert app.spyglass -f speedscope -o app.json
      """)

  @Argument(help: ArgumentHelp("A recording written by record -f spyglass or --save-recording", valueName: "recording"))
  var input: String

  @Option(
    name: .shortAndLong,
    help: ArgumentHelp(
      "Output filename (default: the recording's name with the format's extension)", valueName: "filename"))
  var output: String?

  @Option(name: .shortAndLong, help: "Output file format")
  var format: OutputFormat = .default

  package init() {}

  package func run() throws {
    try reportingFailures {
      let path = output ?? defaultOutputName()
      try OutputFile(path).checkingWritable()
      let profile = try Self.readRecording(input)
      try format.write(profile, to: path)
      printError(
        "spyglass> Wrote \(format.name) data to '\(path)'. Samples: \(profile.totalSamples) Errors: \(profile.info.errorCount)"
      )
    }
  }

  /// `app.spyglass` → `app.svg`; any other name gets the extension added.
  func defaultOutputName() -> String {
    let suffix = "." + OutputFormat.recording.fileExtension
    let base = input.hasSuffix(suffix) && input.count > suffix.count ? String(input.dropLast(suffix.count)) : input
    return base + "." + format.fileExtension
  }

  /// The profile a recording file holds, or the error that says why there is none.
  static func readRecording(_ path: String) throws(SpyglassError) -> Profile {
    let bytes: [UInt8]
    do {
      // One byte over the limit tells a file that is too large from one that fits exactly.
      bytes = try ProcFS.readFile(path, limit: RecordingReader.maximumSize + 1)
    } catch {
      throw .recordingUnreadable(path: path, errno: error.rawValue)
    }
    do throws(RecordingProblem) {
      guard bytes.count <= RecordingReader.maximumSize else {
        throw RecordingProblem.tooLarge(limit: RecordingReader.maximumSize)
      }
      return try RecordingReader.read(bytes)
    } catch {
      throw .badRecording(path: path, problem: error)
    }
  }
}
