//===--- Terminal.swift - terminal size and modes ---------------------------===//

import CSpyglass
import Glibc

package enum Terminal {
  /// (rows, columns) of the terminal on `fd`, or nil when it is not a terminal.
  package static func size(_ fd: Int32 = 1) -> (rows: Int, columns: Int)? {
    var rows: Int32 = 0
    var cols: Int32 = 0
    guard spy_terminal_size(fd, &rows, &cols) == 0, cols > 0, rows > 0 else { return nil }
    return (Int(rows), Int(cols))
  }

  /// Whether `fd` is a terminal.
  package static func isTerminal(_ fd: Int32 = 1) -> Bool { isatty(fd) != 0 }

  /// The width of the terminal on stdout, or 80.
  package static var width: Int { size()?.columns ?? 80 }
}
