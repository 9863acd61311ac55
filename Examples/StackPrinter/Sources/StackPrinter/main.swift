// StackPrinter: prints a Python process's stacks once, then samples it for a while.
//
//   swift run StackPrinter PID [SAMPLES]
//
// Output: "Python X.Y.Z", then per thread "Thread TID NAME" and its frames innermost first as
// "    name (file:line)", then "Sampled N samples" and the most frequent leaf functions.
import Spyglass

#if canImport(Glibc)
  import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 2, let pid = Int32(arguments[1]) else {
  print("usage: StackPrinter PID [SAMPLES]")
  exit(2)
}
let wanted = arguments.count >= 3 ? Int(arguments[2]) ?? 100 : 100

do {
  let spy = try PythonSpy(pid: pid, config: Config(includeIdle: true))
  print("Python \(spy.version)")
  for trace in try spy.stackTraces() {
    print("Thread \(trace.osThreadID ?? 0) \(trace.threadName ?? "-")")
    for frame in trace.frames {
      print("    \(frame.name) (\(frame.filename):\(frame.line))")
    }
  }

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
