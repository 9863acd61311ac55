//===--- Agent.swift - `spyglass agent`: every Python process of a host -------===//
//
// Continuous profiling for a whole host from one process: every second it looks for new Python
// processes (containers and chroots included) and attaches to those that pass --match/--exclude,
// samples them all from one loop without pausing them, and every interval uploads one profile per
// process. A process it cannot read is reported once and left alone; one that exits is dropped
// (its last interval still sent). SIGTERM or Ctrl-C sends what was sampled and exits; SIGUSR1
// prints how the uploads stand.
//
// A host whose CPUs its targets keep busy would starve a sampler at a fair share of them (seen:
// 24 of 100 Hz with 50 busy processes on 2 cores), so the agent raises its scheduling priority to
// nice -10 where it may, and says so when it cannot.
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Spyglass
import SpyglassExport
import SpyglassModel
import SpyglassOutput
import SpyglassProcess
import SpyglassStacks

package struct Agent: ParsableCommand {
  package static let configuration = CommandConfiguration(
    abstract: "Profiles every Python process on this host continuously, uploading to Pyroscope or OpenTelemetry",
    discussion: """
      Samples without pausing the processes (non-blocking) and uploads one profile per process every \
      --upload-interval seconds. Labels: service_name (the process's OTEL_SERVICE_NAME, then \
      PYROSCOPE_APPLICATION_NAME, else its script or module name), process.pid, host.name, \
      process.runtime.version, container.id (in a container), and each --label. Send SIGTERM (or \
      Ctrl-C) to upload what was sampled and stop; SIGUSR1 prints how the uploads stand. \
      Environment: SPYGLASS_UPLOAD_TOKEN (a bearer token for the uploads), SPYGLASS_HOST_NAME (the \
      host.name label; default: the kernel's node name).

      Examples:
        spyglass agent --upload http://pyroscope:4040
        spyglass agent --upload http://otel-collector:4318 --upload-format otlp --match gunicorn --label env=prod
      """)

  @OptionGroup(title: "Continuous profiling") var uploads: UploadOptions

  @Option(name: .shortAndLong, help: "The number of samples to collect per second, per process")
  var rate = SamplingRate(hertz: 100)

  @Option(
    help: ArgumentHelp(
      "Only profile processes whose command line (arguments joined by spaces) this regular expression finds something in",
      valueName: "regex"))
  var match: String?

  @Option(
    help: ArgumentHelp(
      "Leave alone processes whose command line this regular expression finds something in", valueName: "regex"))
  var exclude: String?

  @Flag(name: .shortAndLong, help: "Include stack traces for idle threads")
  var idle = false

  @Flag(name: .shortAndLong, help: "Only include traces that are holding on to the GIL")
  var gil = false

  @Option(help: "Weight samples by count (samples) or by the CPU time each thread used between samples (cpu)")
  var weight: Weighting = .samples

  @Option(
    name: .shortAndLong,
    help: ArgumentHelp("Stop after this many seconds (default: run until SIGTERM)", valueName: "duration"))
  var duration: Duration = Duration(argument: "unlimited")!

  package init() {}

  package func validate() throws {
    if !uploads.enabled { throw ValidationError("The agent needs at least one --upload URL.") }
    if !(rate.hertz > 0 && rate.hertz <= 10_000) {
      throw ValidationError("--rate must be a number of samples per second between 0 and 10000.")
    }
  }

  package func run() throws {
    try reportingFailures {
      Signals.install()
      let upload = try ContinuousUpload(
        options: uploads, rate: rate.hertz, weighting: weight == .cpu ? .cpu : .samples)
      raisePriority()
      var config = Config()
      config.blocking = .nonBlocking
      config.includeIdle = idle
      config.gilOnly = gil
      var options = SessionOptions(pid: nil, config: config)
      options.rate = rate.hertz
      options.host = HostFilter(match: match, exclude: exclude)
      options.codeRevalidationSeconds = 1
      var session = try SamplingSession(options: options)
      printError(
        "spyglass> Agent sampling every Python process on this host at \(formatRate(rate.hertz)) Hz, uploading every \(formatSeconds(uploads.interval)) to \(uploads.urls.map(terminalSafe).joined(separator: ", ")). Send SIGTERM to stop."
      )
      let start = monotonicSeconds()
      let duration = self.duration.seconds
      session.wakeEarly = {
        Signals.stopRequested != 0 || Signals.flushPending || duration.map { monotonicSeconds() - start >= $0 } ?? false
      }
      var lagWarning = Throttle(seconds: 10)
      var cpu = CPUTimes()
      let sampleWeight = UInt64(1e9 / rate.hertz)
      let dropsIdleThreads = !idle && !gil
      let weightsByCPU = weight == .cpu
      var sampleTime: UInt64 = 0
      var stopReason = ""
      // Processes sampled at each tick, summed (what the achieved rate per process is made of).
      var processSamples = 0
      var ticks = 0
      var errors = 0
      report(session.takeEvents(), upload: upload)
      _ = session.run(
        start: start,
        shouldStop: { status in
          if Signals.stopRequested != 0 {
            stopReason = Signals.stopRequested == Signal.interrupt ? "Control-C pressed" : "SIGTERM received"
            return true
          }
          if Signals.takeFlushRequest() {
            printError(
              "spyglass> Sampling \(status.processCount) processes: \(status.ticks) ticks and \(processSamples) process samples so far."
            )
            upload.report()
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
          processSamples += 1
          for thread in threads {
            if dropsIdleThreads && !thread.active { continue }
            var weight = sampleWeight
            if weightsByCPU, let tid = thread.osThreadID { weight = cpu.delta(pid: thread.pid, tid: tid) ?? 0 }
            upload.add(thread, of: process, weightNanoseconds: weight, timeNanoseconds: sampleTime)
          }
        },
        afterTick: { status in
          ticks = status.ticks
          errors = status.errors
          report(status.events, upload: upload)
          upload.sendIfDue()
          if status.lag > 1, lagWarning.ready() {
            printError(
              "spyglass> \(formatSeconds(status.lag)) behind in sampling \(status.processCount) processes; lower --rate or give the agent more CPU."
            )
          }
        })
      let elapsed = monotonicSeconds() - start
      printError("spyglass> Stopped sampling because \(stopReason); sending the last profiles.")
      printError(
        "spyglass> \(formatSeconds(elapsed)) sampled: \(ticks) ticks at \(formatRate(Double(ticks) / max(elapsed, 1e-9))) Hz achieved (asked \(formatRate(rate.hertz)) Hz), \(processSamples) process samples, \(errors) errors."
      )
      upload.finish(within: 10)
    }
  }

  /// Says what happened to the host's processes (one line each).
  private func report(_ events: [SessionEvent], upload: ContinuousUpload) {
    for event in events {
      switch event {
      case .attached(let pid):
        let command = ProcFS.commandLine(pid).joined(separator: " ")
        printError("spyglass> Sampling process \(pid): \(terminalSafe(String(command.prefix(200))))")
      case .skipped(_, let reason):
        printError("spyglass> Leaving a process alone: \(reason)")
      case .exited(let pid):
        printError("spyglass> Process \(pid) exited.")
        upload.forget(pid)
      }
    }
  }

  /// nice -10 where the agent may (root, CAP_SYS_NICE), so that busy targets do not starve it.
  private func raisePriority() {
    let wanted: Int32 = -10
    if SchedulingPriority.nice <= wanted { return }
    if let error = SchedulingPriority.setNice(wanted) {
      printError(
        "spyglass> Could not raise the agent's scheduling priority to nice \(wanted) (\(error)); on a host whose CPUs its targets keep busy it may fall behind its rate (run it as root or with CAP_SYS_NICE)."
      )
    }
  }
}
