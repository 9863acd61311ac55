//===--- TargetSafetyTests.swift - the profiler never harms what it watches -===//
//
// Real processes, real signals:
//   - kill -9 of a blocking `record` at a random moment, in a loop: the target is never left
//     stopped and keeps running; `--nonblocking` never stops it at all (while a blocking record,
//     the control, visibly does);
//   - Spyglass never writes to the target: under strace, no process_vm_writev, no ptrace request
//     but seize/interrupt/continue/detach, no signal to the target; and a buffer in the target is
//     unchanged by many dumps and records;
//   - dying and churning targets: one that exits mid-recording, one that starts and joins a thread
//     every millisecond (error rate < 1%), one with 200 threads, one that execs another program and
//     then Python again;
//   - errors and limits: output to a full filesystem (a 64 KB tmpfs, or a size-limited file) keeps
//     the previous file, an unwritable path, a program that does not exist, invalid options;
//   - resource bounds: Spyglass's own descriptors, threads and memory stay flat while it records a
//     churning target.
//
// Counts and durations are small by default; SPYGLASS_LONG=1 runs the long variants (100+ kill -9
// iterations, a 60 s churn recording, a 60 s resource recording).
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassProcess
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

enum SafetySettings {
  static let long = ProcessInfo.processInfo.environment["SPYGLASS_LONG"] == "1"
  static var killIterations: Int { long ? 150 : 20 }
  static var exitIterations: Int { long ? 20 : 3 }
  static var churnSeconds: Int { long ? 60 : 5 }
  static var resourceSeconds: Int { long ? 60 : 10 }
}

/// Python scripts written at run time into a scratch folder.
enum SafetyScripts {
  /// One busy thread besides the busy main thread, six sleepers, and a 1 MB buffer whose address
  /// and size are printed: `READY sentinel=<id> size=<getsizeof>`.
  static let busy = """
    import sys, threading, time
    SENTINEL = bytes(bytearray(range(256)) * 4096)
    def spin():
        x = 0
        while True:
            x += 1
    def sleeper():
        while True:
            time.sleep(1000)
    thread = threading.Thread(target=spin, name="spinner")
    thread.daemon = True
    thread.start()
    for i in range(6):
        thread = threading.Thread(target=sleeper, name="sleeper-%d" % i)
        thread.daemon = True
        thread.start()
    sys.stdout.write("READY sentinel=%d size=%d\\n" % (id(SENTINEL), sys.getsizeof(SENTINEL)))
    sys.stdout.flush()
    spin()
    """

  /// Busy for argv[1] seconds, then exits 0.
  static let exitSoon = """
    import sys, time
    def work(seconds):
        end = time.time() + seconds
        x = 0
        while time.time() < end:
            x += 1
    sys.stdout.write("READY\\n")
    sys.stdout.flush()
    work(float(sys.argv[1]))
    """

  /// Starts and joins a short thread every millisecond.
  static let churn = """
    import sys, threading, time
    def short_lived():
        return sum(range(100))
    def churn():
        while True:
            thread = threading.Thread(target=short_lived)
            thread.start()
            thread.join()
            time.sleep(0.001)
    sys.stdout.write("READY\\n")
    sys.stdout.flush()
    churn()
    """

  /// 200 threads asleep, and the main thread.
  static let manyThreads = """
    import sys, threading, time
    def wait_forever():
        time.sleep(100000)
    for i in range(200):
        thread = threading.Thread(target=wait_forever, name="waiter-%d" % i)
        thread.daemon = True
        thread.start()
    sys.stdout.write("READY\\n")
    sys.stdout.flush()
    time.sleep(100000)
    """

  /// Busy until the file argv[2] exists (at most 20 s), then execs /bin/sh, which sleeps 0.5 s and
  /// execs Python again on argv[1], which is busy 1 s and exits.
  static let execChain = """
    import os, sys, time
    def before_exec(go):
        end = time.time() + 20
        while time.time() < end and not os.path.exists(go):
            pass
    sys.stdout.write("READY\\n")
    sys.stdout.flush()
    before_exec(sys.argv[2])
    os.execv("/bin/sh", ["sh", "-c", 'sleep 0.5; exec "$0" "$1"', sys.executable, sys.argv[1]])
    """

  static let afterExec = """
    import time
    def after_exec():
        end = time.time() + 1.0
        while time.time() < end:
            pass
    after_exec()
    """

  static func write(_ source: String, _ name: String, in folder: String) throws -> String {
    let path = folder + "/" + name
    try source.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}

/// A spyglass process running in the background, stderr in a file.
final class BackgroundSpyglass {
  let child: ChildProcess
  let stderrPath: String

  init(_ arguments: [String], folder: String) throws {
    stderrPath = folder + "/spyglass-\(UUID().uuidString).stderr"
    var environment = ProcessInfo.processInfo.environment
    environment["NO_COLOR"] = "1"
    child = try ChildProcess(
      executable: try SpyglassRunner.executablePath(), arguments: arguments, environment: environment,
      stdout: .discard, stderr: .file(stderrPath))
  }

  var pid: Int32 { child.pid }
  var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

  /// Waits until the recording has attached and started its sampling loop.
  func waitUntilSampling(timeout: Double = 30) throws {
    let deadline = monotonicSeconds() + timeout
    while !stderr.contains("Sampling process") {
      guard child.isAlive else { throw TestSupportError("spyglass ended before sampling:\n\(stderr)") }
      guard monotonicSeconds() < deadline else { throw TestSupportError("spyglass did not start sampling:\n\(stderr)") }
      usleep(2_000)
    }
  }

  deinit { child.stop() }
}

/// The one-letter state of every thread of `pid`.
func threadStates(_ pid: Int32) -> [Int32: Character] {
  var states: [Int32: Character] = [:]
  for tid in ProcFS.threadIDs(pid) {
    if let stat = ProcStat.read(pid: pid, tid: tid) { states[tid] = Character(UnicodeScalar(stat.state)) }
  }
  return states
}

func isStopped(_ state: Character) -> Bool { state == "t" || state == "T" }

/// The "error rate x%" of a record summary.
func errorRate(_ stderr: String) -> Double? {
  guard let match = stderr.firstMatch(of: /error rate ([0-9.]+)%/) else { return nil }
  return Double(match.1)
}

/// Collapsed-stack lines: every line "frames count", and the total count.
func rawSamples(_ text: String) -> (valid: Bool, total: Int) {
  var total = 0
  for line in text.split(separator: "\n") {
    guard let match = line.wholeMatch(of: /.+ ([0-9]+)/), let count = Int(match.1) else { return (false, total) }
    total += count
  }
  return (true, total)
}

/// /proc/PID/status fields of a process, in kB for VmRSS.
func processResources(_ pid: Int32) -> (fds: Int, threads: Int, rssKB: Int)? {
  guard let status = try? ProcFS.readString("/proc/\(pid)/status") else { return nil }
  func field(_ name: String) -> Int? {
    for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
      return Int(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
    }
    return nil
  }
  guard let threads = field("Threads"), let rss = field("VmRSS"),
    let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
  else { return nil }
  return (fds, threads, rss)
}

/// The newest Python 3 installed (the safety tests are about Spyglass, not versions).
func safetyPython() throws -> PythonInterpreter {
  try #require(PythonInterpreter.all().first { $0.label == "3.12.1" } ?? PythonInterpreter.all().last)
}

/// `SafetyScripts.busy` on the safety interpreter, started in `folder` and burning CPU.
func startBusyTarget(in folder: String) throws -> PythonProcess {
  let target = try PythonProcess(
    try safetyPython(), script: try SafetyScripts.write(SafetyScripts.busy, "busy.py", in: folder))
  try target.waitForCPU()
  return target
}

@Suite("Target safety", .timeLimit(.minutes(10)))
struct TargetSafetyTests {
  // MARK: never left stopped

  /// SIGKILL a blocking `record -r 2000` after 20–300 ms, over and over: after each kill every
  /// thread of the target is running (not `t`/`T`) and it keeps using CPU.
  @Test func killNineNeverLeavesTheTargetStopped() throws {
    let folder = try makeScratchFolder("kill9")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try startBusyTarget(in: folder)
    var random = SystemRandomNumberGenerator()
    var killedWhilePaused = 0
    var stoppedRightAfterKill = 0
    for iteration in 0..<SafetySettings.killIterations {
      let spyglass = try BackgroundSpyglass(
        ["record", "-r", "2000", "-f", "raw", "-o", folder + "/out-\(iteration).txt", "--pid", "\(target.pid)"],
        folder: folder)
      // Attached and sampling at 2 kHz: the kill lands at a random point of the sampling loop.
      try spyglass.waitUntilSampling()
      usleep(UInt32.random(in: 20_000...300_000, using: &random))
      if threadStates(target.pid).values.contains(where: isStopped) { killedWhilePaused += 1 }
      spyglass.child.signal(SIGKILL)
      let status = spyglass.child.wait(timeout: .seconds(10))
      try #require(status == .signaled(SIGKILL), "iteration \(iteration): spyglass \(String(describing: status))")
      if threadStates(target.pid).values.contains(where: isStopped) { stoppedRightAfterKill += 1 }
      // Running again within a second, every thread.
      let deadline = monotonicSeconds() + 1
      var states = threadStates(target.pid)
      while states.values.contains(where: isStopped) && monotonicSeconds() < deadline {
        usleep(5_000)
        states = threadStates(target.pid)
      }
      try #require(
        !states.isEmpty && !states.values.contains(where: isStopped),
        "iteration \(iteration): the target is left stopped: \(states)")
      // And making progress.
      let ticks = target.cpuTicks()
      let progressDeadline = monotonicSeconds() + 3
      while target.cpuTicks() <= ticks && monotonicSeconds() < progressDeadline { usleep(5_000) }
      try #require(target.cpuTicks() > ticks, "iteration \(iteration): the target uses no CPU after the kill")
      try #require(target.isRunning, "iteration \(iteration): the target died")
    }
    print(
      "kill -9 loop: \(SafetySettings.killIterations) iterations, target running after every one; "
        + "\(killedWhilePaused) kills landed while the target was paused, \(stoppedRightAfterKill) times it was "
        + "still stopped right after the kill")
    #expect(stoppedRightAfterKill == 0, "the kernel resumes a seized tracee when its tracer dies")
  }

  /// --nonblocking: /proc never shows a thread of the target stopped during a 1 kHz recording. The
  /// same polling during a blocking recording does see the pauses (so the polling can see them).
  @Test func nonblockingNeverStopsTheTarget() throws {
    let folder = try makeScratchFolder("nonblocking")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try startBusyTarget(in: folder)

    func watch(_ extra: [String], seconds: Double) throws -> (polls: Int, stopped: Int, stderr: String) {
      let spyglass = try BackgroundSpyglass(
        ["record", "-r", "1000", "-d", "\(seconds)", "-f", "raw", "-o", folder + "/out.txt", "--pid", "\(target.pid)"]
          + extra, folder: folder)
      var polls = 0
      var stopped = 0
      while spyglass.child.isAlive {
        polls += 1
        if threadStates(target.pid).values.contains(where: isStopped) { stopped += 1 }
        usleep(300)
      }
      #expect(spyglass.child.exitStatus == .exited(0), "\(spyglass.stderr)")
      return (polls, stopped, spyglass.stderr)
    }
    let nonblocking = try watch(["--nonblocking"], seconds: 3)
    #expect(nonblocking.polls > 100, "\(nonblocking.polls) polls")
    #expect(
      nonblocking.stopped == 0,
      "--nonblocking stopped the target in \(nonblocking.stopped) of \(nonblocking.polls) polls")
    #expect(nonblocking.stderr.contains("Samples:"), "\(nonblocking.stderr)")
    let blocking = try watch([], seconds: 2)
    #expect(blocking.stopped > 0, "the control saw no pause in \(blocking.polls) polls: the check is blind")
    print(
      "nonblocking: \(nonblocking.polls) polls, never stopped; blocking control: stopped in \(blocking.stopped) of "
        + "\(blocking.polls) polls")
    #expect(target.isRunning)
  }

  /// Blocking mode without --idle does not stop a thread the kernel has asleep: the six sleepers of
  /// busy.py switch context not once during a 1 kHz recording (an interrupt would wake each one
  /// every sample), while the spinners are recorded. The control with --idle, which must hold every
  /// thread, does wake them: the check can see it.
  @Test func blockingLeavesSleepingThreadsAlone() throws {
    let folder = try makeScratchFolder("sleepers")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try startBusyTarget(in: folder)
    /// Voluntary plus involuntary context switches of every thread.
    func switches() -> [Int32: Int] {
      var result: [Int32: Int] = [:]
      for tid in ProcFS.threadIDs(target.pid) {
        guard let status = try? String(contentsOfFile: "/proc/\(target.pid)/task/\(tid)/status", encoding: .utf8)
        else { continue }
        result[tid] = status.split(separator: "\n").filter { $0.contains("ctxt_switches:") }
          .compactMap { Int($0.split(separator: "\t").last ?? "") }.reduce(0, +)
      }
      return result
    }
    // The sleepers are the threads that do not switch at all in half a second (the spinners hand
    // the GIL over every 5 ms).
    let first = switches()
    usleep(500_000)
    let second = switches()
    let sleepers = first.keys.filter { second[$0] == first[$0] }.sorted()
    try #require(sleepers.count == 6, "\(first) then \(second)")

    func record(_ extra: [String]) throws -> (woken: [Int32], raw: String) {
      let before = switches()
      let output = folder + "/out\(extra.count).txt"
      let result = try SpyglassRunner.run(
        ["record", "-r", "1000", "-d", "1.5", "-f", "raw", "-o", output, "--pid", "\(target.pid)"] + extra,
        timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(result)")
      let after = switches()
      return (sleepers.filter { after[$0] != before[$0] }, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
    let plain = try record([])
    #expect(plain.woken.isEmpty, "blocking without --idle woke sleepers \(plain.woken)")
    #expect(plain.raw.contains("spin (busy.py:"), "\(plain.raw.prefix(1000))")
    #expect(!plain.raw.contains("sleeper (busy.py:"), "\(plain.raw.prefix(1000))")
    let idle = try record(["--idle"])
    #expect(idle.woken.count == 6, "--idle held only \(idle.woken) of the sleepers \(sleepers): the check is blind")
    #expect(idle.raw.contains("sleeper (busy.py:"), "\(idle.raw.prefix(1000))")
    print("blocking without --idle: 0 of 6 sleepers woken; with --idle: \(idle.woken.count) of 6")
    #expect(target.isRunning)
  }

  // MARK: never writes

  /// Under strace: no process_vm_writev, no ptrace request that writes or stops with a signal, no
  /// signal sent to the target, /proc/PID/mem never opened; and the target's 1 MB buffer is
  /// byte-for-byte unchanged after all of it.
  @Test func neverWritesToTheTarget() throws {
    let strace = try #require(
      findOnPath("strace"), "strace is required for this test (apt-get install strace; ./test.sh installs it)")
    let folder = try makeScratchFolder("nowrite")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try startBusyTarget(in: folder)
    let fields = target.readyLine.split(separator: " ").compactMap {
      $0.split(separator: "=").last.flatMap { UInt64($0) }
    }
    try #require(fields.count == 2, "\(target.readyLine)")
    let sentinel = fields[0]
    let size = Int(fields[1])
    let memory = ProcessMemory(pid: target.pid)
    // Skip the reference count (the first word): the interpreter may touch it, Spyglass may not.
    let before = try memory.readBytes(at: sentinel + 8, count: size - 8)

    let spyglass = try SpyglassRunner.executablePath()
    let runs: [[String]] = [
      ["dump", "--pid", "\(target.pid)"],
      ["dump", "--pid", "\(target.pid)", "--nonblocking", "--json"],
      ["dump", "--pid", "\(target.pid)", "--locals"],
      ["record", "-d", "1", "-r", "500", "-f", "raw", "-o", folder + "/out.txt", "--pid", "\(target.pid)"],
      ["record", "-d", "0.5", "-r", "500", "--nonblocking", "-o", folder + "/out.svg", "--pid", "\(target.pid)"],
    ]
    var seizes = 0
    for (index, arguments) in runs.enumerated() {
      let log = folder + "/strace-\(index).log"
      let result = try runCommand(
        strace,
        ["-f", "-qq", "-o", log, "-e", "trace=process_vm_writev,ptrace,kill,tgkill,tkill,open,openat", spyglass]
          + arguments, timeout: .seconds(60))
      try #require(result.exitCode == 0, "\(result)")
      let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
      for call in calls {
        #expect(!call.contains("process_vm_writev("), "\(arguments): \(call)")
        if let match = call.firstMatch(of: /ptrace\((PTRACE_[A-Z_]+)/) {
          let request = String(match.1)
          #expect(
            [
              "PTRACE_SEIZE", "PTRACE_INTERRUPT", "PTRACE_CONT", "PTRACE_DETACH", "PTRACE_LISTEN", "PTRACE_GETEVENTMSG",
              "PTRACE_GETREGS",
            ]
            .contains(request), "\(arguments): a ptrace request that may write or signal: \(call)")
          if request == "PTRACE_SEIZE" { seizes += 1 }
        }
        // kill/tkill/tgkill naming the target with a real signal (signal 0 only probes).
        if call.contains("kill("), call.contains("(\(target.pid),") || call.contains(", \(target.pid),"),
          !call.contains(", 0)")
        {
          Issue.record("a signal sent to the target: \(call)")
        }
        if call.contains("/proc/\(target.pid)/mem") {
          #expect(!call.contains("O_WRONLY") && !call.contains("O_RDWR"), "\(call)")
        }
      }
    }
    #expect(seizes > 0, "strace saw no PTRACE_SEIZE: it did not trace the blocking runs")
    let after = try memory.readBytes(at: sentinel + 8, count: size - 8)
    #expect(before == after, "the target's buffer changed")
    #expect(target.isRunning)
  }

  // MARK: dying and churning targets

  /// A program that exits while being recorded at 1 kHz: "Stopped sampling because the process
  /// exited", exit 0, and a valid profile of what was sampled (launched, and attached by pid).
  @Test func targetExitsMidRecording() throws {
    let python = try safetyPython()
    let folder = try makeScratchFolder("exit")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let script = try SafetyScripts.write(SafetyScripts.exitSoon, "exit_soon.py", in: folder)
    for iteration in 0..<SafetySettings.exitIterations {
      let seconds = String(format: "%.2f", 0.8 + 0.6 * Double(iteration % 5) / 4)
      let output = folder + "/launched-\(iteration).txt"
      let result = try SpyglassRunner.run(
        ["record", "-r", "1000", "-f", "raw", "-o", output, "--"] + python.command + [script, seconds],
        timeout: .seconds(60))
      #expect(result.exitCode == 0, "\(result)")
      #expect(result.stderr.contains("Stopped sampling because the process exited"), "\(result)")
      let raw = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
      let samples = rawSamples(raw)
      #expect(
        samples.valid && samples.total > 20 && raw.contains("work (exit_soon.py"), "\(raw.prefix(500))\n\(result)")
    }
    // By pid (the process becomes a zombie of the test until reaped: that counts as exited too).
    let target = try PythonProcess(python, script: script, arguments: ["2"])
    let output = folder + "/by-pid.svg"
    let result = try SpyglassRunner.run(
      ["record", "-r", "1000", "-o", output, "--pid", "\(target.pid)"], timeout: .seconds(60))
    #expect(result.exitCode == 0, "\(result)")
    #expect(result.stderr.contains("Stopped sampling because the process exited"), "\(result)")
    let parsed = try runPython3(["-c", "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])", output])
    #expect(parsed.exitCode == 0, "\(parsed)")
  }

  /// A thread started and joined every millisecond: the recording's error rate stays under 1% and
  /// the profile is valid. Without `--idle` the main thread, asleep in join(), is not held, so the
  /// threads to hold are often only short-lived ones that exit before the pause: the recording
  /// still runs its whole duration (it once ended at the first such tick, "the process exited").
  @Test(arguments: [true, false]) func threadChurn(idle: Bool) throws {
    let folder = try makeScratchFolder("churn")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try PythonProcess(
      try safetyPython(), script: try SafetyScripts.write(SafetyScripts.churn, "churn.py", in: folder))
    let output = folder + "/churn.txt"
    let result = try SpyglassRunner.run(
      [
        "record", "-d", "\(SafetySettings.churnSeconds)", "-r", "100", "-f", "raw", "-o", output,
        "--pid", "\(target.pid)",
      ] + (idle ? ["--idle"] : []), timeout: .seconds(Double(SafetySettings.churnSeconds) + 60))
    #expect(result.exitCode == 0, "\(result)")
    #expect(!result.stderr.contains("exited"), "\(result.stderr)")
    let ticks = try #require(
      result.stderr.firstMatch(of: /(\d+) ticks at/).flatMap { Int($0.1) }, "no tick count:\n\(result.stderr)")
    #expect(ticks >= 90 * SafetySettings.churnSeconds, "\(ticks) ticks:\n\(result.stderr)")
    let rate = try #require(errorRate(result.stderr), "no error rate in the summary:\n\(result.stderr)")
    // Without --idle a thread can exit while it is read unheld (it was not running when listed):
    // such a sample is an error, counted.
    #expect(rate < (idle ? 1.0 : 2.0), "error rate \(rate)%:\n\(result.stderr)")
    let raw = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    let samples = rawSamples(raw)
    #expect(samples.valid, "\(result)")
    if idle {
      #expect(samples.total >= 50 * SafetySettings.churnSeconds, "\(samples.total) samples\n\(result)")
      #expect(raw.contains("churn (churn.py"), "\(raw.prefix(1000))")
    } else {
      // What was caught running: the main thread between its sleeps (a short-lived thread is
      // mostly caught before its first frame or after its last, which is no sample).
      #expect(samples.total > 0 && raw.contains("churn (churn.py"), "\(raw.prefix(1000))")
    }
    print(
      "thread churn\(idle ? " --idle" : ""), \(SafetySettings.churnSeconds) s: error rate \(rate)%, \(ticks) ticks, \(samples.total) samples"
    )
    #expect(target.isRunning)
  }

  /// 200 threads: dump shows all 201, record works.
  @Test func twoHundredThreads() throws {
    let folder = try makeScratchFolder("many")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try PythonProcess(
      try safetyPython(), script: try SafetyScripts.write(SafetyScripts.manyThreads, "many.py", in: folder))
    try target.waitUntilSleeping(threadCount: 201, timeout: .seconds(20))
    let threads = try Reader.spyglass.dump(target)
    #expect(threads.count == 201, "\(threads.count) threads")
    #expect(threads.filter { $0.threadName?.hasPrefix("waiter-") == true }.count == 200)
    #expect(threads.filter { $0.frames.first?.name == "wait_forever" }.count == 200)
    let output = folder + "/many.txt"
    let result = try SpyglassRunner.run(
      ["record", "-d", "1", "-r", "50", "--idle", "-f", "raw", "-o", output, "--pid", "\(target.pid)"],
      timeout: .seconds(60))
    #expect(result.exitCode == 0, "\(result)")
    let raw = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    let samples = rawSamples(raw)
    #expect(samples.valid && samples.total >= 201 * 5, "\(samples.total) samples\n\(result)")
    #expect((errorRate(result.stderr) ?? 100) < 5, "\(result.stderr)")
  }

  /// Python execs /bin/sh, which execs Python again, while being recorded by pid. What Spyglass
  /// does: it keeps the samples of the first program, counts the reads that fail once the process
  /// image is replaced as errors (it does not re-attach to the new interpreter), ends cleanly when
  /// the process exits ("Stopped sampling because the process exited", exit 0) and writes a valid
  /// profile.
  @Test func execIntoAnotherProgramAndBack() throws {
    let python = try safetyPython()
    let folder = try makeScratchFolder("exec")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let second = try SafetyScripts.write(SafetyScripts.afterExec, "after_exec.py", in: folder)
    let go = folder + "/go"
    let target = try PythonProcess(
      python, script: try SafetyScripts.write(SafetyScripts.execChain, "exec_chain.py", in: folder),
      arguments: [second, go])
    let output = folder + "/exec.txt"
    let spyglass = try BackgroundSpyglass(
      ["record", "-r", "200", "-f", "raw", "-o", output, "--pid", "\(target.pid)"], folder: folder)
    try spyglass.waitUntilSampling()
    usleep(300_000)
    FileManager.default.createFile(atPath: go, contents: Data())
    let status = spyglass.child.wait(timeout: .seconds(60))
    let stderr = spyglass.stderr
    #expect(status == .exited(0), "\(stderr)")
    #expect(stderr.contains("Stopped sampling because the process exited"), "\(stderr)")
    for marker in crashMarkers { #expect(!stderr.contains(marker), "\(stderr)") }
    let raw = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    #expect(rawSamples(raw).valid && raw.contains("before_exec (exec_chain.py"), "\(raw)\n\(stderr)")
    print(
      "exec by pid: samples after the exec: \(raw.contains("after_exec") ? "yes" : "no"), error rate "
        + "\(errorRate(stderr).map { "\($0)%" } ?? "?")")
  }

  // MARK: errors and limits

  /// A full filesystem: `record` fails with a plain message and exit 1, the profile that was in the
  /// output file before is intact, and no temporary file is left behind. Uses a 64 KB tmpfs (root),
  /// else a file size limit (ulimit -f, SIGXFSZ ignored so that write fails with EFBIG).
  @Test func fullDiskKeepsThePreviousProfile() throws {
    let folder = try makeScratchFolder("fulldisk")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try startBusyTarget(in: folder)
    let disk = folder + "/disk"
    try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
    let mounted = (try? runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", disk]))?.exitCode == 0
    defer { if mounted { _ = try? runCommand("/bin/umount", ["-l", disk]) } }
    let output = disk + "/profile.json"
    let previous = "{\"previous\": \"profile\"}\n"
    try previous.write(toFile: output, atomically: false, encoding: .utf8)
    let arguments = [
      "record", "-d", "1", "-r", "1000", "--idle", "-f", "speedscope", "-o", output, "--pid", "\(target.pid)",
    ]
    let result: CommandResult
    if mounted {
      // Fill the rest of the filesystem.
      let filler = fopen(disk + "/filler", "w")
      let block = [UInt8](repeating: 0x55, count: 4096)
      while fwrite(block, 1, block.count, filler) == block.count && fflush(filler) == 0 {}
      fclose(filler)
      result = try SpyglassRunner.run(arguments, timeout: .seconds(60))
    } else {
      print("fullDisk: tmpfs mount failed, using a 16 KB file size limit instead")
      let quoted = try ([SpyglassRunner.executablePath()] + arguments).map { "'\($0)'" }.joined(separator: " ")
      result = try runCommand("/bin/sh", ["-c", "trap '' XFSZ; ulimit -f 16; exec \(quoted)"], timeout: .seconds(60))
    }
    #expect(result.exitCode == 1, "\(result)")
    let message = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
    #expect(
      message.hasPrefix("spyglass: ") && message.contains(output)
        && (message.contains("No space left on device") || message.contains("too large")), "\(result)")
    for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
    #expect(try String(contentsOfFile: output, encoding: .utf8) == previous, "the previous profile was destroyed")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: disk).filter { $0.contains(".tmp") }
    #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    #expect(target.isRunning)
  }

  /// Unwritable output, a program that does not exist or exits at once, invalid option values:
  /// one plain message each, a non-zero exit, no crash.
  @Test func plainErrors() throws {
    let python = try safetyPython()
    let cases: [(arguments: [String], needle: String)] = [
      (
        ["record", "-o", "/nonexistent-folder/profile.svg", "--"] + python.command + ["-c", "pass"],
        "/nonexistent-folder"
      ),
      (["record", "-o", "/tmp/spyglass-never.svg", "--", "/nonexistent/program"], "/nonexistent/program"),
      (["record", "--rate", "0", "--pid", "1"], "rate"),
      (["record", "--rate", "fast", "--pid", "1"], "rate"),
      (["record", "--duration", "-3", "--pid", "1"], "duration"),
      (["record", "--format", "gif", "--pid", "1"], "format"),
      (["dump", "--pid", "not-a-pid"], "pid"),
    ]
    for (arguments, needle) in cases {
      let result = try SpyglassRunner.run(arguments, timeout: .seconds(30))
      #expect(result.exitCode != nil && result.exitCode != 0, "\(result)")
      #expect(result.stderr.lowercased().contains(needle.lowercased()), "\(result)")
      for marker in crashMarkers { #expect(!result.stderr.contains(marker), "\(result)") }
    }
    // A program that exits at once: a clean end either way (nothing to sample, or a short profile).
    let output = NSTemporaryDirectory() + "spyglass-quick-\(UUID().uuidString).txt"
    defer { unlink(output) }
    let quick = try SpyglassRunner.run(["record", "-f", "raw", "-o", output, "--"] + python.command + ["-c", "pass"])
    #expect(quick.exitCode == 0 || quick.exitCode == 1, "\(quick)")
    if quick.exitCode == 1 {
      #expect(quick.stderr.hasPrefix("spyglass: ") || quick.stderr.contains("\nspyglass: "), "\(quick)")
    }
    for marker in crashMarkers { #expect(!quick.stderr.contains(marker), "\(quick)") }
  }

  // MARK: resource bounds

  /// Recording a churning target: Spyglass's descriptors, threads and resident memory stay flat.
  @Test func resourcesStayFlat() throws {
    let folder = try makeScratchFolder("resources")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let target = try PythonProcess(
      try safetyPython(), script: try SafetyScripts.write(SafetyScripts.churn, "churn.py", in: folder))
    let seconds = SafetySettings.resourceSeconds
    let spyglass = try BackgroundSpyglass(
      [
        "record", "-d", "\(seconds)", "-r", "500", "--idle", "-f", "raw", "-o", folder + "/out.txt", "--pid",
        "\(target.pid)",
      ], folder: folder)
    var readings: [(time: Double, fds: Int, threads: Int, rssKB: Int)] = []
    let start = monotonicSeconds()
    while spyglass.child.isAlive && monotonicSeconds() - start < Double(seconds) - 0.5 {
      if let reading = processResources(spyglass.pid) {
        readings.append((monotonicSeconds() - start, reading.fds, reading.threads, reading.rssKB))
      }
      usleep(250_000)
    }
    let status = spyglass.child.wait(timeout: .seconds(30))
    #expect(status == .exited(0), "\(spyglass.stderr)")
    let early = try #require(readings.first { $0.time >= 2 }, "\(readings)")
    let late = readings.filter { $0.time >= early.time }
    let maxFDs = late.map(\.fds).max() ?? 0
    let maxThreads = late.map(\.threads).max() ?? 0
    let maxRSS = late.map(\.rssKB).max() ?? 0
    let summary =
      "after 2 s: \(early.fds) fds, \(early.threads) threads, \(early.rssKB) kB; at most later: "
      + "\(maxFDs) fds, \(maxThreads) threads, \(maxRSS) kB (\(late.count) readings over \(seconds) s)"
    print("resources while recording a churning target: " + summary)
    // Stat files of ended threads are closed in batches: a little up and down, no growth.
    #expect(maxFDs <= early.fds + 40, "file descriptors grow: \(summary)")
    #expect(maxThreads <= early.threads + 1, "threads grow: \(summary)")
    #expect(maxRSS <= early.rssKB + Swift.max(8 * 1024, early.rssKB / 4), "memory grows: \(summary)")
    #expect((errorRate(spyglass.stderr) ?? 100) < 1, "\(spyglass.stderr)")
  }
}
