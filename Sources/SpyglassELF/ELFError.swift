//===--- ELFError.swift - why an ELF file or a core could not be read -----===//
//
// Every value in an ELF file is untrusted: a truncated or garbage file (a binary or a core dump)
// is reported with one of these cases and never traps.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

package enum ELFError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Opening or mapping the file failed.
  case cannotOpen(path: String, Errno)
  /// The file does not start with the ELF magic (or is shorter than an identification block).
  case notELF
  /// EI_CLASS is not ELFCLASS64 (1 is 32-bit).
  case unsupportedClass(UInt8)
  /// EI_DATA is not ELFDATA2LSB (2 is big-endian).
  case unsupportedByteOrder(UInt8)
  /// EI_VERSION is not EV_CURRENT.
  case unsupportedVersion(UInt8)
  /// A structure (`what`) extends past the end of the file.
  case truncated(what: String)
  /// A table's entry size is smaller than the structure it must hold.
  case badEntrySize(what: String, size: UInt64)
  /// A section index (`what`: e_shstrndx, sh_link, ...) is out of range or names the wrong kind of section.
  case badIndex(what: String, index: UInt64)
  /// A name's offset lies outside its string table, or the name is not NUL-terminated inside it.
  case badStringOffset(what: String, offset: UInt64)
  /// An ELF file, but not a core (ET_CORE), where a core was expected.
  case notCore
  /// A core whose notes or segments are malformed (what).
  case malformedCore(String)
  /// A core whose memory segments extend past the end of the file.
  case truncatedCore

  package var description: String {
    switch self {
    case .cannotOpen(let path, let error): return "cannot open \(path): \(error)"
    case .notELF: return "not an ELF file"
    case .unsupportedClass(let value): return "unsupported ELF class \(value) (only 64-bit is read)"
    case .unsupportedByteOrder(let value):
      return "unsupported ELF byte order \(value) (only little-endian is read)"
    case .unsupportedVersion(let value): return "unsupported ELF version \(value)"
    case .truncated(let what): return "truncated ELF file: \(what) extends past the end"
    case .badEntrySize(let what, let size): return "bad ELF entry size \(size) for \(what)"
    case .badIndex(let what, let index): return "bad ELF section index \(index) in \(what)"
    case .badStringOffset(let what, let offset): return "bad string offset \(offset) for \(what)"
    case .notCore: return "it is an ELF file but not a core dump"
    case .malformedCore(let what): return "it is a malformed core dump (\(what))"
    case .truncatedCore: return "it is cut short (its memory extends past the end of the file)"
    }
  }
}
