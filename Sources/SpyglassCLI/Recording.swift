//===--- Recording.swift - the sampling loop behind record and top --------===//
//
// One thread does everything (ptrace requests are bound to the thread that made them): it waits
// for the next Poisson-spaced tick, samples every attached process, folds the stacks into the
// profile model, and between ticks watches for new child processes (--subprocesses), signals
// (Ctrl-C/SIGTERM stop, SIGUSR1 writes the profile so far) and the end of the recording.
//
//===----------------------------------------------------------------------===//

import Glibc
import SpyglassOutput
import SpyglassProcess
import SpyglassProfile
import SpyglassStacks

/// Which line a frame is attributed to.
enum LineMode {
  case current
  /// `--function`: the function's first line.
  case firstLine
  /// `--nolineno`.
  case none
}

/// Folds sampled stacks into a Profile: frame and stack interning keyed by cheap integers, thread
/// and process pseudo-frames, weights.
struct ProfileBuilder {
  var profile: Profile
  let lineMode: LineMode
  let showThreads: Bool
  let showProcesses: Bool
  private var frameCache: [FrameKey: FrameID] = [:]
  /// Each thread's last few distinct stacks, as sampled and as interned: a thread back in a stack
  /// it was in lately (a hot loop moving between a handful of lines) costs a few comparisons
  /// instead of hashing every frame and the stack.
  private var recentStacks: [Profile.ThreadKey: RecentStacks] = [:]
  private var pseudoFrames: [String: FrameID] = [:]
  private var scratch: [FrameID] = []

  struct RecentStacks {
    static let kept = 8
    var thread: ThreadIndex
    var entries: [(frames: [SampledFrame], stack: StackID)] = []
    var next = 0

    /// The interned stack of `frames` if it is one of the kept ones.
    func find(_ frames: [SampledFrame]) -> StackID? {
      for entry in entries where entry.frames.count == frames.count {
        if zip(entry.frames, frames).allSatisfy({ $0.code == $1.code && $0.line == $1.line }) { return entry.stack }
      }
      return nil
    }

    mutating func keep(_ frames: [SampledFrame], as stack: StackID) {
      if entries.count < Self.kept {
        entries.append((frames, stack))
      } else {
        entries[next] = (frames, stack)
        next = (next + 1) % Self.kept
      }
    }
  }

  struct FrameKey: Hashable {
    var pid: Int32
    var code: CodeID
    var line: Int32
  }

  init(profile: Profile, lineMode: LineMode, showThreads: Bool, showProcesses: Bool) {
    self.profile = profile
    self.lineMode = lineMode
    self.showThreads = showThreads
    self.showProcesses = showProcesses
  }

  mutating func pseudoFrame(_ name: String) -> FrameID {
    if let id = pseudoFrames[name] { return id }
    let id = profile.intern(Frame(name: name, filename: "", line: 0, isPseudo: true))
    pseudoFrames[name] = id
    return id
  }

  /// Adds one thread's stack. Returns true the first time a thread is seen.
  @discardableResult
  mutating func add(
    _ thread: ThreadStack, sampler: ProcessSampler, shortener: FilenameShortener, processLabels: [String],
    weightNanoseconds: UInt64, timeNanoseconds: UInt64
  ) -> Bool {
    // A thread with no Python frame (starting up, or past its last one at exit) has nothing to
    // show: it is not a sample (no format could draw it, and the counts must agree across formats).
    if thread.frames.isEmpty { return false }
    let key = Profile.ThreadKey(pid: thread.pid, threadID: thread.threadID)
    // One hash per sample; the entry is read and updated in place through its index (no copy is
    // kept, so `keep` below finds its arrays unshared).
    let slot = recentStacks.index(forKey: key)
    let recentThread = slot.map { recentStacks.values[$0].thread }
    if let slot, let recentThread,
      profile.threads[Int(recentThread)].name == thread.name || thread.name == nil,
      let stack = recentStacks.values[slot].find(thread.frames)
    {
      profile.add(
        thread: recentThread, stack: stack, weightNanoseconds: weightNanoseconds, timeNanoseconds: timeNanoseconds)
      return false
    }
    scratch.removeAll(keepingCapacity: true)
    if showProcesses { for label in processLabels { scratch.append(pseudoFrame(label)) } }
    let threadIndex = profile.thread(
      ThreadInfo(pid: thread.pid, threadID: thread.threadID, osThreadID: thread.osThreadID, name: thread.name))
    if showThreads {
      let id = thread.osThreadID.map(String.init) ?? ("0x" + String(thread.threadID, radix: 16, uppercase: true))
      scratch.append(pseudoFrame(thread.name.map { "thread (\(id)): \($0)" } ?? "thread (\(id))"))
    }
    for frame in thread.frames.reversed() {
      let line: Int32
      switch lineMode {
      case .current: line = frame.line
      case .firstLine: line = Int32(truncatingIfNeeded: sampler.code(frame.code).firstLine)
      case .none: line = 0
      }
      let key = FrameKey(pid: thread.pid, code: frame.code, line: line)
      if let id = frameCache[key] {
        scratch.append(id)
      } else {
        let code = sampler.code(frame.code)
        let id = profile.intern(
          Frame(
            name: code.name, filename: code.filename, shortFilename: shortener.short(code.filename), line: Int(line),
            firstLine: code.firstLine))
        frameCache[key] = id
        scratch.append(id)
      }
    }
    let stack = profile.intern(stack: scratch)
    profile.add(
      thread: threadIndex, stack: stack, weightNanoseconds: weightNanoseconds, timeNanoseconds: timeNanoseconds)
    if let slot, recentThread == threadIndex {
      recentStacks.values[slot].keep(thread.frames, as: stack)
    } else {
      if recentStacks.count >= 65536 && slot == nil { recentStacks.removeAll() }
      var fresh = RecentStacks(thread: threadIndex)
      fresh.keep(thread.frames, as: stack)
      recentStacks[key] = fresh
    }
    return recentThread == nil
  }
}

/// Exponentially distributed intervals: sample instants form a Poisson process with mean `rate`,
/// so sampling never locks onto a periodic pattern in the program.
struct PoissonTimer {
  let rate: Double
  private var state: UInt64
  private(set) var nextTick: Double = 0

  init(rate: Double, seed: UInt64 = UInt64(monotonicNanoseconds())) {
    self.rate = rate
    self.state = seed | 1
  }

  mutating func advance() {
    // xorshift64*; u in (0, 1].
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    let bits = (state &* 2_685_821_657_736_338_717) >> 11
    let u = (Double(bits) + 1) / 9_007_199_254_740_992.0
    nextTick += -log(u) / rate
  }
}

/// One attached process during a recording.
final class AttachedProcess {
  let sampler: ProcessSampler
  let shortener: FilenameShortener
  let labels: [String]
  init(sampler: ProcessSampler, labels: [String]) {
    self.sampler = sampler
    self.shortener = FilenameShortener(pid: sampler.pid)
    self.labels = labels
  }
}

struct Recording {
  let options: SamplingOptions
  let format: OutputFormat
  let outputPath: String
  let duration: Double?
  let lineMode: LineMode
  let showThreads: Bool
  let weighting: Weighting
  let showProgress: Bool
  let title: String

  init(
    options: SamplingOptions, format: OutputFormat, outputPath: String, duration: Double?, lineMode: LineMode,
    showThreads: Bool, weighting: Weighting, showProgress: Bool, title: String
  ) {
    self.options = options
    self.format = format
    self.outputPath = outputPath
    self.duration = duration
    self.lineMode = lineMode
    self.showThreads = showThreads
    self.weighting = weighting
    self.showProgress = showProgress
    self.title = title
  }

  mutating func run() throws {
    Signals.install()
    // A twentieth of the mean interval, at most the kernel's default 50 µs.
    setTimerSlack(nanoseconds: UInt(max(1, min(50_000, 1e9 / options.rate / 20))))
    var session = try SamplingSession(
      options: options, wantNames: showThreads || format == .speedscope || format == .chrometrace || format == .pprof)
    var builder = ProfileBuilder(
      profile: Profile(
        info: RecordingInfo(
          title: title, rate: options.rate, pythonVersion: session.pythonVersion,
          startUnixNanoseconds: UInt64(time(nil)) * 1_000_000_000, weighting: weighting == .cpu ? .cpu : .samples),
        keepsTimeline: format.needsTimeline),
      lineMode: lineMode, showThreads: showThreads, showProcesses: options.subprocesses)

    printError(
      "spyglass> Sampling process \(session.rootPID) at \(formatRate(options.rate)) Hz. Press Control-C to stop and write \(outputPath)."
    )
    let start = monotonicSeconds()
    var lastProgress = start
    var lastLagWarning = -10.0
    let sampleWeight = UInt64(1e9 / options.rate)
    // Plain copies of the options the loop reads (an argument parser property is not a plain load).
    let dropsIdleThreads = !options.idle && !options.gil
    let weightsByCPU = weighting == .cpu
    var stopReason = ""
    var targetsExited = false
    var cpu = CPUTimes()

    loop: while true {
      if Signals.stopRequested != 0 {
        stopReason = Signals.stopRequested == SIGINT ? "Control-C pressed" : "SIGTERM received"
        break
      }
      if Signals.takeFlushRequest() {
        finish(&builder, cpu: &cpu, session: session, start: start)
        do { try write(builder.profile) } catch { printError("spyglass> \(error)") }
        printError("spyglass> Wrote the profile so far to '\(outputPath)' (\(builder.profile.totalSamples) samples).")
      }
      let now = monotonicSeconds() - start
      if let duration, now >= duration {
        stopReason = "the duration ended"
        break
      }
      let lag = session.waitForTick(start: start)
      if lag > 1, now - lastLagWarning > 1 {
        lastLagWarning = now
        printError(
          "spyglass> \(formatSeconds(lag)) behind in sampling, results may be inaccurate. Try reducing the sampling rate."
        )
      }
      if Signals.stopRequested != 0 { continue }
      let sampleTime = UInt64((monotonicSeconds() - start) * 1e9)
      let outcome = session.sampleAll { process, threads in
        for thread in threads {
          if dropsIdleThreads && !thread.active { continue }
          var weight = sampleWeight
          // CPU time is read per sample only when it weights the samples; otherwise once when a
          // thread is first seen and once at the end, for the summary.
          if weightsByCPU, let tid = thread.osThreadID { weight = cpu.delta(pid: thread.pid, tid: tid) ?? 0 }
          let firstSeen = builder.add(
            thread, sampler: process.sampler, shortener: process.shortener, processLabels: process.labels,
            weightNanoseconds: weight, timeNanoseconds: sampleTime)
          if firstSeen && !weightsByCPU, let tid = thread.osThreadID { cpu.note(pid: thread.pid, tid: tid) }
        }
      }
      if outcome == .allExited {
        stopReason = "the process exited"
        targetsExited = true
        break loop
      }
      if showProgress && monotonicSeconds() - lastProgress > 0.25 {
        lastProgress = monotonicSeconds()
        let elapsed = lastProgress - start
        let line =
          "\rspyglass> \(builder.profile.totalSamples) samples, \(session.errors) errors, \(formatSeconds(elapsed))"
          + (duration.map { " of \(formatSeconds($0))" } ?? "") + "   "
        writeAll(fd: 2, Array(line.utf8))
      }
    }
    if showProgress { writeAll(fd: 2, Array("\r\u{1B}[K".utf8)) }
    finish(&builder, cpu: &cpu, session: session, start: start)
    session.endLaunchedProgram()
    printError("spyglass> Stopped sampling because \(stopReason).")
    if targetsExited && builder.profile.totalSamples == 0 {
      // Like a program that ended before Spyglass attached (which of the two happens to a program
      // that exits at once is a race): an error, and no empty profile in place of one.
      let who = session.launched != nil ? "The program '\(options.command[0])'" : "Process \(session.rootPID)"
      let hint = options.idle || options.gil ? "" : " (idle threads are left out without --idle)"
      throw Failure(message: "\(who) exited before any sample was recorded\(hint); nothing was written.")
    }
    try write(builder.profile)
    summarize(builder.profile, session: session, elapsed: monotonicSeconds() - start)
  }

  func finish(_ builder: inout ProfileBuilder, cpu: inout CPUTimes, session: SamplingSession, start: Double) {
    cpu.refresh()
    builder.profile.info.durationSeconds = monotonicSeconds() - start
    builder.profile.info.sampleCount = builder.profile.totalSamples
    builder.profile.info.errorCount = UInt64(session.errors)
    for thread in builder.profile.threads {
      guard let tid = thread.osThreadID, let used = cpu.total(pid: thread.pid, tid: tid) else { continue }
      var info = thread
      info.cpuNanoseconds = used
      _ = builder.profile.thread(info)
    }
  }

  func write(_ profile: Profile) throws {
    let bytes: [UInt8]
    do {
      bytes = try render(
        profile, as: format,
        options: WriterOptions(fullFilenames: options.fullFilenames, showLineNumbers: lineMode != .none))
    } catch {
      throw Failure(message: "Could not render the \(format.rawValue) output: \(error).")
    }
    try OutputPath(outputPath).write(bytes)
  }

  func summarize(_ profile: Profile, session: SamplingSession, elapsed: Double) {
    let samples = profile.totalSamples
    let ticks = session.ticks
    let errorRate = ticks > 0 ? Double(session.errors) / Double(ticks) * 100 : 0
    printError(
      "spyglass> Wrote \(format.rawValue) data to '\(outputPath)'. Samples: \(samples) Errors: \(session.errors)")
    printError(
      "spyglass> \(formatSeconds(elapsed)) recorded: \(ticks) ticks at \(formatRate(Double(ticks) / max(elapsed, 1e-9))) Hz achieved (asked \(formatRate(options.rate)) Hz), error rate \(formatPercent(errorRate))"
        + (session.maxLag > 0.05 ? ", fell behind by up to \(formatSeconds(session.maxLag))" : ""))
    let timed = profile.threads.filter { $0.cpuNanoseconds != nil }
    if !timed.isEmpty {
      let parts = timed.prefix(16).map { thread -> String in
        let name = thread.name.map { "\"\(terminalSafe($0))\" " } ?? ""
        return "\(name)(\(thread.displayID)) \(formatSeconds(Double(thread.cpuNanoseconds ?? 0) / 1e9))"
      }
      printError("spyglass> CPU time per thread: " + parts.joined(separator: ", ") + (timed.count > 16 ? ", …" : ""))
    }
  }
}

/// Per-thread CPU time, first and last reading.
struct CPUTimes {
  /// A thread's reader is dropped (its file closed) once the thread has ended; its totals stay.
  private var readers: [Key: (reader: ThreadCPUTime?, first: UInt64, last: UInt64)] = [:]
  /// The threads whose reader is open, and the count at which they are next checked for ended ones.
  private var openKeys: [Key] = []
  private var sweepAt = 16
  struct Key: Hashable {
    var pid: Int32
    var tid: Int32
  }

  /// Starts following a thread (reads its CPU time the first time it is seen).
  mutating func note(pid: Int32, tid: Int32) {
    let key = Key(pid: pid, tid: tid)
    if readers[key] != nil { return }
    guard readers.count < 65536, let reader = ThreadCPUTime(pid: pid, tid: tid), let now = reader.read() else { return }
    readers[key] = (reader, now, now)
    opened(key)
  }

  /// Reads every followed thread's CPU time once more (at the end of a recording).
  mutating func refresh() {
    for (key, entry) in readers {
      if let reader = entry.reader, let now = reader.read() { readers[key] = (reader, entry.first, now) }
    }
  }

  /// CPU nanoseconds the thread used since the previous call (nil the first time).
  mutating func delta(pid: Int32, tid: Int32) -> UInt64? {
    let key = Key(pid: pid, tid: tid)
    if let entry = readers[key] {
      guard let reader = entry.reader, let now = reader.read() else { return nil }
      readers[key] = (reader, entry.first, now)
      return now &- entry.last
    }
    guard readers.count < 65536, let reader = ThreadCPUTime(pid: pid, tid: tid), let now = reader.read() else {
      return nil
    }
    readers[key] = (reader, now, now)
    opened(key)
    return nil
  }

  func total(pid: Int32, tid: Int32) -> UInt64? {
    guard let entry = readers[Key(pid: pid, tid: tid)] else { return nil }
    return entry.last &- entry.first
  }

  /// Closes the files of threads that ended (keeping their last reading) whenever the open ones
  /// double, so a target that starts and joins threads all the time does not pile up descriptors
  /// in Spyglass.
  private mutating func opened(_ key: Key) {
    openKeys.append(key)
    guard openKeys.count >= sweepAt else { return }
    var stillOpen: [Key] = []
    for key in openKeys {
      guard let entry = readers[key], let reader = entry.reader else { continue }
      if let now = reader.read() {
        readers[key] = (reader, entry.first, now)
        stillOpen.append(key)
      } else {
        readers[key] = (nil, entry.first, entry.last)
      }
    }
    openKeys = stillOpen
    sweepAt = openKeys.count + 16
  }
}

/// How a profile reaches its output path. A regular file (or a new one) is written as a temporary
/// file beside it and renamed over it, so a failed write (disk full) never leaves a truncated
/// profile in place of a good one; a symbolic link is followed, so the file it names is replaced
/// and the link stays. Anything else that exists (/dev/null, a FIFO, /dev/stdout) is written into:
/// renaming over it would replace the device node or the pipe with a regular file, as root even
/// /dev/null.
struct OutputPath {
  /// As the user gave it (for messages, and written into directly).
  let path: String
  private let how: How

  private enum How {
    case replacing(file: String)
    case writingInto
  }

  init(_ path: String) {
    self.path = path
    var info = stat()
    if stat(path, &info) == 0 {
      if info.st_mode & S_IFMT != S_IFREG {
        how = .writingInto
      } else if let resolved = realpath(path, nil) {
        how = .replacing(file: String(cString: resolved))
        free(resolved)
      } else {
        how = .replacing(file: path)
      }
    } else {
      how = .replacing(file: path)
    }
  }

  private static func temporary(beside file: String) -> String { file + ".spyglass-\(getpid()).tmp" }

  private static func failure(_ verb: String, _ path: String, _ code: Int32) -> Failure {
    Failure(message: "\(verb) the output file '\(path)': \(String(cString: strerror(code))).")
  }

  /// Finds, before sampling starts, what would make the final write fail: the file's directory
  /// must take a new file (the temporary one), or the path itself must open for writing.
  func checkWritable() throws {
    switch how {
    case .replacing(let file):
      let temporary = Self.temporary(beside: file)
      let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      if fd < 0 { throw Self.failure("Cannot write", path, errno) }
      close(fd)
      unlink(temporary)
    case .writingInto:
      // Permission only: opening a FIFO and closing it again would end its reader's input.
      if access(path, W_OK) != 0 { throw Self.failure("Cannot write", path, errno) }
    }
  }

  /// Writes `bytes` (see the type's comment for how).
  func write(_ bytes: [UInt8]) throws {
    switch how {
    case .replacing(let file):
      let temporary = Self.temporary(beside: file)
      let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      if fd < 0 { throw Self.failure("Cannot write", path, errno) }
      if let code = Self.writeAll(fd, bytes) ?? (fsync(fd) != 0 && errno != EINVAL ? errno : nil) {
        close(fd)
        unlink(temporary)
        throw Self.failure("Could not write", path, code)
      }
      close(fd)
      if rename(temporary, file) != 0 {
        let code = errno
        unlink(temporary)
        throw Self.failure("Could not write", path, code)
      }
    case .writingInto:
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      if fd < 0 { throw Self.failure("Cannot write", path, errno) }
      defer { close(fd) }
      if let code = Self.writeAll(fd, bytes) { throw Self.failure("Could not write", path, code) }
    }
  }

  /// Writes every byte; the errno of a failed write, or nil.
  private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
    var offset = 0
    while offset < bytes.count {
      let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        return errno
      }
      offset += n
    }
    return nil
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
