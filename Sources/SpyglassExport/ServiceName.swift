//===--- ServiceName.swift - what a Python process is called in a backend ----===//
//
// The service name groups a backend's profiles. An explicit `--service-name` wins; else the
// process's own `OTEL_SERVICE_NAME` (what OpenTelemetry's SDKs in it would report), then
// `PYROSCOPE_APPLICATION_NAME` (Pyroscope's agent's); else it is read off the command line as a
// person would name the program: the module of `python -m MODULE`, the script of `python SCRIPT`
// (without `.py`; a package's `__main__.py` is its folder's name), or the program of a launcher
// that is not a python binary itself (`gunicorn`, `uwsgi`, `celery`).
//
//===----------------------------------------------------------------------===//

package enum ServiceName {
  /// The environment variables looked at, in order.
  package static let environmentVariables = ["OTEL_SERVICE_NAME", "PYROSCOPE_APPLICATION_NAME"]

  /// The service name of a process (see the file's header); never empty.
  package static func of(commandLine: [String], environment: [String: String], executable: String) -> String {
    for name in environmentVariables {
      if let value = environment[name]?.trimmedName, !value.isEmpty { return value }
    }
    return fromCommandLine(commandLine) ?? baseName(executable).nonEmpty ?? "python"
  }

  /// The name a command line gives its program, nil when it gives none.
  package static func fromCommandLine(_ arguments: [String]) -> String? {
    guard let program = arguments.first else { return nil }
    let programName = baseName(program)
    // A launcher or an embedding program (gunicorn, uwsgi) is named after itself.
    guard isPythonBinary(programName) else { return programName.nonEmpty.map(stripPy) }
    var index = 1
    while index < arguments.count {
      let argument = arguments[index]
      if argument == "-m", index + 1 < arguments.count { return moduleName(arguments[index + 1]) }
      if argument.hasPrefix("-m"), argument.count > 2 { return moduleName(String(argument.dropFirst(2))) }
      if argument == "-c" || argument.hasPrefix("-c") { return programName }
      if argument == "-" { return programName }
      if argument == "--" {
        index += 1
        continue
      }
      if argument.hasPrefix("-") {
        // Options that take a value as the next argument.
        if ["-W", "-X", "--check-hash-based-pycs"].contains(argument) { index += 1 }
        index += 1
        continue
      }
      return scriptName(argument)
    }
    return programName
  }

  /// `python`, `python3`, `python3.12`, `python3.13t`, `python2.7`, `pypy3`…
  static func isPythonBinary(_ name: String) -> Bool {
    name.hasPrefix("python") || name.hasPrefix("pypy")
  }

  static func moduleName(_ module: String) -> String {
    var name = module
    if name.hasSuffix(".__main__") { name = String(name.dropLast(".__main__".count)) }
    return name.nonEmpty ?? "python"
  }

  static func scriptName(_ path: String) -> String {
    let parts = path.split(separator: "/").map(String.init)
    guard let last = parts.last else { return "python" }
    if last == "__main__.py", parts.count >= 2 { return parts[parts.count - 2] }
    return stripPy(last).nonEmpty ?? last
  }

  static func stripPy(_ name: String) -> String { name.hasSuffix(".py") ? String(name.dropLast(3)) : name }

  static func baseName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }
}

extension String {
  fileprivate var nonEmpty: String? { isEmpty ? nil : self }
  fileprivate var trimmedName: String {
    String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
  }
}
