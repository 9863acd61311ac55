//===--- SummaryWriter.swift - `record --summary-json` -----------------------===//
//
// One JSON object with the recording's totals and, per sampled thread, its process, Python thread
// id (`threading.get_ident()`), OS thread id, name, samples and the CPU time it used while
// recorded (null when unmeasured). The Python API reads it beside the profile.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassProfile

package enum SummaryWriter {
  /// The summary of `profile`; `rate` as the CLI prints it, `final` true for the last write.
  package static func render(_ profile: Profile, version: String, rate: String, final: Bool) -> [UInt8] {
    var samples = [UInt64](repeating: 0, count: profile.threads.count)
    for (key, total) in profile.totals where Int(key.thread) < samples.count {
      samples[Int(key.thread)] += total.count
    }
    let nanoseconds = profile.info.durationSeconds * 1e9
    let duration = nanoseconds.isFinite && nanoseconds > 0 && nanoseconds < 9e18 ? UInt64(nanoseconds) : 0
    var out: [UInt8] = []
    out.append("{\"spyglass\":")
    out.append(json: version)
    out.append(",\"final\":\(final),\"rate\":\(rate),\"duration_nanoseconds\":\(duration)")
    out.append(",\"samples\":\(profile.totalSamples),\"errors\":\(profile.info.errorCount),\"threads\":[")
    for (index, thread) in profile.threads.enumerated() {
      if index > 0 { out.append(UInt8(ascii: ",")) }
      out.append("{\"pid\":\(thread.pid),\"thread_id\":\(thread.threadID)")
      out.append(",\"os_thread_id\":\(thread.osThreadID.map { String($0) } ?? "null"),\"name\":")
      if let name = thread.name { out.append(json: name) } else { out.append("null") }
      out.append(",\"samples\":\(samples[index])")
      out.append(",\"cpu_nanoseconds\":\(thread.cpuNanoseconds.map { String($0) } ?? "null")}")
    }
    out.append("]}\n")
    return out
  }
}
