//===--- ProcFSTests.swift - the kept-open /proc readers of the sampling path -===//
//
// The sampling path reads a stat line's state without parsing the rest, and keeps the task list
// between rounds while the thread count (the task directory's link count) says it is current. Checked against this test
// process, whose threads the checks start and end themselves.
//
//===----------------------------------------------------------------------===//

import Foundation
import Glibc
import SpyglassProcess
import Testing

@Suite struct ProcFSTests {
  /// Starts `count` threads that sleep until `release` is signalled.
  private final class SleepingThreads {
    let release = DispatchSemaphore(value: 0)
    let started = DispatchSemaphore(value: 0)
    var threads: [Thread] = []

    init(count: Int) {
      for _ in 0..<count {
        let thread = Thread { [release, started] in
          started.signal()
          release.wait()
        }
        thread.start()
        threads.append(thread)
      }
      for _ in 0..<count { started.wait() }
    }

    func end() { for _ in threads { release.signal() } }
  }

  @Test func stateAndThreadCountWithoutParsing() throws {
    let stat = try #require(OpenStatFile(path: "/proc/thread-self/stat"))
    #expect(stat.readState() == UInt8(ascii: "R"))
    let tasks = try #require(TaskList(pid: getpid()))
    let sleepers = SleepingThreads(count: 5)
    defer { sleepers.end() }
    // The test runner's own threads come and go: the two counts must agree at some point.
    var counts: [(read: Int?, listed: Int)] = []
    for _ in 0..<100 {
      counts.append((tasks.threadCount(), ProcFS.threadIDs(getpid()).count))
      if counts.last?.read == counts.last?.listed { break }
    }
    #expect(counts.last?.read == counts.last?.listed, "\(counts)")
    #expect((counts.last?.read ?? 0) >= 6)
  }

  /// The test runner starts and ends threads of its own, so each comparison is made when the
  /// process's task list read just before and just after the refresh agree.
  @Test func keptTaskListFollowsTheThreadCount() throws {
    let tasks = try #require(TaskList(pid: getpid()))
    var list: [Int32] = []
    func refreshedWhileStable() -> (kept: Set<Int32>, listed: Set<Int32>) {
      for _ in 0..<100 {
        let before = Set(ProcFS.threadIDs(getpid()))
        tasks.refresh(&list)
        if Set(ProcFS.threadIDs(getpid())) == before { return (Set(list), before) }
      }
      return (Set(list), [])
    }
    var now = refreshedWhileStable()
    #expect(now.kept == now.listed)
    let sleepers = SleepingThreads(count: 7)
    now = refreshedWhileStable()
    #expect(now.kept == now.listed, "seven threads more")
    sleepers.end()
    usleep(300_000)
    now = refreshedWhileStable()
    #expect(now.kept == now.listed, "seven threads fewer")
  }
}
