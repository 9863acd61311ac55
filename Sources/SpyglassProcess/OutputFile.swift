//===--- OutputFile.swift - writing a profile without losing the old one ---===//
//
// How a profile reaches its output path. A regular file (or a new one) is written as a temporary
// file beside it and renamed over it, so a failed write (disk full) never leaves a truncated
// profile in place of a good one; a symbolic link is followed, so the file it names is replaced
// and the link stays. Anything else that exists (/dev/null, a FIFO, /dev/stdout) is written into:
// renaming over it would replace the device node or the pipe with a regular file, as root even
// /dev/null.
//
//===----------------------------------------------------------------------===//

import Glibc

package struct OutputFile: Sendable {
  /// As the user gave it (for messages, and written into directly).
  package let path: String
  private let how: How

  private enum How {
    case replacing(file: String)
    case writingInto
  }

  package init(_ path: String) {
    self.path = path
    var info = stat()
    if stat(path, &info) == 0 {
      if info.st_mode & S_IFMT != S_IFREG {
        how = .writingInto
      } else if let resolved = realpath(path, nil) {
        how = .replacing(file: String(cString: resolved))
        free(resolved)
      } else {
        how = .replacing(file: path)
      }
    } else {
      how = .replacing(file: path)
    }
  }

  private static func temporary(beside file: String) -> String { file + ".spyglass-\(getpid()).tmp" }

  /// Finds, before sampling starts, what would make the final write fail: the file's directory
  /// must take a new file (the temporary one), or the path itself must open for writing.
  package func checkWritable() throws(Errno) {
    switch how {
    case .replacing(let file):
      let temporary = Self.temporary(beside: file)
      _ = try FileDescriptor(writing: temporary)
      unlink(temporary)
    case .writingInto:
      // Permission only: opening a FIFO and closing it again would end its reader's input.
      if access(path, W_OK) != 0 { throw Errno.current }
    }
  }

  /// Writes `bytes` (see the file's comment for how).
  package func write(_ bytes: [UInt8]) throws(Errno) {
    switch how {
    case .replacing(let file):
      let temporary = Self.temporary(beside: file)
      do throws(Errno) {
        let output = try FileDescriptor(writing: temporary)
        try output.write(bytes)
        if fsync(output.rawValue) != 0 && errno != EINVAL { throw Errno.current }
      } catch {
        unlink(temporary)
        throw error
      }
      if rename(temporary, file) != 0 {
        let error = Errno.current
        unlink(temporary)
        throw error
      }
    case .writingInto:
      try FileDescriptor(writing: path).write(bytes)
    }
  }
}
