//===--- ProcFS.swift - /proc/PID/... -------------------------------------===//
//
// procfs files have no size and return whole lines per read, so they are read with a plain read()
// loop until 0 (Foundation truncates them). Paths of files the target mapped are looked up under
// /proc/PID/root so that a containerised target works from the host.
//
//===----------------------------------------------------------------------===//

import CSpyglass
import Glibc

package enum ProcFS {
  /// The whole content of a file, read with a read() loop. At most `limit` bytes.
  package static func readFile(_ path: String, limit: Int = 64 << 20) throws(Errno) -> [UInt8] {
    try FileDescriptor(reading: path).readAll(limit: limit)
  }

  package static func readString(_ path: String) throws(Errno) -> String {
    String(decoding: try readFile(path), as: UTF8.self)
  }

  /// readlink(2) of a path.
  package static func readLink(_ path: String) throws(Errno) -> String {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = readlink(path, &buffer, 4096)
    if n < 0 { throw Errno.current }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Whether a process with this pid exists (zombies included).
  package static func processExists(_ pid: Int32) -> Bool {
    if kill(pid, 0) == 0 { return true }
    return errno == EPERM
  }

  /// The target's executable path, as the target sees it.
  package static func executable(_ pid: Int32) throws(Errno) -> String {
    try readLink("/proc/\(pid)/exe")
  }

  /// The command line, split on NUL.
  package static func commandLine(_ pid: Int32) -> [String] {
    guard let bytes = try? readFile("/proc/\(pid)/cmdline", limit: 1 << 20) else { return [] }
    return bytes.split(separator: 0, omittingEmptySubsequences: false).map {
      String(decoding: $0, as: UTF8.self)
    }.dropLast(bytes.last == 0 ? 1 : 0).map { $0 }
  }

  /// Whether `tid` is a thread of process `pid`.
  package static func threadExists(pid: Int32, tid: Int32) -> Bool {
    access("/proc/\(pid)/task/\(tid)", F_OK) == 0
  }

  /// The ids of the process's threads (entries of /proc/PID/task).
  package static func threadIDs(_ pid: Int32) -> [Int32] {
    numericEntries(of: "/proc/\(pid)/task")
  }

  /// Every pid on the system.
  package static func allPIDs() -> [Int32] { numericEntries(of: "/proc") }

  static func numericEntries(of directory: String) -> [Int32] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var result: [Int32] = []
    var guardCount = 0
    while let entry = readdir(dir), guardCount < 1_000_000 {
      guardCount += 1
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
      }
      if let value = Int32(name) { result.append(value) }
    }
    return result.sorted()
  }

  /// Whether a file exists at `path` (access(2) with F_OK).
  package static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  /// The path under which a file mapped by `pid` can be opened from here.
  package static func pathInTarget(_ pid: Int32, _ path: String) -> String {
    "/proc/\(pid)/root\(path)"
  }
}

/// /proc/PID/task kept open and re-listed with getdents64 from offset 0: no open/close and no
/// String per entry on the sampling path.
package final class TaskList {
  private let file: FileDescriptor
  private var fd: Int32 { file.rawValue }
  private var buffer = [UInt8](repeating: 0, count: 32768)
  /// A kept list is listed again at least this often (see `refresh`).
  private var relist = Throttle(seconds: Double(TaskList.keptListNanoseconds) / 1e9)

  package init?(pid: Int32) {
    guard let file = try? FileDescriptor(reading: "/proc/\(pid)/task", directory: true) else { return nil }
    self.file = file
  }

  /// How long a kept list may be reused while the thread count stays the same: a thread that ended
  /// while another started is seen within this time.
  static let keptListNanoseconds: UInt64 = 250_000_000

  /// The process's thread count, from the task directory's link count (procfs gives it one link
  /// per thread plus "." and ".."): one fstat, ~0.3 µs, where the stat line's field 20 costs ~4 µs
  /// with one thread and ~30 µs with 50 (the kernel sums every thread's CPU time for that line).
  /// Nil when the process is gone or the count is not plausible.
  package func threadCount() -> Int? {
    var status = stat()
    guard fstat(fd, &status) == 0, status.st_nlink > 2 else { return nil }
    return Int(status.st_nlink) - 2
  }

  /// Updates `list`, the result of the previous call, to the process's thread ids. Listing costs
  /// ~2 µs and ~1.2 µs more per thread here (60 µs with 50 threads); the thread count says whether
  /// the kept list is still the process's, so the list is re-listed only when the count changed
  /// or the listing is older than `keptListNanoseconds`.
  package func refresh(_ list: inout [Int32]) {
    if !list.isEmpty, !relist.isDue(), threadCount() == list.count { return }
    threadIDs(into: &list)
    _ = relist.ready()
  }

  /// The process's thread ids now (empty when the process is gone).
  package func threadIDs(into result: inout [Int32]) {
    result.removeAll(keepingCapacity: true)
    guard lseek(fd, 0, SEEK_SET) == 0 else { return }
    var rounds = 0
    while rounds < 4096 {
      rounds += 1
      let n = buffer.withUnsafeMutableBytes { spy_getdents64(fd, $0.baseAddress, $0.count) }
      if n <= 0 { return }
      var offset = 0
      while offset + 19 < n {
        let length = Int(buffer[offset + 16]) | Int(buffer[offset + 17]) << 8
        guard length > 0, offset + length <= n else { return }
        var value: Int32 = 0
        var digits = 0
        var i = offset + 19
        while i < offset + length, buffer[i] >= 48, buffer[i] <= 57, digits < 10 {
          value = value &* 10 &+ Int32(buffer[i] - 48)
          digits += 1
          i += 1
        }
        if digits > 0, i < offset + length, buffer[i] == 0 { result.append(value) }
        offset += length
      }
      // procfs fills the buffer with as many entries as it has: one that came back with room for
      // more (an entry takes at most 280 bytes here) was the last, and the call that would return
      // 0 is saved.
      if n <= buffer.count - 512 { return }
    }
  }
}

/// The parsed fields of /proc/PID/stat (or /proc/PID/task/TID/stat) that Spyglass uses.
package struct ProcStat: Sendable, Equatable {
  /// The one-letter state: R running, S sleeping, D disk, Z zombie, T/t stopped, ...
  package var state: UInt8
  package var parentPID: Int32
  /// User and system CPU time in clock ticks.
  package var userTicks: UInt64
  package var systemTicks: UInt64
  package var startTicks: UInt64

  /// Parses a stat line. The command name is in parentheses and may contain spaces and ')', so the
  /// fields start after the last ')'.
  package static func parse(_ bytes: ArraySlice<UInt8>) -> ProcStat? {
    guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let rest = bytes[(close + 1)...]
    let fields = rest.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
    // fields[0] = state (field 3), fields[1] = ppid (4), utime = field 14 -> fields[11],
    // stime = 15 -> fields[12], starttime = 22 -> fields[19].
    guard fields.count >= 2, fields[0].count == 1, let state = fields[0].first else { return nil }
    func number(_ i: Int) -> UInt64 {
      guard i < fields.count else { return 0 }
      var value: UInt64 = 0
      for byte in fields[i] {
        guard byte >= 48, byte <= 57 else { return 0 }
        value = value &* 10 &+ UInt64(byte - 48)
      }
      return value
    }
    guard let ppid = Int32(String(decoding: fields[1], as: UTF8.self)) else { return nil }
    return ProcStat(
      state: state, parentPID: ppid, userTicks: number(11), systemTicks: number(12), startTicks: number(19))
  }

  package static func parse(_ text: String) -> ProcStat? { parse(ArraySlice(Array(text.utf8))) }

  package static func read(pid: Int32, tid: Int32? = nil) -> ProcStat? {
    let path = tid.map { "/proc/\(pid)/task/\($0)/stat" } ?? "/proc/\(pid)/stat"
    guard let bytes = try? ProcFS.readFile(path, limit: 4096) else { return nil }
    return parse(ArraySlice(bytes))
  }

  package var isRunning: Bool { state == UInt8(ascii: "R") }
}

/// A stat file kept open and re-read with pread: about 3 µs per read instead of open+read+close.
package final class OpenStatFile {
  private let file: FileDescriptor
  private var fd: Int32 { file.rawValue }
  var buffer = [UInt8](repeating: 0, count: 1024)

  package init?(path: String) {
    guard let file = try? FileDescriptor(reading: path) else { return nil }
    self.file = file
  }

  /// Only the state letter, without parsing the rest of the line (the sampling path): it follows
  /// the last ")" (the command name itself may contain one) and a space.
  package func readState() -> UInt8? {
    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard n > 2 else { return nil }
    var i = n - 1
    while i > 0 && buffer[i] != UInt8(ascii: ")") { i -= 1 }
    guard i > 0, i + 2 < n else { return nil }
    return buffer[i + 2]
  }

  package func read() -> ProcStat? {
    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return nil }
    return ProcStat.parse(buffer[0..<n])
  }
}

/// Whether one thread is running (state R), asked many times a second.
///
/// /proc/PID/task/TID/wchan names the kernel function a sleeping thread waits in and reads "0"
/// for a runnable one; the kernel makes it in ~2.5 µs here against ~3.8 µs for the 52-field stat
/// line. A name is taken as "asleep" outright. "0" is also what wchan says when the kernel cannot
/// tell (no kallsyms, an unwinder failure, no access), so a "0" is confirmed with the stat line:
/// few threads run at once, and a kernel with a useless wchan loses only the speed-up.
package final class ThreadRunState {
  private let wchanFile: FileDescriptor?
  /// The wchan file's descriptor, -1 when it could not be opened.
  private let wchan: Int32
  private let stat: OpenStatFile
  private var byte: UInt8 = 0

  /// Nil when the thread does not exist (or its stat file cannot be opened).
  package init?(pid: Int32, tid: Int32) {
    guard let stat = OpenStatFile(path: "/proc/\(pid)/task/\(tid)/stat") else { return nil }
    self.stat = stat
    switch try? FileDescriptor(reading: "/proc/\(pid)/task/\(tid)/wchan") {
    case .some(let file):
      wchan = file.rawValue
      wchanFile = consume file
    case .none:
      wchan = -1
      wchanFile = nil
    }
  }

  /// Whether the kernel names the function the thread sleeps in (a pread of wchan, without the stat
  /// line): true is certain, false means running or a kernel that does not say. Nil when the
  /// thread is gone.
  package func isAsleepPerWchan() -> Bool? {
    guard wchan >= 0 else { return false }
    let n = withUnsafeMutablePointer(to: &byte) { pread(wchan, $0, 1, 0) }
    if n < 0 { return nil }
    return n == 1 && byte != UInt8(ascii: "0")
  }

  /// Nil when the thread is gone.
  package func isRunning() -> Bool? {
    guard let asleep = isAsleepPerWchan() else { return nil }
    if asleep { return false }
    guard let state = stat.readState() else { return nil }
    return state == UInt8(ascii: "R")
  }
}

/// One line of /proc/PID/maps.
package struct MemoryMap: Sendable, Equatable {
  package var start: RemoteAddress
  package var end: RemoteAddress
  package var readable: Bool
  package var writable: Bool
  package var executable: Bool
  package var offset: UInt64
  package var inode: UInt64
  package var path: String

  package init(
    start: RemoteAddress, end: RemoteAddress, readable: Bool, writable: Bool, executable: Bool,
    offset: UInt64, inode: UInt64, path: String
  ) {
    self.start = start
    self.end = end
    self.readable = readable
    self.writable = writable
    self.executable = executable
    self.offset = offset
    self.inode = inode
    self.path = path
  }

  package func contains(_ address: RemoteAddress) -> Bool { address >= start && address < end }

  /// Parses /proc/PID/maps. Paths may contain spaces; lines that do not parse are skipped.
  package static func parse(_ text: String) -> [MemoryMap] {
    var result: [MemoryMap] = []
    for line in text.split(separator: "\n") {
      // start-end perms offset dev inode [path]
      var fields: [Substring] = []
      var rest = line[...]
      for _ in 0..<5 {
        rest = rest.drop { $0 == " " }
        guard let space = rest.firstIndex(of: " ") else {
          fields.append(rest)
          rest = ""
          break
        }
        fields.append(rest[..<space])
        rest = rest[space...]
      }
      guard fields.count == 5 else { continue }
      let path = String(rest.drop { $0 == " " })
      let range = fields[0].split(separator: "-")
      guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16)
      else { continue }
      let perms = Array(fields[1].utf8)
      guard perms.count >= 3 else { continue }
      result.append(
        MemoryMap(
          start: start, end: end, readable: perms[0] == UInt8(ascii: "r"),
          writable: perms[1] == UInt8(ascii: "w"), executable: perms[2] == UInt8(ascii: "x"),
          offset: UInt64(fields[2], radix: 16) ?? 0, inode: UInt64(fields[4]) ?? 0, path: path))
    }
    return result
  }

  package static func read(pid: Int32) throws(Errno) -> [MemoryMap] {
    parse(try ProcFS.readString("/proc/\(pid)/maps"))
  }
}
