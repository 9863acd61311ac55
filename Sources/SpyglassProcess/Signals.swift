//===--- Signals.swift - Ctrl-C, SIGTERM and SIGUSR1 as flags -------------===//
//
// Handlers only set flags (async-signal-safe); the sampling loop polls them. SIGINT/SIGTERM stop a
// recording (which is then written out); SIGUSR1 asks for the profile so far to be written.
//
//===----------------------------------------------------------------------===//

import Glibc

nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0
nonisolated(unsafe) private var flushSignal: sig_atomic_t = 0

package enum Signals {
  /// Installs the handlers. Call once, from the main thread.
  package static func install() {
    var stop = sigaction()
    stop.__sigaction_handler.sa_handler = { signal in stopSignal = signal }
    sigemptyset(&stop.sa_mask)
    stop.sa_flags = 0
    sigaction(SIGINT, &stop, nil)
    sigaction(SIGTERM, &stop, nil)
    var flush = sigaction()
    flush.__sigaction_handler.sa_handler = { _ in flushSignal = 1 }
    sigemptyset(&flush.sa_mask)
    flush.sa_flags = SA_RESTART
    sigaction(SIGUSR1, &flush, nil)
  }

  /// The signal that asked to stop (SIGINT or SIGTERM), or 0.
  package static var stopRequested: Int32 { stopSignal }

  /// Whether a SIGUSR1 is waiting to be taken.
  package static var flushPending: Bool { flushSignal != 0 }

  /// True once per SIGUSR1.
  package static func takeFlushRequest() -> Bool {
    if flushSignal == 0 { return false }
    flushSignal = 0
    return true
  }
}

/// Signal numbers a client sends (to a program it launched).
package enum Signal {
  package static let interrupt = SIGINT
  package static let terminate = SIGTERM
  package static let kill = SIGKILL
}
