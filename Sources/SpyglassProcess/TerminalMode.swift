//===--- TerminalMode.swift - key-at-a-time input and the alternate screen -===//
//
// `top` reads single keys while it samples and draws on the terminal's alternate screen. Whatever
// it changes is recorded here, in process-wide state, so that one idempotent `restore()` undoes it
// on every way out: a normal return, a thrown failure, Ctrl-C/SIGTERM, `exit()` (restore is
// registered with atexit the first time the terminal is changed) and even a crash, abort or SIGQUIT
// (restore runs in front of the previous handler of those signals; it is async-signal-safe).
//
//===----------------------------------------------------------------------===//

import Glibc

/// Everything changed, so that it can be put back. One variable, so one lazy initialization: with
/// several globals in this file, the first use of one that needs run-time initialization (termios)
/// was seen to reset the others to their initial values.
private struct SavedState {
  /// The descriptor whose termios settings are saved (-1: none).
  var inputFD: Int32 = -1
  var settings = termios()
  /// The descriptor whose alternate screen is active (-1: none).
  var screenFD: Int32 = -1
  var handlersInstalled = false
  /// The handlers that were in place for the fatal signals, by signal number.
  var previousActions: UnsafeMutablePointer<sigaction>? = nil
}

nonisolated(unsafe) private var saved = SavedState()

package enum TerminalMode {
  /// Puts the terminal on `fd` in key-at-a-time mode: no line editing, no echo, keys never turned
  /// into signals (Ctrl-C arrives as byte 3, so a launched program in the same process group is
  /// not interrupted), and reads that return at once. Touches nothing, and returns false, when
  /// `fd` is not a terminal or this process is not in the terminal's foreground process group (a
  /// background job would be stopped by SIGTTOU/SIGTTIN).
  package static func enterKeyMode(_ fd: Int32 = 0) -> Bool {
    guard saved.inputFD < 0 else { return true }
    guard isatty(fd) != 0, tcgetpgrp(fd) == getpgrp() else { return false }
    var settings = termios()
    guard tcgetattr(fd, &settings) == 0 else { return false }
    installExitHandler()
    saved.settings = settings
    saved.inputFD = fd
    settings.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
    settings.c_iflag &= ~tcflag_t(IXON | ICRNL)
    withUnsafeMutableBytes(of: &settings.c_cc) { cc in
      cc[Int(VMIN)] = 0
      cc[Int(VTIME)] = 0
    }
    if tcsetattr(fd, TCSANOW, &settings) != 0 {
      saved.inputFD = -1
      return false
    }
    return true
  }

  /// Switches the terminal on `fd` to its alternate screen and hides the cursor.
  package static func enterFullScreen(_ fd: Int32 = 1) {
    guard saved.screenFD < 0 else { return }
    installExitHandler()
    saved.screenFD = fd
    write(fd, "\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
  }

  /// Whether key mode is on.
  package static var inKeyMode: Bool { saved.inputFD >= 0 }

  /// Puts back everything changed: shows the cursor, leaves the alternate screen, restores the
  /// saved terminal settings. Safe to call any number of times, and when nothing was changed.
  package static func restore() {
    if saved.screenFD >= 0 {
      let fd = saved.screenFD
      saved.screenFD = -1
      write(fd, "\u{1B}[?25h\u{1B}[?1049l")
    }
    if saved.inputFD >= 0 {
      let fd = saved.inputFD
      saved.inputFD = -1
      var settings = saved.settings
      _ = tcsetattr(fd, TCSANOW, &settings)
    }
  }

  /// The bytes that can be read from `fd` right now, without waiting (empty when none).
  package static func readAvailable(_ fd: Int32 = 0) -> [UInt8] {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&descriptor, 1, 0) > 0, descriptor.revents & Int16(POLLIN) != 0 else { return [] }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return n > 0 ? Array(buffer[0..<n]) : []
  }

  /// Registers `restore` with atexit, and in front of the handlers of the signals that end the
  /// process abruptly (a crash, abort, SIGQUIT): the terminal is put back, then the previous
  /// handler (Swift's backtracer, or the default action) runs as before.
  /// Registers `restore` with atexit, and in front of the handlers of the signals that end the
  /// process abruptly (a crash, abort, SIGQUIT): the terminal is put back, then the previous
  /// handler (Swift's backtracer, or the default action) runs as before.
  private static func installExitHandler() {
    guard !saved.handlersInstalled else { return }
    saved.handlersInstalled = true
    atexit { TerminalMode.restore() }
    let previous = UnsafeMutablePointer<sigaction>.allocate(capacity: Int(SIGSYS) + 1)
    previous.initialize(repeating: sigaction(), count: Int(SIGSYS) + 1)
    saved.previousActions = previous
    for signal in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGQUIT] {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { signal in
        TerminalMode.restore()
        if let previous = saved.previousActions { sigaction(signal, previous + Int(signal), nil) }
        raise(signal)  // blocked until this handler returns, then handled as before
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = 0
      sigaction(signal, &action, previous + Int(signal))
    }
  }

  private static func write(_ fd: Int32, _ text: StaticString) {
    text.withUTF8Buffer { buffer in
      var offset = 0
      while offset < buffer.count {
        let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
      }
    }
  }
}
