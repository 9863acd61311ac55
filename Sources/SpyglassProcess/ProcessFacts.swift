//===--- ProcessFacts.swift - what labels a process: environment, container, host ---===//
//
// The facts continuous profiling labels a process with, read from /proc once when the process is
// first sampled: chosen environment variables (`OTEL_SERVICE_NAME`, …), the container it runs in
// (its cgroup path), its age, and the host's name. Everything read is bounded: the environment at
// 1 MiB, a value at 4 KiB, the cgroup file at 64 KiB.
//
//===----------------------------------------------------------------------===//

import Glibc

extension ProcFS {
  /// This process's pid.
  package static var ownPID: Int32 { getpid() }

  /// Whether any file the process maps has `python` in its path (its executable, a libpython):
  /// the agent's cheap first look at a process before it tries to attach.
  package static func mapsMentionPython(_ pid: Int32) -> Bool {
    guard let bytes = try? readFile("/proc/\(pid)/maps", limit: 8 << 20) else { return false }
    let needle = Array("python".utf8)
    var index = 0
    while index + needle.count <= bytes.count {
      if bytes[index] == needle[0] && bytes[index..<(index + needle.count)].elementsEqual(needle) { return true }
      index += 1
    }
    return false
  }

  /// The values of `names` in the process's initial environment (/proc/PID/environ: what it was
  /// started with), those present; empty when the file cannot be read (another user's process
  /// without the privilege to read it).
  package static func environmentValues(_ pid: Int32, names: Set<String>) -> [String: String] {
    guard let bytes = try? readFile("/proc/\(pid)/environ", limit: 1 << 20) else { return [:] }
    var result: [String: String] = [:]
    for entry in bytes.split(separator: 0) where entry.count <= 4096 {
      guard let equals = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
      let name = String(decoding: entry[entry.startIndex..<equals], as: UTF8.self)
      if names.contains(name) { result[name] = String(decoding: entry[(equals + 1)...], as: UTF8.self) }
    }
    return result
  }

  /// The id of the container the process runs in, from its cgroup path (Docker, containerd, CRI-O,
  /// Podman and Kubernetes name a container's cgroup after its 64-hex-digit id: `docker-ID.scope`,
  /// `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope`, `/docker/ID`,
  /// `/kubepods/…/ID`); nil outside a container.
  package static func containerID(_ pid: Int32) -> String? {
    guard let bytes = try? readFile("/proc/\(pid)/cgroup", limit: 64 << 10) else { return nil }
    return containerID(cgroup: String(decoding: bytes, as: UTF8.self))
  }

  /// The container id in a cgroup file's text (see `containerID(_:)`).
  package static func containerID(cgroup text: String) -> String? {
    for line in text.split(separator: "\n") {
      // hierarchy-ID:controllers:path
      guard let path = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).last else {
        continue
      }
      for component in path.split(separator: "/").reversed() {
        var name = Substring(component)
        if name.hasSuffix(".scope") { name = name.dropLast(".scope".count) }
        if let dash = name.lastIndex(of: "-") { name = name[name.index(after: dash)...] }
        if name.count == 64, name.utf8.allSatisfy({ isHexDigit($0) }) { return String(name) }
      }
    }
    return nil
  }

  private static func isHexDigit(_ byte: UInt8) -> Bool {
    (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 102)
  }

  /// The host's name (the kernel's node name: what `hostname` prints).
  package static func hostName() -> String {
    if let bytes = try? readFile("/proc/sys/kernel/hostname", limit: 256) {
      let name = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
      if !name.isEmpty { return name }
    }
    return "localhost"
  }

  /// How long ago the process started, in seconds (nil when it is gone).
  package static func age(_ pid: Int32) -> Double? {
    guard let stat = ProcStat.read(pid: pid),
      let uptime = try? readFile("/proc/uptime", limit: 128),
      let seconds = Double(String(decoding: uptime.prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self))
    else { return nil }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    guard ticks > 0 else { return nil }
    return Swift.max(0, seconds - Double(stat.startTicks) / ticks)
  }
}

extension String {
  /// Without leading and trailing spaces, tabs and newlines.
  package var trimmingWhitespace: String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
  }
}

/// The calling process's scheduling priority.
package enum SchedulingPriority {
  /// Sets this process's nice value (lower runs first): nil when done, else why not (raising it
  /// needs root or CAP_SYS_NICE).
  package static func setNice(_ value: Int32) -> Errno? {
    // PRIO_PROCESS with who = 0: this process.
    if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, value) == 0 { return nil }
    return Errno.current
  }

  /// This process's nice value now.
  package static var nice: Int32 {
    errno = 0
    return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
  }
}
