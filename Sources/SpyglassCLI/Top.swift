//===--- Top.swift - `spyglass top` ------------------------------------------===//
//
// A live, top-like view of where the program spends its time. One thread does everything (ptrace
// requests belong to the thread that made them): it waits for the next tick (one per interval of the rate, at a random point in it), reads
// the keys typed since the last one (never waiting for them), samples every attached process,
// counts the stacks (TopStats) and redraws when due (TopView).
//
// On a terminal the view takes the alternate screen with the cursor hidden, and stdin is switched
// to key-at-a-time mode; both are put back on every way out (TerminalMode.restore, from a defer and
// from atexit). When stdout is not a terminal, a plain table is printed every --delay seconds
// instead, with no escape sequences and no change to any terminal mode, so
// `spyglass top --pid PID > top.log` works.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

package struct Top: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract: "Displays a top like view of functions consuming CPU",
    discussion: """
      Keys: 1-4 sort by %Own, %Total, OwnTime (default) or TotalTime; L shows lines instead of \
      functions; R resets the statistics; ? shows help; q or Ctrl-C quits. When stdout is not a \
      terminal, a plain table is printed every --delay seconds instead.

      A program started by top runs with stdin from /dev/null and its stdout and stderr in a \
      temporary file, shown only if it fails, so that it cannot garble the screen.

      Examples:
        spyglass top --pid 1234
        spyglass top -- python3 app.py
      """)

  @OptionGroup var sampling: SamplingOptions

  @Option(help: ArgumentHelp("Delay between 'top' refreshes.", valueName: "seconds"))
  var delay: Double = 1.0

  package init() {}

  package func validate() throws {
    if !(delay > 0 && delay <= 86400) {
      throw ValidationError(
        "--delay must be a number of seconds greater than 0 (and at most 86400).")
    }
  }

  package func run() throws {
    try reportingFailures {
      var session = TopSession(options: sampling, delay: delay)
      try session.run()
    }
  }
}

/// One run of `top`: the sampling loop, the keys and the screen.
struct TopSession {
  let options: SamplingOptions
  let delay: Double
  private var stats = TopStats()
  private var layout: TopLayout
  private var showingHelp = false

  /// Where output goes and how.
  private enum Mode {
    /// Full screen on a terminal; `keys`: stdin is in key mode.
    case screen(keys: Bool)
    /// A plain table every --delay seconds.
    case plain
  }

  init(options: SamplingOptions, delay: Double) {
    self.options = options
    self.delay = delay
    self.layout = TopLayout(rate: options.rate.hertz)
  }

  mutating func run() throws {
    Signals.install()
    // A launched program must not write over the screen or read our keys.
    let capture = options.pid == nil ? ChildOutputCapture() : nil
    var session: SamplingSession
    do {
      let options = self.options
      let sessionOptions = options.session(wantNames: false)
      if let capture {
        session = try capture.redirectingStandardStreams { () throws(SpyglassError) in
          try SamplingSession(options: sessionOptions)
        }
      } else {
        session = try SamplingSession(options: sessionOptions)
      }
    } catch {
      capture?.printOutput(reason: "The program's output")
      throw error
    }
    var header = TopHeader(
      command: terminalSafe(commandDescription(session)),
      pythonVersion: session.pythonVersion,
      subprocesses: options.subprocesses, errors: 0, ticks: 0)

    let mode: Mode
    if Terminal.isTerminal(1) {
      let keys = TerminalMode.enterKeyMode(0)
      TerminalMode.enterFullScreen(1)
      mode = .screen(keys: keys)
    } else {
      mode = .plain
    }
    defer { TerminalMode.restore() }

    let start = monotonicSeconds()
    var nextRefresh = start + delay
    var sizeCheck = Throttle(seconds: 0.1)
    var size = Terminal.size(1)
    var intervalLag = 0.0
    var lastIntervalLag = 0.0
    var quit = false
    var targetEnded = false
    if case .screen(let keys) = mode { draw(header, keys: keys) }

    var redraw = false
    var threads = 0
    var processes = 0
    let include = (idle: options.idle, gil: options.gil, full: options.fullFilenames)
    session.wakeEarly = { Signals.stopRequested != 0 }
    let end = session.run(
      start: start,
      shouldStop: { status in
        if Signals.stopRequested != 0 { return true }
        intervalLag = max(intervalLag, status.lag)
        if case .screen = mode {
          for key in TerminalMode.readAvailable(0) {
            switch handle(key) {
            case .quit:
              quit = true
              return true
            case .redraw: redraw = true
            case .nothing: break
            }
          }
        }
        return false
      },
      consume: { process, stacks in
        processes += 1
        threads += stacks.count
        func label(_ frame: SampledFrame) -> String {
          TopSession.label(process.source.resolver.frame(frame), fullFilenames: include.full)
        }
        for thread in stacks {
          if !include.idle && !thread.active && !include.gil { continue }
          if include.gil && !thread.ownsGIL { continue }
          stats.add(
            pid: thread.pid, frames: thread.frames, roots: thread.roots, ownsGIL: thread.ownsGIL, active: thread.active,
            label: label)
        }
      },
      afterTick: { status in
        stats.endTick(threads: threads, processes: processes)
        threads = 0
        processes = 0
        let now = monotonicSeconds()
        header.errors = status.errors
        header.ticks = status.ticks
        if now >= nextRefresh {
          stats.endInterval()
          lastIntervalLag = intervalLag
          intervalLag = 0
          nextRefresh = now + delay
          redraw = true
          if case .plain = mode {
            header.lag = lastIntervalLag
            printPlain(header, final: false)
            redraw = false
          }
        }
        if case .screen(let keys) = mode {
          let overall = stats.overall.samples
          if overall == 10 || overall == 100 || overall == 500 { redraw = true }
          if sizeCheck.ready() {
            let newSize = Terminal.size(1)
            if newSize?.rows != size?.rows || newSize?.columns != size?.columns {
              size = newSize
              redraw = true
            }
          }
          if redraw {
            header.lag = lastIntervalLag
            draw(header, keys: keys)
            redraw = false
          }
        }
      })
    targetEnded = end == .allExited

    TerminalMode.restore()
    header.errors = session.errors
    header.ticks = session.ticks
    header.lag = 0
    if targetEnded {
      let end = session.launched.map { $0.waitForEnd(timeout: 1) }
      if case .running = end { session.endLaunchedProgram() }
      if stats.overall.samples > 0 { printPlain(header, final: true) }
      writeAll(fd: 1, Array("process \(session.rootPID) ended\n".utf8))
      switch end {
      case .exited(let status) where status != 0:
        capture?.printOutput(reason: "The program exited with status \(status); its output")
      case .collectedElsewhere:
        capture?.printOutput(reason: "The program's output")
      default: break
      }
      return
    }
    if let launched = session.launched, launched.waitForEnd(timeout: 0) == .running {
      session.endLaunchedProgram()
    }
    if case .plain = mode, !quit, stats.overall.samples > 0 { printPlain(header, final: true) }
  }

  private enum KeyAction { case nothing, redraw, quit }

  /// Acts on one key.
  private mutating func handle(_ key: UInt8) -> KeyAction {
    if key == 3 || key == UInt8(ascii: "q") || key == UInt8(ascii: "Q") { return .quit }
    if showingHelp {
      showingHelp = false
      return .redraw
    }
    switch key {
    case UInt8(ascii: "1")...UInt8(ascii: "4"):
      layout.sort = TopSortColumn(rawValue: Int(key - UInt8(ascii: "0"))) ?? .ownTime
    case UInt8(ascii: "l"), UInt8(ascii: "L"):
      layout.perLine.toggle()
    case UInt8(ascii: "r"), UInt8(ascii: "R"):
      stats.reset()
    case UInt8(ascii: "?"), UInt8(ascii: "h"), UInt8(ascii: "H"):
      showingHelp = true
    default:
      return .nothing
    }
    return .redraw
  }

  /// Redraws the whole screen in one write: home, then every line cleared and rewritten, then the
  /// rest of the screen cleared.
  private func draw(_ header: TopHeader, keys: Bool) {
    let size = Terminal.size(1) ?? (rows: 24, columns: 80)
    let width = size.columns
    let height = max(size.rows, 1)
    var lines: [String]
    if showingHelp {
      lines = TopView.helpLines(layout: layout, width: width)
    } else {
      lines = TopView.lines(
        header: header, stats: stats, layout: layout, width: width, height: height,
        sortMarker: ("\u{1B}[1m", "\u{1B}[0m"))
      if keys && lines.count > 1 {
        let hint = "Press ? for help, q to quit"
        let used = TopView.displayWidth(lines[1])
        if used + 4 + hint.count <= width {
          lines[1] += String(repeating: " ", count: width - used - hint.count) + hint
        }
      }
    }
    if lines.count > height { lines.removeLast(lines.count - height) }
    var frame = "\u{1B}[H"
    frame += lines.map { "\u{1B}[2K" + $0 }.joined(separator: "\r\n")
    if lines.count < height { frame += "\r\n\u{1B}[J" }
    writeAll(fd: 1, Array(frame.utf8))
  }

  /// Prints the table as plain text (the top 20 rows) followed by a blank line. `final`: the
  /// summary at the end, with percentages over the whole run.
  private func printPlain(_ header: TopHeader, final: Bool) {
    var layout = self.layout
    layout.overallPercentages = final
    var lines: [String] = []
    if final {
      lines.append(
        "Summary of the whole run (percentages over all \(stats.overall.samples) samples):")
    }
    let width = Terminal.size(1)?.columns ?? 1 << 20
    lines += TopView.lines(
      header: header, stats: stats, layout: layout, width: width, height: nil, maxRows: 20)
    writeAll(fd: 1, Array((lines.joined(separator: "\n") + "\n\n").utf8))
  }

  private func commandDescription(_ session: SamplingSession) -> String {
    let rootPID = session.rootPID
    if options.pid == nil { return options.command.joined(separator: " ") }
    let commandLine = session.processes[rootPID]?.source.info.commandLine ?? []
    return commandLine.isEmpty ? "pid \(rootPID)" : commandLine.joined(separator: " ")
  }

  /// `name (file)` or, with a line, `name (file:line)`; terminal-safe.
  static func label(_ frame: Frame, fullFilenames: Bool) -> String {
    terminalSafe(frame.label(fullFilenames: fullFilenames))
  }
}
