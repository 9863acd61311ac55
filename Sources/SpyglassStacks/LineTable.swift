//===--- LineTable.swift - bytecode offset → source line ------------------===//
//
// The four encodings CPython has used, each decoded with CPython's own semantics (the line of the
// entry whose address range contains the instruction), over untrusted bytes: every loop is bounded
// by the table length and every varint by a shift limit.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts

package enum LineTableFormat: Sendable, Equatable {
  /// `co_lnotab` in 2.7: like `.lnotab` but line increments are unsigned.
  case lnotab27
  /// `co_lnotab` (3.6–3.9): (address increment, line increment) byte pairs; `lasti` is a byte offset.
  case lnotab
  /// `co_linetable` in 3.10: (address delta, signed line delta) pairs, -128 meaning "no line";
  /// `lasti` is a byte offset.
  case linetable310
  /// The PEP 626/657 location table (3.11+); `lasti` is a byte offset into `co_code_adaptive`.
  case locationTable
}

extension PythonTraits {
  /// The decoder for this version's line tables.
  package var lineTableFormat: LineTableFormat {
    switch lineTable {
    case .lnotab27: return .lnotab27
    case .lnotab: return .lnotab
    case .linetable310: return .linetable310
    case .locationTable: return .locationTable
    }
  }
}

package enum LineTable {
  /// The line of the instruction at byte offset `lasti`, or `firstLine` when the table has no
  /// entry for it. Never traps on garbage.
  package static func line(
    for lasti: Int, firstLine: Int, table: [UInt8], format: LineTableFormat
  ) -> Int {
    switch format {
    case .lnotab27: return lnotabLine(lasti: lasti, firstLine: firstLine, table: table, signed: false)
    case .lnotab: return lnotabLine(lasti: lasti, firstLine: firstLine, table: table, signed: true)
    case .linetable310: return linetable310Line(lasti: lasti, firstLine: firstLine, table: table)
    case .locationTable: return locationTableLine(lasti: lasti, firstLine: firstLine, table: table)
    }
  }

  static func lnotabLine(lasti: Int, firstLine: Int, table: [UInt8], signed: Bool) -> Int {
    var line = firstLine
    var address = 0
    var i = 0
    while i + 1 < table.count {
      address += Int(table[i])
      if address > lasti { break }
      // Line increments are signed since 3.6 and unsigned before.
      line += signed ? Int(Int8(bitPattern: table[i + 1])) : Int(table[i + 1])
      i += 2
    }
    return line
  }

  static func linetable310Line(lasti: Int, firstLine: Int, table: [UInt8]) -> Int {
    var line = firstLine
    var start = 0
    var i = 0
    while i + 1 < table.count {
      let addressDelta = Int(table[i])
      let lineDelta = Int8(bitPattern: table[i + 1])
      let end = start + addressDelta
      if lineDelta != -128 { line += Int(lineDelta) }
      if lasti >= start && lasti < end { return lineDelta == -128 ? firstLine : line }
      start = end
      i += 2
    }
    return line
  }

  static func locationTableLine(lasti: Int, firstLine: Int, table: [UInt8]) -> Int {
    var line = firstLine
    var address = 0
    var i = 0
    func varint() -> Int {
      var result = 0
      var shift = 0
      while i < table.count && shift < 63 {
        let byte = Int(table[i])
        i += 1
        result |= (byte & 0x3f) << shift
        shift += 6
        if byte & 0x40 == 0 { break }
      }
      return result
    }
    func signedVarint() -> Int {
      let value = varint()
      return value & 1 != 0 ? -(value >> 1) : value >> 1
    }
    while i < table.count {
      let first = Int(table[i])
      i += 1
      // Entries start with a byte whose top bit is set.
      guard first & 0x80 != 0 else { continue }
      let code = (first >> 3) & 15
      let length = ((first & 7) + 1) * 2
      var entryLine = line
      var hasLine = true
      switch code {
      case 15:
        hasLine = false
      case 14:
        // Wrapping: a garbage table's deltas can be near ±2^62 each.
        line &+= signedVarint()
        entryLine = line
        _ = varint()  // end line delta
        _ = varint()  // start column
        _ = varint()  // end column
      case 13:
        line &+= signedVarint()
        entryLine = line
      case 10, 11, 12:
        line &+= code - 10
        entryLine = line
        i += 2
      default:
        i += 1
      }
      let end = address + length
      if lasti >= address && lasti < end { return hasLine ? entryLine : firstLine }
      address = end
    }
    return line
  }
}
