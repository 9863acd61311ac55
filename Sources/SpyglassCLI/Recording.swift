//===--- Recording.swift - `record`: the library's sampling loop into a file ---===//
//
// `record` runs the library's one sampling loop (SamplingSession.run) on the main thread: each
// tick's stacks are folded into the profile model; between ticks it watches signals (Ctrl-C /
// SIGTERM stop, SIGUSR1 writes the profile so far), the duration and the end of the targets.
//
//===----------------------------------------------------------------------===//

import Spyglass
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

struct Recording {
  let options: SamplingOptions
  let format: OutputFormat
  /// Where the profile goes; nil with `--upload` and no `-o` (the profile is only uploaded).
  let outputPath: String?
  let duration: Double?
  let lineNo: LineNo
  let showThreads: Bool
  let weighting: Weighting
  let showProgress: Bool
  let title: String
  /// `--summary-json`: where the machine-readable summary goes, written after every write of the
  /// profile (SIGUSR1 and the end), or nil.
  var summaryPath: String? = nil
  /// `--save-recording`: where the lossless recording goes, written with every write of the
  /// profile, or nil.
  var recordingPath: String? = nil
  /// `--upload`: each interval's profiles are sent while recording, or nil.
  var upload: ContinuousUpload? = nil

  init(
    options: SamplingOptions, format: OutputFormat, outputPath: String?, duration: Double?, lineNo: LineNo,
    showThreads: Bool, weighting: Weighting, showProgress: Bool, title: String
  ) {
    self.options = options
    self.format = format
    self.outputPath = outputPath
    self.duration = duration
    self.lineNo = lineNo
    self.showThreads = showThreads
    self.weighting = weighting
    self.showProgress = showProgress
    self.title = title
  }

  mutating func run() throws {
    Signals.install()
    // A twentieth of the mean interval, at most the kernel's default 50 µs.
    setTimerSlack(nanoseconds: UInt(max(1, min(50_000, 1e9 / options.rate.hertz / 20))))
    var session = try SamplingSession(
      options: options.session(
        wantNames: showThreads || format.needsThreadNames || recordingPath != nil || upload != nil))
    var builder = ProfileBuilder(
      profile: Profile(
        info: RecordingInfo(
          title: title, rate: options.rate.hertz, pythonVersion: session.pythonVersion,
          startUnixNanoseconds: WallClock.unixSeconds() * 1_000_000_000,
          weighting: weighting == .cpu ? .cpu : .samples, frameOptions: frameOptions),
        keepsTimeline: (outputPath != nil && format.needsTimeline) || recordingPath != nil),
      lineNo: lineNo, showThreads: showThreads, showProcesses: options.subprocesses)

    let destination = outputPath.map { "write \($0)" } ?? "upload the last profiles"
    if session.followsLauncher, let program = options.command.first {
      let pythons = session.order.map(String.init).joined(separator: ", ")
      printError(
        "spyglass> '\(terminalSafe(program))' is not Python: sampling the Python processes it starts (\(pythons) so far), as --subprocesses does."
      )
    }
    printError(
      "spyglass> Sampling process \(session.rootPID) at \(formatRate(options.rate.hertz)) Hz. Press Control-C to stop and \(destination)."
    )
    // With --upload and no file, the whole recording is not kept: memory stays flat however long
    // it runs.
    let keepsProfile = outputPath != nil || recordingPath != nil || summaryPath != nil
    var samplesTaken: UInt64 = 0
    // Samples kept with a stack that was read incomplete even on a second look.
    var incompleteKept: UInt64 = 0
    let upload = self.upload
    let start = monotonicSeconds()
    var progress = Throttle(seconds: 0.25)
    var lagWarning = Throttle(seconds: 1)
    let sampleWeight = UInt64(1e9 / options.rate.hertz)
    // Plain copies of the options the loop reads (an argument parser property is not a plain load).
    let dropsIdleThreads = !options.idle && !options.gil
    let weightsByCPU = weighting == .cpu
    let duration = self.duration
    // A sleep between ticks ends early for a stop request, a flush request or the end of
    // --duration (at low rates a tick can be seconds away).
    session.wakeEarly = {
      Signals.stopRequested != 0 || Signals.flushPending || duration.map { monotonicSeconds() - start >= $0 } ?? false
    }
    let showProgress = self.showProgress
    var stopReason = ""
    var cpu = CPUTimes()
    var sampleTime: UInt64 = 0

    let end = session.run(
      start: start,
      shouldStop: { status in
        if Signals.stopRequested != 0 {
          stopReason = Signals.stopRequested == Signal.interrupt ? "Control-C pressed" : "SIGTERM received"
          return true
        }
        if Signals.takeFlushRequest() {
          if let outputPath {
            finish(&builder, cpu: &cpu, errors: status.errors, start: start)
            do {
              try write(builder.profile)
              try writeSummary(builder.profile, final: false)
            } catch { printError("spyglass> \(error)") }
            printError(
              "spyglass> Wrote the profile so far to '\(outputPath)' (\(builder.profile.totalSamples) samples).")
          }
          upload?.report()
        }
        let now = monotonicSeconds() - start
        if let duration, now >= duration {
          stopReason = "the duration ended"
          return true
        }
        sampleTime = UInt64(max(0, now) * 1e9)
        return false
      },
      consume: { process, threads in
        for thread in threads {
          if dropsIdleThreads && !thread.active { continue }
          var weight = sampleWeight
          // CPU time is read per sample only when it weights the samples; otherwise once when a
          // thread is first seen and once at the end, for the summary.
          if weightsByCPU {
            // A suspended task's stack (--async-aware --async-mode all) uses no CPU.
            if thread.isTaskAtRest {
              weight = 0
            } else if let tid = thread.osThreadID {
              weight = cpu.delta(pid: thread.pid, tid: tid) ?? 0
            }
          }
          upload?.add(thread, of: process, weightNanoseconds: weight, timeNanoseconds: sampleTime)
          if thread.incomplete && !thread.frames.isEmpty { incompleteKept += 1 }
          if !keepsProfile {
            if !thread.frames.isEmpty { samplesTaken += 1 }
            continue
          }
          let firstSeen = builder.add(
            thread, resolver: process.source.resolver, processLabels: process.labels, weightNanoseconds: weight,
            timeNanoseconds: sampleTime)
          if firstSeen && !weightsByCPU, let tid = thread.osThreadID { cpu.note(pid: thread.pid, tid: tid) }
        }
      },
      afterTick: { status in
        if !weightsByCPU { cpu.refreshIfDue() }
        upload?.sendIfDue()
        let lag = status.lag
        let now = monotonicSeconds()
        if lag > 1, lagWarning.ready() {
          printError(
            "spyglass> \(formatSeconds(lag)) behind in sampling, results may be inaccurate. Try reducing the sampling rate."
          )
        }
        if showProgress && progress.ready() {
          let elapsed = now - start
          let line =
            "\rspyglass> \(keepsProfile ? builder.profile.totalSamples : samplesTaken) samples, \(status.errors) errors, \(formatSeconds(elapsed))"
            + (duration.map { " of \(formatSeconds($0))" } ?? "") + "   "
          writeAll(fd: 2, Array(line.utf8))
        }
      })
    let targetsExited = end == .allExited
    if targetsExited { stopReason = "the process exited" }
    if showProgress { writeAll(fd: 2, Array("\r\u{1B}[K".utf8)) }
    finish(&builder, cpu: &cpu, errors: session.errors, start: start)
    session.endLaunchedProgram()
    printError("spyglass> Stopped sampling because \(stopReason).")
    if !keepsProfile { samplesTaken = Swift.max(samplesTaken, builder.profile.totalSamples) }
    upload?.finish(within: 10)
    if targetsExited && (keepsProfile ? builder.profile.totalSamples : samplesTaken) == 0 {
      // Like a program that ended before Spyglass attached (which of the two happens to a program
      // that exits at once is a race): an error, and no empty profile in place of one.
      throw SpyglassError.exitedBeforeAnySample(
        program: session.launched != nil ? options.command.first : nil, pid: session.rootPID,
        idleLeftOut: !(options.idle || options.gil))
    }
    let samplesKept = keepsProfile ? builder.profile.totalSamples : samplesTaken
    if samplesKept == 0, session.errors > 0, let lastError = session.lastError {
      // Nothing to show and failures to explain: say why instead of writing an empty profile.
      throw SpyglassError.everySampleFailed(
        errors: session.errors, samples: session.ticks, lastError: lastError.description)
    }
    try write(builder.profile)
    try writeSummary(builder.profile, final: true)
    summarize(
      builder.profile, samples: keepsProfile ? builder.profile.totalSamples : samplesTaken, session: session,
      elapsed: builder.profile.info.durationSeconds)
    summarizeIncomplete(kept: incompleteKept, samples: samplesKept, session: session)
  }

  /// 3.12+: how many samples caught a thread between two frames (read again at once), and how
  /// many kept an incomplete stack all the same (its outer frames missing).
  func summarizeIncomplete(kept: UInt64, samples: UInt64, session: SamplingSession) {
    let retried = session.processes.values.reduce(0) { $0 + (($1.source as? ProcessSampler)?.incompleteRetries ?? 0) }
    if retried == 0 && kept == 0 { return }
    let share = samples > 0 ? Double(kept) / Double(samples) * 100 : 0
    printError(
      "spyglass> Incomplete stacks: \(retried) ticks caught a thread between two frames and read it again; \(kept) samples (\(formatPercent(share))) kept an incomplete stack (its outer frames missing)."
    )
  }

  func finish(_ builder: inout ProfileBuilder, cpu: inout CPUTimes, errors: Int, start: Double) {
    // The time sampled, taken before anything else is done: the achieved rate is ticks over it.
    builder.profile.info.durationSeconds = monotonicSeconds() - start
    cpu.refresh()
    builder.profile.info.sampleCount = builder.profile.totalSamples
    builder.profile.info.errorCount = UInt64(errors)
    for thread in builder.profile.threads {
      guard let tid = thread.osThreadID, let used = cpu.total(pid: thread.pid, tid: tid) else { continue }
      var info = thread
      info.cpuNanoseconds = used
      _ = builder.profile.thread(info)
    }
  }

  /// Writes the output file and, with --save-recording, the recording, from the same profile.
  func write(_ profile: Profile) throws {
    if let outputPath { try format.write(profile, to: outputPath) }
    if let recordingPath { try OutputFormat.recording.write(profile, to: recordingPath) }
  }

  func summarize(_ profile: Profile, samples: UInt64, session: SamplingSession, elapsed: Double) {
    let ticks = session.ticks
    let errorRate = ticks > 0 ? Double(session.errors) / Double(ticks) * 100 : 0
    if let outputPath {
      printError(
        "spyglass> Wrote \(format.name) data to '\(outputPath)'. Samples: \(samples) Errors: \(session.errors)")
    } else {
      printError("spyglass> Samples: \(samples) Errors: \(session.errors)")
    }
    printError(
      "spyglass> \(formatSeconds(elapsed)) recorded: \(ticks) ticks at \(formatRate(Double(ticks) / max(elapsed, 1e-9))) Hz achieved (asked \(formatRate(options.rate.hertz)) Hz), error rate \(formatPercent(errorRate))"
        + (session.maxLag > 0.05 ? ", fell behind by up to \(formatSeconds(session.maxLag))" : ""))
    let timed = profile.threads.filter { $0.cpuNanoseconds != nil }
    if !timed.isEmpty {
      let parts = timed.prefix(16).map { thread -> String in
        let name = thread.name.map { "\"\(terminalSafe($0))\" " } ?? ""
        return "\(name)(\(thread.displayID)) \(formatSeconds(Double(thread.cpuNanoseconds ?? 0) / 1e9))"
      }
      printError("spyglass> CPU time per thread: " + parts.joined(separator: ", ") + (timed.count > 16 ? ", …" : ""))
    }
    if options.native { summarizeNative(session) }
    for line in threadIDNotes(session.processes.values.flatMap(\.source.threadIDCorrections)) { printError(line) }
  }

  /// `--native`: how the native stacks went (merge failures are counted, never fatal).
  func summarizeNative(_ session: SamplingSession) {
    let stacks = session.processes.values.compactMap(\.source.native)
    let unwound = stacks.reduce(0) { $0 + $1.unwound }
    let reused = stacks.reduce(0) { $0 + $1.reused }
    let failed = stacks.reduce(0) { $0 + $1.unwindFailures }
    let misaligned = stacks.reduce(0) { $0 + $1.misaligned }
    printError(
      "spyglass> Native stacks: \(unwound) read (\(reused) of threads asleep where they were), \(failed) could not be unwound and \(misaligned) did not line up with the Python frames (their Python frames were kept)"
    )
    for (pid, reason) in session.nativeFailures.sorted(by: { $0.key < $1.key }) {
      printError(
        "spyglass> Native stacks of process \(pid) could not be read (\(terminalSafe(reason))); its Python stacks were recorded"
      )
    }
  }
}

// MARK: - --summary-json, --save-recording

extension Recording {
  /// The options that shaped the frames, as the recording keeps them.
  var frameOptions: FrameOptions {
    FrameOptions(
      lineNo: lineNo, fullFilenames: options.fullFilenames, threadFrames: showThreads,
      processFrames: options.subprocesses)
  }

  /// Writes `--summary-json` (SummaryWriter: totals and per-thread samples and CPU time). Written after
  /// the profile (so a reader that sees a new summary finds the profile of the same moment), the
  /// same way (a temporary file renamed over the old one). `final` is true for the last write.
  func writeSummary(_ profile: Profile, final: Bool) throws {
    guard let summaryPath else { return }
    try OutputFile(summaryPath).writing(
      SummaryWriter.render(
        profile, version: SpyglassCommand.version, rate: formatRate(options.rate.hertz), final: final))
  }
}

func formatSeconds(_ seconds: Double) -> String {
  if seconds >= 100 { return "\(Int(seconds.rounded()))s" }
  let tenths = (seconds * 100).rounded() / 100
  return "\(tenths)s"
}

func formatRate(_ rate: Double) -> String {
  if rate >= 100 || rate == rate.rounded() { return String(Int(rate.rounded())) }
  return String((rate * 10).rounded() / 10)
}

func formatPercent(_ value: Double) -> String { "\((value * 100).rounded() / 100)%" }
