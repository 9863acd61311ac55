// StackPrinter: prints a Python process's stacks once, then samples it for a while; or prints
// the stacks in a core file of one.
//
//   swift run StackPrinter PID [SAMPLES]
//   swift run StackPrinter --core CORE [ROOT]
//
// Output: "Python X.Y.Z", then per thread "Thread IDENT OSID NAME STATUS" (OSID and NAME "-" when
// unknown, STATUS "active" or "idle") and its frames innermost first as "    name (file:line)";
// for a live process then "Sampled N samples" and the most frequent leaf functions.
import Spyglass

#if canImport(Glibc)
  import Glibc
#endif

func printTraces(_ traces: [StackTrace]) {
  for trace in traces {
    let os = trace.osThreadID.map(String.init) ?? "-"
    print("Thread \(trace.threadID) \(os) \(trace.threadName ?? "-") \(trace.active ? "active" : "idle")")
    for frame in trace.frames {
      print("    \(frame.name) (\(frame.filename):\(frame.line))")
    }
  }
}

let arguments = CommandLine.arguments
do {
  if arguments.count >= 3, arguments[1] == "--core" {
    // A core file: the same StackTraces a live process gives.
    let core = try PythonCoreDump(path: arguments[2], root: arguments.count >= 4 ? arguments[3] : nil)
    print("Python \(core.version)")
    printTraces(try core.stackTraces())
    exit(0)
  }
  guard arguments.count >= 2, let pid = Int32(arguments[1]) else {
    print("usage: StackPrinter PID [SAMPLES] | StackPrinter --core CORE [ROOT]")
    exit(2)
  }
  let wanted = arguments.count >= 3 ? Int(arguments[2]) ?? 100 : 100

  // The default Config: every thread, each with its `active` flag (as py-spy's get_stack_traces).
  let spy = try PythonSpy(pid: pid, config: Config())
  print("Python \(spy.version)")
  printTraces(try spy.stackTraces())

  let sampler = try Sampler(pid: pid, config: Config(samplingRate: 200, includeIdle: true))
  var leaves: [String: Int] = [:]
  var taken = 0
  for sample in sampler.prefix(wanted) {
    taken += 1
    for trace in sample.traces {
      if let leaf = trace.frames.first { leaves[leaf.name, default: 0] += 1 }
    }
  }
  print("Sampled \(taken) samples")
  for (name, count) in leaves.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(5) {
    print("  \(count) \(name)")
  }
} catch {
  print("error: \(error)")
  exit(1)
}
