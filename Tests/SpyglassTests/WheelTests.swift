//===--- WheelTests.swift - `pip install spyglass`: the wheel and its Python API ---===//
//
// The wheel is built once per run from the checkout with `pip wheel --no-deps -w DIR <root>`
// (pyproject.toml; tools/hatch_build.py makes the release executable in .build-wheel), then:
//   - its name carries the three platform tags, it holds the executable as
//     spyglass-VERSION.data/scripts/spyglass (0755) and the pure-Python package, and
//     `auditwheel show` finds no external library;
//   - installed offline into fresh venvs of 3.8, 3.12 and 3.13, `spyglass --version` runs from
//     PATH and the API is exercised by Fixtures/wheel_api_check.py in a multi-threaded program
//     (start, stats and stop from three threads while a worker burns a 75/25 split; every save
//     type, written by the executable and checked by its consumer: pstats, jsonschema,
//     pprof_decode.py, callgrind_annotate, `spyglass convert` of the saved recording;
//     clear_stats, a killed recorder, profile() as context manager and decorator);
//   - `pip install --user` on 2.7 puts `spyglass` on PATH and the package imports;
//   - the same program as a user that is not root (setpriv, an unused uid), where the machine's
//     ptrace rules let a process's child read it, and the error text where they do not;
//   - `record --summary-json` (the channel the API reads per-thread CPU time from);
//   - an sdist builds and, without a Swift toolchain, says in one sentence which one is needed.
// The suite measures CPU shares, so test.sh runs it in the timing-sensitive phase.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassCLI
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

// MARK: - The wheel, built once

private let wheelTags = "py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64"

private enum Wheel {
  static let version = SpyglassCommand.version
  static let fileName = "spyglass-\(version)-\(wheelTags).whl"

  /// The built wheel's path, or why there is none (built at most once per test run).
  static let built: Result<String, TestSupportError> = build()

  static func path() throws -> String { try built.get() }

  private static func build() -> Result<String, TestSupportError> {
    do {
      // Beside the build folder the wheel's hook uses (ignored by git), made anew every run.
      let directory = RepositoryFiles.root + "/.build-wheel/test-wheel"
      try? FileManager.default.removeItem(atPath: directory)
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      let python3 = try systemPython3()
      var environment = ProcessInfo.processInfo.environment
      environment["PIP_NO_INPUT"] = "1"
      environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
      let result = try runCommand(
        python3, ["-m", "pip", "wheel", "--no-deps", "-w", directory, RepositoryFiles.root],
        timeout: .seconds(2400), environment: environment)
      guard result.exitCode == 0 else { return .failure(TestSupportError("pip wheel failed:\n\(result)")) }
      let wheels = (try FileManager.default.contentsOfDirectory(atPath: directory)).filter { $0.hasSuffix(".whl") }
      guard wheels.count == 1 else {
        return .failure(TestSupportError("pip wheel made \(wheels) instead of one wheel:\n\(result)"))
      }
      return .success(directory + "/" + wheels[0])
    } catch let error as TestSupportError {
      return .failure(error)
    } catch {
      return .failure(TestSupportError("\(error)"))
    }
  }
}

private func systemPython3() throws -> String {
  guard let python3 = findOnPath("python3") else { throw TestSupportError("python3 is not on PATH") }
  return python3
}

private var fixturesRoot: String { URL(fileURLWithPath: Fixture.directory).deletingLastPathComponent().path }
private var checkScript: String { fixturesRoot + "/wheel_api_check.py" }

/// PATH for commands that must find only what a test put first: the given folders, then the
/// system's (no pyenv shims, no Swift toolchain).
private func plainEnvironment(path folders: [String], home: String? = nil) -> [String: String] {
  var environment = ProcessInfo.processInfo.environment
  for key in ["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "SPYGLASS_BINARY"] {
    environment.removeValue(forKey: key)
  }
  environment["PATH"] = (folders + ["/usr/local/bin", "/usr/bin", "/bin"]).joined(separator: ":")
  environment["PYTHONDONTWRITEBYTECODE"] = "1"
  environment["PYTHONIOENCODING"] = "utf-8"
  environment["PIP_NO_INPUT"] = "1"
  environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
  if let home { environment["HOME"] = home }
  return environment
}

/// A host pyenv interpreter of major.minor.
private func hostPython(_ version: String) throws -> PythonInterpreter {
  let found = PythonInterpreter.all().first {
    $0.root == nil && $0.label.hasPrefix(version + ".") && "\($0.version.major).\($0.version.minor)" == version
  }
  return try #require(found, "no host Python \(version): \(PythonInterpreter.coverageReport)")
}

/// A fresh venv of `python` with the wheel installed offline; returns its folder.
private func venvWithWheel(_ python: String, in parent: String) throws -> String {
  let venv = parent + "/venv"
  let environment = plainEnvironment(path: [])
  let wheel = try Wheel.path()
  let create = try runCommand(python, ["-m", "venv", venv], timeout: .seconds(180), environment: environment)
  try #require(create.exitCode == 0, "python -m venv failed:\n\(create)")
  let install = try runCommand(
    venv + "/bin/python", ["-m", "pip", "install", "--no-index", "--no-deps", wheel],
    timeout: .seconds(180), environment: environment)
  try #require(install.exitCode == 0, "pip install of the wheel failed:\n\(install)")
  return venv
}

/// `command -v spyglass` and `spyglass --version` with `folder` first on PATH.
private func checkOnPath(_ folder: String, environment: [String: String], label: String) throws {
  let result = try runCommand(
    "/bin/sh", ["-c", "command -v spyglass && spyglass --version"], timeout: .seconds(30), environment: environment)
  #expect(result.exitCode == 0, "\(label): \(result)")
  let lines = result.stdout.split(separator: "\n").map(String.init)
  #expect(lines.first == folder + "/spyglass", "\(label): spyglass is found on PATH in \(folder):\n\(result)")
  #expect(lines.last == "spyglass \(Wheel.version)", "\(label): --version agrees with the wheel:\n\(result)")
}

/// The JSON object on the last line of the check script's stdout.
private func report(of result: CommandResult) throws -> [String: Any] {
  let line = try #require(
    result.stdout.split(separator: "\n").last.map(String.init), "the check printed nothing:\n\(result)")
  let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
  return try #require(object as? [String: Any], "not a JSON object: \(line)\n\(result)")
}

private func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

/// The line of `def NAME(` in the check script.
private func definitionLine(_ name: String) throws -> Int {
  let text = try String(contentsOfFile: checkScript, encoding: .utf8)
  let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
  let index = try #require(lines.firstIndex { $0.hasPrefix("def \(name)(") }, "def \(name) in the check script")
  return index + 1
}

/// Runs the check script with `python` (optionally through `wrapper`) in `mode`.
private func runCheck(
  python: String, mode: String, output: String, environment: [String: String], wrapper: [String] = []
) throws -> (CommandResult, [String: Any]) {
  let script = output + "/wheel_api_check.py"
  if !FileManager.default.fileExists(atPath: script) {
    try FileManager.default.copyItem(atPath: checkScript, toPath: script)
    chmod(script, 0o644)
  }
  let command = wrapper + [python, script, mode, output]
  let result = try runCommand(command[0], Array(command.dropFirst()), timeout: .seconds(300), environment: environment)
  try #require(result.exitCode == 0, "the check script failed:\n\(result)")
  let parsed = try report(of: result)
  return (result, parsed)
}

/// Judges a `full` run of the check script (see its docstring).
private func judgeFullRun(_ report: [String: Any], output: String, label: String) throws {
  let context = "\(label): \(report)"
  #expect(report["exception"] == nil, "\(label): \(report["traceback"] ?? "")")
  try #require(report["start_error"] == nil, "start() failed: \(report["start_error"] ?? "")")
  #expect(report["version"] as? String == Wheel.version, "\(context)")
  #expect(report["running_after_start"] as? Bool == true, "\(context)")

  // Read from another thread while the worker burns and the recording goes on.
  let reader = try #require(report["reader"] as? [String: Any], "\(context)")
  #expect(reader["worker_still_running"] as? Bool == true, "the stats were read while the worker ran: \(context)")
  #expect(reader["recording_running"] as? Bool == true, "\(context)")
  let heavy = (reader["heavy"] as? [NSNumber])?.map(\.doubleValue) ?? []
  let light = (reader["light"] as? [NSNumber])?.map(\.doubleValue) ?? []
  try #require(heavy.count == 1 && light.count == 1, "one entry each for heavy and light: \(context)")
  let split = heavy[0] / max(heavy[0] + light[0], 1e-9)
  #expect(abs(split - 0.75) <= 0.04, "\(label): heavy has \(split * 100)% of heavy+light's CPU time, expected 75 ± 4")
  let heavyLine = try definitionLine("heavy")
  #expect((reader["heavy_lineno"] as? [Int]) == [heavyLine], "lineno is the def line: \(context)")
  #expect(
    (reader["heavy_module"] as? [String])?.first?.hasSuffix("/wheel_api_check.py") == true,
    "module is the file: \(context)")
  #expect(reader["slice_len"] as? Int == 2, "\(context)")
  let threads = try #require(reader["threads"] as? [[String: Any]], "\(context)")
  let worker = threads.first { number($0["id"]) == number(reader["worker_ident"]) }
  let workerStats = try #require(
    worker, "the worker (ident \(reader["worker_ident"] ?? "")) is in the thread stats: \(context)")
  #expect(workerStats["name"] as? String == "worker", "\(context)")
  if let native = number(reader["worker_native_id"]) { #expect(number(workerStats["tid"]) == native, "\(context)") }
  let cpu: Double = number(workerStats["ttot"]) ?? 0
  let own: Double = number(reader["worker_cpu"]) ?? 0
  #expect(own > 2 && abs(cpu - own) <= 0.2 * own, "\(label): the worker's ttot \(cpu) s vs its thread_time \(own) s")
  #expect(number(workerStats["nsamples"]) ?? 0 > 100, "\(context)")

  // Stopped from a third thread; the stats stay.
  #expect(report["running_after_stop"] as? Bool == false, "\(context)")
  let after = try #require(report["after_stop"] as? [String: Any], "\(context)")
  let finalSplit =
    (number(after["heavy"]) ?? 0) / max((number(after["heavy"]) ?? 0) + (number(after["light"]) ?? 0), 1e-9)
  #expect(abs(finalSplit - 0.75) <= 0.04, "\(label): after stop heavy has \(finalSplit * 100)%, expected 75 ± 4")
  let finalThreads = after["threads"] as? [[String: Any]] ?? []
  let finalWorker = finalThreads.first { number($0["id"]) == number(reader["worker_ident"]) }
  let finalCPU: Double = finalWorker.flatMap { number($0["ttot"]) } ?? 0
  let finalOwn: Double = number(after["worker_cpu"]) ?? 0
  #expect(abs(finalCPU - finalOwn) <= 0.2 * finalOwn, "\(label): final ttot \(finalCPU) s vs thread_time \(finalOwn) s")

  // Every save type, read by its consumer.
  let saved = try #require(report["saved"] as? [String: String], "\(context)")
  #expect(
    Set(saved.keys) == ["flamegraph", "speedscope", "chrometrace", "raw", "pprof", "pstat", "callgrind", "spyglass"])
  for (kind, path) in saved {
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    #expect(size > 0, "\(label): \(kind) written to \(path)")
  }
  let pstatFunctions = report["pstat_functions"] as? [String] ?? []
  for name in ["heavy", "light", "burn", "worker"] {
    #expect(
      pstatFunctions.contains(name), "\(label): pstats.Stats loads \(name) from the pstat file: \(pstatFunctions)")
  }
  #expect(report["chrometrace_balanced"] as? Bool == true, "\(context)")
  let rawLines = report["raw_heavy_lines"] as? [String] ?? []
  #expect(
    !rawLines.isEmpty && rawLines.allSatisfy { $0.contains("heavy (wheel_api_check.py:") && $0.last?.isNumber == true },
    "\(label): raw lines \(rawLines)")
  #expect(report["print_all_mentions_heavy"] as? Bool == true, "\(context)")
  if let path = saved["speedscope"] { try validateSpeedscope(path, label: label) }
  if let path = saved["pprof"] { try validatePprof(path, label: label) }
  if let path = saved["callgrind"] { try validateCallgrind(path, label: label) }
  if let path = saved["spyglass"] { try validateRecording(path, label: label) }

  // clear_stats, a killed recorder, the recorder's own sentence, profile().
  #expect(report["empty_after_clear"] as? Bool == true, "\(context)")
  let cleared = report["clear_while_running"] as? [String: Bool]
  #expect(cleared == ["before": false, "after": true], "\(label): clear_stats while running: \(cleared ?? [:])")
  #expect(report["running_after_kill"] as? Bool == false, "\(context)")
  let killed = report["error_after_kill"] as? String ?? ""
  #expect(killed.contains("killed by signal 9"), "\(label): the next call says the recorder was killed: \(killed)")
  #expect(number(report["stats_after_error"]) != nil, "\(context)")
  let native = report["native_error"] as? String ?? ""
  #expect(
    native.contains("Can't get native stack traces with the --nonblocking option"),
    "\(label): the recorder's own sentence: \(native)")
  #expect(number(report["context_file"]) ?? 0 > 1000, "\(context)")
  #expect(report["context_mentions_heavy"] as? Bool == true, "\(label): the context manager's flame graph: \(context)")
  #expect((report["decorated_functions"] as? [String])?.contains("light") == true, "\(context)")
  #expect(report["running_at_end"] as? Bool == false, "\(context)")
}

private func validateSpeedscope(_ path: String, label: String) throws {
  let schema = fixturesRoot + "/speedscope-file-format.schema.json"
  let result = try runSystemPython3([
    "-c",
    "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')",
    path, schema,
  ])
  #expect(result.exitCode == 0 && result.stdout.contains("valid"), "\(label): speedscope schema:\n\(result)")
}

private func validatePprof(_ path: String, label: String) throws {
  let result = try runSystemPython3([fixturesRoot + "/pprof_decode.py", path])
  #expect(result.exitCode == 0, "\(label): pprof_decode.py:\n\(result)")
  #expect(result.stdout.contains("heavy:") && result.stdout.contains("cpu/nanoseconds"), "\(label): \(result.stdout)")
}

private func validateCallgrind(_ path: String, label: String) throws {
  guard let annotate = findOnPath("callgrind_annotate") else {
    Issue.record("callgrind_annotate is not installed (valgrind; test.sh installs it)")
    return
  }
  let result = try runCommand(annotate, [path], timeout: .seconds(60))
  #expect(result.exitCode == 0, "\(label): callgrind_annotate:\n\(result)")
  #expect(
    result.stdout.contains("PROGRAM TOTALS") && result.stdout.contains("wheel_api_check.py:burn"),
    "\(label): callgrind_annotate reads the costs:\n\(result.stdout)")
}

/// The saved recording converts (`spyglass convert`) to a raw file that shows the work.
private func validateRecording(_ path: String, label: String) throws {
  let result = try SpyglassRunner.run(["convert", path, "-f", "raw", "-o", path + ".txt"])
  #expect(result.exitCode == 0, "\(label): convert of the saved recording:\n\(result)")
  let raw = (try? String(contentsOfFile: path + ".txt", encoding: .utf8)) ?? ""
  #expect(raw.contains("heavy (wheel_api_check.py:"), "\(label): \(raw.prefix(2000))")
}

// MARK: - Tests

@Suite("Wheel and Python API", .serialized)
struct WheelTests {
  @Test func wheelNameContentsAndAuditwheel() throws {
    let wheel = try Wheel.path()
    #expect((wheel as NSString).lastPathComponent == Wheel.fileName)
    let listing = try runSystemPython3([
      "-c",
      """
      import json, sys, zipfile
      z = zipfile.ZipFile(sys.argv[1])
      entries = {i.filename: (i.external_attr >> 16) & 0o7777 for i in z.infolist()}
      info = z.read([n for n in entries if n.endswith('.dist-info/WHEEL')][0]).decode()
      script = [n for n in entries if n.endswith('.data/scripts/spyglass')]
      head = z.read(script[0])[:4].hex() if script else ''
      version = z.read('spyglass/_version.py').decode() if 'spyglass/_version.py' in entries else ''
      print(json.dumps({'entries': entries, 'wheel': info, 'head': head, 'version': version}))
      """,
      wheel,
    ])
    try #require(listing.exitCode == 0, "\(listing)")
    let object = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [String: Any]
    let entries = object?["entries"] as? [String: Int] ?? [:]
    let script = "spyglass-\(Wheel.version).data/scripts/spyglass"
    #expect(entries[script] == 0o755, "the executable is \(script), mode 0755: \(entries)")
    #expect(object?["head"] as? String == "7f454c46", "the script is the ELF executable")
    for file in [
      "spyglass/__init__.py", "spyglass/_recorder.py", "spyglass/_profile.py", "spyglass/_formats.py",
      "spyglass/_version.py",
    ] {
      #expect(entries[file] != nil, "\(file) is in the wheel: \(entries.keys.sorted())")
    }
    #expect(
      !entries.keys.contains { $0.hasSuffix("_writers.py") || $0.hasSuffix("_flamegraph.js") || $0.contains("tests/") },
      "the executable writes every file; no writer of the package's own: \(entries.keys.sorted())")
    #expect(object?["version"] as? String == "__version__ = \"\(Wheel.version)\"\n")
    let info = object?["wheel"] as? String ?? ""
    #expect(info.contains("Root-Is-Purelib: false"), "\(info)")
    for tag in ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "musllinux_1_1_x86_64"] {
      #expect(info.contains("Tag: py3-none-\(tag)") && info.contains("Tag: py2-none-\(tag)"), "\(info)")
    }

    // auditwheel: nothing to repair (test.sh installs it; otherwise into a venv of its own).
    let python3 = try systemPython3()
    var auditwheel = [python3, "-m", "auditwheel"]
    let probe = try runCommand(auditwheel[0], ["-c", "import auditwheel"], timeout: .seconds(30))
    var scratch: String? = nil
    if probe.exitCode != 0 {
      let directory = try makeTemporaryDirectory("spyglass-auditwheel")
      scratch = directory
      _ = try runCommand(auditwheel[0], ["-m", "venv", directory + "/venv"], timeout: .seconds(120))
      let install = try runCommand(
        directory + "/venv/bin/python", ["-m", "pip", "install", "auditwheel"], timeout: .seconds(300))
      try #require(install.exitCode == 0, "pip install auditwheel:\n\(install)")
      auditwheel = [directory + "/venv/bin/python", "-m", "auditwheel"]
    }
    defer { if let scratch { removeDirectory(scratch) } }
    let show = try runCommand(auditwheel[0], Array(auditwheel.dropFirst()) + ["show", wheel], timeout: .seconds(120))
    #expect(show.exitCode == 0, "\(show)")
    let text = show.stdout.replacingOccurrences(of: "\n", with: " ")
    #expect(text.contains("requires no external shared libraries"), "auditwheel show:\n\(show)")
    #expect(text.contains("references no external versioned symbols"), "auditwheel show:\n\(show)")
  }

  @Test(arguments: ["3.8", "3.12", "3.13"])
  func venvInstallAndAPI(_ version: String) throws {
    let python = try hostPython(version)
    let directory = try makeTemporaryDirectory("spyglass-venv-\(version)")
    defer { removeDirectory(directory) }
    let venv = try venvWithWheel(python.path, in: directory)
    let environment = plainEnvironment(path: [venv + "/bin"])
    try checkOnPath(venv + "/bin", environment: environment, label: python.label)
    let output = directory + "/out"
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let (_, report) = try runCheck(python: venv + "/bin/python", mode: "full", output: output, environment: environment)
    try judgeFullRun(report, output: output, label: python.label)
  }

  @Test func python27UserInstall() throws {
    let python = try hostPython("2.7")
    let home = try makeTemporaryDirectory("spyglass-home27")
    defer { removeDirectory(home) }
    let environment = plainEnvironment(path: [home + "/.local/bin"], home: home)
    let pip = try runCommand(python.path, ["-m", "pip", "--version"], timeout: .seconds(60), environment: environment)
    let pipVersion = pip.stdout.split(separator: " ").dropFirst().first.map(String.init) ?? ""
    let parts = pipVersion.split(separator: ".").compactMap { Int($0) }
    try #require(
      parts.count >= 2 && (parts[0], parts[1]) >= (20, 3),
      "2.7's pip must be 20.3 or later to know manylinux_2_17 tags (test.sh upgrades it): \(pip)")
    let wheel = try Wheel.path()
    let install = try runCommand(
      python.path, ["-m", "pip", "install", "--user", "--no-index", "--no-deps", wheel],
      timeout: .seconds(180), environment: environment)
    try #require(install.exitCode == 0, "pip install --user on 2.7:\n\(install)")
    try checkOnPath(home + "/.local/bin", environment: environment, label: "2.7 --user")
    let api = try runCommand(
      python.path,
      [
        "-c",
        "import spyglass, sys\nprint(spyglass.__version__)\nprint(spyglass.is_running())\n"
          + "try:\n  spyglass.start()\nexcept spyglass.Error as e:\n  print(e)\n",
      ], timeout: .seconds(60), environment: environment)
    #expect(api.exitCode == 0, "\(api)")
    let lines = api.stdout.split(separator: "\n").map(String.init)
    #expect(lines.first == Wheel.version, "\(api)")
    #expect(lines.dropFirst().first == "False", "\(api)")
    #expect(lines.last?.contains("needs Python 3.6 or later") == true, "\(api)")
    let module = try runCommand(
      python.path, ["-m", "spyglass", "--version"], timeout: .seconds(60), environment: environment)
    #expect(module.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "spyglass \(Wheel.version)", "\(module)")
  }

  /// As a user that is not root: the API works where the kernel lets a child read its parent
  /// (no Yama, or ptrace_scope 0 or 1 with PR_SET_PTRACER), and says what to do where it does not.
  @Test func asAnotherUser() throws {
    try #require(getuid() == 0, "this test switches to another user; run the suite as root (CI does)")
    let setpriv = try #require(
      (["/usr/bin/setpriv", "/bin/setpriv"] as [String]).first { access($0, X_OK) == 0 }, "setpriv (util-linux)")
    let debian = try #require(PythonInterpreter.all().first { $0.label == "3.11-debian" }, "Debian's python3.11")
    // An unused uid: no account, so nothing of it runs here but this test.
    var uid: UInt32 = 23_417
    while getpwuid(uid) != nil { uid += 1 }
    let directory = try makeTemporaryDirectory("spyglass-user")
    defer { removeDirectory(directory) }
    chmod(directory, 0o755)
    let venv = try venvWithWheel(debian.path, in: directory)
    let home = directory + "/home"
    let output = directory + "/out"
    for folder in [home, output] {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      chown(folder, uid, uid)
    }
    let wrapper = [setpriv, "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"]
    let environment = plainEnvironment(path: [venv + "/bin"], home: home)
    let id = try runCommand(setpriv, Array(wrapper.dropFirst()) + ["/usr/bin/id", "-u"], environment: environment)
    try #require(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(uid)", "\(id)")

    let scope = (try? String(contentsOfFile: "/proc/sys/kernel/yama/ptrace_scope", encoding: .utf8))
      .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    let (_, full) = try runCheck(
      python: venv + "/bin/python", mode: "full", output: output, environment: environment, wrapper: wrapper)
    #expect(full["uid"] as? Int == Int(uid))
    if let scope, scope >= 2 {
      let error = full["start_error"] as? String ?? ""
      #expect(error.contains("Permission denied") && error.contains("ptrace_scope is \(scope)"), "\(full)")
    } else {
      try judgeFullRun(full, output: output, label: "uid \(uid), ptrace_scope \(scope.map(String.init) ?? "none")")
    }

    // Refused: a non-dumpable process can only be read by root.
    let (_, refused) = try runCheck(
      python: venv + "/bin/python", mode: "refused", output: output, environment: environment, wrapper: wrapper)
    #expect(refused["dumpable_set"] as? Bool == true, "\(refused)")
    let error = refused["start_error"] as? String ?? ""
    for needle in ["Permission denied", "PR_SET_PTRACER", "CAP_SYS_PTRACE"] {
      #expect(error.contains(needle), "the refusal mentions \(needle): \(error)")
    }
    #expect(refused["running"] as? Bool == false, "\(refused)")
  }

  /// `record --summary-json`: per thread, the Python and OS ids, the name, samples and CPU time.
  @Test func recordSummaryJSON() throws {
    let python = try hostPython("3.12")
    let process = try PythonProcess(python, script: Fixture.path("busyloop.py"))
    defer { process.stop() }
    try process.waitForCPU()
    let directory = try makeTemporaryDirectory("spyglass-summary")
    defer { removeDirectory(directory) }
    let summary = directory + "/summary.json"
    let result = try SpyglassRunner.run(
      [
        "record", "--pid", "\(process.pid)", "-d", "1", "-f", "raw", "-o", directory + "/out.txt", "--summary-json",
        summary,
      ], timeout: .seconds(30))
    try #require(result.exitCode == 0, "\(result)")
    let data = try Data(contentsOf: URL(fileURLWithPath: summary))
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(object["spyglass"] as? String == Wheel.version)
    #expect(object["final"] as? Bool == true)
    #expect(number(object["samples"]) ?? 0 > 50, "\(object)")
    let threads = try #require(object["threads"] as? [[String: Any]])
    try #require(threads.count == 1, "\(object)")
    let main = threads[0]
    #expect(number(main["pid"]) == Double(process.pid))
    #expect(number(main["os_thread_id"]) == Double(process.pid), "the main thread's OS id is the pid: \(main)")
    #expect(number(main["thread_id"]) ?? 0 > 0, "\(main)")
    #expect(number(main["samples"]) == number(object["samples"]), "\(main)")
    let cpu = number(main["cpu_nanoseconds"]) ?? 0
    #expect(cpu > 0.6e9 && cpu < 1.3e9, "a busy thread used about the second recorded: \(main)")
  }

  /// The sdist carries what a Swift build needs; without a toolchain the build says which one.
  @Test func sdistWithoutSwift() throws {
    let python3 = try systemPython3()
    let directory = try makeTemporaryDirectory("spyglass-sdist")
    defer { removeDirectory(directory) }
    let sdist = try runCommand(
      python3,
      [
        "-c", "import os, sys, hatchling.build as b; os.chdir(sys.argv[1]); print(b.build_sdist(sys.argv[2]))",
        RepositoryFiles.root, directory,
      ], timeout: .seconds(300))
    try #require(sdist.exitCode == 0, "hatchling's build_sdist (test.sh installs hatchling):\n\(sdist)")
    let name = sdist.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(name == "spyglass-\(Wheel.version).tar.gz", "\(sdist)")
    let archive = directory + "/" + name
    let listing = try runCommand("/bin/tar", ["-tzf", archive], timeout: .seconds(60))
    let prefix = "spyglass-\(Wheel.version)/"
    for file in [
      "Package.swift", "Sources/SpyglassCLI/SpyglassCommand.swift", "bench/link-order/order.txt",
      "bench/link-order/hot.ld", "python/spyglass/__init__.py", "tools/hatch_build.py", "pyproject.toml",
      "Tests/TestSupport/RepositoryFiles.swift",
    ] {
      #expect(listing.stdout.contains(prefix + file + "\n"), "the sdist holds \(file)")
    }
    #expect(!listing.stdout.contains("/.build"), "no build folder in the sdist")

    // Building a wheel from it on a machine without swift: one plain sentence.
    let build = try runCommand(
      python3, ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", directory + "/wheel", archive],
      timeout: .seconds(300), environment: plainEnvironment(path: []))
    #expect(build.exitCode != 0, "\(build)")
    #expect(
      (build.stdout + build.stderr).contains("spyglass: building spyglass from source needs a Swift 6.3 toolchain"),
      "\(build)")
  }
}
